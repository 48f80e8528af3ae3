#include "ingest/text_file.h"

#include <sys/stat.h>
#include <algorithm>
#include <charconv>
#include <cmath>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

namespace baton::ingest {

StatusOr<std::string> ReadFile(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return Status::NotFound(fmt::format("{}: no such file", path));
  if (S_ISDIR(st.st_mode)) return Status::InvalidArgument(fmt::format("{}: is a directory, expected a file", path));
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::IoError(fmt::format("{}: cannot open for reading", path));
  std::string data;
  data.resize(static_cast<size_t>(st.st_size));
  in.read(data.data(), static_cast<std::streamsize>(data.size()));
  if (static_cast<size_t>(in.gcount()) != data.size()) {
    return Status::IoError(fmt::format("{}: short read ({} of {} bytes)", path, in.gcount(), data.size()));
  }
  return data;
}

namespace {

// Length of the valid UTF-8 sequence starting at p (<= end), or 0 when it is invalid.
size_t Utf8SequenceLength(const unsigned char* p, const unsigned char* end) {
  const unsigned char c = p[0];
  if (c < 0x80) return 1;
  auto cont = [&](size_t i) { return p + i < end && (p[i] & 0xC0) == 0x80; };
  if (c >= 0xC2 && c <= 0xDF) return cont(1) ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    if (!cont(1) || !cont(2)) return 0;
    if (c == 0xE0 && p[1] < 0xA0) return 0;   // overlong
    if (c == 0xED && p[1] >= 0xA0) return 0;  // surrogates
    return 3;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    if (!cont(1) || !cont(2) || !cont(3)) return 0;
    if (c == 0xF0 && p[1] < 0x90) return 0;   // overlong
    if (c == 0xF4 && p[1] >= 0x90) return 0;  // above U+10FFFF
    return 4;
  }
  return 0;
}

}  // namespace

Status ValidateUtf8(std::string_view text, const std::string& name) {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const auto* const begin = p;
  const auto* const end = p + text.size();
  size_t line = 1;
  while (p < end) {
    // Fast path over ASCII.
    while (p < end && *p < 0x80) {
      if (*p == '\n') ++line;
      ++p;
    }
    if (p == end) break;
    const size_t n = Utf8SequenceLength(p, end);
    if (n == 0) {
      return Status::InvalidArgument(fmt::format("{}: invalid UTF-8 byte 0x{:02X} at byte offset {}", Where(name, line),
                                                 static_cast<unsigned>(*p), p - begin));
    }
    p += n;
  }
  return Status::Ok();
}

std::optional<double> ParseDouble(std::string_view s) {
  if (s.empty()) return std::nullopt;
  const char* first = s.data();
  if (*first == '+') ++first;
  double v = 0;
  auto [ptr, ec] = std::from_chars(first, s.data() + s.size(), v);
  if (ec != std::errc() || ptr != s.data() + s.size() || !std::isfinite(v)) return std::nullopt;
  return v;
}

std::optional<int64_t> ParseInt(std::string_view s) {
  if (s.empty()) return std::nullopt;
  int64_t v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || ptr != s.data() + s.size()) return std::nullopt;
  return v;
}

bool IsNanLike(std::string_view s) {
  for (std::string_view n : {"NaN", "nan", "NAN", "NA", "N/A", "n/a", "<NA>", "null", "NULL", "None"}) {
    if (s == n) return true;
  }
  return false;
}

namespace {
// Optimal string alignment distance: insertions, deletions, substitutions and swaps of neighbours ("alpah") cost 1.
size_t EditDistance(const std::string& a, const std::string& b) {
  std::vector<std::vector<size_t>> d(a.size() + 1, std::vector<size_t>(b.size() + 1));
  for (size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    for (size_t j = 1; j <= b.size(); ++j) {
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.size()][b.size()];
}
}  // namespace

std::string ClosestName(const std::string& name, const std::vector<std::string>& candidates) {
  std::string best;
  size_t best_d = std::string::npos;
  for (const std::string& c : candidates) {
    const size_t d = EditDistance(name, c);
    if (d < best_d) best_d = d, best = c;
  }
  // A third of the name (1 to 3 edits) still reads as a typo; more is another name.
  const size_t limit = std::clamp<size_t>(name.size() / 3, 1, 3);
  return best_d <= limit ? best : std::string();
}

std::string Where(const std::string& file, size_t line) {
  return fmt::format("{}:{}", file, line);
}

}  // namespace baton::ingest
