// Limits on JSON that comes from outside the process (client requests, upstream answers).
//
// nlohmann::json parses iteratively, but copying, comparing and dump()ing a value recurse once per nesting level: a
// body of a few hundred kilobytes nested 150,000 deep overflows the stack of whichever thread touches it. Every
// untrusted JSON text is therefore checked with CheckJsonDepth before it is parsed.
//
// Thread-safety: pure functions.
#pragma once

#include <cstddef>
#include <string_view>

#include "baton/status.h"

namespace baton {

// Deepest nesting of arrays and objects accepted from outside. JSON Schemas of OpenAI tools nest a few levels per
// property; 64 leaves room for any real one and keeps every recursive walk far from the stack's end.
inline constexpr int kMaxJsonDepth = 64;

// OK when no array or object in `text` is nested deeper than `max_depth` (the top-level value is depth 1). Strings
// (and escaped quotes inside them) are skipped, so brackets in text do not count. InvalidArgument naming the limit
// and the byte offset where it was passed. Linear in the size of `text`; does not validate the rest of the syntax.
Status CheckJsonDepth(std::string_view text, int max_depth = kMaxJsonDepth);

}  // namespace baton
