// The hierarchical (domain -> sub-domain) prior and the stacked ensemble.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>

#include "baton/predictor.h"
#include "predict/test_data.h"

namespace baton {
namespace {

using predict::Rng;

// One domain "d" with sources "s1" (expert a right 90%), "s2" (a right 10%) and the tiny "s3" (2 queries, a right on
// both); expert b is right half the time everywhere.
Dataset SubdomainDataset() {
  std::vector<ExpertRecord> experts = {{.id = 1, .name = "a"}, {.id = 2, .name = "b"}};
  std::vector<QueryRecord> queries;
  std::vector<int> src;
  for (int i = 0; i < 402; ++i) {
    const int s = i < 200 ? 1 : i < 400 ? 2 : 3;
    src.push_back(s);
    queries.push_back({.id = i + 1,
                       .external_id = "q" + std::to_string(i),
                       .dataset = "syn",
                       .domain = "d",
                       .text = "question " + std::to_string(i),
                       .source = "s" + std::to_string(s)});
  }
  Dataset ds(experts, queries);
  for (int i = 0; i < 402; ++i) {
    const bool a_right = src[i] == 1 ? i % 10 != 0 : src[i] == 2 ? i % 10 == 0 : true;
    ds.Set(i, 0, a_right ? 1.0f : 0.0f, 0.001f);
    ds.Set(i, 1, i % 2 ? 1.0f : 0.0f, 0.002f);
  }
  return ds;
}

TEST(HierarchicalPriorTest, SubdomainsShrinkTowardTheirDomain) {
  const Dataset ds = SubdomainDataset();
  auto p = MakePredictor("domain-prior");
  ASSERT_TRUE(p.ok());
  ASSERT_TRUE((*p)->Fit(ds).ok());
  auto predict = [&](std::string_view sub) {
    float s[2];
    (*p)->Predict({.text = "x", .domain = "d", .subdomain = sub}, s);
    return s[0];
  };
  const float domain = predict("");
  EXPECT_NEAR(domain, (180.0f + 20.0f + 2.0f) / 402.0f, 0.01f);
  EXPECT_NEAR(predict("s1"), 0.9f, 0.02f);  // large sub-domains keep (almost) their own mean
  EXPECT_NEAR(predict("s2"), 0.1f, 0.02f);
  const float tiny = predict("s3");  // 2 observations: pulled toward the domain, but not all the way
  EXPECT_GT(tiny, domain);
  EXPECT_LT(tiny, 1.0f);
  EXPECT_EQ(predict("unseen-source"), domain);  // unknown sub-domain: the domain's value
  float unknown[2];
  (*p)->Predict({.text = "x", .domain = "other", .subdomain = "s1"}, unknown);  // unknown domain: global mean
  EXPECT_NEAR(unknown[0], (180.0f + 20.0f + 2.0f) / 402.0f, 0.01f);
}

double LogLoss(const Predictor& p, const Dataset& test) {
  double total = 0;
  size_t n = 0;
  std::vector<float> s(p.num_experts());
  for (size_t q = 0; q < test.num_queries(); ++q) {
    p.Predict({.text = test.query(q).text, .domain = test.query(q).domain}, s);
    for (size_t e = 0; e < s.size(); ++e) {
      if (!test.observed(q, e)) continue;
      const double x = std::clamp<double>(s[e], 1e-6, 1 - 1e-6), y = test.score(q, e);
      total -= y * std::log(x) + (1 - y) * std::log(1 - x), ++n;
    }
  }
  return total / static_cast<double>(n);
}

TEST(EnsembleTest, NotWorseThanItsBestComponent) {
  const Dataset train = predict::testdata::TwoSkillDataset(400, 5, 0.15);
  const Dataset test = predict::testdata::TwoSkillDataset(300, 6, 0.15);
  std::map<std::string, double> loss;
  for (const std::string name : {"ensemble", "domain-prior", "factorized", "knn", "routerbench-mlp"}) {
    auto p = MakePredictor(name, {.seed = 1});
    ASSERT_TRUE(p.ok());
    ASSERT_TRUE((*p)->Fit(train).ok()) << name;
    loss[name] = LogLoss(**p, test);
    std::printf("synthetic held-out %-16s log-loss %.4f  [%s]\n", name.c_str(), loss[name], (*p)->Describe().c_str());
  }
  double best = INFINITY;
  for (const auto& [name, l] : loss)
    if (name != "ensemble") best = std::min(best, l);
  EXPECT_LE(loss["ensemble"], best + 0.01);
}

}  // namespace
}  // namespace baton
