#include "baton/policy.h"

#include <cmath>
#include <random>

#include <gtest/gtest.h>

namespace baton {
namespace {

struct Instance {
  size_t nq = 0, ne = 0;
  std::vector<float> score, cost;
};

// Random instance; cost loosely rises with quality, some cells NaN.
Instance Random(size_t nq, size_t ne, uint32_t seed, double missing = 0.05) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(0.f, 1.f);
  Instance in{nq, ne, std::vector<float>(nq * ne), std::vector<float>(nq * ne)};
  std::vector<float> quality(ne), price(ne);
  for (size_t e = 0; e < ne; ++e) quality[e] = u(rng), price[e] = 0.001f * (0.1f + 3 * quality[e] * u(rng) + u(rng));
  for (size_t q = 0; q < nq; ++q) {
    const float len = 0.5f + u(rng);
    for (size_t e = 0; e < ne; ++e) {
      in.score[q * ne + e] = std::clamp(quality[e] + 0.3f * (u(rng) - 0.5f), 0.f, 1.f);
      in.cost[q * ne + e] = price[e] * len;
      if (u(rng) < missing && e > 0) in.score[q * ne + e] = NAN;
    }
  }
  return in;
}

double CheapestTotal(const Instance& in) {
  double t = 0;
  for (size_t q = 0; q < in.nq; ++q) {
    float c = INFINITY;
    for (size_t e = 0; e < in.ne; ++e) {
      if (!std::isnan(in.score[q * in.ne + e])) c = std::min(c, in.cost[q * in.ne + e]);
    }
    t += c;
  }
  return t;
}

// Best summed score within budget by enumerating every assignment (every query must be served).
double BruteForce(const Instance& in, double budget) {
  double best = -1;
  std::vector<size_t> pick(in.nq, 0);
  while (true) {
    double s = 0, c = 0;
    bool ok = true;
    for (size_t q = 0; q < in.nq && ok; ++q) {
      const size_t i = q * in.ne + pick[q];
      ok = !std::isnan(in.score[i]);
      s += in.score[i], c += in.cost[i];
    }
    if (ok && c <= budget) best = std::max(best, s);
    size_t q = 0;
    while (q < in.nq && ++pick[q] == in.ne) pick[q++] = 0;
    if (q == in.nq) break;
  }
  return best;
}

TEST(PolicyTest, ChooseExpertBasics) {
  const std::vector<float> s = {0.5f, 0.9f, 0.9f, NAN};
  const std::vector<float> c = {1.f, 3.f, 2.f, 0.f};
  EXPECT_EQ(ChooseExpert(s, c, 0.0), 2);  // tie on score -> cheaper
  EXPECT_EQ(ChooseExpert(s, c, 1.0), 0);  // 0.5 - 1 > 0.9 - 2
  EXPECT_EQ(ChooseExpert(s, c, 0.1), 2);
  const bool allowed[] = {true, true, false, true};
  EXPECT_EQ(ChooseExpert(s, c, 0.0, allowed), 1);
  const bool none[] = {false, false, false, true};  // the only allowed one is NaN
  EXPECT_EQ(ChooseExpert(s, c, 0.0, none), -1);
  const std::vector<float> nan_cost = {0.5f, 0.9f, 0.9f, 1.f};
  const std::vector<float> c2 = {1.f, NAN, NAN, 5.f};
  EXPECT_EQ(ChooseExpert(nan_cost, c2, 0.0), 3);
}

TEST(PolicyTest, AssignWithLambdaMatchesChooseExpert) {
  const Instance in = Random(200, 7, 3);
  for (double lambda : {0.0, 50.0, 500.0, 1e6}) {
    const BatchAssignment a = AssignWithLambda(in.score, in.cost, in.ne, lambda);
    ASSERT_EQ(a.expert.size(), in.nq);
    double s = 0;
    for (size_t q = 0; q < in.nq; ++q) {
      const std::span<const float> row_s(&in.score[q * in.ne], in.ne), row_c(&in.cost[q * in.ne], in.ne);
      EXPECT_EQ(a.expert[q], ChooseExpert(row_s, row_c, lambda));
      s += in.score[q * in.ne + a.expert[q]];
    }
    EXPECT_NEAR(a.predicted_score, s, 1e-6);
  }
  // Cost falls as lambda rises.
  EXPECT_GE(AssignWithLambda(in.score, in.cost, in.ne, 0).predicted_cost,
            AssignWithLambda(in.score, in.cost, in.ne, 1000).predicted_cost);
}

TEST(PolicyTest, AssignBatchNeverExceedsBudget) {
  std::mt19937 rng(7);
  for (uint32_t seed = 1; seed <= 300; ++seed) {
    const size_t nq = 1 + rng() % 300, ne = 1 + rng() % 12;
    const Instance in = Random(nq, ne, seed);
    const double lo = CheapestTotal(in);
    const double hi = AssignWithLambda(in.score, in.cost, ne, 0).predicted_cost;
    const double budget = lo + (hi - lo) * std::uniform_real_distribution<double>(0, 1.1)(rng);
    auto a = AssignBatch(in.score, in.cost, ne, budget);
    ASSERT_TRUE(a.ok()) << a.status().ToString();
    ASSERT_EQ(a->expert.size(), nq);
    double c = 0, s = 0;
    for (size_t q = 0; q < nq; ++q) {
      ASSERT_GE(a->expert[q], 0);
      ASSERT_FALSE(std::isnan(in.score[q * ne + a->expert[q]]));
      c += in.cost[q * ne + a->expert[q]], s += in.score[q * ne + a->expert[q]];
    }
    EXPECT_LE(c, budget) << "seed " << seed;
    EXPECT_LE(a->predicted_cost, budget);
    EXPECT_NEAR(a->predicted_cost, c, 1e-12);
    EXPECT_NEAR(a->predicted_score, s, 1e-9);
    // At least as good as the fixed-lambda choice it was derived from, when that one fits.
    const BatchAssignment fixed = AssignWithLambda(in.score, in.cost, ne, a->lambda);
    if (fixed.predicted_cost <= budget) {
      EXPECT_GE(a->predicted_score, fixed.predicted_score - 1e-9);
    }
    // Weak duality: the Lagrangian bound at the returned lambda is above the optimum, and with an exact lambda it
    // is the LP bound, which the assignment reaches within one query's score (scores are in [0, 1]).
    const double dual = fixed.predicted_score - a->lambda * fixed.predicted_cost + a->lambda * budget;
    EXPECT_GE(dual, a->predicted_score - 1e-6) << "seed " << seed;
    EXPECT_GE(a->predicted_score, dual - 1.0) << "seed " << seed;
  }
}

TEST(PolicyTest, AssignBatchNearBruteForceOnTinyInstances) {
  std::mt19937 rng(11);
  int exact = 0, runs = 0;
  for (uint32_t seed = 1; seed <= 150; ++seed) {
    const size_t nq = 1 + rng() % 6, ne = 1 + rng() % 4;
    const Instance in = Random(nq, ne, seed, 0.1);
    const double lo = CheapestTotal(in);
    const double hi = AssignWithLambda(in.score, in.cost, ne, 0).predicted_cost;
    const double budget = lo + (hi - lo) * std::uniform_real_distribution<double>(0, 1)(rng);
    auto a = AssignBatch(in.score, in.cost, ne, budget);
    ASSERT_TRUE(a.ok()) << a.status().ToString();
    const double opt = BruteForce(in, budget);
    EXPECT_LE(a->predicted_cost, budget);
    EXPECT_LE(a->predicted_score, opt + 1e-6);
    // Within one query's score of the optimum (the LP bound is at most one fractional query above it).
    EXPECT_GE(a->predicted_score, opt - 1.0) << "seed " << seed;
    exact += a->predicted_score >= opt - 1e-6;
    ++runs;
  }
  EXPECT_GT(exact, runs * 3 / 4);
}

TEST(PolicyTest, AssignBatchEdgeCases) {
  const Instance in = Random(50, 5, 2);
  const double lo = CheapestTotal(in);
  EXPECT_EQ(AssignBatch(in.score, in.cost, 5, lo * 0.99).status().code(), StatusCode::kResourceExhausted);
  auto at_lo = AssignBatch(in.score, in.cost, 5, lo);
  ASSERT_TRUE(at_lo.ok());
  EXPECT_LE(at_lo->predicted_cost, lo);
  auto rich = AssignBatch(in.score, in.cost, 5, 1e9);  // ample budget: everyone gets their best
  ASSERT_TRUE(rich.ok());
  EXPECT_NEAR(rich->predicted_score, AssignWithLambda(in.score, in.cost, 5, 0).predicted_score, 1e-9);
  EXPECT_EQ(AssignBatch(in.score, std::span<const float>(in.cost).first(10), 5, 1).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(AssignBatch(std::span<const float>(in.score).first(7), std::span<const float>(in.cost).first(7), 5, 1)
                .status()
                .code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(AssignBatch(in.score, in.cost, 0, 1).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(AssignBatch(in.score, in.cost, 5, -1).status().code(), StatusCode::kInvalidArgument);
  auto empty = AssignBatch({}, {}, 5, 0);
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->expert.empty());
}

TEST(PolicyTest, OnlineRouterSpendsWithinBudgetAndEvenly) {
  const size_t n = 4000;
  const Instance in = Random(n, 10, 5, 0);
  const double lo = CheapestTotal(in), hi = AssignWithLambda(in.score, in.cost, 10, 0).predicted_cost;
  for (double frac : {0.2, 0.5, 0.8}) {
    const double budget = lo + (hi - lo) * frac;
    OnlineOptions o;
    o.budget_usd = budget;
    o.expected_queries = n;
    auto router = OnlineRouter::Create(o);
    ASSERT_TRUE(router.ok());
    double spent = 0, half = 0, score = 0;
    for (size_t q = 0; q < n; ++q) {
      const std::span<const float> s(&in.score[q * 10], 10), c(&in.cost[q * 10], 10);
      auto e = router->Choose(s, c);
      ASSERT_TRUE(e.ok()) << e.status().ToString() << " at query " << q;
      spent += c[*e], score += s[*e];
      router->Settle(c[*e]);
      if (q + 1 == n / 2) half = spent;
    }
    EXPECT_LE(spent, budget);
    EXPECT_NEAR(router->remaining_usd(), budget - spent, 1e-9);
    EXPECT_EQ(router->served(), n);
    EXPECT_GT(half, 0.35 * budget) << "frac " << frac;
    EXPECT_LT(half, 0.65 * budget) << "frac " << frac;
    EXPECT_GT(spent, 0.8 * budget) << "frac " << frac;  // uses most of what it was given
    // Not far below the offline optimum.
    auto offline = AssignBatch(in.score, in.cost, 10, budget);
    EXPECT_GT(score, 0.9 * offline->predicted_score);
  }
}

TEST(PolicyTest, OnlineRouterRefusesBelowCheapest) {
  OnlineOptions o;
  o.budget_usd = 0.5;
  o.expected_queries = 10;
  auto router = OnlineRouter::Create(o);
  ASSERT_TRUE(router.ok());
  const std::vector<float> s = {0.9f, 0.5f}, c = {2.f, 1.f};
  EXPECT_EQ(router->Choose(s, c).status().code(), StatusCode::kResourceExhausted);
  const std::vector<float> c2 = {0.6f, 0.3f};
  auto e = router->Choose(s, c2);  // only the cheaper one fits
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(*e, 1u);
  o.budget_usd = 0;
  EXPECT_EQ(OnlineRouter::Create(o).status().code(), StatusCode::kInvalidArgument);
  o.budget_usd = 1;
  o.expected_queries = 0;
  EXPECT_EQ(OnlineRouter::Create(o).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace baton
