#include "archon/parsers.h"

#include <gtest/gtest.h>

namespace baton::archon {
namespace {

TEST(ArchonParseRanking, BracketsChain) {
  ParseOutcome o;
  EXPECT_EQ(ParseRanking("[2] > [1] > [3]", 3, &o), (std::vector<int>{1, 0, 2}));
  EXPECT_EQ(o.text, "ok");
}

TEST(ArchonParseRanking, CommaList) {
  ParseOutcome o;
  EXPECT_EQ(ParseRanking("2,1,3", 3, &o), (std::vector<int>{1, 0, 2}));
  EXPECT_EQ(o.text, "ok");
}

TEST(ArchonParseRanking, ProseUsesNamedResponses) {
  ParseOutcome o;
  EXPECT_EQ(ParseRanking("Out of the 3 answers, Response 3 is the strongest, followed by response 1.", 3, &o),
            (std::vector<int>{2, 0, 1}));
  EXPECT_EQ(o.text, "partial: ranked 2 of 3");
}

TEST(ArchonParseRanking, BracketsWinOverOtherNumbers) {
  ParseOutcome o;
  EXPECT_EQ(ParseRanking("After checking 10 facts: [3] > [1] > [2]", 3, &o), (std::vector<int>{2, 0, 1}));
  EXPECT_EQ(o.text, "ok");
}

TEST(ArchonParseRanking, OutOfRangeAndRepeatsSkipped) {
  ParseOutcome o;
  EXPECT_EQ(ParseRanking("[7] > [2] > [2] > [0] > [1]", 3, &o), (std::vector<int>{1, 0, 2}));
  EXPECT_EQ(o.text, "partial: ranked 2 of 3");
}

TEST(ArchonParseRanking, GarbageFailsWithIdentity) {
  ParseOutcome o;
  EXPECT_EQ(ParseRanking("I cannot rank these responses.", 3, &o), (std::vector<int>{0, 1, 2}));
  EXPECT_FALSE(o.usable());
  EXPECT_EQ(ParseRanking("", 2, &o), (std::vector<int>{0, 1}));
  EXPECT_FALSE(o.usable());
  EXPECT_EQ(ParseRanking("rank 4.5 and 99", 2, &o), (std::vector<int>{0, 1}));
  EXPECT_FALSE(o.usable());
}

TEST(ArchonParseVerdict, Words) {
  ParseOutcome o;
  EXPECT_EQ(ParseVerdict("Correct", &o), true);
  EXPECT_EQ(ParseVerdict("**Incorrect**.", &o), false);
  EXPECT_EQ(ParseVerdict("The response is not correct.", &o), false);
  EXPECT_EQ(ParseVerdict("Verdict: Correct. (Earlier I thought it was wrong.)", &o), true);
  EXPECT_EQ(ParseVerdict("It looked wrong at first, but on reflection it is right", &o), true);
  EXPECT_EQ(o.text, "ok");
}

TEST(ArchonParseVerdict, NoVerdictFails) {
  ParseOutcome o;
  EXPECT_EQ(ParseVerdict("Hmm, hard to say.", &o), std::nullopt);
  EXPECT_FALSE(o.usable());
  EXPECT_EQ(ParseVerdict("", &o), std::nullopt);
  EXPECT_FALSE(o.usable());
  // "incorrectly" is not a verdict word
  EXPECT_EQ(ParseVerdict("incorrectly formatted", &o), std::nullopt);
}

TEST(ArchonParseUnitTests, NumberedAndBulleted) {
  ParseOutcome o;
  EXPECT_EQ(ParseUnitTests("Here are the tests:\n1. States 42.\n2) Names both causes.\n- Is under 100 words.\n", 5, &o),
            (std::vector<std::string>{"States 42.", "Names both causes.", "Is under 100 words."}));
  EXPECT_EQ(o.text, "ok");
  EXPECT_EQ(ParseUnitTests("Test 1: a\nTest 2: b\n[3] c\n**4.** d", 5, &o),
            (std::vector<std::string>{"a", "b", "c", "d"}));
}

TEST(ArchonParseUnitTests, CapAndPlainLines) {
  ParseOutcome o;
  EXPECT_EQ(ParseUnitTests("1. a\n2. b\n3. c", 2, &o), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(ParseUnitTests("Tests:\nthe answer is 5\nit shows work\n", 5, &o),
            (std::vector<std::string>{"the answer is 5", "it shows work"}));
  EXPECT_EQ(o.text, "partial: no list markers, one test per line");
}

TEST(ArchonParseUnitTests, NothingFails) {
  ParseOutcome o;
  EXPECT_TRUE(ParseUnitTests("   \n\n", 5, &o).empty());
  EXPECT_FALSE(o.usable());
  EXPECT_TRUE(ParseUnitTests("", 5, &o).empty());
  EXPECT_FALSE(o.usable());
}

TEST(ArchonParseTestResults, CountsPasses) {
  ParseOutcome o;
  EXPECT_EQ(ParseTestResults("1: PASS\n2: FAIL\n3: pass", 3, &o), 2);
  EXPECT_EQ(o.text, "ok");
  EXPECT_EQ(ParseTestResults("Test 1 - passed\nTest 2 - failed", 2, &o), 1);
  EXPECT_EQ(ParseTestResults("yes\nyes\nno", 3, &o), 2);  // unnumbered lines fill in order
}

TEST(ArchonParseTestResults, PartialAndFailed) {
  ParseOutcome o;
  EXPECT_EQ(ParseTestResults("1: PASS\n9: PASS", 3, &o), 1);
  EXPECT_EQ(o.text, "partial: 1 of 3 tests judged");
  EXPECT_EQ(ParseTestResults("I refuse.", 3, &o), std::nullopt);
  EXPECT_FALSE(o.usable());
}

TEST(ArchonParseCritiques, Sections) {
  ParseOutcome o;
  auto c =
      ParseCritiques("[1]\nStrengths: clear\nWeaknesses: wrong sum\n[2]\nStrengths: right\nWeaknesses: terse", 2, &o);
  EXPECT_EQ(
      c, (std::vector<std::string>{"Strengths: clear\nWeaknesses: wrong sum", "Strengths: right\nWeaknesses: terse"}));
  EXPECT_EQ(o.text, "ok");
  c = ParseCritiques("**Response 2**: good\n## Response 1\nbad", 2, &o);
  EXPECT_EQ(c, (std::vector<std::string>{"bad", "good"}));
}

TEST(ArchonParseCritiques, MissingAndNone) {
  ParseOutcome o;
  auto c = ParseCritiques("[1] fine", 3, &o);
  EXPECT_EQ(c, (std::vector<std::string>{"fine", "", ""}));
  EXPECT_EQ(o.text, "partial: critiques for 1 of 3");
  c = ParseCritiques("All responses are fine.", 2, &o);
  EXPECT_EQ(c, (std::vector<std::string>{"", ""}));
  EXPECT_FALSE(o.usable());
}

TEST(ArchonClip, Utf8Boundary) {
  EXPECT_EQ(Clip("abc", 5), "abc");
  EXPECT_EQ(Clip("ab\xC3\xA9z", 3), "ab");  // does not cut the 2-byte é
  EXPECT_EQ(Clip("ab\xC3\xA9z", 4), "ab\xC3\xA9");
}

}  // namespace
}  // namespace baton::archon
