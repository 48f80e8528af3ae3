// Answers in closed form: the multiple-choice letter or the final number a free-text answer commits to, and whether
// it matches a reference.
//
// Used wherever baton judges an answer without a judge model: the self-play loop's reference match, Archon's vote
// fuser, routers that look at answers (agreement between extracted answers). Extraction is tolerant of how real
// models answer ("The answer is (C).", "**Answer: C**", "['C']", "#### 18", "\boxed{2.5}", "$130,000") and never
// guesses: when no answer can be found it says so (nullopt), it does not pick the first letter it sees.
//
// Thread-safety: every function is pure.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace baton {

// The shape of an answer space.
enum class AnswerForm {
  kChoice,  // one letter A..Z (multiple choice)
  kNumber,  // a final number (arithmetic word problems)
  kText,    // anything else: compared as trimmed, case-folded text with runs of whitespace collapsed
};
const char* AnswerFormName(AnswerForm form);

// The option letter `text` commits to, upper-cased, among 'A'..last_option. In order of trust:
//   1. the whole text is one letter, possibly wrapped: "C", "(c)", "C.", "['C']", "**C**";
//   2. the last cue ("answer is", "answer:", "correct option is", "final answer", ...) followed by a letter: "The
//      answer is (C)", "Answer: **C**", "the correct answer is option C";
//   3. the last parenthesised letter "(C)";
//   4. a leading "C." / "C)" / "C:" at the start of the text.
// A letter must stand alone (not part of a word), so "A robe takes..." yields no answer.
std::optional<char> ExtractChoice(std::string_view text, char last_option = 'J');

// The final number `text` commits to: after the last "####", else inside the last "\boxed{...}", else the first
// number after the last "answer is"/"answer:" cue, else the last number in the text. Thousands separators and a
// leading currency sign are skipped ("$130,000" = 130000); "5/2" after a cue or "####" is read as 2.5.
std::optional<double> ExtractNumber(std::string_view text);

// The form of a reference answer: a single letter (optionally parenthesised) is a choice, a number (optionally after
// "####") is a number, anything else is text. An empty reference is text.
AnswerForm FormOfReference(std::string_view reference);

// `text`'s answer in `form`, normalised so that equal answers compare equal as strings: "C"; numbers printed with up
// to 10 significant digits ("18", "2.5", "-0.125"); text trimmed, lower-cased, whitespace collapsed. nullopt when no
// answer of that form can be found (or, for text, when it is blank).
std::optional<std::string> NormalizedAnswer(std::string_view text, AnswerForm form, char last_option = 'J');

// 1 when `text`'s answer equals `reference`'s (in the reference's form), 0 when it differs or none can be extracted.
// nullopt when the reference itself is blank, so there is nothing to match against.
std::optional<double> ScoreAgainstReference(std::string_view text, std::string_view reference);

}  // namespace baton
