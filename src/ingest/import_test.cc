// Importer tests: the good path on a small fixture and on bundled data, and every kind of bad input the foundation
// issue lists. Each bad input must fail with file, line and reason, and leave the database exactly as it was.
#include "baton/importer.h"

#include <gtest/gtest.h>

#include "baton/dataset.h"
#include "test_util.h"

namespace baton {
namespace {

using testing::DumpDatabase;
using testing::TempDir;

const char* kModels =
    "model,params_b,usd_per_mtok_in,usd_per_mtok_out,price_source\n"
    "small,7,0.2,0.2,list\n"
    "\"big, quoted\",70,1.0,2.0,\"list, \"\"2025\"\"\"\n";
const char* kQueries =
    "{\"id\": \"q1\", \"domain\": \"math\", \"text\": \"1+1?\", \"reference\": \"2\", \"source\": \"t\"}\n"
    "{\"id\": \"q2\", \"domain\": \"law\", \"text\": \"Z\\u00fcrich, \\\"quoted\\\"\\nline\", \"reference\": \"\"}\n"
    "\n"
    "{\"id\": \"q3\", \"domain\": \"math\", \"text\": \"2+2?\"}\n";
const char* kOutcomes =
    "query_id,model,score,cost_usd,tokens_in,tokens_out\n"
    "q1,small,1,0.0001,10,2\n"
    "q1,\"big, quoted\",1,0.002,10,2\n"
    "q2,small,0,,,\n"
    "q2,\"big, quoted\",0.5,0.003,12,3\n"
    "q3,small,0.0,0.0001,10,1\n";

struct Fixture {
  TempDir tmp;
  std::string db = tmp.path() + "/baton.db";
  std::string dir = tmp.path() + "/ds";

  explicit Fixture(const std::string& models = kModels, const std::string& queries = kQueries,
                   const std::string& outcomes = kOutcomes) {
    tmp.Write("ds/models.csv", models);
    tmp.Write("ds/queries.jsonl", queries);
    tmp.Write("ds/outcomes.csv", outcomes);
  }
};

TEST(ImportDirTest, ImportsTheFixture) {
  Fixture f;
  auto store = Store::Open(f.db);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  auto s = ImportDir(**store, f.dir);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->dataset, "ds");
  EXPECT_EQ(s->experts, 2u);
  EXPECT_EQ(s->queries, 3u);
  EXPECT_EQ(s->outcomes, 5u);

