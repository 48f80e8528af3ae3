// Model files from bytes already in memory (LoadModel in baton/predictor.h reads the file, then calls this).
// Internal to baton: the fuzz target (fuzz/targets.cc) feeds it arbitrary bytes.
#pragma once

#include <string>
#include <string_view>

#include "baton/predictor.h"
#include "baton/status.h"

namespace baton {

// LoadModel on the bytes of a model file; `path` names it in messages. DataLoss / FailedPrecondition on malformed,
// corrupted or other-version bytes, as LoadModel. Never throws.
StatusOr<RouterModel> ParseModel(std::string_view bytes, const std::string& path);

}  // namespace baton
