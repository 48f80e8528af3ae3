// End-to-end: `baton fit`, `route`, `predict`, `bench` and `universe` on small synthetic datasets that make the
// silent failure modes of issue 10 visible (experts without training data, unknown costs, test splits in the store).
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "test_util.h"

namespace baton {
namespace {

using testing::RunBaton;

// Writes a dataset folder `name` with `n` queries in two domains and the given experts. Expert i scores 1 on the
// queries whose index is divisible by (i + 2), so experts differ. With `priced`, models.csv has list prices and
// outcomes.csv has costs; without, neither (costs cannot be known).
std::string WriteDataset(const testing::TempDir& tmp, const std::string& name, const std::vector<std::string>& experts,
                         int n, bool priced = true, bool equal_prices = false) {
  std::string models = "model,params_b,usd_per_mtok_in,usd_per_mtok_out,price_source\n";
  std::string outcomes = "query_id,model,score,cost_usd,tokens_in,tokens_out\n";
  std::string queries;
  for (size_t i = 0; i < experts.size(); ++i) {
    const size_t p = equal_prices ? 1 : i + 1;
    models += experts[i] + ",," + (priced ? std::to_string(p) + "," + std::to_string(2 * p) : ",") + ",t\n";
  }
  for (int q = 0; q < n; ++q) {
    const std::string id = name + "." + std::to_string(q);
    queries += "{\"id\": \"" + id + "\", \"domain\": \"" + (q % 2 ? "math" : "law") + "\", \"text\": \"question " +
               std::to_string(q) + (q % 2 ? " about numbers" : " about courts") + "\"}\n";
    for (size_t i = 0; i < experts.size(); ++i) {
      const bool right = q % static_cast<int>(i + 2) == 0;
      outcomes += id + "," + experts[i] + "," + (right ? "1" : "0") + "," +
                  (priced ? std::to_string(0.001 * static_cast<double>(equal_prices ? 1 : i + 1)) : "") + ",10,5\n";
    }
  }
  tmp.Write(name + "/models.csv", models);
  tmp.Write(name + "/queries.jsonl", queries);
  tmp.Write(name + "/outcomes.csv", outcomes);
  return tmp.path() + "/" + name;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class RouteCliTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    tmp_ = new testing::TempDir();
    db_ = tmp_->path() + "/two.db";
    for (const auto& [name, experts] : std::vector<std::pair<std::string, std::vector<std::string>>>{
             {"alpha", {"a1", "a2", "a3"}}, {"beta", {"b1", "b2"}}}) {
      auto r = RunBaton("import " + WriteDataset(*tmp_, name, experts, 80) + " --db " + db_);
      ASSERT_EQ(r.exit_code, 0) << r.output;
    }
    model_ = tmp_->path() + "/alpha.baton";
    auto r = RunBaton("fit --db " + db_ + " --dataset alpha --out " + model_ + " --no-cv --no-holdout");
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }
  static void TearDownTestSuite() { delete tmp_; }
  static testing::TempDir* tmp_;
  static std::string db_, model_;
};
testing::TempDir* RouteCliTest::tmp_ = nullptr;
std::string RouteCliTest::db_, RouteCliTest::model_;

// Item 1: a model fitted on alpha must not route anything to beta's experts (it never saw an outcome of theirs).
TEST_F(RouteCliTest, ModelFittedOnOneDatasetNeverRoutesToAnothersExperts) {
  auto r = RunBaton("route --db " + db_ + " --model " + model_ + " --budget 100");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  for (const char* e : {"b1 ", "b2 "}) {
    const size_t at = r.output.find(std::string("\n") + e);
    EXPECT_EQ(at, std::string::npos) << "routed to " << e << ":\n" << r.output;
  }
}

// Item 1: routing a dataset whose experts the model does not know at all is an error naming both lists.
TEST_F(RouteCliTest, ModelWithNoExpertOfTheDatasetIsAnError) {
  auto r = RunBaton("route --db " + db_ + " --dataset beta --model " + model_ + " --budget 100");
  EXPECT_NE(r.exit_code, 0) << r.output;
  for (const char* e : {"a1", "a3", "b1", "b2"}) EXPECT_NE(r.output.find(e), std::string::npos) << e << r.output;
}

// Item 1: an expert named for training without any outcome is refused, or kept as a cold start with a warning; route
// then refuses it unless --cold-start, which warns and names its prior.
TEST_F(RouteCliTest, ExpertWithoutTrainingDataIsRefusedOrExplicitlyColdStarted) {
  const std::string cold = tmp_->path() + "/cold.baton";
  auto r = RunBaton("fit --db " + db_ + " --dataset alpha --experts a1,a2,b1 --out " + cold + " --no-cv --no-holdout");
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("b1"), std::string::npos) << r.output;
  r = RunBaton("fit --db " + db_ + " --dataset alpha --experts a1,a2,b1 --cold-start --out " + cold +
               " --no-cv --no-holdout");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("cold start"), std::string::npos) << r.output;

  r = RunBaton("route --db " + db_ + " --model " + cold + " --budget 100");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output.find("\nb1 "), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("--cold-start"), std::string::npos) << r.output;  // says why b1 is left out
  r = RunBaton("route --db " + db_ + " --model " + cold + " --budget 100 --cold-start");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("prior"), std::string::npos) << r.output;
}

