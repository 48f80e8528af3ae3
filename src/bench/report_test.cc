#include <gtest/gtest.h>

#include "baton/bench.h"

namespace baton {
namespace {

BenchResult Sample() {
  BenchResult r;
  r.train_queries = 10;
  r.test_queries = 5;
  r.experts = {"a", "b"};
  r.expert_tier = {0, 2};
  r.domains = {"math", "law"};
  r.singles = {{"a", 0.5, 0.001}, {"b", 0.9, 0.01}};
  r.best_single = r.singles[1];
  r.best_single_domain_accuracy = {0.8, 1.0};
  r.oracle = {"oracle", 0.95, 0.003};
  r.random = {"random", 0.7, 0.0055};
  RouterResult x;
  x.name = "knn";
  x.is_default = true;
  x.curve = {{0, 0.9, 0.01, 1}, {1, 0.8, 0.005, 0.5}, {2, 0.5, 0.001, 0}};
  x.aiq = 0.8;
  x.cost_at_95 = 0.6;
  x.domain_accuracy = {0.7, 0.9};
  x.tiers = {{.budget_fraction = 0.5, .accuracy = 0.8, .cost_per_query = 0.005, .share = {0.5, 0, 0.5}}};
  r.routers = {x};
  x.name = "mf";
  x.is_default = false;
  r.routers.push_back(x);
  r.cascade.name = "cascade";
  r.cascade.curve = {{0, 0.5, 0.001}, {1, 0.9, 0.011}};
  r.universe = {{"b", 0.9, 0.01}, {"a", 0.93, 0.001}};
  r.default_router = "knn";
  return r;
}

TEST(BenchReportTest, HtmlHasSvgFigures) {
  const std::string html = RenderBenchReport(Sample(), "toy <bench>");
  EXPECT_NE(html.find("<svg"), std::string::npos);
  EXPECT_NE(html.find("toy &lt;bench&gt;"), std::string::npos);
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_NE(html.find("CPT(50%)"), std::string::npos);  // two experts: RouteLLM columns
}

TEST(BenchReportTest, CalibrationDomainSharesAndIntervals) {
  BenchResult r = Sample();
  r.calibration.assign(2, std::vector<CalibrationBin>(BenchResult::kCalibrationBins));
  r.calibration[0][3] = {.predicted = 0.35, .realised = 0.3, .count = 4};
  r.calibration[1][8] = {.predicted = 0.85, .realised = 0.9, .count = 6};
  r.domain_share = {{0.25, 0.75}, {1.0, 0.0}};
  r.bootstrap = 200;
  r.routers[0].ci.aiq = ConfidenceInterval{.lo = 0.862, .hi = 0.880};
  const std::string html = RenderBenchReport(r, "toy");
  const size_t cal = html.find("Calibration of knn");
  ASSERT_NE(cal, std::string::npos);
  EXPECT_NE(html.find("<svg", cal), std::string::npos);
  EXPECT_NE(html.find("perfect calibration", cal), std::string::npos);
  EXPECT_NE(html.find("predicted 0.850, realised 0.900 (6 cells)"), std::string::npos);
  const size_t share = html.find("Routing shares per domain");
  ASSERT_NE(share, std::string::npos);
  EXPECT_NE(html.find("<table class=\"share\">", share), std::string::npos);
  EXPECT_NE(html.find("75%", share), std::string::npos);
  EXPECT_NE(html.find("0.8000 <small>[0.8620, 0.8800]</small>"), std::string::npos);
  const nlohmann::json j = BenchResultToJson(r);
  EXPECT_DOUBLE_EQ(j["routers"][0]["aiq_ci"][1].get<double>(), 0.88);
  EXPECT_TRUE(j["routers"][1]["aiq_ci"].is_null());
  EXPECT_DOUBLE_EQ(j["default_domain_share"]["math"]["b"].get<double>(), 0.75);
  EXPECT_EQ(j["calibration"]["a"].size(), 1u);
}

TEST(BenchJsonTest, SchemaAndOneDefault) {
  nlohmann::json j = BenchResultToJson(Sample());
  for (const char* k : {"train_queries", "test_queries", "experts", "best_single", "oracle", "singles", "routers"})
    EXPECT_TRUE(j.contains(k)) << k;
  int defaults = 0;
  for (const auto& r : j["routers"]) {
    defaults += r["default"].get<bool>() ? 1 : 0;
    for (const char* k : {"name", "curve", "aiq", "cost_at_95", "acc_at_best_single_cost", "apgr", "cpt50", "cpt80"})
      EXPECT_TRUE(r.contains(k)) << k;
  }
  EXPECT_EQ(defaults, 1);
  EXPECT_TRUE(j["routers"][0]["acc_at_best_single_cost"].is_null());
}

}  // namespace
}  // namespace baton
