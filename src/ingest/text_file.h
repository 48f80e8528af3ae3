// Reading whole text files and checking them: UTF-8 validation with line numbers, strict number parsing.
// Internal to the ingest stage. Thread-safety: free functions, no shared state.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "baton/status.h"

namespace baton::ingest {

// Reads the whole file. NotFound when it does not exist, IoError when it cannot be read.
StatusOr<std::string> ReadFile(const std::string& path);

// OK when `text` is valid UTF-8 (no overlong forms, no surrogates). Otherwise InvalidArgument naming `name`, the
// 1-based line and the byte offset of the first bad byte.
Status ValidateUtf8(std::string_view text, const std::string& name);

// Strict parsers: the whole field must be the number (no spaces, no trailing text); NaN and infinities are refused.
std::optional<double> ParseDouble(std::string_view s);
std::optional<int64_t> ParseInt(std::string_view s);

// True for the spellings of "no value" that tools write into numeric cells: NaN, nan, NA, N/A, <NA>, null, None.
bool IsNanLike(std::string_view s);

// The candidate closest to `name` by edit distance when it is close enough to read as a typo of it, "" otherwise.
std::string ClosestName(const std::string& name, const std::vector<std::string>& candidates);

// "file:line: message"
std::string Where(const std::string& file, size_t line);

}  // namespace baton::ingest
