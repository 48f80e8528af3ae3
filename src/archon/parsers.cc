// Tolerant parsers of model outputs for Archon's components.
#include "archon/parsers.h"

#include <algorithm>
#include <cctype>
#include <regex>
#include <set>

#include <fmt/format.h>

namespace baton::archon {
namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

std::vector<std::string_view> Lines(std::string_view text) {
  std::vector<std::string_view> out;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    out.push_back(text.substr(pos, end - pos));
    pos = end + 1;
  }
  return out;
}

// Integers matched by group 1 of `re` in `text`, in order of appearance.
std::vector<long> Numbers(const std::string& text, const std::regex& re) {
  std::vector<long> out;
  for (auto it = std::sregex_iterator(text.begin(), text.end(), re); it != std::sregex_iterator(); ++it) {
    const std::string d = (*it)[1].str();
    if (d.size() > 6) continue;
    out.push_back(std::stol(d));
  }
  return out;
}

// Strips list markup at the start of a line: "1.", "1)", "(1)", "[1]", "Test 1:", "-", "*", "•", "**".
// Returns the rest and sets *number when the marker carried one.
std::string_view StripMarker(std::string_view line, std::optional<int>* number, bool* marked) {
  static const std::regex kNumbered(
      R"(^\s*(?:\*\*)?(?:#+\s*)?(?:(?:unit\s*)?test\s*(?:case\s*)?)?[\[(]?(\d{1,3})[\])]?\s*(?:[.):\-]|\*\*)+\s*)",
      std::regex::icase);
  static const std::regex kBracketed(R"(^\s*(?:\*\*)?[\[(](\d{1,3})[\])](?:\*\*)?\s*[.:\-]?\s*)");
  static const std::regex kBullet(R"(^\s*(?:[-*+]|•)\s+)");
  std::cmatch m;
  *marked = false;
  if (std::regex_search(line.data(), line.data() + line.size(), m, kBracketed)) {
    *number = std::stoi(m[1].str());
    *marked = true;
    return line.substr(static_cast<size_t>(m.length(0)));
  }
  if (std::regex_search(line.data(), line.data() + line.size(), m, kNumbered)) {
    *number = std::stoi(m[1].str());
    *marked = true;
    return line.substr(static_cast<size_t>(m.length(0)));
  }
  if (std::regex_search(line.data(), line.data() + line.size(), m, kBullet)) {
    *marked = true;
    return line.substr(static_cast<size_t>(m.length(0)));
  }
  return line;
}

}  // namespace

std::vector<int> ParseRanking(std::string_view text, int n, ParseOutcome* outcome) {
  const std::string s(text);
  static const std::regex kBracket(R"(\[\s*(\d+)\s*\])");
  static const std::regex kNamed(R"((?:response|candidate|answer|output)\s*#?\s*(\d+))", std::regex::icase);
  static const std::regex kBare(R"((?:^|[^\w.])(\d+)(?![\w]|\.\d))");
  std::vector<long> nums;
  for (const std::regex* re : {&kBracket, &kNamed, &kBare}) {
    nums = Numbers(s, *re);
    nums.erase(std::remove_if(nums.begin(), nums.end(), [n](long v) { return v < 1 || v > n; }), nums.end());
    if (!nums.empty()) break;
  }
  std::vector<int> order;
  std::vector<bool> seen(static_cast<size_t>(std::max(n, 0)), false);
  for (long v : nums) {
    if (seen[v - 1]) continue;
    seen[v - 1] = true;
    order.push_back(static_cast<int>(v - 1));
  }
  const size_t ranked = order.size();
  for (int i = 0; i < n; ++i)
    if (!seen[i]) order.push_back(i);
  if (ranked == 0) {
    outcome->text = n == 0 ? "ok" : "failed: no candidate number in the ranking";
  } else if (static_cast<int>(ranked) < n) {
    outcome->text = fmt::format("partial: ranked {} of {}", ranked, n);
  } else {
    outcome->text = "ok";
  }
  return order;
}

std::optional<bool> ParseVerdict(std::string_view text, ParseOutcome* outcome) {
  const std::string s = Lower(text);
  static const std::regex kWord(
      R"(\b(not\s+correct|incorrect|not\s+right|wrong|false|invalid|correct|right|true|valid|yes|no)\b)");
  std::optional<bool> verdict;
  // An explicit "verdict:" cue wins; else the last verdict word in the text.
  std::string scope = s;
  const auto cue = s.rfind("verdict");
  if (cue != std::string::npos) scope = s.substr(cue);
  for (auto it = std::sregex_iterator(scope.begin(), scope.end(), kWord); it != std::sregex_iterator(); ++it) {
    const std::string w = (*it)[1].str();
    const bool negative =
        w.rfind("not", 0) == 0 || w == "incorrect" || w == "wrong" || w == "false" || w == "invalid" || w == "no";
    verdict = !negative;
    if (cue != std::string::npos) break;  // the first word after the cue
  }
  outcome->text = verdict ? "ok" : "failed: no verdict word";
  return verdict;
}

