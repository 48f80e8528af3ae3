// End-to-end: `baton bench` on routerbench-train -> routerbench-test with a few fast routers.
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "test_util.h"

namespace baton {
namespace {

TEST(BenchCliTest, RouterBenchTrainTestJsonSchema) {
  testing::TempDir tmp;
  const std::string json_path = tmp.path() + "/bench.json", report = tmp.path() + "/report";
  auto r = testing::RunBaton(
      "bench --train " + testing::DataPath("routerbench-train") + " --test " + testing::DataPath("routerbench-test") +
      " --routers domain-prior,knn,routellm-sw --lambdas 15 --json " + json_path + " --report " + report);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::ifstream in(json_path);
  ASSERT_TRUE(in.good());
  const nlohmann::json j = nlohmann::json::parse(in);
  EXPECT_GT(j["train_queries"].get<int>(), 0);
  EXPECT_GT(j["test_queries"].get<int>(), 0);
  ASSERT_TRUE(j["experts"].is_array());
  const size_t ne = j["experts"].size();
  EXPECT_EQ(j["singles"].size(), ne);
  for (const char* k : {"expert", "accuracy", "cost_per_query"}) EXPECT_TRUE(j["best_single"].contains(k)) << k;
  for (const char* k : {"accuracy", "cost_per_query"}) EXPECT_TRUE(j["oracle"][k].is_number()) << k;
  EXPECT_GE(j["oracle"]["accuracy"].get<double>(), j["best_single"]["accuracy"].get<double>());
  // The three routers asked for, plus the escalation routers (routerbench has recorded answers, read by default).
  ASSERT_EQ(j["routers"].size(), 5u);
  EXPECT_EQ(j["routers"][3]["name"], "escalate");
  EXPECT_EQ(j["routers"][4]["name"], "route-escalate");
  EXPECT_TRUE(j["escalation"]["ran"].get<bool>()) << j["escalation"]["note"];
  int defaults = 0;
  for (const auto& x : j["routers"]) {
    defaults += x["default"].get<bool>() ? 1 : 0;
    EXPECT_TRUE(x["name"].is_string());
    EXPECT_TRUE(x["aiq"].is_number());
    EXPECT_TRUE(x["cost_at_95"].is_number() || x["cost_at_95"].is_null());
    EXPECT_TRUE(x["acc_at_best_single_cost"].is_number() || x["acc_at_best_single_cost"].is_null());
    ASSERT_GE(x["curve"].size(), 2u);
    for (const auto& p : x["curve"]) {
      for (const char* k : {"lambda", "accuracy", "cost_per_query"}) EXPECT_TRUE(p[k].is_number()) << k;
    }
  }
  EXPECT_EQ(defaults, 1);
  std::ifstream html(report + "/index.html");
  std::stringstream ss;
  ss << html.rdbuf();
  EXPECT_NE(ss.str().find("<svg"), std::string::npos);
}

}  // namespace
}  // namespace baton
