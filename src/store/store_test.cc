#include "baton/store.h"

#include <fstream>

#include <gtest/gtest.h>

#include "test_util.h"

namespace baton {
namespace {

TEST(StoreTest, TransactionRollsBackUnlessCommitted) {
  auto store = Store::Open(":memory:");
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  {
    auto tx = (*store)->Begin();
    ASSERT_TRUE(tx.ok());
    ASSERT_TRUE((*store)->UpsertExpert({.name = "a"}).ok());
  }  // no commit
  EXPECT_EQ((*store)->CountRows("experts").value_or(-1), 0);
  {
    auto tx = (*store)->Begin();
    ASSERT_TRUE(tx.ok());
    ASSERT_TRUE((*store)->UpsertExpert({.name = "a"}).ok());
    ASSERT_TRUE(tx->Commit().ok());
  }
  EXPECT_EQ((*store)->CountRows("experts").value_or(-1), 1);
}

TEST(StoreTest, UpsertExpertFillsUnknownPricesOnly) {
  auto store = Store::Open(":memory:");
  ASSERT_TRUE(store.ok());
  auto id = (*store)->UpsertExpert({.name = "m", .usd_per_mtok_in = 1.0});
  ASSERT_TRUE(id.ok());
  auto again = (*store)->UpsertExpert({.name = "m", .usd_per_mtok_in = 5.0, .usd_per_mtok_out = 2.0});
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*id, *again);
  auto experts = (*store)->ListExperts();
  ASSERT_TRUE(experts.ok());
  ASSERT_EQ(experts->size(), 1u);
  EXPECT_EQ(*(*experts)[0].usd_per_mtok_in, 1.0);
  EXPECT_EQ(*(*experts)[0].usd_per_mtok_out, 2.0);
}

TEST(StoreTest, ConstraintsHoldInTheDatabaseItself) {
  auto store = Store::Open(":memory:");
  ASSERT_TRUE(store.ok());
  Store& s = **store;
  auto e = s.UpsertExpert({.name = "m"});
  auto q = s.InsertQuery({.external_id = "q", .text = "t"});
  ASSERT_TRUE(e.ok() && q.ok());
  EXPECT_EQ(s.InsertQuery({.external_id = "q", .text = "t"}).status().code(), StatusCode::kAlreadyExists);
  OutcomeRecord o{.query_id = *q, .expert_id = *e, .score = 1.5};
  EXPECT_FALSE(s.InsertOutcome(o).ok());  // CHECK (score <= 1)
  o.score = 1;
  EXPECT_TRUE(s.InsertOutcome(o).ok());
  EXPECT_EQ(s.InsertOutcome(o).code(), StatusCode::kAlreadyExists);  // one imported outcome per pair
  o.source = OutcomeSource::kLive;
  EXPECT_TRUE(s.InsertOutcome(o).ok());  // live observations may repeat
  EXPECT_TRUE(s.InsertOutcome(o).ok());
  EXPECT_EQ(s.CountRows("outcomes").value_or(-1), 3);
}

TEST(StoreTest, RequestLogAndResponses) {
  auto store = Store::Open(":memory:");
  ASSERT_TRUE(store.ok());
  Store& s = **store;
  ASSERT_TRUE(s.LogRequest({.client_key_hash = "h", .expert = "m", .http_status = 200, .cost_usd = 0.1}).ok());
  EXPECT_EQ(s.CountRows("requests").value_or(-1), 1);
  auto e = s.UpsertExpert({.name = "m"});
  auto q = s.InsertQuery({.external_id = "q", .text = "t"});
  ASSERT_TRUE(s.PutResponse(*q, *e, "answer").ok());
  EXPECT_EQ(*s.GetResponse(*q, *e), "answer");
  EXPECT_EQ(s.GetResponse(*q, *e + 1).status().code(), StatusCode::kNotFound);
}

TEST(StoreTest, ArchonCallsRoundTripByRun) {
  auto store = Store::Open(":memory:");
  ASSERT_TRUE(store.ok());
  ArchonCallRecord a{.time_unix_ms = 5,
                     .run_id = "r1",
                     .architecture = "moa",
                     .layer = 1,
                     .component_index = 2,
                     .component = "verifier:verdict",
                     .expert = "gpt",
                     .prompt_tokens = 10,
                     .completion_tokens = 3,
                     .cost_usd = 0.25,
                     .latency_ms = 12.5,
                     .status = "ok",
                     .parse = "failed: no verdict word"};
  ArchonCallRecord b = a;
  b.run_id = "r2";
  b.status = "UNAVAILABLE: down";
  ASSERT_TRUE((*store)->LogArchonCall(a).ok());
  ASSERT_TRUE((*store)->LogArchonCall(b).ok());
  auto r1 = (*store)->ListArchonCalls("r1");
  ASSERT_TRUE(r1.ok());
  ASSERT_EQ(r1->size(), 1u);
  const ArchonCallRecord& got = (*r1)[0];
  EXPECT_EQ(got.time_unix_ms, 5);
  EXPECT_EQ(got.architecture, "moa");
  EXPECT_EQ(got.layer, 1);
  EXPECT_EQ(got.component_index, 2);
  EXPECT_EQ(got.component, "verifier:verdict");
  EXPECT_EQ(got.expert, "gpt");
  EXPECT_EQ(got.prompt_tokens, 10);
  EXPECT_EQ(got.completion_tokens, 3);
  EXPECT_DOUBLE_EQ(got.cost_usd, 0.25);
  EXPECT_DOUBLE_EQ(got.latency_ms, 12.5);
  EXPECT_EQ(got.parse, "failed: no verdict word");
  auto all = (*store)->ListArchonCalls();
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[1].status, "UNAVAILABLE: down");
}

