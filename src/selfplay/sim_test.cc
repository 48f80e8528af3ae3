#include <random>

#include <gtest/gtest.h>

#include "baton/bench.h"
#include "baton/selfplay_sim.h"

namespace baton {
namespace {

// Four experts of rising price; "math" questions are solved by the dear ones, "law" questions by all but the
// cheapest, so a router that learns the domains can save money.
Dataset Synthetic(size_t n, uint64_t seed) {
  std::vector<ExpertRecord> es(4);
  for (size_t e = 0; e < 4; ++e) es[e].name = "e" + std::to_string(e);
  std::vector<QueryRecord> qs(n);
  for (size_t q = 0; q < n; ++q) {
    qs[q].external_id = std::to_string(q);
    qs[q].domain = q % 2 ? "math" : "law";
    qs[q].text = (q % 2 ? "compute the integral number " : "which court rules on case ") + std::to_string(q);
  }
  Dataset ds(es, qs);
  std::mt19937_64 rng(seed);
  const double c[] = {0.001, 0.002, 0.01, 0.03};
  for (size_t q = 0; q < n; ++q) {
    for (size_t e = 0; e < 4; ++e) {
      const double p = q % 2 ? (e >= 2 ? 0.9 : 0.2) : (e >= 1 ? 0.85 : 0.3);
      ds.Set(q, e, (rng() % 1000) / 1000.0 < p ? 1.0f : 0.0f, static_cast<float>(c[e]));
    }
  }
  return ds;
}

TEST(SelfPlaySimTest, CurvesShareTheirEndsAndSpendTheBudget) {
  const Dataset pool = Synthetic(240, 1), test = Synthetic(120, 2);
  SimOptions o;
  o.rounds = 4;
  o.warm_start = 0.05;
  o.breakpoint_lambdas = 50;
  StatusOr<SimResult> r = RunSelfPlaySim(pool, test, o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->total_evaluations, 240u * 4);
  for (const auto* c : {&r->selfplay, &r->random, &r->all}) {
    ASSERT_EQ(c->size(), 5u);
    for (size_t i = 1; i < c->size(); ++i) EXPECT_GE((*c)[i].evaluations, (*c)[i - 1].evaluations);
    EXPECT_EQ(c->back().evaluations, r->total_evaluations);
    for (const SimPoint& p : *c) EXPECT_TRUE(p.aiq > 0 && p.aiq <= 1) << p.aiq;
  }
  // The warm start is shared and the last point has paid for everything: the three coincide at both ends.
  EXPECT_EQ(r->selfplay.front().evaluations, r->random.front().evaluations);
  EXPECT_DOUBLE_EQ(r->selfplay.front().aiq, r->all.front().aiq);
  EXPECT_DOUBLE_EQ(r->selfplay.back().aiq, r->all.back().aiq);
  EXPECT_DOUBLE_EQ(r->random.back().aiq, r->all.back().aiq);
  // Budgets are met exactly by selfplay and random (cells), and at least by all (whole questions).
  for (size_t i = 1; i < 5; ++i) {
    EXPECT_EQ(r->selfplay[i].evaluations, r->random[i].evaluations);
    EXPECT_GE(r->all[i].evaluations, r->random[i].evaluations);
  }
  const nlohmann::json j = SimResultToJson(*r);
  EXPECT_EQ(j["curves"]["selfplay"].size(), 5u);
  EXPECT_TRUE(j["curves"]["all"][0].contains("evaluations"));
  EXPECT_TRUE(j.contains("fraction_to_match_all"));
  const std::string svg = RenderSimSvg({*r}, "t");
  EXPECT_NE(svg.find("<svg"), std::string::npos);
  EXPECT_NE(svg.find("selfplay"), std::string::npos);

  // Same seed, same run.
  StatusOr<SimResult> again = RunSelfPlaySim(pool, test, o);
  ASSERT_TRUE(again.ok());
  for (size_t i = 0; i < 5; ++i) EXPECT_DOUBLE_EQ(again->selfplay[i].aiq, r->selfplay[i].aiq);
}

TEST(SelfPlaySimTest, FractionToMatchIgnoresTheFullRevealPoint) {
  const std::vector<SimPoint> c = {{10, 0.5}, {40, 0.7}, {70, 0.8}, {100, 0.9}};
  EXPECT_DOUBLE_EQ(*FractionToMatch(c, 0.7, 100), 0.4);
  EXPECT_DOUBLE_EQ(*FractionToMatch(c, 0.65, 100), 0.4);
  EXPECT_FALSE(FractionToMatch(c, 0.9, 100).has_value());  // only at 100 of 100: by construction, not a match
}

TEST(SelfPlaySimTest, RejectsMismatchedExpertsAndBadOptions) {
  const Dataset pool = Synthetic(40, 1);
  StatusOr<Dataset> three = pool.SelectExperts({"e0", "e1", "e2"});
  ASSERT_TRUE(three.ok());
  EXPECT_FALSE(RunSelfPlaySim(pool, *three, {}).ok());
  SimOptions o;
  o.router = "no-such-router";
  EXPECT_EQ(RunSelfPlaySim(pool, pool, o).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace baton
