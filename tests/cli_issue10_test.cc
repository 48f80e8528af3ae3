// Issue 10 (items 7, 8, 9): the command line as a new user meets it. Usage errors exit 2 with "baton X: error:",
// runtime errors exit 1; a misspelt dataset name lists the stored ones; datasets can be listed, replaced and deleted;
// a failed first import leaves no file behind.
#include <filesystem>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "test_util.h"

namespace baton {
namespace {

using testing::RunBaton;
using testing::TempDir;

void ExpectIn(const testing::CommandResult& r, const std::string& text) {
  EXPECT_NE(r.output.find(text), std::string::npos) << "expected '" << text << "' in:\n" << r.output;
}

// A dataset folder `name` under `tmp`: experts `experts`, two queries, every pair observed.
std::string WriteDataset(const TempDir& tmp, const std::string& name, const std::vector<std::string>& experts) {
  std::string models = "model\n", outcomes = "query_id,model,score\n";
  for (const auto& e : experts) {
    models += e + "\n";
    outcomes += "q1," + e + ",1\nq2," + e + ",0\n";
  }
  tmp.Write(name + "/models.csv", models);
  tmp.Write(name + "/queries.jsonl", "{\"id\": \"q1\", \"text\": \"a\"}\n{\"id\": \"q2\", \"text\": \"b\"}\n");
  tmp.Write(name + "/outcomes.csv", outcomes);
  return tmp.path() + "/" + name;
}

TEST(CliIssue10Test, UnknownCommandSuggestsAndListsCommands) {
  auto r = RunBaton("imprt x");
  EXPECT_EQ(r.exit_code, 2);
  ExpectIn(r, "unknown command 'imprt' (did you mean 'import'?)");
  ExpectIn(r, "import-wide");
  ExpectIn(r, "universe");
}

TEST(CliIssue10Test, BareBatonListsCommandsOneLineEach) {
  auto r = RunBaton("");
  EXPECT_EQ(r.exit_code, 2);
  for (const char* cmd :
       {"import", "import-wide", "export-wide", "stats", "datasets", "fit", "bench", "universe", "route", "serve"}) {
    ExpectIn(r, std::string("\n  ") + cmd + " ");
  }
  ExpectIn(r, "Import a dataset folder");
}

TEST(CliIssue10Test, UnknownOptionIsAUsageErrorWithPrefix) {
  auto r = RunBaton("bench --foo 1");
  EXPECT_EQ(r.exit_code, 2);
  ExpectIn(r, "baton bench: error: unknown option '--foo'");
  EXPECT_EQ(r.output.find("Directory does not exist"), std::string::npos) << r.output;
  r = RunBaton("stats --dataste x --db y");
  EXPECT_EQ(r.exit_code, 2);
  ExpectIn(r, "(did you mean '--dataset'?)");
}

TEST(CliIssue10Test, ParseErrorsExitTwoWithPrefix) {
  auto r = RunBaton("import");
  EXPECT_EQ(r.exit_code, 2);
  ExpectIn(r, "baton import: error:");
  ExpectIn(r, "DIR");
  TempDir tmp;
  r = RunBaton("stats --db " + tmp.path() + "/missing.db");
  EXPECT_EQ(r.exit_code, 2);
  ExpectIn(r, "baton stats: error:");
}

TEST(CliIssue10Test, NumericOptionsAreValidatedAtParseTime) {
  TempDir tmp;
  const std::string file = tmp.Write("f", "x");
  auto r = RunBaton("universe --db " + file + " --k -2");
  EXPECT_EQ(r.exit_code, 2);
  ExpectIn(r, "baton universe: error:");
  ExpectIn(r, "--k");
  ExpectIn(r, "whole number >= 1, got '-2'");
  EXPECT_EQ(r.output.find("18446744073709551614"), std::string::npos);
  EXPECT_EQ(RunBaton("universe --db " + file + " --k 2 --max-cost -1").exit_code, 2);
  EXPECT_EQ(RunBaton("bench " + tmp.path() + " --cv-folds 0").exit_code, 2);
  EXPECT_EQ(RunBaton("bench " + tmp.path() + " --test-fraction 1.5").exit_code, 2);
  EXPECT_EQ(RunBaton("bench " + tmp.path() + " --lambdas -1").exit_code, 2);
  EXPECT_EQ(RunBaton("fit --db " + file + " --out m --seed -3").exit_code, 2);
  EXPECT_EQ(RunBaton("route --db " + file + " --model " + file + " --budget -1").exit_code, 2);
}

TEST(CliIssue10Test, RuntimeErrorsExitOne) {
  TempDir tmp;
  auto r = RunBaton("import " + tmp.path() + "/nothing --db " + tmp.path() + "/x.db");
  EXPECT_EQ(r.exit_code, 1);
  ExpectIn(r, "baton import: error:");
}

TEST(CliIssue10Test, FailedFirstImportLeavesNoFile) {
  TempDir tmp;
  const std::string db = tmp.path() + "/new.db";
  auto r = RunBaton("import " + tmp.path() + "/nothing --db " + db);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_FALSE(std::filesystem::exists(db));
  EXPECT_FALSE(std::filesystem::exists(db + "-wal"));
  EXPECT_FALSE(std::filesystem::exists(db + "-shm"));
  tmp.Write("bad.csv", "id,prompt,m1\nq1,a,2\n");
  r = RunBaton("import-wide " + tmp.path() + "/bad.csv --db " + db + " --query-col id --text-col prompt");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_FALSE(std::filesystem::exists(db));
  // A database that existed is kept, of course.
  ASSERT_EQ(RunBaton("import " + WriteDataset(tmp, "alpha", {"m1"}) + " --db " + db).exit_code, 0);
  EXPECT_EQ(RunBaton("import " + tmp.path() + "/nothing --db " + db).exit_code, 1);
  EXPECT_TRUE(std::filesystem::exists(db));
}

TEST(CliIssue10Test, MisspeltDatasetListsStoredOnes) {
  TempDir tmp;
  const std::string db = tmp.path() + "/x.db";
  ASSERT_EQ(RunBaton("import " + WriteDataset(tmp, "alpha", {"m1"}) + " --db " + db).exit_code, 0);
  ASSERT_EQ(RunBaton("import " + WriteDataset(tmp, "beta", {"m2"}) + " --db " + db).exit_code, 0);
  for (const std::string& cmd :
       {"stats --db " + db + " --dataset alpah",
        "export-wide --db " + db + " --dataset alpah --out " + tmp.path() + "/o.csv",
        "fit --db " + db + " --dataset alpah --out " + tmp.path() + "/m.baton",
        "universe --db " + db + " --dataset alpah --k 1", "bench --db " + db + " --dataset alpah"}) {
    auto r = RunBaton(cmd);
    EXPECT_EQ(r.exit_code, 1) << cmd;
    ExpectIn(r, "no dataset 'alpah'");
    ExpectIn(r, "(did you mean 'alpha'?)");
    ExpectIn(r, "stored datasets: alpha, beta");
  }
}

TEST(CliIssue10Test, DatasetsListReplaceAndRemove) {
  TempDir tmp;
  const std::string db = tmp.path() + "/x.db";
  const std::string alpha = WriteDataset(tmp, "alpha", {"m1", "m2"});
  ASSERT_EQ(RunBaton("import " + alpha + " --db " + db).exit_code, 0);
  ASSERT_EQ(RunBaton("import " + WriteDataset(tmp, "beta", {"m3"}) + " --db " + db).exit_code, 0);
  auto r = RunBaton("datasets --db " + db);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  ExpectIn(r, "alpha");
  ExpectIn(r, "beta");

  r = RunBaton("import " + alpha + " --db " + db);
  EXPECT_EQ(r.exit_code, 1);
  ExpectIn(r, "--replace");
  tmp.Write("alpha/outcomes.csv", "query_id,model,score\nq1,m1,1\n");
  r = RunBaton("import " + alpha + " --db " + db + " --replace");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  ExpectIn(r, "replaced 2 stored queries");
  auto stats = RunBaton("stats --db " + db + " --dataset alpha --json");
  ASSERT_EQ(stats.exit_code, 0) << stats.output;
  EXPECT_EQ(nlohmann::json::parse(stats.output)["outcomes"], 1);

  r = RunBaton("datasets rm alpah --db " + db);
  EXPECT_EQ(r.exit_code, 1);
  ExpectIn(r, "did you mean 'alpha'");
  r = RunBaton("datasets rm alpha --db " + db);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = RunBaton("datasets --db " + db);
  EXPECT_EQ(r.output.find("alpha"), std::string::npos) << r.output;
  ExpectIn(r, "beta");
  EXPECT_EQ(RunBaton("datasets rm --help").exit_code, 0);
}

TEST(CliIssue10Test, StatsOfOneDatasetListsOnlyItsExperts) {
  TempDir tmp;
  const std::string db = tmp.path() + "/x.db";
  ASSERT_EQ(RunBaton("import " + WriteDataset(tmp, "alpha", {"a1", "a2"}) + " --db " + db).exit_code, 0);
  ASSERT_EQ(RunBaton("import " + WriteDataset(tmp, "beta", {"b1"}) + " --db " + db).exit_code, 0);
  auto r = RunBaton("stats --db " + db + " --dataset beta");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  ExpectIn(r, "1 experts");
  EXPECT_EQ(r.output.find("a1"), std::string::npos) << r.output;
  auto j = RunBaton("stats --db " + db + " --dataset beta --json");
  EXPECT_EQ(nlohmann::json::parse(j.output)["experts"].size(), 1u);
}

}  // namespace
}  // namespace baton
