// Issue 10 (items 2, 6, 7): what a data scientist's own files run into. A misspelt column is an error naming the
// file, the column and the valid ones; pandas' index column is skipped; NaN and blank cells get messages about what a
// blank means; a ';'-separated file gets a hint; a dataset can be replaced all or nothing.
#include <gtest/gtest.h>

#include "baton/importer.h"
#include "test_util.h"

namespace baton {
namespace {

using testing::DumpDatabase;
using testing::TempDir;

constexpr const char* kQueries = "{\"id\": \"q1\", \"text\": \"a\"}\n{\"id\": \"q2\", \"text\": \"b\"}\n";
constexpr const char* kModels = "model,usd_per_mtok_in,usd_per_mtok_out\nm1,1,2\nm2,3,4\n";
constexpr const char* kOutcomes = "query_id,model,score,cost_usd\nq1,m1,1,0.1\nq2,m1,0,0.1\nq1,m2,1,0.2\n";

struct Folder {
  TempDir tmp;
  std::string dir = tmp.path() + "/ds";
  Folder(const std::string& models, const std::string& outcomes, const std::string& queries = kQueries) {
    tmp.Write("ds/models.csv", models);
    tmp.Write("ds/queries.jsonl", queries);
    tmp.Write("ds/outcomes.csv", outcomes);
  }
};

StatusOr<ImportSummary> ImportFolder(const Folder& f) {
  auto store = Store::Open(":memory:");
  if (!store.ok()) return store.status();
  return ImportDir(**store, f.dir);
}

void ExpectMessage(const Status& s, const std::vector<std::string>& parts) {
  ASSERT_FALSE(s.ok());
  for (const std::string& p : parts) EXPECT_NE(s.message().find(p), std::string::npos) << p << "\n" << s.message();
}

TEST(ImportIssue10Test, MisspeltPriceColumnsAreReported) {
  Folder f("model,usd_per_mtok_inn,usd_per_mtoken_out\nm1,1,2\nm2,3,4\n", kOutcomes);
  auto s = ImportFolder(f);
  ExpectMessage(s.status(), {"models.csv:1", "unknown columns", "'usd_per_mtok_inn' (did you mean 'usd_per_mtok_in'?)",
                             "'usd_per_mtoken_out'", "valid columns are: model, params_b, usd_per_mtok_in"});
}

TEST(ImportIssue10Test, MisspeltOutcomeColumnIsReported) {
  Folder f(kModels, "query_id,model,score,cost\nq1,m1,1,0.1\n");
  ExpectMessage(ImportFolder(f).status(), {"outcomes.csv:1", "unknown column 'cost'", "cost_usd"});
}

TEST(ImportIssue10Test, BlankOrNanScoreInOutcomesSaysWhatBlankMeans) {
  Folder blank(kModels, "query_id,model,score\nq1,m1,\n");
  ExpectMessage(ImportFolder(blank).status(), {"outcomes.csv:2", "score is blank", "leave out the row"});
  Folder nan(kModels, "query_id,model,score\nq1,m1,NaN\n");
  ExpectMessage(ImportFolder(nan).status(), {"outcomes.csv:2", "'NaN'", "not observed"});
}

TEST(ImportIssue10Test, SemicolonSeparatedFileGetsAHint) {
  Folder f("model;usd_per_mtok_in\nm1;1\n", kOutcomes);
  ExpectMessage(ImportFolder(f).status(), {"models.csv:1", "';'-separated", "comma-separated"});

  TempDir tmp;
  const std::string csv = tmp.Write("w.csv", "id;prompt;m1\nq1;a;1\n");
  auto store = Store::Open(":memory:");
  ASSERT_TRUE(store.ok());
  ExpectMessage(ImportWide(**store, csv, {.query_col = "id", .text_col = "prompt"}).status(),
                {"w.csv:1", "';'-separated"});
}

// pandas' df.to_csv() without index=False.
TEST(ImportIssue10Test, WideSkipsThePandasIndexColumn) {
  TempDir tmp;
  const std::string csv = tmp.Write("w.csv", ",id,prompt,m1,m2\n0,q1,a,1,0\n1,q2,b,,1\n");
  auto store = Store::Open(":memory:");
  ASSERT_TRUE(store.ok());
  auto s = ImportWide(**store, csv, {.query_col = "id", .text_col = "prompt"});
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->experts, 2u);
  EXPECT_EQ(s->outcomes, 3u);
  ASSERT_EQ(s->notes.size(), 1u);
  EXPECT_NE(s->notes[0].find("index=False"), std::string::npos) << s->notes[0];
}

TEST(ImportIssue10Test, WideRefusesUnnamedColumnsThatAreNoIndex) {
  TempDir tmp;
  auto store = Store::Open(":memory:");
  ASSERT_TRUE(store.ok());
  const std::string not_index = tmp.Write("a.csv", ",id,prompt,m1\n7,q1,a,1\n");
  ExpectMessage(ImportWide(**store, not_index, {.query_col = "id", .text_col = "prompt"}).status(),
                {"a.csv:2", "unnamed first column holds '7'", "index=False", "--ignore-col"});
  const std::string middle = tmp.Write("b.csv", "id,,prompt,m1\nq1,x,a,1\n");
  ExpectMessage(ImportWide(**store, middle, {.query_col = "id", .text_col = "prompt"}).status(),
                {"b.csv:1", "column 2 has no name"});
}

TEST(ImportIssue10Test, WideNanScoreIsNotAnIgnoreColProblem) {
  TempDir tmp;
  const std::string csv = tmp.Write("w.csv", "id,prompt,m1\nq1,a,NaN\n");
  auto store = Store::Open(":memory:");
  ASSERT_TRUE(store.ok());
  auto s = ImportWide(**store, csv, {.query_col = "id", .text_col = "prompt"});
  ExpectMessage(s.status(), {"w.csv:2", "'NaN'", "column 'm1'", "blank cell means 'not observed'"});
  EXPECT_EQ(s.status().message().find("--ignore-col"), std::string::npos) << s.status().message();
}

TEST(ImportIssue10Test, ReplaceReimportsAllOrNothing) {
  Folder f(kModels, kOutcomes);
  const std::string db = f.tmp.path() + "/x.db";
  auto store = Store::Open(db);
  ASSERT_TRUE(store.ok());
  ASSERT_TRUE(ImportDir(**store, f.dir).ok());
  // Without replace: refused, with the way out named.
  ExpectMessage(ImportDir(**store, f.dir).status(), {"already in the database", "--replace"});
  // A replace that fails half-way leaves the old copy.
  const std::string before = DumpDatabase(db);
  f.tmp.Write("ds/outcomes.csv", "query_id,model,score\nq1,m1,1\nq2,m1,2\n");
  EXPECT_FALSE(ImportDir(**store, f.dir, {.replace = true}).ok());
  EXPECT_EQ(DumpDatabase(db), before);
  // A good replace swaps the data.
  f.tmp.Write("ds/outcomes.csv", "query_id,model,score\nq1,m1,0\n");
  auto s = ImportDir(**store, f.dir, {.replace = true});
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->replaced_queries, 2u);
  EXPECT_EQ((*store)->CountRows("queries").value_or(-1), 2);
  EXPECT_EQ((*store)->CountRows("outcomes").value_or(-1), 1);
}

}  // namespace
}  // namespace baton
