#include "baton/answer.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <cstdlib>

#include <fmt/format.h>

namespace baton {
namespace {

bool IsAlnum(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0;
}
bool IsSpace(char c) {
  return std::isspace(static_cast<unsigned char>(c)) != 0;
}
bool IsDigit(char c) {
  return c >= '0' && c <= '9';
}
char Upper(char c) {
  return static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
}
char Lower(char c) {
  return static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && IsSpace(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsSpace(s.back())) s.remove_suffix(1);
  return s;
}

std::string LowerCopy(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), Lower);
  return out;
}

// Markup and punctuation that may wrap a bare answer: "(C)", "['C']", "**C**", "C.", "{C}".
bool IsWrapper(char c) {
  static constexpr std::string_view kWrappers = "()[]{}'\"*_`.:;,!$\\";
  return kWrappers.find(c) != std::string_view::npos || IsSpace(c);
}

bool InRange(char c, char last_option) {
  const char u = Upper(c);
  return u >= 'A' && u <= last_option && std::isalpha(static_cast<unsigned char>(c)) != 0;
}

// A letter at `i` that stands alone: no letter or digit right before or after it.
bool StandsAlone(std::string_view s, size_t i) {
  const bool before_ok = i == 0 || !IsAlnum(s[i - 1]);
  const bool after_ok = i + 1 >= s.size() || !IsAlnum(s[i + 1]);
  return before_ok && after_ok;
}

// Phrases after which a model states its choice, matched case-insensitively. The last one in the text wins.
constexpr std::array<std::string_view, 12> kChoiceCues = {
    "answer is", "answer:",      "answer would be", "correct option is", "correct choice is", "option is",
    "choice is", "final answer", "answer is:",      "correct answer:",   "answer to this is", "answer=",
};

// After a cue: skips blanks, markup and the words "option"/"choice"/"letter", then reads one standalone letter.
std::optional<char> LetterAfter(std::string_view s, size_t pos, char last_option) {
  const std::string lower = LowerCopy(s.substr(pos, 64));
  size_t i = 0;
  for (int guard = 0; guard < 8 && i < lower.size(); ++guard) {
    while (i < lower.size() && (IsWrapper(lower[i]) || lower[i] == '-' || lower[i] == '=')) ++i;
    bool skipped = false;
    for (std::string_view word : {"option", "choice", "letter", "the"}) {
      if (lower.compare(i, word.size(), word) == 0 &&
          (i + word.size() >= lower.size() || !IsAlnum(lower[i + word.size()]))) {
        i += word.size();
        skipped = true;
        break;
      }
    }
    if (!skipped) break;
  }
  if (i < lower.size() && InRange(lower[i], last_option) && StandsAlone(lower, i)) return Upper(lower[i]);
  return std::nullopt;
}

// Reads a number starting at `i` (an optional sign, digits with thousands separators, a fraction part, and with
// `allow_ratio` an "a/b"). Sets `end` to the position after it.
std::optional<double> NumberAt(std::string_view s, size_t i, size_t* end, bool allow_ratio) {
  size_t j = i;
  bool negative = false;
  if (j < s.size() && (s[j] == '-' || s[j] == '+')) {
    negative = s[j] == '-';
    ++j;
  }
  if (j < s.size() && s[j] == '$') ++j;
  if (j >= s.size() || !IsDigit(s[j])) return std::nullopt;
  std::string digits;
  while (j < s.size()) {
    if (IsDigit(s[j])) {
      digits.push_back(s[j++]);
    } else if (s[j] == ',' && j + 3 < s.size() && IsDigit(s[j + 1]) && IsDigit(s[j + 2]) && IsDigit(s[j + 3]) &&
               (j + 4 >= s.size() || !IsDigit(s[j + 4]))) {
      ++j;  // a thousands separator: exactly three digits follow
    } else {
      break;
    }
  }
  if (j + 1 < s.size() && s[j] == '.' && IsDigit(s[j + 1])) {
    digits.push_back('.');
    ++j;
    while (j < s.size() && IsDigit(s[j])) digits.push_back(s[j++]);
  }
  double value = std::strtod(digits.c_str(), nullptr);
  if (allow_ratio && j + 1 < s.size() && s[j] == '/' && IsDigit(s[j + 1])) {
    size_t k = j + 1;
    std::string den;
    while (k < s.size() && IsDigit(s[k])) den.push_back(s[k++]);
    const double d = std::strtod(den.c_str(), nullptr);
    if (d != 0) {
      value /= d;
      j = k;
    }
  }
  *end = j;
  return negative ? -value : value;
}

