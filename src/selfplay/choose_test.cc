#include <algorithm>
#include <set>

#include <gtest/gtest.h>

#include "baton/selfplay_sim.h"

namespace baton {
namespace {

TEST(PredictedDisagreementTest, ProbabilityThatTwoExpertsDiffer) {
  const std::vector<float> sure_same = {1, 1, 1}, split = {1, 0}, coin = {0.5f, 0.5f};
  EXPECT_DOUBLE_EQ(PredictedDisagreement(sure_same), 0);
  EXPECT_DOUBLE_EQ(PredictedDisagreement(split), 1);
  EXPECT_DOUBLE_EQ(PredictedDisagreement(coin), 0.5);
  // Three experts 1, 0, 0: pairs (1,0) (1,0) differ surely, (0,0) never -> 2/3.
  const std::vector<float> one_right = {1, 0, 0};
  EXPECT_NEAR(PredictedDisagreement(one_right), 2.0 / 3, 1e-12);
  const std::vector<float> single = {0.3f};
  EXPECT_DOUBLE_EQ(PredictedDisagreement(single), 0);
}

TEST(EnvelopeExpertsTest, BestFirstThenCheaperOnTheUpperEnvelope) {
  // Expert 0: best and dearest; 1: dominated (worse and dearer than 2); 2: mid; 3: cheapest.
  const std::vector<float> score = {0.9f, 0.5f, 0.7f, 0.3f}, cost = {10, 6, 2, 1};
  EXPECT_EQ(EnvelopeExperts(score, cost), (std::vector<size_t>{0, 2, 3}));
  // A cheaper expert that is also better: it alone is on the envelope.
  const std::vector<float> s2 = {0.5f, 0.8f}, c2 = {5, 1};
  EXPECT_EQ(EnvelopeExperts(s2, c2), (std::vector<size_t>{1}));
}

TEST(ChooseEvaluationsTest, InformativeQuestionsFirstWithinBudgetAndOnlyPayable) {
  // 3 questions x 5 experts. Question 1 splits the experts, question 0 is sure for all, question 2 is unsure.
  const size_t ne = 5;
  std::vector<float> ps = {1,    1,    1,    1,    1,  //
                           1,    1,    0,    0,    0,  //
                           0.6f, 0.6f, 0.6f, 0.6f, 0.6f};
  std::vector<float> pc(15, 1.0f);
  for (size_t q = 0; q < 3; ++q)
    for (size_t e = 0; e < ne; ++e) pc[q * ne + e] = static_cast<float>(e + 1);  // expert 0 cheapest
  std::vector<bool> payable(15, true);
  payable[1 * ne + 0] = false;  // already known
  uint64_t rng = 1;
  const std::vector<Evaluation> ev = ChooseEvaluations(ps, pc, payable, ne, 100, {.epsilon = 0, .small_pool = 2}, rng);
  ASSERT_FALSE(ev.empty());
  EXPECT_EQ(ev.front().query, 1u);  // the most separating question comes first
  std::set<std::pair<size_t, size_t>> seen;
  for (const Evaluation& x : ev) {
    EXPECT_TRUE(payable[x.query * ne + x.expert]) << x.query << "," << x.expert;
    EXPECT_TRUE(seen.insert({x.query, x.expert}).second) << "paid twice";
  }
  // Question 1's router choice (expert 0: best score, cheapest) is known, so it pays for the most uncertain unknown.
  EXPECT_EQ(ev.front().expert, 1u);
  // The budget is a hard limit.
  rng = 1;
  EXPECT_EQ(ChooseEvaluations(ps, pc, payable, ne, 2, {.epsilon = 0, .small_pool = 2}, rng).size(), 2u);
}

TEST(ChooseEvaluationsTest, SmallPoolEvaluatesEveryExpertAndEpsilonExplores) {
  const size_t ne = 3, nq = 40;
  std::vector<float> ps(nq * ne, 0.5f), pc(nq * ne, 1.0f);
  std::vector<bool> payable(nq * ne, true);
  uint64_t rng = 7;
  std::vector<Evaluation> ev = ChooseEvaluations(ps, pc, payable, ne, 6, {.epsilon = 0, .small_pool = 3}, rng);
  ASSERT_EQ(ev.size(), 6u);
  for (size_t i = 0; i < 6; ++i) EXPECT_EQ(ev[i].query, ev[i / 3 * 3].query);  // whole questions
  // With epsilon = 1 every question is a random pick and every expert is explored.
  std::vector<float> ps2(nq * 6, 0.5f), pc2(nq * 6, 1.0f);
  std::vector<bool> pay2(nq * 6, true);
  ev = ChooseEvaluations(ps2, pc2, pay2, 6, nq * 6, {.epsilon = 1, .small_pool = 2}, rng);
  EXPECT_EQ(ev.size(), nq * 6);
  bool in_order = true;
  for (size_t i = 1; i < ev.size(); ++i) in_order &= ev[i].query >= ev[i - 1].query;
  EXPECT_FALSE(in_order) << "random question order expected with epsilon 1";
}

}  // namespace
}  // namespace baton
