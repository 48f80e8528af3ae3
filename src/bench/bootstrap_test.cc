#include <random>

#include <gtest/gtest.h>

#include "baton/bench.h"

namespace baton {
namespace {

// Two experts with noisy 0/1 scores: "cheap" right 60% of the time at $0.001, "strong" 85% at $0.01.
Dataset TwoExperts(size_t n, uint64_t seed) {
  std::vector<ExpertRecord> es(2);
  es[0].name = "cheap";
  es[1].name = "strong";
  std::vector<QueryRecord> qs(n);
  for (size_t q = 0; q < n; ++q) {
    qs[q].external_id = std::to_string(q);
    qs[q].domain = q % 2 ? "math" : "law";
  }
  Dataset ds(es, qs);
  std::mt19937_64 rng(seed);
  for (size_t q = 0; q < n; ++q) {
    ds.Set(q, 0, (rng() % 100) < 60 ? 1.f : 0.f, 0.001f);
    ds.Set(q, 1, (rng() % 100) < 85 ? 1.f : 0.f, 0.01f);
  }
  return ds;
}

// A router that always answers with expert `e`: every curve point is that expert.
CurveIntervals AlwaysExpert(const Dataset& test, int e, size_t resamples, uint64_t seed, double max_cost) {
  CurveBootstrap boot(test, resamples, seed);
  CurveBootstrap::Curve c = boot.NewCurve();
  const std::vector<int> choice(test.num_queries(), e);
  boot.AddPoint(c, choice);
  boot.AddPoint(c, choice);
  return boot.Intervals(c, max_cost);
}

TEST(BenchBootstrapTest, RouterIdenticalToAnExpertHasItsAiqInside) {
  const Dataset test = TwoExperts(400, 1);
  const double max_cost = 0.01;
  const std::vector<CurvePoint> curve = {{.lambda = 0, .accuracy = test.MeanScore(1), .cost_per_query = 0.01}};
  const double aiq = Aiq(curve, max_cost);
  const CurveIntervals ci = AlwaysExpert(test, 1, 200, 7, max_cost);
  ASSERT_TRUE(ci.aiq);
  EXPECT_LE(ci.aiq->lo, aiq);
  EXPECT_GE(ci.aiq->hi, aiq);
  EXPECT_LT(ci.aiq->lo, ci.aiq->hi);
  // It is the best single expert on (almost) every resample, so it reaches 95% of it at exactly its own cost.
  ASSERT_TRUE(ci.cost_at_95);
  EXPECT_NEAR(ci.cost_at_95->lo, 1.0, 1e-5);
  EXPECT_NEAR(ci.cost_at_95->hi, 1.0, 1e-5);
  ASSERT_TRUE(ci.acc_at_best_single_cost);
  EXPECT_LE(ci.acc_at_best_single_cost->lo, test.MeanScore(1));
  EXPECT_GE(ci.acc_at_best_single_cost->hi, test.MeanScore(1));
}

TEST(BenchBootstrapTest, IntervalShrinksWithMoreQueries) {
  const CurveIntervals small = AlwaysExpert(TwoExperts(100, 3), 1, 200, 5, 0.01);
  const CurveIntervals large = AlwaysExpert(TwoExperts(3000, 3), 1, 200, 5, 0.01);
  ASSERT_TRUE(small.aiq && large.aiq);
  // The width scales with 1/sqrt(n): 30x the queries, about 5.5x narrower; ask for 3x.
  EXPECT_LT(3 * (large.aiq->hi - large.aiq->lo), small.aiq->hi - small.aiq->lo);
}

TEST(BenchBootstrapTest, DeterministicForASeed) {
  const Dataset test = TwoExperts(300, 9);
  // A curve whose choices change between points: query q goes to the strong expert from point q % 4 on.
  auto run = [&](uint64_t seed) {
    CurveBootstrap boot(test, 50, seed);
    CurveBootstrap::Curve c = boot.NewCurve();
    for (int k = 0; k < 4; ++k) {
      std::vector<int> choice(test.num_queries());
      for (size_t q = 0; q < choice.size(); ++q) choice[q] = static_cast<int>(q % 4) <= k ? 1 : 0;
      boot.AddPoint(c, choice);
    }
    return boot.Intervals(c, 0.01);
  };
  const CurveIntervals a = run(42), b = run(42), other = run(43);
  ASSERT_TRUE(a.aiq && b.aiq && other.aiq);
  EXPECT_EQ(a.aiq->lo, b.aiq->lo);
  EXPECT_EQ(a.aiq->hi, b.aiq->hi);
  EXPECT_EQ(a.cost_at_95.has_value(), b.cost_at_95.has_value());
  EXPECT_TRUE(a.aiq->lo != other.aiq->lo || a.aiq->hi != other.aiq->hi);
}

TEST(BenchBootstrapTest, RunBenchFillsIntervalsAndJson) {
  const Dataset train = TwoExperts(200, 11), test = TwoExperts(200, 12);
  BenchOptions o;
  o.routers = {"routerbench-knn"};
  o.bootstrap = 30;
  o.cross_validate = false;
  StatusOr<BenchResult> r = RunBench(train, test, o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_TRUE(r->routers[0].ci.aiq);
  EXPECT_LE(r->routers[0].ci.aiq->lo, r->routers[0].ci.aiq->hi);
  const nlohmann::json j = BenchResultToJson(*r);
  EXPECT_TRUE(j["routers"][0]["aiq_ci"].is_array());
  EXPECT_TRUE(j["routers"][0].contains("cost_at_95_ci"));
  EXPECT_FALSE(j["cascade"].contains("aiq_ci"));
  EXPECT_EQ(r->calibration.size(), 2u);
  ASSERT_EQ(r->domain_share.size(), 2u);
  EXPECT_NEAR(r->domain_share[0][0] + r->domain_share[0][1], 1.0, 1e-9);
  o.bootstrap = 0;
  StatusOr<BenchResult> off = RunBench(train, test, o);
  ASSERT_TRUE(off.ok());
  EXPECT_FALSE(off->routers[0].ci.aiq);
  EXPECT_FALSE(BenchResultToJson(*off)["routers"][0].contains("aiq_ci"));
}

}  // namespace
}  // namespace baton
