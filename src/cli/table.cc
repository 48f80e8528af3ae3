#include <algorithm>
#include <cstdio>

#include <fmt/format.h>

#include "cli/command.h"

namespace baton::cli {

namespace {
bool LooksNumeric(const std::string& s) {
  return !s.empty() && s.find_first_not_of("0123456789.-+e%$") == std::string::npos;
}
// Display width of UTF-8 text (counts code points, not bytes).
size_t Width(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}
}  // namespace

void PrintTable(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> w(header.size(), 0);
  for (size_t i = 0; i < header.size(); ++i) w[i] = Width(header[i]);
  for (const auto& r : rows) {
    for (size_t i = 0; i < r.size() && i < w.size(); ++i) w[i] = std::max(w[i], Width(r[i]));
  }
  auto line = [&](const std::vector<std::string>& cells, bool is_header) {
    std::string out;
    for (size_t i = 0; i < w.size(); ++i) {
      const std::string cell = i < cells.size() ? cells[i] : "";
      const std::string pad(w[i] - Width(cell), ' ');
      const bool right = !is_header ? LooksNumeric(cell) : false;
      out += (i ? "  " : "") + (right ? pad + cell : cell + pad);
    }
    while (!out.empty() && out.back() == ' ') out.pop_back();
    fmt::print("{}\n", out);
  };
  line(header, true);
  std::string rule;
  for (size_t i = 0; i < w.size(); ++i) rule += (i ? "  " : "") + std::string(w[i], '-');
  fmt::print("{}\n", rule);
  for (const auto& r : rows) line(r, false);
}

}  // namespace baton::cli
