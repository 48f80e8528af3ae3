#include "baton/universe.h"

#include <cmath>
#include <random>

#include <gtest/gtest.h>

#include "test_util.h"

namespace baton {
namespace {

UniverseOptions Opts(size_t k, std::optional<double> budget = std::nullopt, bool bitset = true) {
  UniverseOptions o;
  o.k = k;
  o.max_cost_per_query = budget;
  o.allow_bitset = bitset;
  return o;
}

// A random dataset; `binary` scores are 0/1, otherwise uniform in [0, 1]. About `missing` of the cells unobserved.
Dataset RandomDataset(size_t nq, size_t ne, uint32_t seed, bool binary, double missing = 0.1) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(0.f, 1.f);
  std::vector<ExpertRecord> experts(ne);
  for (size_t e = 0; e < ne; ++e) experts[e].name = "e" + std::to_string(e);
  std::vector<QueryRecord> queries(nq);
  Dataset ds(experts, queries);
  for (size_t e = 0; e < ne; ++e) {
    const float skill = u(rng), cost = 0.001f * (1 + e % 5);
    for (size_t q = 0; q < nq; ++q) {
      if (u(rng) < missing) continue;
      const float s = binary ? (u(rng) < skill ? 1.f : 0.f) : u(rng) * skill;
      ds.Set(q, e, s, cost);
    }
  }
  return ds;
}

// Plain (non-lazy) greedy on the objective, as a reference.
std::vector<size_t> PlainGreedy(const Dataset& ds, size_t k) {
  std::vector<float> best(ds.num_queries(), 0.f);
  std::vector<size_t> picks;
  std::vector<bool> used(ds.num_experts(), false);
  for (size_t round = 0; round < k; ++round) {
    double best_gain = 0;
    size_t arg = ds.num_experts();
    for (size_t e = 0; e < ds.num_experts(); ++e) {
      if (used[e]) continue;
      double g = 0;
      for (size_t q = 0; q < ds.num_queries(); ++q) {
        const float v = ds.observed(q, e) ? ds.score(q, e) : 0.f;
        g += std::max(v - best[q], 0.f);
      }
      if (g > best_gain + 1e-9) best_gain = g, arg = e;
    }
    if (arg == ds.num_experts()) break;
    used[arg] = true;
    picks.push_back(arg);
    for (size_t q = 0; q < ds.num_queries(); ++q) {
      if (ds.observed(q, arg)) best[q] = std::max(best[q], ds.score(q, arg));
    }
  }
  return picks;
}

std::vector<size_t> Experts(const UniverseResult& r) {
  std::vector<size_t> v;
  for (const auto& p : r.picks) v.push_back(p.expert);
  return v;
}

TEST(UniverseTest, GreedyWithinBoundOfExhaustiveOnRandomData) {
  const double bound = 1 - 1 / std::exp(1.0);
  int equal = 0, runs = 0;
  for (uint32_t seed = 1; seed <= 20; ++seed) {
    for (bool binary : {false, true}) {
      Dataset ds = RandomDataset(200, 8, seed, binary);
      for (size_t k : {1, 2, 3}) {
        auto r = BuildUniverse(ds, Opts(k));
        ASSERT_TRUE(r.ok()) << r.status().ToString();
        const UniverseResult opt = BestUniverseExhaustive(ds, k);
        EXPECT_GE(r->s, bound * opt.s - 1e-9);
        EXPECT_LE(r->s, opt.s + 1e-9);
        equal += std::abs(r->s - opt.s) < 1e-9;
        ++runs;
      }
    }
  }
  EXPECT_GT(equal, runs / 2);  // greedy is usually optimal on these
}

TEST(UniverseTest, GreedyNearExhaustiveOnMmluPro) {
  auto ds = LoadDatasetDir(testing::DataPath("mmlu-pro"));
  ASSERT_TRUE(ds.ok()) << ds.status().ToString();
  for (size_t k : {1, 2, 3}) {
    auto r = BuildUniverse(*ds, Opts(k));
    ASSERT_TRUE(r.ok());
    const UniverseResult opt = BestUniverseExhaustive(*ds, k);
    EXPECT_GE(r->s, (1 - 1 / std::exp(1.0)) * opt.s);
    EXPECT_LE(r->s, opt.s + 1e-9);
    if (k == 1) {
      EXPECT_NEAR(r->s, opt.s, 1e-9);  // the best single expert is exact
    }
    // S(U) after each pick is non-decreasing and the last equals the total.
    for (size_t i = 1; i < r->picks.size(); ++i) EXPECT_GE(r->picks[i].s, r->picks[i - 1].s);
    EXPECT_DOUBLE_EQ(r->picks.back().s, r->s);
    EXPECT_FALSE(r->picks[0].name.empty());
  }
}

TEST(UniverseTest, LazyEqualsPlainGreedy) {
  for (uint32_t seed = 1; seed <= 10; ++seed) {
    Dataset ds = RandomDataset(500, 25, seed, seed % 2 == 0, 0.3);
    auto r = BuildUniverse(ds, Opts(10));
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(Experts(*r), PlainGreedy(ds, 10)) << "seed " << seed;
    EXPECT_LT(r->evaluations, 25u * 10u);  // lazy evaluation saves work
  }
}

TEST(UniverseTest, BitsetPathEqualsFloatPath) {
  for (uint32_t seed = 1; seed <= 10; ++seed) {
    Dataset ds = RandomDataset(1000 + seed * 7, 40, seed, /*binary=*/true, 0.2);
    auto bits = BuildUniverse(ds, Opts(12));
    auto floats = BuildUniverse(ds, Opts(12, std::nullopt, false));
    ASSERT_TRUE(bits.ok() && floats.ok());
    EXPECT_EQ(Experts(*bits), Experts(*floats));
    EXPECT_DOUBLE_EQ(bits->s, floats->s);
    auto cb = BuildUniverse(ds, Opts(12, 0.01));
    auto cf = BuildUniverse(ds, Opts(12, 0.01, false));
    EXPECT_EQ(Experts(*cb), Experts(*cf));
  }
}

TEST(UniverseTest, StopsWhenNothingImproves) {
  // Expert 1 dominates expert 0 everywhere; after picking 1, nothing adds coverage.
  std::vector<float> score = {0.2f, 0.9f, 0.5f, 0.6f};  // 2 queries x 2 experts
  auto r = BuildUniverse(score, 2, 2, {0.0, 0.0}, Opts(2));
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->picks.size(), 1u);
  EXPECT_EQ(r->picks[0].expert, 1u);
  EXPECT_NEAR(r->s, 0.75, 1e-6);
}

