#include <gtest/gtest.h>

#include "baton/bench.h"

namespace baton {
namespace {

std::vector<CurvePoint> Curve(std::initializer_list<std::pair<double, double>> cost_acc) {
  std::vector<CurvePoint> c;
  for (auto [cost, acc] : cost_acc) c.push_back({.lambda = 0, .accuracy = acc, .cost_per_query = cost});
  return c;
}

TEST(MetricHullTest, DropsDominatedAndConcavePoints) {
  // (3, 0.7) lies below the chord from (2, 0.8) to (4, 0.9); (5, 0.85) comes after the maximum.
  auto hull = NonDecreasingConvexHull(Curve({{1, 0.5}, {2, 0.8}, {3, 0.7}, {4, 0.9}, {5, 0.85}}));
  ASSERT_EQ(hull.size(), 4u);
  EXPECT_EQ(hull[0].cost_per_query, 0);
  EXPECT_EQ(hull[1].cost_per_query, 1);
  EXPECT_EQ(hull[2].cost_per_query, 2);
  EXPECT_EQ(hull[3].cost_per_query, 4);
  EXPECT_DOUBLE_EQ(HullValue(hull, 3), 0.85);
  EXPECT_DOUBLE_EQ(HullValue(hull, 10), 0.9);
}

TEST(MetricAiqTest, KnownHull) {
  // Hull (0,0) (1,.5) (2,.8) (4,.9), flat to 5: area .25 + .65 + 1.7 + .9 = 3.5, AIQ = 3.5 / 5.
  EXPECT_NEAR(Aiq(Curve({{1, 0.5}, {2, 0.8}, {3, 0.7}, {4, 0.9}}), 5), 0.7, 1e-12);
  // A single point at cost c and accuracy a, C = 2c: (c * a / 2 + c * a) / 2c = 0.75 a.
  EXPECT_NEAR(Aiq(Curve({{1, 0.6}}), 2), 0.45, 1e-12);
  EXPECT_EQ(Aiq({}, 1), 0);
}

TEST(MetricCostAt95Test, NullWhenNeverReached) {
  auto c = Curve({{1, 0.5}, {2, 0.8}, {4, 0.9}});
  const double best_single = 1.0;
  EXPECT_FALSE(MinCostReaching(c, 0.95 * best_single).has_value());
  ASSERT_TRUE(MinCostReaching(c, 0.95 * 0.8).has_value());
  EXPECT_EQ(*MinCostReaching(c, 0.95 * 0.8), 2);
}

TEST(MetricAccAtCostTest, HighestAccuracyWithinBudget) {
  auto c = Curve({{1, 0.5}, {2, 0.8}, {3, 0.7}, {4, 0.9}});
  EXPECT_EQ(*MaxAccuracyWithin(c, 3.5), 0.8);
  EXPECT_EQ(*MaxAccuracyWithin(c, 4), 0.9);
  EXPECT_FALSE(MaxAccuracyWithin(c, 0.5).has_value());
}

TEST(MetricPgrTest, TwoExpertToy) {
  // weak 0.5, strong 0.9; PGR 0 at 0% strong calls, 0.75 at 50%, 1 at 100%.
  std::vector<CurvePoint> c = {{.accuracy = 0.5, .cost_per_query = 1, .strong_share = 0},
                               {.accuracy = 0.8, .cost_per_query = 5, .strong_share = 0.5},
                               {.accuracy = 0.9, .cost_per_query = 10, .strong_share = 1}};
  PgrMetrics m = ComputePgr(c, 0.5, 0.9);
  EXPECT_NEAR(m.apgr, 0.5 * 0.75 / 2 + 0.5 * 1.75 / 2, 1e-12);
  ASSERT_TRUE(m.cpt50 && m.cpt80);
  EXPECT_NEAR(*m.cpt50, 1.0 / 3, 1e-12);
  EXPECT_NEAR(*m.cpt80, 0.6, 1e-12);
}

TEST(MetricPgrTest, AnchorsAndNeverReached) {
  // Only a middle point: anchors (0,0) and (1,1) are added; a router worse than weak never reaches PGR 0.5 before
  // the (1,1) anchor.
  std::vector<CurvePoint> c = {{.accuracy = 0.4, .cost_per_query = 5, .strong_share = 0.5}};
  PgrMetrics m = ComputePgr(c, 0.5, 0.9);
  EXPECT_NEAR(m.apgr, 0.5 * (0 - 0.25) / 2 + 0.5 * (-0.25 + 1) / 2, 1e-12);
  EXPECT_NEAR(*m.cpt50, 0.5 + 0.5 * 0.75 / 1.25, 1e-12);
  std::vector<CurvePoint> flat = {{.accuracy = 0.5, .cost_per_query = 1, .strong_share = 0},
                                  {.accuracy = 0.6, .cost_per_query = 9, .strong_share = 1}};
  EXPECT_FALSE(ComputePgr(flat, 0.5, 0.9).cpt50.has_value());
}

}  // namespace
}  // namespace baton
