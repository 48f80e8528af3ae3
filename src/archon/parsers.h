// Tolerant parsers of what Archon's components get back from models. Internal to src/archon/.
//
// Every parser reports how it went (ParseOutcome) instead of failing: models answer in prose, add markdown, number
// things their own way, stop mid-sentence. A failure means "nothing usable": the component then keeps the candidates
// as they were and the outcome goes into the trace.
//
// Thread-safety: pure functions.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace baton::archon {

// "ok", "partial: ..." (something usable, with gaps filled in) or "failed: ...".
struct ParseOutcome {
  std::string text = "ok";
  bool usable() const { return text.rfind("failed", 0) != 0; }
};

// An order of `n` candidates (0-based indices, each once) from a ranking such as "[2] > [1] > [3]", "2, 1, 3",
// "Ranking: 3 1 2" or prose ("Response 3 is the strongest, followed by response 1"). Bracketed numbers are trusted
// first; else numbers after "response"/"candidate"/"answer"; else every standalone number. Numbers out of 1..n and
// repeats are skipped; candidates the ranking leaves out follow in their original order ("partial"). No number in
// range at all: "failed" and the identity order.
std::vector<int> ParseRanking(std::string_view text, int n, ParseOutcome* outcome);

// A verifier's verdict: true = correct, false = incorrect, nullopt = cannot tell ("failed"). Reads the last verdict
// word: "incorrect", "not correct", "wrong", "false", "no" / "correct", "right", "true", "yes" (markdown and
// punctuation ignored; "Verdict: Incorrect" and "The response is **not correct**." both read false).
std::optional<bool> ParseVerdict(std::string_view text, ParseOutcome* outcome);

// Unit tests from a list: numbered ("1.", "1)", "Test 1:", "[1]") or bulleted ("-", "*", "•") lines; without any,
// every non-empty line that is not a heading ("Here are ...:"). At most `cap` tests, each trimmed; "failed" when none.
std::vector<std::string> ParseUnitTests(std::string_view text, int cap, ParseOutcome* outcome);

// Per unit test (n of them), whether the evaluation says it passed: lines such as "1: PASS", "Test 2 - failed",
// "3. yes", "[4] Passed". Returns the number passed; "partial" when some tests have no verdict (they count as not
// passed); nullopt ("failed") when no test has one.
std::optional<int> ParseTestResults(std::string_view text, int n, ParseOutcome* outcome);

// A critic's critiques of `n` candidates: the text split at markers "[i]", "Response i", "Candidate i" (i in 1..n,
// at the start of a line, optionally in markdown bold or as a heading). Returns n strings ("" where none); "partial"
// when some are missing; "failed" when no marker is found (then every critique is "").
std::vector<std::string> ParseCritiques(std::string_view text, int n, ParseOutcome* outcome);

// `text` cut to at most `max_bytes` bytes on a UTF-8 boundary (nothing added, so that the executor's bound holds).
std::string Clip(std::string_view text, size_t max_bytes);

}  // namespace baton::archon
