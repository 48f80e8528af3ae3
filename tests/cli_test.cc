// End-to-end: the `baton` binary on the bundled datasets.
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "test_util.h"

namespace baton {
namespace {

using testing::DataPath;
using testing::RunBaton;
using testing::TempDir;

nlohmann::json StatsJson(const std::string& db, const std::string& dataset) {
  auto r = RunBaton("stats --db " + db + " --dataset " + dataset + " --json");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  return nlohmann::json::parse(r.output);
}

TEST(CliTest, HelpOnEveryCommand) {
  for (const char* cmd :
       {"", "import", "import-wide", "export-wide", "stats", "fit", "route", "universe", "bench", "serve", "archon"}) {
    auto r = RunBaton(std::string(cmd) + " --help");
    EXPECT_EQ(r.exit_code, 0) << cmd << ": " << r.output;
    EXPECT_NE(r.output.find("Usage"), std::string::npos) << cmd;
  }
}

// Every bundled dataset goes in with `import`, comes out with `export-wide`, and goes back in with `import-wide`; the
// statistics of both copies agree exactly.
class BundledDatasetTest : public ::testing::TestWithParam<const char*> {};

TEST_P(BundledDatasetTest, ImportExportWideImportWideRoundTrip) {
  TempDir tmp;
  const std::string name = GetParam();
  const std::string db = tmp.path() + "/a.db", wide_db = tmp.path() + "/b.db", csv = tmp.path() + "/wide.csv";
  auto r = RunBaton("import " + DataPath(name) + " --db " + db);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("imported dataset '" + name + "'"), std::string::npos) << r.output;
  r = RunBaton("export-wide --db " + db + " --dataset " + name + " --out " + csv);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = RunBaton("import-wide " + csv + " --db " + wide_db +
               " --query-col query_id --text-col text --domain-col domain --dataset " + name);
  ASSERT_EQ(r.exit_code, 0) << r.output;

  nlohmann::json a = StatsJson(db, name), b = StatsJson(wide_db, name);
  EXPECT_GT(a["outcomes"].get<int>(), 0);
  EXPECT_EQ(a["queries"], b["queries"]);
  EXPECT_EQ(a["outcomes"], b["outcomes"]);
  EXPECT_EQ(a["domains"], b["domains"]);
  // Experts with no outcome (arena-hard's two ungraded models) have no score column in the wide form.
  nlohmann::json ea = nlohmann::json::array();
  for (const auto& e : a["experts"])
    if (e["observed"].get<int>() > 0) ea.push_back(e);
  const nlohmann::json& eb = b["experts"];
  ASSERT_EQ(ea.size(), eb.size());
  for (size_t i = 0; i < ea.size(); ++i) {
    EXPECT_EQ(ea[i]["name"], eb[i]["name"]);
    EXPECT_EQ(ea[i]["observed"], eb[i]["observed"]);
    EXPECT_EQ(ea[i]["mean_score"], eb[i]["mean_score"]);
    if (!ea[i]["mean_cost_usd"].is_null()) {
      EXPECT_NEAR(ea[i]["mean_cost_usd"].get<double>(), eb[i]["mean_cost_usd"].get<double>(), 1e-9);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(All, BundledDatasetTest,
                         ::testing::Values("routerbench-train", "routerbench-test", "routellm-mmlu-gsm8k",
                                           "arena-hard-v1", "mmlu-pro"),
                         [](const auto& info) {
                           std::string s = info.param;
                           for (char& c : s)
                             if (c == '-') c = '_';
                           return s;
                         });

TEST(CliTest, MmluProFiguresMatchTheSource) {
  TempDir tmp;
  const std::string db = tmp.path() + "/m.db";
  ASSERT_EQ(RunBaton("import " + DataPath("mmlu-pro") + " --db " + db).exit_code, 0);
  nlohmann::json s = StatsJson(db, "mmlu-pro");
  EXPECT_EQ(s["queries"], 12032);
  EXPECT_EQ(s["outcomes"], 359247);
  EXPECT_EQ(s["experts"].size(), 30u);
  EXPECT_EQ(s["domains"].size(), 14u);
  for (const auto& e : s["experts"]) {
    if (e["name"] == "DeepSeek-Coder-V2") {
      EXPECT_EQ(e["observed"], 10351);
    }
  }
  auto table = RunBaton("stats --db " + db);
  EXPECT_EQ(table.exit_code, 0);
  EXPECT_NE(table.output.find("mean cost/query"), std::string::npos);
}

TEST(CliTest, BadInputExitsNonZeroAndKeepsTheDatabase) {
  TempDir tmp;
  const std::string db = tmp.path() + "/x.db";
  ASSERT_EQ(RunBaton("import " + DataPath("routerbench-test") + " --db " + db).exit_code, 0);
  const std::string before = testing::DumpDatabase(db);
  // The same dataset again: every query id clashes.
  auto r = RunBaton("import " + DataPath("routerbench-test") + " --db " + db);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("queries.jsonl:1"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("already in the database"), std::string::npos) << r.output;
  EXPECT_EQ(testing::DumpDatabase(db), before);

  r = RunBaton("stats --db " + tmp.path() + "/missing.db");
  EXPECT_NE(r.exit_code, 0);
  r = RunBaton("import");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("DIR"), std::string::npos) << r.output;
}

TEST(CliTest, TrainAndTestSplitsShareOneDatabase) {
  TempDir tmp;
  const std::string db = tmp.path() + "/rb.db";
  ASSERT_EQ(RunBaton("import " + DataPath("routerbench-train") + " --db " + db).exit_code, 0);
  auto r = RunBaton("import " + DataPath("routerbench-test") + " --db " + db);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto all = RunBaton("stats --db " + db + " --json");
  ASSERT_EQ(all.exit_code, 0);
  EXPECT_EQ(nlohmann::json::parse(all.output)["queries"], 2218 + 952);
}

}  // namespace
}  // namespace baton