// The first number at or after `from` (within `window` bytes).
std::optional<double> FirstNumberFrom(std::string_view s, size_t from, size_t window, bool allow_ratio) {
  const size_t stop = std::min(s.size(), from + window);
  for (size_t i = from; i < stop; ++i) {
    if (IsDigit(s[i]) || ((s[i] == '-' || s[i] == '$') && i + 1 < s.size() && IsDigit(s[i + 1]))) {
      if (IsDigit(s[i]) && i > 0 && (std::isalpha(static_cast<unsigned char>(s[i - 1])) != 0)) continue;
      size_t end = i;
      if (auto v = NumberAt(s, i, &end, allow_ratio)) return v;
    }
  }
  return std::nullopt;
}

}  // namespace

const char* AnswerFormName(AnswerForm form) {
  switch (form) {
    case AnswerForm::kChoice:
      return "choice";
    case AnswerForm::kNumber:
      return "number";
    case AnswerForm::kText:
      return "text";
  }
  return "text";
}

namespace {

// A copy of `text` in which escape sequences written out literally ("\\n", "\\r", "\\t", as in a Python list's repr
// such as ['B\\n']) are blanks.
std::string UnescapeBlanks(std::string_view text) {
  std::string out(text);
  for (size_t i = 0; i + 1 < out.size(); ++i) {
    if (out[i] == '\\' && (out[i + 1] == 'n' || out[i + 1] == 'r' || out[i + 1] == 't')) {
      out[i] = ' ';
      out[i + 1] = ' ';
    }
  }
  return out;
}

}  // namespace

std::optional<char> ExtractChoice(std::string_view raw_text, char last_option) {
  last_option = Upper(last_option);
  const std::string unescaped = UnescapeBlanks(raw_text);
  const std::string_view text = unescaped;
  // 1. The whole text is one letter, possibly wrapped.
  std::string_view bare = text;
  while (!bare.empty() && IsWrapper(bare.front())) bare.remove_prefix(1);
  while (!bare.empty() && IsWrapper(bare.back())) bare.remove_suffix(1);
  if (bare.size() == 1 && InRange(bare[0], last_option)) return Upper(bare[0]);

  // 2. The last cue followed by a letter.
  const std::string lower = LowerCopy(text);
  size_t best_pos = std::string::npos;
  std::optional<char> best;
  for (std::string_view cue : kChoiceCues) {
    for (size_t pos = lower.find(cue); pos != std::string::npos; pos = lower.find(cue, pos + 1)) {
      if (best_pos != std::string::npos && pos + cue.size() <= best_pos) continue;
      if (auto letter = LetterAfter(text, pos + cue.size(), last_option)) {
        best_pos = pos + cue.size();
        best = letter;
      }
    }
  }
  if (best) return best;

  // 3. The last parenthesised letter.
  for (size_t i = text.size(); i-- > 0;) {
    if (text[i] == ')' && i >= 2 && text[i - 2] == '(' && InRange(text[i - 1], last_option)) return Upper(text[i - 1]);
  }

  // 4. A leading "C." / "C)" / "C:".
  std::string_view t = Trim(text);
  while (!t.empty() && (t.front() == '*' || t.front() == '(')) t.remove_prefix(1);
  if (t.size() >= 2 && InRange(t[0], last_option) && (t[1] == '.' || t[1] == ')' || t[1] == ':')) {
    return Upper(t[0]);
  }
  return std::nullopt;
}