// Item 3: fit without --dataset on a database holding several datasets is refused and lists them.
TEST_F(RouteCliTest, FitWithoutDatasetOnSeveralDatasetsIsRefused) {
  auto r = RunBaton("fit --db " + db_ + " --out " + tmp_->path() + "/all.baton --no-cv --no-holdout");
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("alpha"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("beta"), std::string::npos) << r.output;
  r = RunBaton("fit --db " + db_ + " --dataset all --out " + tmp_->path() + "/all.baton --no-cv --no-holdout");
  EXPECT_EQ(r.exit_code, 0) << r.output;
}

// Item 3: a dataset named like a test split is trained on only when asked explicitly, and the output says so.
TEST(FitCliTest, TrainingOnATestSplitIsNamed) {
  testing::TempDir tmp;
  const std::string db = tmp.path() + "/t.db";
  ASSERT_EQ(RunBaton("import " + WriteDataset(tmp, "x-test", {"e1", "e2"}, 60) + " --db " + db).exit_code, 0);
  auto r = RunBaton("fit --db " + db + " --out " + tmp.path() + "/m.baton --no-cv --no-holdout");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("test split"), std::string::npos) << r.output;
}

// Item 4: route --out writes one row per query with the choice, the predictions and the recorded outcome.
TEST_F(RouteCliTest, RouteWritesPerQueryDecisions) {
  for (const std::string ext : {"csv", "jsonl"}) {
    const std::string out = tmp_->path() + "/decisions." + ext;
    auto r = RunBaton("route --db " + db_ + " --dataset alpha --model " + model_ + " --budget 100 --out " + out);
    ASSERT_EQ(r.exit_code, 0) << r.output;
    const std::string text = ReadFile(out);
    size_t lines = 0;
    for (char c : text) lines += c == '\n';
    if (ext == "csv") {
      EXPECT_EQ(text.rfind("query_id,expert,predicted_score,predicted_cost_usd,realised_score,realised_cost_usd\n", 0),
                0u)
          << text.substr(0, 200);
      EXPECT_EQ(lines, 81u);
    } else {
      EXPECT_EQ(lines, 80u);
      const auto j = nlohmann::json::parse(text.substr(0, text.find('\n')));
      for (const char* k : {"query_id", "expert", "predicted_score", "predicted_cost_usd", "realised_score"})
        EXPECT_TRUE(j.contains(k)) << k;
      EXPECT_EQ(j["query_id"].get<std::string>().rfind("alpha.", 0), 0u);
    }
  }
}

// Item 4: a per-query cost cap keeps every chosen expert's predicted cost under it.
TEST_F(RouteCliTest, RouteRespectsPerQueryCostCap) {
  const std::string out = tmp_->path() + "/capped.jsonl";
  auto r = RunBaton("route --db " + db_ + " --dataset alpha --model " + model_ +
                    " --budget 100 --max-cost-per-query 0.00002 --out " + out);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::istringstream in(ReadFile(out));
  std::string line;
  size_t n = 0;
  while (std::getline(in, line)) {
    const auto j = nlohmann::json::parse(line);
    ++n;
    EXPECT_LE(j["predicted_cost_usd"].get<double>(), 0.00002) << line;
  }
  EXPECT_EQ(n, 80u);
}

// Item 4: predict prints each expert's predicted score and cost for a new prompt.
TEST_F(RouteCliTest, PredictNewPrompts) {
  auto r = RunBaton("predict --model " + model_ + " --prompt 'question 7 about numbers'");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  for (const char* e : {"a1", "a2", "a3"}) EXPECT_NE(r.output.find(e), std::string::npos) << r.output;
  const std::string queries =
      tmp_->Write("new.jsonl", "{\"id\": \"n1\", \"text\": \"question 9\"}\n{\"id\": \"n2\", \"text\": \"court\"}\n");
  const std::string out = tmp_->path() + "/pred.csv";
  r = RunBaton("predict --model " + model_ + " --queries " + queries + " --out " + out);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::string text = ReadFile(out);
  EXPECT_EQ(text.rfind("query_id,expert,predicted_score,predicted_cost_usd\n", 0), 0u) << text;
  size_t lines = 0;
  for (char c : text) lines += c == '\n';
  EXPECT_EQ(lines, 1u + 2 * 3);
}