std::vector<std::string> ParseUnitTests(std::string_view text, int cap, ParseOutcome* outcome) {
  std::vector<std::string> marked_tests, plain;
  for (std::string_view raw : Lines(text)) {
    std::string_view line = Trim(raw);
    if (line.empty() || line.rfind("```", 0) == 0) continue;
    std::optional<int> number;
    bool marked = false;
    std::string_view rest = Trim(StripMarker(line, &number, &marked));
    if (rest.empty()) continue;
    if (marked) {
      marked_tests.emplace_back(rest);
    } else if (rest.back() != ':') {
      plain.emplace_back(rest);
    }
  }
  std::vector<std::string> tests = marked_tests.empty() ? plain : marked_tests;
  if (static_cast<int>(tests.size()) > cap) tests.resize(static_cast<size_t>(cap));
  if (tests.empty()) {
    outcome->text = "failed: no unit test found";
  } else if (marked_tests.empty()) {
    outcome->text = "partial: no list markers, one test per line";
  } else {
    outcome->text = "ok";
  }
  return tests;
}

std::optional<int> ParseTestResults(std::string_view text, int n, ParseOutcome* outcome) {
  static const std::regex kVerdict(
      R"(\b(pass(?:es|ed)?|fail(?:s|ed)?|yes|no|true|false|satisf(?:ied|ies)|not\s+satisfied)\b)", std::regex::icase);
  std::vector<std::optional<bool>> results(static_cast<size_t>(std::max(n, 0)));
  int next = 0;  // unnumbered verdict lines fill tests in order
  for (std::string_view raw : Lines(text)) {
    std::string_view line = Trim(raw);
    if (line.empty()) continue;
    std::optional<int> number;
    bool marked = false;
    std::string_view rest = StripMarker(line, &number, &marked);
    const std::string low = Lower(rest);
    std::smatch m;
    if (!std::regex_search(low, m, kVerdict)) continue;
    // A line without a test number counts only when it is a bare verdict ("PASS", "yes."), not prose ("no idea").
    static const std::regex kBare(R"(^\W*(pass(?:es|ed)?|fail(?:s|ed)?|yes|no|true|false)\W*$)");
    if (!number && !std::regex_search(low, kBare)) continue;
    const std::string w = m[1].str();
    const bool pass = w.rfind("pass", 0) == 0 || w == "yes" || w == "true" || w.rfind("satisf", 0) == 0;
    int idx = number ? *number - 1 : next;
    if (idx < 0 || idx >= n) continue;
    if (!results[idx]) results[idx] = pass;
    next = idx + 1;
  }
  int passed = 0, judged = 0;
  for (const auto& r : results) {
    if (!r) continue;
    ++judged;
    if (*r) ++passed;
  }
  if (judged == 0) {
    outcome->text = "failed: no test verdict found";
    return std::nullopt;
  }
  outcome->text = judged < n ? fmt::format("partial: {} of {} tests judged", judged, n) : "ok";
  return passed;
}

std::vector<std::string> ParseCritiques(std::string_view text, int n, ParseOutcome* outcome) {
  std::vector<std::string> out(static_cast<size_t>(std::max(n, 0)));
  static const std::regex kHead(
      R"(^\s*(?:#+\s*)?(?:\*\*)?\s*(?:\[(\d+)\]|(?:response|candidate|answer)\s*#?\s*\[?(\d+)\]?)\s*(?:\*\*)?\s*[:.\-]?)",
      std::regex::icase);
  int current = -1;
  int found = 0;
  for (std::string_view raw : Lines(text)) {
    std::cmatch m;
    if (std::regex_search(raw.data(), raw.data() + raw.size(), m, kHead)) {
      const std::string d = m[1].matched ? m[1].str() : m[2].str();
      const int i = d.size() <= 4 ? std::stoi(d) - 1 : -1;
      if (i >= 0 && i < n) {
        current = i;
        if (out[current].empty()) ++found;
        raw = raw.substr(static_cast<size_t>(m.length(0)));
      }
    }
    if (current < 0) continue;
    std::string_view line = Trim(raw);
    if (line.empty()) continue;
    if (!out[current].empty()) out[current] += '\n';
    out[current] += line;
  }
  int filled = 0;
  for (const std::string& c : out) filled += c.empty() ? 0 : 1;
  if (found == 0 || filled == 0) {
    std::fill(out.begin(), out.end(), std::string());
    outcome->text = "failed: no per-candidate critique found";
  } else if (filled < n) {
    outcome->text = fmt::format("partial: critiques for {} of {}", filled, n);
  } else {
    outcome->text = "ok";
  }
  return out;
}

std::string Clip(std::string_view text, size_t max_bytes) {
  if (text.size() <= max_bytes) return std::string(text);
  size_t end = max_bytes;
  while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) --end;
  return std::string(text.substr(0, end));
}

}  // namespace baton::archon
