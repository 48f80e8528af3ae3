#include <algorithm>
#include <cmath>

#include <gtest/gtest.h>

#include "baton/bench.h"
#include "baton/policy.h"

namespace baton {
namespace {

// 3 queries, 2 experts. cheap: scores 1 0 0 at $0.1; dear: scores 1 1 0 at $1.
Dataset Toy() {
  std::vector<ExpertRecord> es(2);
  es[0].name = "cheap";
  es[1].name = "dear";
  std::vector<QueryRecord> qs(3);
  const char* domains[] = {"math", "math", "law"};
  for (size_t q = 0; q < 3; ++q) {
    qs[q].external_id = std::to_string(q);
    qs[q].domain = domains[q];
    qs[q].text = "question " + std::to_string(q);
  }
  Dataset ds(es, qs);
  const float cheap[] = {1, 0, 0}, dear[] = {1, 1, 0};
  for (size_t q = 0; q < 3; ++q) {
    ds.Set(q, 0, cheap[q], 0.1f);
    ds.Set(q, 1, dear[q], 1.0f);
  }
  return ds;
}

TEST(BenchSplitTest, DeterministicPerSeedAndDisjoint) {
  auto a = RandomSplit(101, 0.3, 7), b = RandomSplit(101, 0.3, 7), c = RandomSplit(101, 0.3, 8);
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_EQ(a->train, b->train);
  EXPECT_EQ(a->test, b->test);
  EXPECT_NE(a->test, c->test);
  EXPECT_EQ(a->test.size(), 30u);
  std::vector<size_t> all = a->train;
  all.insert(all.end(), a->test.begin(), a->test.end());
  std::sort(all.begin(), all.end());
  for (size_t i = 0; i < all.size(); ++i) EXPECT_EQ(all[i], i);  // disjoint and complete
  EXPECT_FALSE(RandomSplit(10, 1.0, 0).ok());
  EXPECT_FALSE(RandomSplit(1, 0.5, 0).ok());
}

TEST(BenchBaselineTest, SinglesOracleRandom) {
  Dataset ds = Toy();
  auto singles = EvaluateSingles(ds);
  ASSERT_EQ(singles.size(), 2u);
  EXPECT_NEAR(singles[0].accuracy, 1.0 / 3, 1e-6);
  EXPECT_NEAR(singles[0].cost_per_query, 0.1, 1e-6);
  EXPECT_NEAR(singles[1].accuracy, 2.0 / 3, 1e-6);
  // Oracle: q0 both right -> cheap; q1 dear; q2 both wrong -> cheap.
  ExpertPoint o = EvaluateOracle(ds);
  EXPECT_NEAR(o.accuracy, 2.0 / 3, 1e-6);
  EXPECT_NEAR(o.cost_per_query, 1.2 / 3, 1e-6);
  ExpertPoint r = EvaluateRandom(ds);
  EXPECT_NEAR(r.accuracy, 0.5, 1e-6);
  EXPECT_NEAR(r.cost_per_query, 0.55, 1e-6);
}

TEST(BenchBaselineTest, CascadeStopsOnConfidence) {
  Dataset ds = Toy();
  // Predicted score of cheap: 0.9, 0.2, 0.9 -> q1 escalates to dear.
  std::vector<float> pred = {0.9f, 0.5f, 0.2f, 0.5f, 0.9f, 0.5f};
  auto curve = CascadeCurve(ds, pred, {0, 1}, {0.0, 0.5, 2.0});
  ASSERT_EQ(curve.size(), 3u);
  EXPECT_NEAR(curve[0].accuracy, 1.0 / 3, 1e-6);  // t = 0: always stop at cheap
  EXPECT_NEAR(curve[0].cost_per_query, 0.1, 1e-6);
  EXPECT_NEAR(curve[1].accuracy, 2.0 / 3, 1e-6);
  EXPECT_NEAR(curve[1].cost_per_query, 1.3 / 3, 1e-6);
  EXPECT_NEAR(curve[2].accuracy, 2.0 / 3, 1e-6);  // t > 1: call both everywhere
  EXPECT_NEAR(curve[2].cost_per_query, 1.1, 1e-6);
}

TEST(BenchBaselineTest, TiersAndDomains) {
  EXPECT_EQ(PriceTiers({5, 1, 3, 2, 6, 4}), (std::vector<int>{2, 0, 1, 0, 2, 1}));
  EXPECT_EQ(PriceTiers({2, 1}), (std::vector<int>{2, 0}));
  Dataset ds = Toy();
  auto acc = DomainAccuracy(ds, {1, 1, 0});
  ASSERT_EQ(acc.size(), 2u);  // math, law
  EXPECT_DOUBLE_EQ(acc[0], 1.0);
  EXPECT_DOUBLE_EQ(acc[1], 0.0);
}

TEST(BenchBaselineTest, LambdaGridSpansBreakEvens) {
  // One query: expert 1 is 0.2 better for 1.0 more -> break-even 0.2.
  std::vector<float> s = {0.5f, 0.7f}, c = {0.0f, 1.0f};
  auto grid = LambdaGrid(s, c, 2, 5);
  ASSERT_EQ(grid.size(), 7u);
  EXPECT_EQ(grid.front(), 0);
  EXPECT_LT(grid[1], 0.2);
  EXPECT_GT(grid[5], 0.2);
  EXPECT_GT(grid.back(), 0.2);
  EXPECT_TRUE(std::is_sorted(grid.begin(), grid.end()));
}

TEST(BenchAlignTest, RestrictsAndDropsUnobserved) {
  Dataset train = Toy(), test = Toy();
  test.Set(2, 1, NAN, NAN);
  ASSERT_TRUE(AlignExperts(train, test, {"dear"}).ok());
  EXPECT_EQ(train.num_experts(), 1u);
  EXPECT_EQ(test.num_queries(), 2u);
  EXPECT_FALSE(AlignExperts(train, test, {"nobody"}).ok());
}

TEST(BenchBaselineTest, BreakpointLambdasHitEveryAssignment) {
  // One query, three experts on a concave hull: (cost 1, score 0.2), (cost 2, 0.6), (cost 4, 0.8), plus a dominated
  // one. Break-points at slopes 0.1 (4 -> 2) and 0.4 (2 -> 1).
  std::vector<float> s = {0.2f, 0.6f, 0.8f, 0.1f}, c = {1, 2, 4, 3};
  auto grid = BreakpointLambdas(s, c, 4, 100);
  ASSERT_EQ(grid.size(), 2u);
  EXPECT_NEAR(grid[0], std::sqrt(0.1 * 0.4), 1e-6);
  EXPECT_NEAR(grid[1], 0.8, 1e-6);
  std::vector<int> seen;
  for (double l : {0.0, grid[0], grid[1]}) seen.push_back(ChooseExpert(s, c, l));
  EXPECT_EQ(seen, (std::vector<int>{2, 1, 0}));
  EXPECT_LE(BreakpointLambdas(s, c, 4, 1).size(), 1u);
}

}  // namespace
}  // namespace baton