std::optional<double> ExtractNumber(std::string_view text) {
  const std::string lower = LowerCopy(text);
  if (size_t pos = lower.rfind("####"); pos != std::string::npos) {
    if (auto v = FirstNumberFrom(text, pos + 4, 64, /*allow_ratio=*/true)) return v;
  }
  if (size_t pos = lower.rfind("\\boxed{"); pos != std::string::npos) {
    const size_t close = text.find('}', pos);
    const size_t window = close == std::string_view::npos ? 64 : close - pos;
    if (auto v = FirstNumberFrom(text, pos + 7, window, /*allow_ratio=*/true)) return v;
  }
  size_t cue_pos = std::string::npos;
  size_t cue_len = 0;
  for (std::string_view cue : {"answer is", "answer:", "answer =", "final answer"}) {
    const size_t pos = lower.rfind(cue);
    if (pos != std::string::npos && (cue_pos == std::string::npos || pos > cue_pos)) {
      cue_pos = pos;
      cue_len = cue.size();
    }
  }
  if (cue_pos != std::string::npos) {
    if (auto v = FirstNumberFrom(text, cue_pos + cue_len, 80, /*allow_ratio=*/true)) return v;
  }
  // The last number in the text: scan back to the start of the last digit run, then read it forwards.
  for (size_t i = text.size(); i-- > 0;) {
    if (!IsDigit(text[i])) continue;
    size_t start = i;
    while (start > 0 && (IsDigit(text[start - 1]) || text[start - 1] == '.' ||
                         (text[start - 1] == ',' && start >= 2 && IsDigit(text[start - 2])))) {
      --start;
    }
    while (start < text.size() && !IsDigit(text[start])) ++start;  // a leading '.' or ','
    if (start > 0 && text[start - 1] == '-' && (start < 2 || !IsAlnum(text[start - 2]))) --start;
    size_t end = start;
    if (auto v = NumberAt(text, start, &end, /*allow_ratio=*/false)) return v;
    return std::nullopt;
  }
  return std::nullopt;
}

AnswerForm FormOfReference(std::string_view reference) {
  std::string_view r = Trim(reference);
  if (r.empty()) return AnswerForm::kText;
  std::string_view bare = r;
  while (!bare.empty() && (bare.front() == '(' || bare.front() == '[')) bare.remove_prefix(1);
  while (!bare.empty() && (bare.back() == ')' || bare.back() == ']' || bare.back() == '.')) bare.remove_suffix(1);
  if (bare.size() == 1 && std::isalpha(static_cast<unsigned char>(bare[0])) != 0) return AnswerForm::kChoice;
  if (r.starts_with("####")) r = Trim(r.substr(4));
  size_t end = 0;
  if (NumberAt(r, 0, &end, /*allow_ratio=*/true) && Trim(r.substr(end)).empty()) return AnswerForm::kNumber;
  return AnswerForm::kText;
}

std::optional<std::string> NormalizedAnswer(std::string_view text, AnswerForm form, char last_option) {
  switch (form) {
    case AnswerForm::kChoice: {
      if (auto c = ExtractChoice(text, last_option)) return std::string(1, *c);
      return std::nullopt;
    }
    case AnswerForm::kNumber: {
      std::optional<double> v = ExtractNumber(text);
      if (!v || !std::isfinite(*v)) return std::nullopt;
      const double x = *v == 0 ? 0.0 : *v;  // no "-0"
      return fmt::format("{:.10g}", x);
    }
    case AnswerForm::kText: {
      std::string out;
      bool space = false;
      for (char c : Trim(text)) {
        if (IsSpace(c)) {
          space = true;
          continue;
        }
        if (space && !out.empty()) out.push_back(' ');
        space = false;
        out.push_back(Lower(c));
      }
      if (out.empty()) return std::nullopt;
      return out;
    }
  }
  return std::nullopt;
}

std::optional<double> ScoreAgainstReference(std::string_view text, std::string_view reference) {
  if (Trim(reference).empty()) return std::nullopt;
  const AnswerForm form = FormOfReference(reference);
  // A choice reference may name any letter; accept answers up to 'Z' so a J-option question still matches.
  const std::optional<std::string> want = NormalizedAnswer(reference, form, 'Z');
  const std::optional<std::string> got = NormalizedAnswer(text, form, 'Z');
  if (!want) return std::nullopt;
  return got && *got == *want ? 1.0 : 0.0;
}

}  // namespace baton
