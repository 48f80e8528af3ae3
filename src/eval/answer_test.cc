#include "baton/answer.h"

#include <gtest/gtest.h>

namespace baton {
namespace {

TEST(ExtractChoiceTest, BareAndWrappedLetters) {
  EXPECT_EQ(ExtractChoice("C"), 'C');
  EXPECT_EQ(ExtractChoice(" c \n"), 'C');
  EXPECT_EQ(ExtractChoice("(B)"), 'B');
  EXPECT_EQ(ExtractChoice("D."), 'D');
  EXPECT_EQ(ExtractChoice("**A**"), 'A');
  EXPECT_EQ(ExtractChoice("I"), 'I');  // MMLU-Pro has ten options, A..J
}

// Real answers from data/routerbench-*/responses.jsonl: a Python list's repr, sometimes with a literal "\n".
TEST(ExtractChoiceTest, RouterBenchReprs) {
  EXPECT_EQ(ExtractChoice("['C']"), 'C');
  EXPECT_EQ(ExtractChoice("['B\\n']"), 'B');
  EXPECT_EQ(ExtractChoice("['A)']"), 'A');
  EXPECT_EQ(ExtractChoice("['I do']"), std::nullopt);
  EXPECT_EQ(ExtractChoice("['Unfortunately I']"), std::nullopt);
}

TEST(ExtractChoiceTest, CuePhrasesTakeTheLastOne) {
  EXPECT_EQ(ExtractChoice("Let's think. Option A is wrong because ... so the answer is (C)."), 'C');
  EXPECT_EQ(ExtractChoice("**Answer: D**"), 'D');
  EXPECT_EQ(ExtractChoice("The correct answer is option B, since..."), 'B');
  EXPECT_EQ(ExtractChoice("At first I thought the answer is A. On reflection, the answer is B."), 'B');
  EXPECT_EQ(ExtractChoice("Final answer: the E"), 'E');
  EXPECT_EQ(ExtractChoice("So the answer is (c)"), 'C');
}

TEST(ExtractChoiceTest, FallsBackToParenthesesThenLeadingLetter) {
  EXPECT_EQ(ExtractChoice("Between (A) and (D), I pick (D) given the data"), 'D');
  EXPECT_EQ(ExtractChoice("B. Because the door contains iron."), 'B');
  EXPECT_EQ(ExtractChoice("A) dry palms"), 'A');
}

TEST(ExtractChoiceTest, NeverGuessesFromWords) {
  EXPECT_EQ(ExtractChoice("A robe takes 2 bolts of blue fiber."), std::nullopt);
  EXPECT_EQ(ExtractChoice(""), std::nullopt);
  EXPECT_EQ(ExtractChoice("I cannot answer that."), std::nullopt);
  EXPECT_EQ(ExtractChoice("The answer is Paris."), std::nullopt);
  // Out of range for a four-option question.
  EXPECT_EQ(ExtractChoice("The answer is (F)", 'D'), std::nullopt);
}

// Real answers from data/routellm-mmlu-gsm8k/responses.jsonl (GSM8K).
TEST(ExtractNumberTest, Gsm8kAnswers) {
  EXPECT_EQ(ExtractNumber(" Janet starts with 16 eggs per day.\nShe eats 3 for breakfast, so she has 16 - 3 = 13 eggs "
                          "left.\nShe sells these 9 eggs at the farmers' market for 9 * $2 = $<<9*2=18>>18.\n#### 18"),
            18.0);
  EXPECT_EQ(ExtractNumber("She sells each egg for $2, so she makes 9 * $2 = $18 every day at the farmers' market."),
            18.0);
  EXPECT_EQ(ExtractNumber(" A robe takes 2 bolts of blue fiber and 2/2 * 1/2 = 1/2 bolt of white fiber.\nSo in total, "
                          "it takes 2 + 1/2 = 5/2 = <<5/2=2.5>>2.5 bolts.\n#### 3\n\n"),
            3.0);
  EXPECT_EQ(ExtractNumber("The house's value after repairs is 80,000 + 50,000 = $<<80000+50000=130000>>130,000"),
            130000.0);
}

TEST(ExtractNumberTest, CuesBoxesSignsAndFractions) {
  EXPECT_EQ(ExtractNumber("so x = 4, and the answer is -3.5 degrees, not 4"), -3.5);
  EXPECT_EQ(ExtractNumber("Thus \\boxed{2.5} is the result, checked with 7 steps"), 2.5);
  EXPECT_EQ(ExtractNumber("#### 5/2"), 2.5);
  EXPECT_EQ(ExtractNumber("Total: $1,234,567.50"), 1234567.5);
  EXPECT_EQ(ExtractNumber("no numbers here"), std::nullopt);
  EXPECT_EQ(ExtractNumber("model v2 says"), 2.0);  // the last number, even inside a word, is still a number
}

TEST(FormOfReferenceTest, Classifies) {
  EXPECT_EQ(FormOfReference("C"), AnswerForm::kChoice);
  EXPECT_EQ(FormOfReference("(b)"), AnswerForm::kChoice);
  EXPECT_EQ(FormOfReference("42"), AnswerForm::kNumber);
  EXPECT_EQ(FormOfReference("#### 1,200"), AnswerForm::kNumber);
  EXPECT_EQ(FormOfReference("-0.5"), AnswerForm::kNumber);
  EXPECT_EQ(FormOfReference("Paris"), AnswerForm::kText);
  EXPECT_EQ(FormOfReference(""), AnswerForm::kText);
}

TEST(NormalizedAnswerTest, EqualAnswersCompareEqual) {
  EXPECT_EQ(NormalizedAnswer("#### 18", AnswerForm::kNumber), "18");
  EXPECT_EQ(NormalizedAnswer("the answer is 18.0", AnswerForm::kNumber), "18");
  EXPECT_EQ(NormalizedAnswer("#### -0", AnswerForm::kNumber), "0");
  EXPECT_EQ(NormalizedAnswer("  New   York\n", AnswerForm::kText), "new york");
  EXPECT_EQ(NormalizedAnswer("   ", AnswerForm::kText), std::nullopt);
  EXPECT_EQ(NormalizedAnswer("(c)", AnswerForm::kChoice), "C");
}

TEST(ScoreAgainstReferenceTest, MatchesInTheReferencesForm) {
  EXPECT_EQ(ScoreAgainstReference("The answer is (C).", "C"), 1.0);
  EXPECT_EQ(ScoreAgainstReference("The answer is (D).", "C"), 0.0);
  EXPECT_EQ(ScoreAgainstReference("I am not sure.", "C"), 0.0);
  EXPECT_EQ(ScoreAgainstReference("... = $18 every day.", "#### 18"), 1.0);
  EXPECT_EQ(ScoreAgainstReference("#### 17", "18"), 0.0);
  EXPECT_EQ(ScoreAgainstReference(" paris ", "Paris"), 1.0);
  EXPECT_EQ(ScoreAgainstReference("anything", ""), std::nullopt);
  EXPECT_EQ(ScoreAgainstReference("J", "J"), 1.0);
}

}  // namespace
}  // namespace baton
