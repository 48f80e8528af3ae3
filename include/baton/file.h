// Files baton writes (model files, reports, exports) are replaced atomically: readers see the old content or the new,
// never a partial file, even when the disk fills up or the process dies mid-write.
// Thread-safety: safe; concurrent writers to one path race, and the last rename wins.
#pragma once

#include <string>

#include "baton/status.h"

namespace baton {

// Writes `content` to a temporary file beside `path` (same folder, so the rename cannot cross file systems), flushes
// and fsyncs it, then renames it over `path`. IoError naming the file and the operating system's reason on failure;
// the temporary file is removed.
Status WriteFileAtomically(const std::string& path, const std::string& content);

}  // namespace baton