TEST(StoreTest, RefusesNonDatabaseAndNewerSchema) {
  testing::TempDir tmp;
  const std::string junk = tmp.Write("junk.db", std::string(4096, 'x'));
  auto s = Store::Open(junk);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kDataLoss);

  const std::string newer = tmp.path() + "/newer.db";
  { ASSERT_TRUE(Store::Open(newer).ok()); }
  ASSERT_EQ(std::system(("sqlite3 " + newer + " 'PRAGMA user_version=99'").c_str()), 0);
  s = Store::Open(newer);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(s.status().message().find("newer baton"), std::string::npos);
}

// Issue 10, item 11: a database error is an error, not "not found" (which made UpsertExpert insert) nor a -1 count.
TEST(StoreTest, LookupsReportDatabaseErrors) {
  testing::TempDir tmp;
  const std::string db = tmp.path() + "/broken.db";
  auto store = Store::Open(db);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  Store& s = **store;
  auto found = s.FindExpert("absent");
  ASSERT_TRUE(found.ok()) << found.status().ToString();
  EXPECT_FALSE(found->has_value());  // absent is not an error
  ASSERT_EQ(std::system(("sqlite3 " + db +
                         " 'DROP TABLE outcomes; DROP TABLE responses; DROP TABLE experts; "
                         "DROP TABLE queries'")
                            .c_str()),
            0);
  EXPECT_FALSE(s.FindExpert("m").ok());
  EXPECT_FALSE(s.FindQuery("d", "q").ok());
  EXPECT_FALSE(s.UpsertExpert({.name = "m"}).ok());
  auto n = s.CountRows("experts");
  ASSERT_FALSE(n.ok());
  EXPECT_NE(n.status().message().find("no such table"), std::string::npos) << n.status().ToString();
  EXPECT_FALSE(s.CountRows("no_such_table").ok());
}

TEST(StoreTest, UsesWal) {
  testing::TempDir tmp;
  const std::string db = tmp.path() + "/w.db";
  { ASSERT_TRUE(Store::Open(db).ok()); }
  FILE* p = popen(("sqlite3 " + db + " 'PRAGMA journal_mode'").c_str(), "r");
  char buf[32] = {};
  ASSERT_NE(fgets(buf, sizeof buf, p), nullptr);
  pclose(p);
  EXPECT_STREQ(buf, "wal\n");
}

}  // namespace
}  // namespace baton