// Item 5: bench reads a database; without --dataset on a database of several it lists them.
TEST_F(RouteCliTest, BenchReadsADatabase) {
  auto r = RunBaton("bench --db " + db_);
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("alpha"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("--dataset"), std::string::npos) << r.output;
  const std::string json = tmp_->path() + "/bench.json";
  r = RunBaton("bench --db " + db_ +
               " --dataset alpha --routers domain-prior,knn --no-inner-cv --lambdas 3 "
               "--breakpoint-lambdas 0 --json " +
               json);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto j = nlohmann::json::parse(ReadFile(json));
  EXPECT_EQ(j["experts"].size(), 3u);  // alpha's experts only, not beta's
  // Item 4: per-query choices at the operating point, aligned with test_query_ids.
  ASSERT_TRUE(j["test_query_ids"].is_array());
  EXPECT_EQ(j["test_query_ids"].size(), j["test_queries"].get<size_t>());
  for (const auto& x : j["routers"]) {
    ASSERT_TRUE(x.contains("choices")) << x["name"];
    const auto& idx = x["choices"]["expert_index"];
    ASSERT_EQ(idx.size(), j["test_query_ids"].size());
    for (const auto& e : idx) EXPECT_LT(e.get<int>(), 3);
  }
  r = RunBaton("bench --db " + db_ + " --dataset alpha --test-dataset beta --routers domain-prior --lambdas 3");
  EXPECT_NE(r.exit_code, 0) << r.output;  // no expert in common
}

// Item 5: bench reads a wide CSV as import-wide does (in memory: nothing is written), and says what --wide needs.
TEST_F(RouteCliTest, BenchReadsAWideCsv) {
  const std::string csv = tmp_->path() + "/alpha.csv";
  ASSERT_EQ(RunBaton("export-wide --db " + db_ + " --dataset alpha --out " + csv).exit_code, 0);
  auto r = RunBaton("bench --wide " + csv);
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("--query-col and --text-col"), std::string::npos) << r.output;
  const std::string json = tmp_->path() + "/wide.json";
  r = RunBaton("bench --wide " + csv +
               " --query-col query_id --text-col text --domain-col domain --routers domain-prior --no-inner-cv "
               "--lambdas 3 --breakpoint-lambdas 0 --bootstrap 0 --json " +
               json);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto j = nlohmann::json::parse(ReadFile(json));
  EXPECT_EQ(j["experts"].size(), 3u);
  EXPECT_GT(j["test_queries"].get<size_t>(), 0u);
}

// Item 9: fit --help lists the predictors (the README says so).
TEST(FitCliTest, HelpListsThePredictors) {
  auto r = RunBaton("fit --help");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  for (const char* p : {"factorized", "knn", "routellm-mf", "routerbench-mlp"}) {
    EXPECT_NE(r.output.find(p), std::string::npos) << p;
  }
}

// Item 9: with equal prices the report warns and labels no price tiers; it records its command, seed, version, date.
TEST(BenchReportCliTest, EqualPricesAreWarnedAndNotTiered) {
  testing::TempDir tmp;
  const std::string dir = WriteDataset(tmp, "same", {"e1", "e2", "e3", "e4"}, 80, true, true);
  const std::string report = tmp.path() + "/rep", json = tmp.path() + "/b.json";
  auto r = RunBaton("bench " + dir +
                    " --routers domain-prior --no-inner-cv --lambdas 3 --breakpoint-lambdas 0 "
                    "--seed 7 --report " +
                    report + " --json " + json);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("equal"), std::string::npos) << r.output;
  const std::string html = ReadFile(report + "/index.html");
  EXPECT_EQ(html.find("cheap experts"), std::string::npos);
  EXPECT_NE(html.find("prices are equal"), std::string::npos);
  EXPECT_NE(html.find("bench " + dir), std::string::npos);  // the command line
  EXPECT_NE(html.find("seed 7"), std::string::npos);
  EXPECT_NE(html.find("baton 0."), std::string::npos);  // the version
  const auto j = nlohmann::json::parse(ReadFile(json));
  EXPECT_TRUE(j.contains("price_warning"));
  EXPECT_FALSE(j.contains("price_tiers"));
}

// Item 2: when costs cannot be known (no prices, no recorded cost), the cost-dependent commands fail and say why;
// route runs score-only when asked.
TEST(NoCostCliTest, CostDependentCommandsFailClearly) {
  testing::TempDir tmp;
  const std::string db = tmp.path() + "/t.db", dir = WriteDataset(tmp, "free", {"e1", "e2", "e3"}, 80, false);
  ASSERT_EQ(RunBaton("import " + dir + " --db " + db).exit_code, 0);
  const std::string model = tmp.path() + "/m.baton";
  auto r = RunBaton("fit --db " + db + " --out " + model + " --no-cv --no-holdout");
  ASSERT_EQ(r.exit_code, 0) << r.output;

  r = RunBaton("route --db " + db + " --model " + model + " --budget 1");
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("cost"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("--score-only"), std::string::npos) << r.output;
  r = RunBaton("route --db " + db + " --model " + model + " --score-only");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output.find("nan"), std::string::npos) << r.output;

  r = RunBaton("universe --db " + db + " --k 2 --max-cost 0.01");
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("cost"), std::string::npos) << r.output;

  r = RunBaton("bench " + dir + " --routers domain-prior --lambdas 3 --breakpoint-lambdas 0");
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("cost"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("nan"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace baton
