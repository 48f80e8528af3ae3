// Recorded answers: a dataset folder's responses.jsonl, the answer text each model gave to each query.
//
// One {"query_id": "...", "model": "...", "response": "..."} object of strings per line (see data/*/SOURCE.md); the
// bench's escalation routers and the Archon search's replay objective read them.
#pragma once

#include <functional>
#include <string>

#include "baton/status.h"

namespace baton {

// Calls `fn` for each line of `path` in order (blank lines skipped). NotFound when the file cannot be opened;
// DataLoss naming FILE:LINE for a line that is not such an object (nothing after it is read).
Status ForEachRecordedResponse(
    const std::string& path,
    const std::function<void(const std::string& query_id, const std::string& model, const std::string& response)>& fn);

}  // namespace baton