  auto ds = LoadDataset(**store);
  ASSERT_TRUE(ds.ok()) << ds.status().ToString();
  ASSERT_EQ(ds->num_queries(), 3u);
  ASSERT_EQ(ds->num_experts(), 2u);
  EXPECT_EQ(ds->expert(1).name, "big, quoted");
  EXPECT_EQ(ds->expert(1).price_source, "list, \"2025\"");
  EXPECT_EQ(*ds->expert(1).usd_per_mtok_out, 2.0);
  EXPECT_EQ(ds->query(1).text, "Z\xC3\xBCrich, \"quoted\"\nline");
  EXPECT_FLOAT_EQ(ds->score(1, 1), 0.5f);
  EXPECT_TRUE(std::isnan(ds->cost(1, 0)));  // blank cost = unknown
  EXPECT_FALSE(ds->observed(2, 1));         // no row = not observed
  EXPECT_EQ(ds->domains().size(), 2u);
}

// Imports the good fixture, then `bad` as a second dataset folder, and checks the failure and that nothing changed.
void ExpectRejected(const std::string& file, const std::string& content, const std::string& expect_in_message,
                    const std::string& expect_where) {
  Fixture f;
  auto store = Store::Open(f.db);
  ASSERT_TRUE(store.ok());
  ASSERT_TRUE(ImportDir(**store, f.dir).ok());
  const std::string before = DumpDatabase(f.db);

  // A second dataset whose queries do not clash with the first, with one file replaced by the bad content.
  std::string queries = "{\"id\": \"b1\", \"text\": \"x\"}\n{\"id\": \"b2\", \"text\": \"y\"}\n";
  std::string outcomes = "query_id,model,score,cost_usd,tokens_in,tokens_out\nb1,small,1,0.1,1,1\nb2,small,0,0.1,1,1\n";
  std::string models = "model,params_b,usd_per_mtok_in,usd_per_mtok_out,price_source\nsmall,7,0.2,0.2,list\n";
  if (file == "queries.jsonl") queries = content;
  if (file == "outcomes.csv") outcomes = content;
  if (file == "models.csv") models = content;
  f.tmp.Write("bad/models.csv", models);
  f.tmp.Write("bad/queries.jsonl", queries);
  f.tmp.Write("bad/outcomes.csv", outcomes);

  // Imported under the first dataset's name, so clashes with what is already stored are detected too.
  auto s = ImportDir(**store, f.tmp.path() + "/bad", {.dataset = "ds"});
  ASSERT_FALSE(s.ok()) << "accepted bad " << file;
  EXPECT_NE(s.status().message().find(expect_in_message), std::string::npos) << s.status().message();
  EXPECT_NE(s.status().message().find(expect_where), std::string::npos) << s.status().message();
  store->reset();
  EXPECT_EQ(DumpDatabase(f.db), before) << "database changed by a failed import";
}

const char* kHeader = "query_id,model,score,cost_usd,tokens_in,tokens_out\n";

TEST(ImportDirTest, RejectsMalformedJsonLine) {
  ExpectRejected("queries.jsonl", "{\"id\": \"b1\", \"text\": \"x\"}\n{\"id\": \"b2\", \"text\n", "not a valid JSON",
                 "queries.jsonl:2");
}

TEST(ImportDirTest, RejectsMalformedCsvRow) {
  ExpectRejected("outcomes.csv", std::string(kHeader) + "b1,small,1,0.1,1,1\nb2,small\n", "expected 6 fields",
                 "outcomes.csv:3");
}

TEST(ImportDirTest, RejectsScoreOutsideUnitInterval) {
  ExpectRejected("outcomes.csv", std::string(kHeader) + "b1,small,1.5,0.1,1,1\n", "score 1.5 is outside [0, 1]",
                 "outcomes.csv:2");
  ExpectRejected("outcomes.csv", std::string(kHeader) + "b1,small,-0.1,0.1,1,1\n", "outside [0, 1]", "outcomes.csv:2");
  ExpectRejected("outcomes.csv", std::string(kHeader) + "b1,small,high,0.1,1,1\n", "is not a number", "outcomes.csv:2");
}

TEST(ImportDirTest, RejectsNegativeCost) {
  ExpectRejected("outcomes.csv", std::string(kHeader) + "b1,small,1,-0.01,1,1\n", "cost_usd -0.01 is negative",
                 "outcomes.csv:2");
  ExpectRejected("models.csv", "model,usd_per_mtok_in\nsmall,-1\n", "usd_per_mtok_in -1 is negative", "models.csv:2");
}

TEST(ImportDirTest, RejectsOutcomeForUnknownQuery) {
  ExpectRejected("outcomes.csv", std::string(kHeader) + "b1,small,1,0.1,1,1\nnope,small,1,0.1,1,1\n",
                 "query 'nope' does not exist", "outcomes.csv:3");
}

TEST(ImportDirTest, RejectsOutcomeForUnknownModel) {
  ExpectRejected("outcomes.csv", std::string(kHeader) + "b1,ghost,1,0.1,1,1\n", "model 'ghost' is not listed",
                 "outcomes.csv:2");
}

TEST(ImportDirTest, RejectsDuplicatePair) {
  ExpectRejected("outcomes.csv", std::string(kHeader) + "b1,small,1,0.1,1,1\nb2,small,1,0.1,1,1\nb1,small,0,0.1,1,1\n",
                 "duplicate outcome for this (query, model) pair (first on line 2)", "outcomes.csv:4");
}

TEST(ImportDirTest, RejectsPairAlreadyInDatabase) {
  ExpectRejected("outcomes.csv", std::string(kHeader) + "q1,small,1,0.1,1,1\n", "already in the database",
                 "outcomes.csv:2");
}

TEST(ImportDirTest, RejectsDuplicateQueryId) {
  ExpectRejected("queries.jsonl", "{\"id\": \"b1\", \"text\": \"x\"}\n{\"id\": \"b1\", \"text\": \"y\"}\n",
                 "query id 'b1' appears twice (first on line 1)", "queries.jsonl:2");
  ExpectRejected("queries.jsonl", "{\"id\": \"q1\", \"text\": \"x\"}\n", "already in the database", "queries.jsonl:1");
}

TEST(ImportDirTest, RejectsMissingColumn) {
  ExpectRejected("outcomes.csv", "query_id,model,cost_usd\nb1,small,0.1\n", "missing column 'score'", "outcomes.csv:1");
  ExpectRejected("queries.jsonl", "{\"id\": \"b1\"}\n", "missing field \"text\"", "queries.jsonl:1");
}

TEST(ImportDirTest, RejectsTruncatedFile) {
  // Cut in the middle of a row, and in the middle of a quoted field.
  ExpectRejected("outcomes.csv", std::string(kHeader) + "b1,small,1,0.1,1,1\nb2,sm", "truncated row", "outcomes.csv:3");
  ExpectRejected("outcomes.csv", std::string(kHeader) + "b1,small,1,0.1,1,1\nb2,\"sma", "never closed",
                 "outcomes.csv:3");
  ExpectRejected("queries.jsonl", "{\"id\": \"b1\", \"text\": \"x\"}\n{\"id\": \"b2\", \"te", "truncated",
                 "queries.jsonl:2");
}

TEST(ImportDirTest, RejectsNonUtf8Bytes) {
  ExpectRejected("queries.jsonl", "{\"id\": \"b1\", \"text\": \"caf\xE9\"}\n", "invalid UTF-8 byte 0xE9",
                 "queries.jsonl:1");
  ExpectRejected("outcomes.csv",
                 std::string(kHeader) +
                     "b1,sm\xC3"
                     "all,1,0.1,1,1\n",
                 "invalid UTF-8", "outcomes.csv:2");
}

TEST(ImportDirTest, RejectsMissingFolderAndFiles) {
  TempDir tmp;
  auto store = Store::Open(tmp.path() + "/x.db");
  ASSERT_TRUE(store.ok());
  auto s = ImportDir(**store, tmp.path() + "/nope");
  EXPECT_EQ(s.status().code(), StatusCode::kNotFound);
  tmp.Write("half/models.csv", kModels);
  s = ImportDir(**store, tmp.path() + "/half");
  EXPECT_EQ(s.status().code(), StatusCode::kNotFound);
  EXPECT_NE(s.status().message().find("queries.jsonl"), std::string::npos);
}

TEST(ImportWideTest, ReadsRouterBenchLayout) {
  TempDir tmp;
  const std::string csv = tmp.Write(
      "wide.csv",
      "sample_id,prompt,eval_name,gpt-4,mistral,oracle,gpt-4|total_cost,mistral|total_cost,gpt-4|model_response\n"
      "s1,\"What, exactly?\",arc,1.0,0.0,gpt-4,0.01,0.001,\"It is \"\"this\"\"\"\n"
      "s2,\"multi\nline\",mbpp,1,,gpt-4,0.02,,ok\n");
  auto store = Store::Open(tmp.path() + "/w.db");
  ASSERT_TRUE(store.ok());
  WideImportOptions o{
      .query_col = "sample_id", .text_col = "prompt", .domain_col = "eval_name", .ignore_cols = {"oracle"}};
  auto s = ImportWide(**store, csv, o);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->queries, 2u);
  EXPECT_EQ(s->outcomes, 3u);  // the blank mistral cell is not observed
  EXPECT_EQ(s->responses, 2u);
  auto ds = LoadDataset(**store);
  ASSERT_TRUE(ds.ok());
  EXPECT_EQ(ds->query(1).text, "multi\nline");
  EXPECT_FLOAT_EQ(ds->cost(0, 0), 0.01f);
  EXPECT_FALSE(ds->observed(1, 1));
  auto resp = (*store)->GetResponse(ds->query(0).id, ds->expert(0).id);
  ASSERT_TRUE(resp.ok());
  EXPECT_EQ(*resp, "It is \"this\"");
}

