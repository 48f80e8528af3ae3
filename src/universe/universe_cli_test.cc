// End-to-end: `baton universe` and `baton route` on the bundled routerbench-test data.
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "test_util.h"

namespace baton {
namespace {

using testing::RunBaton;

class UniverseCliTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new testing::TempDir();
    db_ = dir_->path() + "/t.db";
    auto r = RunBaton("import --db " + db_ + " " + testing::DataPath("routerbench-test"));
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }
  static void TearDownTestSuite() { delete dir_; }
  static testing::TempDir* dir_;
  static std::string db_;
};
testing::TempDir* UniverseCliTest::dir_ = nullptr;
std::string UniverseCliTest::db_;

TEST_F(UniverseCliTest, PrintsTableAndWritesJson) {
  const std::string json = dir_->path() + "/u.json";
  auto r = RunBaton("universe --db " + db_ + " --k 3 --json " + json);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("S(U)"), std::string::npos);
  std::ifstream in(json);
  std::stringstream ss;
  ss << in.rdbuf();
  const auto j = nlohmann::json::parse(ss.str());
  ASSERT_TRUE(j["picks"].is_array());
  ASSERT_GE(j["picks"].size(), 1u);
  ASSERT_LE(j["picks"].size(), 3u);
  double prev = 0;
  for (const auto& p : j["picks"]) {
    EXPECT_TRUE(p["expert"].is_string());
    EXPECT_GE(p["s"].get<double>(), prev);
    EXPECT_GE(p["cost_per_query"].get<double>(), 0);
    prev = p["s"].get<double>();
    EXPECT_NE(r.output.find(p["expert"].get<std::string>()), std::string::npos);
  }
  EXPECT_DOUBLE_EQ(j["s"].get<double>(), prev);
}

TEST_F(UniverseCliTest, CostAwareStaysWithinBudget) {
  const std::string json = dir_->path() + "/c.json";
  auto r = RunBaton("universe --db " + db_ + " --k 4 --max-cost 0.002 --json " + json);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::ifstream in(json);
  const auto j = nlohmann::json::parse(in);
  double spent = 0;
  for (const auto& p : j["picks"]) spent += p["cost_per_query"].get<double>();
  EXPECT_LE(spent, 0.002);
}

TEST_F(UniverseCliTest, Errors) {
  for (const char* args :
       {"--k 0", "--k 12", "--k 2 --experts claude-v2,no-such-model", "--k 2 --max-cost 0.0000000001"}) {
    auto r = RunBaton("universe --db " + db_ + " " + std::string(args));
    EXPECT_NE(r.exit_code, 0) << args;
    EXPECT_NE(r.output.find("error"), std::string::npos) << args << ": " << r.output;
  }
}

TEST_F(UniverseCliTest, RouteWithinBudget) {
  const std::string model = dir_->path() + "/m.baton";
  auto fit = RunBaton("fit --db " + db_ + " --out " + model + " --no-cv --no-holdout");
  if (fit.exit_code != 0) GTEST_SKIP() << "baton fit unavailable: " << fit.output;
  auto r = RunBaton("route --db " + db_ + " --model " + model + " --budget 0.5");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("predicted:"), std::string::npos);
  EXPECT_NE(r.output.find("realised:"), std::string::npos);
  EXPECT_NE(r.output.find("share"), std::string::npos);
  auto poor = RunBaton("route --db " + db_ + " --model " + model + " --budget 0.00001");
  EXPECT_NE(poor.exit_code, 0);
  EXPECT_NE(poor.output.find("budget"), std::string::npos) << poor.output;
}

}  // namespace
}  // namespace baton