TEST(UniverseTest, CostAwareRespectsBudgetAndBeatsSingle) {
  for (uint32_t seed = 1; seed <= 10; ++seed) {
    Dataset ds = RandomDataset(300, 12, seed, seed % 2 == 1);
    for (double budget : {0.0011, 0.0041, 0.0081, 0.0201}) {
      auto r = BuildUniverse(ds, Opts(6, budget));
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      double spent = 0;
      for (const auto& p : r->picks) spent += p.cost_per_query;
      EXPECT_LE(spent, budget + 1e-12);
      EXPECT_LE(r->picks.size(), 6u);
      // Never worse than the best single affordable expert.
      for (size_t e = 0; e < ds.num_experts(); ++e) {
        if (ds.MeanCost(e) > budget) continue;
        auto one = BuildUniverse(ds.SelectExperts({ds.expert(e).name}).value(), Opts(1));
        EXPECT_GE(r->s, one->s - 1e-9);
      }
    }
  }
}

TEST(UniverseTest, CostAwarePrefersStrongExpertOverCheapCrowd) {
  // Expert 0: cheap, covers one query. Expert 1: expensive, covers all. Budget fits only one of them plus nothing.
  std::vector<float> score = {1, 1, 0, 1, 0, 1, 0, 1};  // 4 queries x 2 experts
  auto r = BuildUniverse(score, 4, 2, {0.001, 0.1}, Opts(2, 0.1));
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->picks.size(), 1u);
  EXPECT_EQ(r->picks[0].expert, 1u);
  EXPECT_DOUBLE_EQ(r->s, 1.0);
}

TEST(UniverseTest, Errors) {
  Dataset ds = RandomDataset(50, 4, 1, false);
  EXPECT_EQ(BuildUniverse(ds, Opts(0)).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(BuildUniverse(ds, Opts(5)).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(BuildUniverse(ds, Opts(2, 0.0005)).status().code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(BuildUniverse(std::vector<float>(7), 2, 4, std::vector<double>(4), Opts(1)).status().code(),
            StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace baton