TEST(ImportWideTest, NonScoreColumnNeedsIgnoreAndNothingIsWritten) {
  TempDir tmp;
  const std::string csv = tmp.Write("wide.csv", "id,prompt,gpt-4,oracle\ns1,hi,1,gpt-4\n");
  const std::string db = tmp.path() + "/w.db";
  auto store = Store::Open(db);
  ASSERT_TRUE(store.ok());
  const std::string before = DumpDatabase(db);
  auto s = ImportWide(**store, csv, {.query_col = "id", .text_col = "prompt"});
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("wide.csv:2"), std::string::npos) << s.status().message();
  EXPECT_NE(s.status().message().find("column 'oracle'"), std::string::npos) << s.status().message();
  EXPECT_NE(s.status().message().find("--ignore-col"), std::string::npos) << s.status().message();
  EXPECT_EQ(DumpDatabase(db), before);
}

TEST(ImportWideTest, RejectsScoreOutOfRangeAndMissingColumns) {
  TempDir tmp;
  const std::string csv = tmp.Write("wide.csv", "id,prompt,a,b\ns1,hi,1,0\ns2,yo,2,1\n");
  auto store = Store::Open(tmp.path() + "/w.db");
  ASSERT_TRUE(store.ok());
  auto s = ImportWide(**store, csv, {.query_col = "id", .text_col = "prompt"});
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("wide.csv:3: score 2 is outside"), std::string::npos) << s.status().message();
  s = ImportWide(**store, csv, {.query_col = "qid", .text_col = "prompt"});
  EXPECT_NE(s.status().message().find("missing column 'qid'"), std::string::npos);
  EXPECT_EQ((*store)->CountRows("queries").value_or(-1), 0);
}

}  // namespace
}  // namespace baton
