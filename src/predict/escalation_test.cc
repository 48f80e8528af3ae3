#include "baton/escalation.h"

#include <filesystem>
#include <fstream>
#include <random>

#include <gtest/gtest.h>

namespace baton {
namespace {

TEST(AcceptanceFeatures, AgreementOfLettersAndNumbers) {
  const CheapAnswer agree[] = {{"The answer is (C).", 0.7f}, {"['C']", 0.4f}};
  AcceptanceFeatures f = ExtractAcceptanceFeatures(agree, AnswerForm::kChoice);
  EXPECT_EQ(f[0], 1.0f);
  EXPECT_FLOAT_EQ(f[1], 0.7f);
  EXPECT_FLOAT_EQ(f[2], 0.4f);
  EXPECT_EQ(f[3], 1.0f);
  EXPECT_EQ(f[4], 1.0f);
  EXPECT_EQ(f[5], 1.0f);
  EXPECT_EQ(f[6], 1.0f);

  const CheapAnswer differ[] = {{"Answer: B", 0.7f}, {"(D)", 0.4f}};
  f = ExtractAcceptanceFeatures(differ, AnswerForm::kChoice);
  EXPECT_EQ(f[5], 0.0f);
  EXPECT_EQ(f[3], 1.0f);

  const CheapAnswer numbers[] = {{"so 9 * $2 = $18.\n#### 18", 0.5f}, {"The total is $18.00", 0.5f}};
  EXPECT_EQ(ExtractAcceptanceFeatures(numbers, AnswerForm::kNumber)[5], 1.0f);
  const CheapAnswer numbers_differ[] = {{"#### 18", 0.5f}, {"#### 19", 0.5f}};
  EXPECT_EQ(ExtractAcceptanceFeatures(numbers_differ, AnswerForm::kNumber)[5], 0.0f);
}

TEST(AcceptanceFeatures, NoCommitmentAndMissingText) {
  // "A robe takes..." commits to no letter: neither committed nor agreeing, even with the same text twice.
  const CheapAnswer vague[] = {{"A robe takes two bolts", 0.3f}, {"A robe takes two bolts", 0.3f}};
  AcceptanceFeatures f = ExtractAcceptanceFeatures(vague, AnswerForm::kChoice);
  EXPECT_EQ(f[3], 0.0f);
  EXPECT_EQ(f[4], 0.0f);
  EXPECT_EQ(f[5], 0.0f);
  // One cheap call: the second's features are 0; no text: has_text 0.
  const CheapAnswer one[] = {{std::nullopt, 0.9f}};
  f = ExtractAcceptanceFeatures(one, AnswerForm::kChoice);
  EXPECT_FLOAT_EQ(f[1], 0.9f);
  EXPECT_EQ(f[2], 0.0f);
  EXPECT_EQ(f[3], 0.0f);
  EXPECT_EQ(f[5], 0.0f);
  EXPECT_EQ(f[6], 0.0f);
}

TEST(AcceptanceModel, LearnsThatAgreementMeansRight) {
  // Right 90% of the time when the two answers agree, 20% when they differ.
  std::mt19937_64 rng(1);
  std::vector<AcceptanceFeatures> x;
  std::vector<float> y;
  for (int i = 0; i < 2000; ++i) {
    const bool agree = i % 2 == 0;
    const std::optional<std::string> a = "C", b = agree ? "C" : "D";
    x.push_back(AcceptanceFeaturesOf(&a, &b, 0.5f, 0.5f, true));
    y.push_back((rng() % 100) < (agree ? 90u : 20u) ? 1.0f : 0.0f);
  }
  const AcceptanceModel m = AcceptanceModel::Fit(x, y, 0.01);
  const std::optional<std::string> c = "C", d = "D";
  const double p_agree = m.Probability(AcceptanceFeaturesOf(&c, &c, 0.5f, 0.5f, true));
  const double p_differ = m.Probability(AcceptanceFeaturesOf(&c, &d, 0.5f, 0.5f, true));
  EXPECT_NEAR(p_agree, 0.9, 0.03);
  EXPECT_NEAR(p_differ, 0.2, 0.03);
  const EscalationPolicy policy({"cheap-a", "cheap-b"}, m, 0.5);
  const CheapAnswer agree[] = {{"C", 0.5f}, {"(C)", 0.5f}}, differ[] = {{"C", 0.5f}, {"D", 0.5f}};
  EXPECT_TRUE(policy.ShouldAccept(agree, AnswerForm::kChoice));
  EXPECT_FALSE(policy.ShouldAccept(differ, AnswerForm::kChoice));
}

TEST(AcceptanceModel, TooFewRowsGivesHalf) {
  const AcceptanceModel m = AcceptanceModel::Fit({}, {});
  EXPECT_DOUBLE_EQ(m.Probability(AcceptanceFeatures{1, 0, 0, 0, 0, 0, 0}), 0.5);
}

TEST(RecordedResponses, ReadsAndTablesByQueryAndExpert) {
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("baton_escalation_test_" + std::to_string(std::random_device{}()));
  std::filesystem::create_directories(dir);
  {
    std::ofstream f(dir / "responses.jsonl");
    f << R"({"query_id": "q1", "model": "a", "response": "['C']"})" << "\n"
      << R"({"query_id": "q1", "model": "b", "response": "D"})" << "\n"
      << R"({"query_id": "zz", "model": "a", "response": "E"})" << "\n";
  }
  StatusOr<RecordedResponses> r = ReadResponses((dir / "responses.jsonl").string());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->size(), 3u);
  {
    std::ofstream f(dir / "bad.jsonl");
    f << "{\"query_id\": 1}\n";
  }
  EXPECT_FALSE(ReadResponses((dir / "bad.jsonl").string()).ok());
  EXPECT_EQ(ReadResponses((dir / "missing.jsonl").string()).status().code(), StatusCode::kNotFound);
  std::filesystem::remove_all(dir);

  std::vector<ExpertRecord> es(2);
  es[0].name = "a";
  es[1].name = "b";
  std::vector<QueryRecord> qs(2);
  qs[0].external_id = "q1";
  qs[0].domain = "law";
  qs[1].external_id = "q2";
  qs[1].domain = "math";
  Dataset ds(es, qs);
  const AnswerTable t = AnswersFor(*r, ds);
  EXPECT_EQ(t.recorded, 2u);
  EXPECT_EQ(*t.at(0, 0), "['C']");
  EXPECT_FALSE(t.at(1, 0).has_value());
  const std::vector<AnswerForm> forms = DomainForms(ds, t);
  EXPECT_EQ(forms[0], AnswerForm::kChoice);
  EXPECT_EQ(forms[1], AnswerForm::kText);  // no answers recorded
}

}  // namespace
}  // namespace baton
