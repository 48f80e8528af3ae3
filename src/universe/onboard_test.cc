// Onboarding on synthetic universes whose right answer is known: a complementary newcomer joins, a duplicate is
// rejected, at a fixed k a newcomer that dominates a weak member replaces exactly that member, the importance-weighted
// estimate brackets the true gain, and failed calls are counted and left out.
#include "baton/onboard.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <nlohmann/json.hpp>

namespace baton {
namespace {

// Queries 0..n-1; member "a" answers even queries, "b" answers queries divisible by 3 (0/1 scores, cost 0.001 each).
Dataset Pool(size_t n) {
  std::vector<ExpertRecord> experts = {{.id = 1, .name = "a"}, {.id = 2, .name = "b"}};
  std::vector<QueryRecord> queries;
  for (size_t i = 0; i < n; ++i) {
    queries.push_back({.id = static_cast<int64_t>(i + 1),
                       .external_id = "q" + std::to_string(i),
                       .dataset = "synthetic",
                       .text = "question " + std::to_string(i)});
  }
  Dataset ds(experts, queries);
  for (size_t i = 0; i < n; ++i) {
    ds.Set(i, 0, i % 2 == 0 ? 1.f : 0.f, 0.001f);
    ds.Set(i, 1, i % 3 == 0 ? 1.f : 0.f, 0.001f);
  }
  return ds;
}

// A newcomer whose score on query i is f(i); counts its calls.
struct Scripted {
  std::function<double(size_t)> f;
  double cost = 0.002;
  int calls = 0;
  OnboardEvaluate Evaluate() {
    return [this](const QueryRecord& q) -> StatusOr<OnboardEvaluation> {
      ++calls;
      const size_t i = std::stoul(q.external_id.substr(1));
      return OnboardEvaluation{.score = f(i), .cost_usd = cost};
    };
  }
};

TEST(OnboardTest, ComplementaryExpertJoins) {
  const Dataset pool = Pool(600);
  // "c" answers exactly what a and b leave uncovered (i odd and not divisible by 3): the true gain is 1/3.
  Scripted c{[](size_t i) { return i % 2 == 1 && i % 3 != 0 ? 1.0 : 0.0; }};
  auto r = Onboard(pool, "c", c.Evaluate(), {.queries = 40, .seed = 1});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->decision, "join") << r->reason;
  EXPECT_NEAR(r->s_universe, 2.0 / 3.0, 1e-3);
  EXPECT_LE(r->gain.lower, 1.0 / 3.0);
  EXPECT_GE(r->gain.upper, 1.0 / 3.0);
  EXPECT_GT(r->gain.lower, 0);
  EXPECT_EQ(c.calls, static_cast<int>(r->called));
  EXPECT_LE(r->called, 40u);
  // The informative rule: queries both members already cover (multiples of 6: weight 0.05 of about 0.88 in all, 1%)
  // are drawn far less often than uniform sampling would (1/6 of the draws).
  size_t covered_twice = 0;
  for (const auto& call : r->calls) covered_twice += call.draws * (call.query % 6 == 0);
  EXPECT_LE(covered_twice, 3u);
}

TEST(OnboardTest, DuplicateOfAMemberIsRejected) {
  const Dataset pool = Pool(600);
  Scripted dup{[](size_t i) { return i % 2 == 0 ? 1.0 : 0.0; }};  // the same as "a"
  auto r = Onboard(pool, "a-copy", dup.Evaluate(), {.queries = 50, .seed = 2});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->decision, "reject") << r->reason;
  EXPECT_DOUBLE_EQ(r->gain.estimate, 0);
  // Swapping "a" for its copy changes nothing; swapping "b" loses its unique queries.
  ASSERT_EQ(r->swaps.size(), 2u);
  EXPECT_EQ(r->swaps[0].member, "a");
  // (its exact part, the loss of dropping "a", and its estimated part, the copy's gain over {b}, cancel in truth)
  EXPECT_LE(r->swaps[0].delta.lower, 0);
  EXPECT_GE(r->swaps[0].delta.upper, 0);
  EXPECT_LT(r->swaps[1].delta.estimate, 0);
}

TEST(OnboardTest, AtFixedKReplacesTheWeakMember) {
  const Dataset pool = Pool(600);
  // "d" covers everything "b" covers and more (multiples of 3 and odd numbers): worth swapping for b, not for a.
  Scripted d{[](size_t i) { return i % 3 == 0 || i % 2 == 1 ? 1.0 : 0.0; }};
  auto r = Onboard(pool, "d", d.Evaluate(), {.queries = 60, .k = 2, .seed = 3});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->decision, "replace") << r->reason;
  EXPECT_EQ(r->replaces, "b");
  // True swap value: S({a, d}) - S({a, b}) = 1 - 2/3.
  EXPECT_LE(r->swaps[0].delta.lower, 1.0 / 3.0);
  EXPECT_GE(r->swaps[0].delta.upper, 1.0 / 3.0);
  // Without a fixed k the same expert simply joins.
  auto grow = Onboard(pool, "d", d.Evaluate(), {.queries = 60, .seed = 3});
  ASSERT_TRUE(grow.ok());
  EXPECT_EQ(grow->decision, "join");
}

TEST(OnboardTest, CostCanOutweighTheGain) {
  const Dataset pool = Pool(600);
  Scripted c{[](size_t i) { return i % 2 == 1 && i % 3 != 0 ? 1.0 : 0.0; }, /*cost=*/5.0};
  auto r = Onboard(pool, "c", c.Evaluate(), {.queries = 40, .lambda = 1, .seed = 1});
  ASSERT_TRUE(r.ok());
  EXPECT_GT(r->gain.lower, 0);
  EXPECT_EQ(r->decision, "reject") << r->reason;
  EXPECT_LT(r->net_gain.estimate, 0);
}

TEST(OnboardTest, FailedCallsAreCountedAndLeftOut) {
  const Dataset pool = Pool(300);
  int n = 0;
  OnboardEvaluate flaky = [&n](const QueryRecord&) -> StatusOr<OnboardEvaluation> {
    if (n++ % 2 == 0) return Status::Unavailable("connection refused");
    return OnboardEvaluation{.score = std::nullopt, .cost_usd = 0.001};  // an answer with nothing to score
  };
  auto r = Onboard(pool, "flaky", flaky, {.queries = 10});
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
  int m = 0;
  OnboardEvaluate half = [&m](const QueryRecord&) -> StatusOr<OnboardEvaluation> {
    if (m++ % 2 == 0) return Status::Unavailable("connection refused");
    return OnboardEvaluation{.score = 1.0, .cost_usd = 0.001};
  };
  auto h = Onboard(pool, "half", half, {.queries = 20});
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->failed + h->answered, h->called);
  EXPECT_GT(h->failed, 0u);
  const auto j = nlohmann::json::parse(OnboardReportJson(*h, pool));
  EXPECT_EQ(j["decision"], h->decision);
  EXPECT_EQ(j["calls"].size(), h->called);
}

TEST(OnboardTest, RefusesBadInput) {
  const Dataset pool = Pool(10);
  Scripted c{[](size_t) { return 1.0; }};
  EXPECT_EQ(Onboard(pool, "a", c.Evaluate(), {}).status().code(), StatusCode::kInvalidArgument);  // a member
  EXPECT_EQ(Onboard(pool, "c", c.Evaluate(), {.queries = 0}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Onboard(pool, "c", c.Evaluate(), {.k = 1}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Onboard(Dataset(), "c", c.Evaluate(), {}).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace baton
