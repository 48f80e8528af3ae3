// The store's tests, run on both engines: every TEST_P once on SQLite and once on PostgreSQL.
//
// PostgreSQL: under ctest the PgServer fixture starts a throw-away server (scripts/pg_server.sh) and the tests read
// its URL from BATON_TEST_PG_URL_FILE; each test makes a database of its own on it (dropped at the end), so they run
// in parallel. Run by hand with BATON_TEST_PG_URL=postgresql://... (a superuser, e.g. the URL that
// `scripts/pg_server.sh start build/pg` prints); without it the PostgreSQL cases are skipped, saying so.
#include "baton/store.h"

#include <libpq-fe.h>
#include <sqlite3.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "store/backend.h"
#include "store/schema.h"
#include "test_util.h"

namespace baton {
namespace {

enum class Engine { kSqlite, kPostgres };

void PrintTo(Engine e, std::ostream* os) { *os << (e == Engine::kSqlite ? "sqlite" : "postgresql"); }

std::string EngineName(const ::testing::TestParamInfo<Engine>& info) {
  return info.param == Engine::kSqlite ? "sqlite" : "postgresql";
}

// The test server's URL: BATON_TEST_PG_URL, or the file ctest's fixture wrote. "" when neither is set (by hand);
// `error` is set when ctest named a file the fixture did not write (the server did not start: a failure).
std::string PgServerUrl(std::string* error) {
  if (const char* url = std::getenv("BATON_TEST_PG_URL"); url && *url) return url;
  const char* file = std::getenv("BATON_TEST_PG_URL_FILE");
  if (!file || !*file) return "";
  std::ifstream in(file);
  std::string url;
  if (!(in >> url) || !store::IsPostgresUrl(url)) {
    *error = fmt::format("no PostgreSQL test server: {} is missing (the PgServerStart fixture failed; see its output)",
                         file);
  }
  return url;
}

// `url` with its database name replaced.
std::string WithDatabase(const std::string& url, const std::string& db) {
  const size_t q = url.find('?');
  const size_t slash = url.rfind('/', q);
  return url.substr(0, slash + 1) + db + (q == std::string::npos ? "" : url.substr(q));
}

// Runs SQL on PostgreSQL outside any Store (setup and sabotage). Returns libpq's error, "" on success.
std::string PgExec(const std::string& url, const std::string& sql) {
  PGconn* c = PQconnectdb(url.c_str());
  std::string err;
  if (PQstatus(c) != CONNECTION_OK) {
    err = PQerrorMessage(c);
  } else {
    PGresult* r = PQexec(c, sql.c_str());
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK) err = PQerrorMessage(c);
    PQclear(r);
  }
  PQfinish(c);
  return err;
}

std::string SqliteExec(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  std::string err;
  if (sqlite3_open(path.c_str(), &db) != SQLITE_OK) err = "cannot open";
  char* msg = nullptr;
  if (err.empty() && sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &msg) != SQLITE_OK) {
    err = msg ? msg : "error";
    sqlite3_free(msg);
  }
  sqlite3_close(db);
  return err;
}

// A fresh, empty database for one test: an SQLite file in a temporary folder, or a database of its own on the
// PostgreSQL test server (dropped at the end).
class StoreTest : public ::testing::TestWithParam<Engine> {
 protected:
  void SetUp() override {
    if (GetParam() == Engine::kSqlite) {
      url_ = tmp_.path() + "/test.db";
      return;
    }
    std::string error;
    server_ = PgServerUrl(&error);
    ASSERT_TRUE(error.empty()) << error;
    if (server_.empty()) {
      GTEST_SKIP() << "PostgreSQL case skipped: set BATON_TEST_PG_URL=postgresql://... (a superuser; "
                      "`scripts/pg_server.sh start build/pg` prints one) or run it through ctest, which starts a server";
    }
    static std::atomic<int> counter{0};
    db_name_ = fmt::format("baton_t_{}_{}", getpid(), counter++);
    ASSERT_EQ(PgExec(server_, "CREATE DATABASE " + db_name_), "");
    url_ = WithDatabase(server_, db_name_);
  }
  void TearDown() override {
    if (!db_name_.empty()) {
      EXPECT_EQ(PgExec(server_, "DROP DATABASE IF EXISTS " + db_name_ + " WITH (FORCE)"), "");
    }
  }

  bool pg() const { return GetParam() == Engine::kPostgres; }
  StatusOr<std::unique_ptr<Store>> Open(const StoreOptions& options = {}) { return Store::Open(url_, options); }
  // Runs SQL on the test's database behind the Store's back.
  std::string Exec(const std::string& sql) { return pg() ? PgExec(url_, sql) : SqliteExec(url_, sql); }
  // Sets the schema version stored in the database.
  std::string SetVersion(int v) {
    return pg() ? Exec(fmt::format("UPDATE baton_schema SET version = {}", v))
                : Exec(fmt::format("PRAGMA user_version={}", v));
  }

  testing::TempDir tmp_;
  std::string url_, server_, db_name_;
};

INSTANTIATE_TEST_SUITE_P(Engines, StoreTest, ::testing::Values(Engine::kSqlite, Engine::kPostgres), EngineName);

TEST_P(StoreTest, TransactionRollsBackUnlessCommitted) {
  auto store = Open();
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  {
    auto tx = (*store)->Begin();
    ASSERT_TRUE(tx.ok());
    ASSERT_TRUE((*store)->UpsertExpert({.name = "a"}).ok());
    EXPECT_EQ((*store)->Begin().status().code(), StatusCode::kFailedPrecondition);  // one at a time
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

TEST_P(StoreTest, UpsertExpertFillsUnknownPricesOnly) {
  auto store = Open();
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  auto id = (*store)->UpsertExpert({.name = "m", .usd_per_mtok_in = 1.0, .backend_json = R"({"kind":"x"})"});
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  auto again = (*store)->UpsertExpert({.name = "m", .usd_per_mtok_in = 5.0, .usd_per_mtok_out = 2.0});
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*id, *again);
  auto other = (*store)->UpsertExpert({.name = "n"});
  ASSERT_TRUE(other.ok());
  EXPECT_NE(*other, *id);
  auto experts = (*store)->ListExperts();
  ASSERT_TRUE(experts.ok());
  ASSERT_EQ(experts->size(), 2u);
  EXPECT_EQ(*(*experts)[0].usd_per_mtok_in, 1.0);
  EXPECT_EQ(*(*experts)[0].usd_per_mtok_out, 2.0);
  EXPECT_FALSE((*experts)[0].params_b.has_value());
  EXPECT_EQ((*experts)[0].backend_json, R"({"kind":"x"})");
  EXPECT_EQ((*store)->FindExpert("n").value_or(std::nullopt), std::optional<int64_t>(*other));
}

TEST_P(StoreTest, ConstraintsHoldInTheDatabaseItself) {
  auto store = Open();
  ASSERT_TRUE(store.ok()) << store.status().ToString();
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
  auto live = s.InsertOutcomeReturningId(o);  // live observations may repeat
  ASSERT_TRUE(live.ok());
  auto live2 = s.InsertOutcomeReturningId(o);
  ASSERT_TRUE(live2.ok());
  EXPECT_GT(*live2, *live);
  EXPECT_EQ(s.CountRows("outcomes").value_or(-1), 3);
}

TEST_P(StoreTest, RequestLogAndResponses) {
  auto store = Open();
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  Store& s = **store;
  ASSERT_TRUE(s.LogRequest({.client_key_hash = "h",
                            .expert = "m",
                            .http_status = 200,
                            .cost_usd = 0.1,
                            .prompt = "hi",
                            .request_id = "r1",
                            .note = "client_cancelled"})
                  .ok());
  EXPECT_EQ(s.CountRows("requests").value_or(-1), 1);
  auto found = s.FindRequest("r1");
  ASSERT_TRUE(found.ok() && found->has_value());
  EXPECT_EQ((*found)->http_status, 200);
  EXPECT_EQ((*found)->prompt, std::optional<std::string>("hi"));
  EXPECT_EQ((*found)->note, "client_cancelled");
  EXPECT_DOUBLE_EQ((*found)->cost_usd.value_or(0), 0.1);
  EXPECT_FALSE((*found)->tokens_in.has_value());
  EXPECT_FALSE(s.FindRequest("r2")->has_value());
  auto e = s.UpsertExpert({.name = "m"});
  auto q = s.InsertQuery({.external_id = "q", .text = "t"});
  ASSERT_TRUE(s.PutResponse(*q, *e, "answer").ok());
  ASSERT_TRUE(s.PutResponse(*q, *e, "better answer").ok());  // replaces
  EXPECT_EQ(*s.GetResponse(*q, *e), "better answer");
  EXPECT_EQ(s.GetResponse(*q, *e + 1).status().code(), StatusCode::kNotFound);
}

TEST_P(StoreTest, ArchonCallsRoundTripByRun) {
  auto store = Open();
  ASSERT_TRUE(store.ok()) << store.status().ToString();
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
  ASSERT_TRUE(r1.ok()) << r1.status().ToString();
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

TEST_P(StoreTest, DatasetsListDescribeAndDelete) {
  auto store = Open();
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  Store& s = **store;
  auto e = s.UpsertExpert({.name = "m"});
  ASSERT_TRUE(e.ok());
  for (const std::string ds : {"b", "a"}) {
    for (int i = 0; i < 3; ++i) {
      auto q = s.InsertQuery({.external_id = fmt::format("q{}", i), .dataset = ds, .text = "t"});
      ASSERT_TRUE(q.ok()) << q.status().ToString();
      ASSERT_TRUE(s.InsertOutcome({.query_id = *q, .expert_id = *e, .score = 0.5, .cost_usd = 0.001 * i}).ok());
      ASSERT_TRUE(s.PutResponse(*q, *e, "x").ok());
    }
  }
  EXPECT_EQ(s.ListDatasets().value_or({}), (std::vector<std::string>{"a", "b"}));
  auto described = s.DescribeDatasets();
  ASSERT_TRUE(described.ok());
  ASSERT_EQ(described->size(), 2u);
  EXPECT_EQ((*described)[0].name, "a");
  EXPECT_EQ((*described)[0].queries, 3);
  EXPECT_EQ((*described)[0].outcomes, 3);
  EXPECT_EQ(s.ListQueries({"a"}).value_or({}).size(), 3u);
  EXPECT_EQ(s.ListQueries().value_or({}).size(), 6u);
  EXPECT_EQ(s.FindQuery("a", "q2").value_or(std::nullopt).has_value(), true);
  int n = 0;
  double cost = 0;
  ASSERT_TRUE(s.ForEachOutcome([&](const OutcomeRecord& o) {
                 ++n;
                 cost += o.cost_usd.value_or(0);
                 EXPECT_EQ(o.source, OutcomeSource::kImported);
               }).ok());
  EXPECT_EQ(n, 6);
  EXPECT_NEAR(cost, 0.006, 1e-12);
  {
    auto tx = s.Begin();
    ASSERT_TRUE(tx.ok());
    EXPECT_EQ(s.DeleteDataset("b").value_or(-1), 3);
    ASSERT_TRUE(tx->Commit().ok());
  }
  EXPECT_EQ(s.DeleteDataset("nope").value_or(-1), 0);
  EXPECT_EQ(s.CountRows("outcomes").value_or(-1), 3);
  EXPECT_EQ(s.CountRows("responses").value_or(-1), 3);
  EXPECT_EQ(s.ListDatasets().value_or({}), (std::vector<std::string>{"a"}));
}

TEST_P(StoreTest, AtomicallyUndoesAFailedUnitInsideAndOutsideATransaction) {
  auto store = Open();
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  Store& s = **store;
  Status st = s.Atomically([&]() -> Status {
    BATON_RETURN_IF_ERROR(s.UpsertExpert({.name = "gone"}).status());
    return Status::InvalidArgument("changed my mind");
  });
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.CountRows("experts").value_or(-1), 0);
  {
    auto tx = s.Begin();
    ASSERT_TRUE(tx.ok());
    ASSERT_TRUE(s.Atomically([&]() { return s.UpsertExpert({.name = "kept"}).status(); }).ok());
    // A unit whose statement fails in the database: the transaction goes on without it (PostgreSQL too).
    EXPECT_FALSE(s.Atomically([&]() -> Status {
                    BATON_RETURN_IF_ERROR(s.UpsertExpert({.name = "also gone"}).status());
                    return s.InsertOutcome({.query_id = 999, .expert_id = 999, .score = 2});
                  }).ok());
    EXPECT_FALSE(s.Atomically([]() -> Status { throw std::runtime_error("boom"); }).ok());
    ASSERT_TRUE(tx->Commit().ok());
  }
  auto experts = s.ListExperts();
  ASSERT_TRUE(experts.ok());
  ASSERT_EQ(experts->size(), 1u);
  EXPECT_EQ((*experts)[0].name, "kept");
}

TEST_P(StoreTest, FeedbackOnceAndOnboarding) {
  auto store = Open();
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  Store& s = **store;
  auto e = s.UpsertExpert({.name = "m"});
  auto q = s.InsertQuery({.external_id = "q", .text = "t"});
  auto o = s.InsertOutcomeReturningId({.query_id = *q, .expert_id = *e, .score = 1, .source = OutcomeSource::kLive});
  ASSERT_TRUE(o.ok()) << o.status().ToString();
  FeedbackRecord f{.request_id = "r", .client_key_hash = "h", .score = 0.5, .query_id = *q, .expert_id = *e,
                   .outcome_id = *o};
  EXPECT_FALSE(s.HasFeedback("r").value_or(true));
  ASSERT_TRUE(s.InsertFeedback(f).ok());
  EXPECT_TRUE(s.HasFeedback("r").value_or(false));
  EXPECT_EQ(s.InsertFeedback(f).code(), StatusCode::kAlreadyExists);
  auto id1 = s.InsertOnboarding({.expert = "x", .decision = "join", .evidence_json = "{}"});
  auto id2 = s.InsertOnboarding({.expert = "y", .decision = "replace", .replaces = "x", .evidence_json = "{}"});
  ASSERT_TRUE(id1.ok() && id2.ok());
  EXPECT_LT(*id1, *id2);
  EXPECT_FALSE(s.InsertOnboarding({.expert = "z", .decision = "maybe", .evidence_json = "{}"}).ok());
  auto list = s.ListOnboarding();
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[1].replaces, "x");
}

TEST_P(StoreTest, RefusesNewerSchema) {
  { ASSERT_TRUE(Open().ok()); }
  ASSERT_EQ(SetVersion(99), "");
  auto s = Open();
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(s.status().message().find("newer baton"), std::string::npos) << s.status().ToString();
  s = Open({.read_only = true});
  EXPECT_EQ(s.status().code(), StatusCode::kFailedPrecondition);
}

// A database at schema version 1 (with a row) is brought to the current version, keeping its data.
TEST_P(StoreTest, MigratesFromVersion1) {
  if (pg()) {
    ASSERT_EQ(Exec(store::PostgresDdl(store::kSchemaV1) +
                   "; CREATE TABLE baton_schema (version INTEGER NOT NULL); INSERT INTO baton_schema VALUES (1);"
                   "INSERT INTO experts(name) VALUES ('old')"),
              "");
  } else {
    ASSERT_EQ(Exec(std::string(store::kSchemaV1) + "; INSERT INTO experts(name) VALUES ('old'); PRAGMA user_version=1"),
              "");
  }
  auto store = Open();
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  Store& s = **store;
  auto experts = s.ListExperts();
  ASSERT_TRUE(experts.ok());
  ASSERT_EQ(experts->size(), 1u);
  EXPECT_EQ((*experts)[0].name, "old");
  EXPECT_EQ(s.CountRows("budget_reservations").value_or(-1), 0);
  EXPECT_EQ(s.CountRows("feedback").value_or(-1), 0);
  ASSERT_TRUE(s.LogRequest({.http_status = 200, .request_id = "x"}).ok());  // v3 columns
  auto e = s.UpsertExpert({.name = "new"});  // ids continue after the migrated rows
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  EXPECT_GT(*e, (*experts)[0].id);
}

// Several processes (here threads, one Store each) opening a new database at once: it is migrated exactly once.
TEST_P(StoreTest, ConcurrentOpensMigrateOnce) {
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  std::vector<std::string> errors(6);
  for (int i = 0; i < 6; ++i) {
    threads.emplace_back([&, i] {
      auto s = Open();
      if (s.ok()) {
        ++ok;
      } else {
        errors[i] = s.status().ToString();
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 6) << errors[0] << errors[1] << errors[2] << errors[3] << errors[4] << errors[5];
}

// Issue 10, item 11: a database error is an error, not "not found" (which made UpsertExpert insert) nor a -1 count.
TEST_P(StoreTest, LookupsReportDatabaseErrors) {
  auto store = Open();
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  Store& s = **store;
  auto found = s.FindExpert("absent");
  ASSERT_TRUE(found.ok()) << found.status().ToString();
  EXPECT_FALSE(found->has_value());  // absent is not an error
  ASSERT_EQ(Exec("DROP TABLE feedback; DROP TABLE outcomes; DROP TABLE responses; DROP TABLE experts; "
                 "DROP TABLE queries"),
            "");
  EXPECT_FALSE(s.FindExpert("m").ok());
  EXPECT_FALSE(s.FindQuery("d", "q").ok());
  EXPECT_FALSE(s.UpsertExpert({.name = "m"}).ok());
  auto n = s.CountRows("experts");
  ASSERT_FALSE(n.ok());
  const std::string missing = pg() ? "does not exist" : "no such table";
  EXPECT_NE(n.status().message().find(missing), std::string::npos) << n.status().ToString();
  EXPECT_FALSE(s.CountRows("no_such_table").ok());
}

TEST_P(StoreTest, ClientBudgets) {
  auto store = Open();
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  Store& s = **store;
  ASSERT_TRUE(s.UpsertClientBudget({.key_hash = "k1", .name = "alice", .budget_usd = 1}).ok());
  ASSERT_TRUE(s.SetClientSpend("k1", 0.25, 0.5).ok());
  ASSERT_TRUE(s.UpsertClientBudget({.key_hash = "k1", .name = "alice2", .budget_usd = 2}).ok());  // keeps spend
  EXPECT_EQ(s.SetClientSpend("nope", 1, 0).code(), StatusCode::kNotFound);
  auto b = s.GetClientBudget("k1");
  ASSERT_TRUE(b.ok() && b->has_value()) << b.status().ToString();
  EXPECT_EQ((*b)->name, "alice2");
  EXPECT_DOUBLE_EQ((*b)->budget_usd, 2);
  EXPECT_DOUBLE_EQ((*b)->spent_usd, 0.25);
  EXPECT_DOUBLE_EQ((*b)->reserved_usd, 0.5);
  EXPECT_FALSE(s.GetClientBudget("nope")->has_value());
  EXPECT_EQ(s.ListClientBudgets().value_or({}).size(), 1u);
}

TEST_P(StoreTest, ReserveAndSettleBudget) {
  auto store = Open();
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  Store& s = **store;
  ASSERT_TRUE(s.UpsertClientBudget({.key_hash = "k", .name = "alice", .budget_usd = 1.0}).ok());
  auto r1 = s.ReserveBudget("k", 0.6, 60000, "replica-1");
  ASSERT_TRUE(r1.ok()) << r1.status().ToString();
  auto r2 = s.ReserveBudget("k", 0.5, 60000, "replica-2");  // 0 + 0.6 + 0.5 > 1
  ASSERT_EQ(r2.status().code(), StatusCode::kResourceExhausted);
  for (const char* word : {"spent", "reserved", "needed", "budget"}) {
    EXPECT_NE(r2.status().message().find(word), std::string::npos) << r2.status().message();
  }
  EXPECT_EQ(s.ReserveBudget("unknown", 0.1, 60000, "x").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(s.ReserveBudget("k", -1, 60000, "x").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.ReserveBudget("k", 0.1, 0, "x").status().code(), StatusCode::kInvalidArgument);
  auto b = s.GetClientBudget("k");
  EXPECT_DOUBLE_EQ((*b)->reserved_usd, 0.6);
  auto r3 = s.ReserveBudget("k", 0.4, 60000, "replica-2");  // exactly fits
  ASSERT_TRUE(r3.ok()) << r3.status().ToString();
  EXPECT_EQ(s.CountRows("budget_reservations").value_or(-1), 2);

  // Settling charges the actual cost and frees the rest.
  auto c1 = s.SettleBudget(*r1, "k", 0.1);
  ASSERT_TRUE(c1.ok()) << c1.status().ToString();
  EXPECT_DOUBLE_EQ(*c1, 0.1);
  b = s.GetClientBudget("k");
  EXPECT_DOUBLE_EQ((*b)->spent_usd, 0.1);
  EXPECT_DOUBLE_EQ((*b)->reserved_usd, 0.4);
  // A call that cost more than it reserved is charged only what the key has left: never over the budget.
  auto c3 = s.SettleBudget(*r3, "k", 5.0);
  ASSERT_TRUE(c3.ok());
  EXPECT_DOUBLE_EQ(*c3, 0.9);
  b = s.GetClientBudget("k");
  EXPECT_DOUBLE_EQ((*b)->spent_usd, 1.0);
  EXPECT_EQ((*b)->reserved_usd, 0.0);
  EXPECT_EQ(s.ReserveBudget("k", 0.01, 60000, "x").status().code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(s.ReserveBudget("k", 0, 60000, "x").status().code(), StatusCode::kOk);  // a free call still fits
  EXPECT_EQ(s.SettleBudget(1, "unknown", 1).status().code(), StatusCode::kNotFound);

  // Inside a caller's transaction the operations are savepoints of it.
  ASSERT_TRUE(s.UpsertClientBudget({.key_hash = "k2", .budget_usd = 1.0}).ok());
  {
    auto tx = s.Begin();
    ASSERT_TRUE(tx.ok());
    ASSERT_TRUE(s.ReserveBudget("k2", 0.5, 60000, "x").ok());
    EXPECT_EQ(s.ReserveBudget("k2", 0.6, 60000, "x").status().code(), StatusCode::kResourceExhausted);
    ASSERT_TRUE(tx->Commit().ok());
  }
  EXPECT_DOUBLE_EQ((*s.GetClientBudget("k2"))->reserved_usd, 0.5);
}

TEST_P(StoreTest, ExpiredReservationsAreReleased) {
  auto store = Open();
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  Store& s = **store;
  ASSERT_TRUE(s.UpsertClientBudget({.key_hash = "a", .budget_usd = 1.0}).ok());
  ASSERT_TRUE(s.UpsertClientBudget({.key_hash = "b", .budget_usd = 1.0}).ok());
  auto short1 = s.ReserveBudget("a", 0.3, 1, "crashed replica");
  auto short2 = s.ReserveBudget("b", 0.2, 1, "crashed replica");
  auto long1 = s.ReserveBudget("a", 0.5, 3600 * 1000, "live replica");
  ASSERT_TRUE(short1.ok() && short2.ok() && long1.ok());
  const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  EXPECT_EQ(s.ReleaseExpiredReservations(now - 60000).value_or(-1), 0);  // nothing expired a minute ago
  EXPECT_EQ(s.ReleaseExpiredReservations(now + 10).value_or(-1), 2);
  EXPECT_DOUBLE_EQ((*s.GetClientBudget("a"))->reserved_usd, 0.5);
  EXPECT_EQ((*s.GetClientBudget("b"))->reserved_usd, 0.0);
  EXPECT_EQ(s.CountRows("budget_reservations").value_or(-1), 1);
  // The call behind an expired reservation still ends: it is charged what fits, and nothing is given back twice.
  auto c = s.SettleBudget(*short1, "a", 0.7);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_DOUBLE_EQ(*c, 0.5);  // 1.0 budget - 0.5 still reserved by the live call
  auto a = s.GetClientBudget("a");
  EXPECT_DOUBLE_EQ((*a)->spent_usd, 0.5);
  EXPECT_DOUBLE_EQ((*a)->reserved_usd, 0.5);
  ASSERT_TRUE(s.SettleBudget(*long1, "a", 0.5).ok());
  a = s.GetClientBudget("a");
  EXPECT_DOUBLE_EQ((*a)->spent_usd, 1.0);
  EXPECT_EQ((*a)->reserved_usd, 0.0);
}

// Many clients (threads, each with its own Store: like replicas sharing one database) reserving and settling
// against one key: never over the budget, every reservation given back, and the budget nearly all usable.
TEST_P(StoreTest, ConcurrentReservationsNeverOverspend) {
  constexpr double kBudget = 6.0, kReserve = 0.02;
  constexpr int kThreads = 8;
  {
    auto store = Open();
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    ASSERT_TRUE((*store)->UpsertClientBudget({.key_hash = "shared", .budget_usd = kBudget}).ok());
  }
  std::atomic<int> reserved{0}, refused{0}, errors{0};
  std::atomic<int64_t> charged_nano{0};
  std::vector<std::thread> threads;
  std::vector<std::string> first_error(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      auto store = Open();
      if (!store.ok()) {
        ++errors;
        first_error[t] = store.status().ToString();
        return;
      }
      std::mt19937 rng(t);
      int refused_in_a_row = 0;
      while (refused_in_a_row < 10) {
        auto id = (*store)->ReserveBudget("shared", kReserve, 60000, fmt::format("client-{}", t));
        if (id.status().code() == StatusCode::kResourceExhausted) {
          ++refused;
          ++refused_in_a_row;
          std::this_thread::sleep_for(std::chrono::milliseconds(2));
          continue;
        }
        if (!id.ok()) {
          ++errors;
          if (first_error[t].empty()) first_error[t] = id.status().ToString();
          return;
        }
        refused_in_a_row = 0;
        ++reserved;
        // Most calls cost less than they reserved; some cost more (an estimate that was too low).
        const double actual = (rng() % 4 == 0) ? 0.03 : 0.015;
        auto c = (*store)->SettleBudget(*id, "shared", actual);
        if (!c.ok()) {
          ++errors;
          if (first_error[t].empty()) first_error[t] = c.status().ToString();
          return;
        }
        charged_nano += std::llround(*c * 1e9);
      }
    });
  }
  for (auto& th : threads) th.join();
  ASSERT_EQ(errors.load(), 0) << first_error[0] << first_error[1] << first_error[2] << first_error[3];
  auto store = Open();
  ASSERT_TRUE(store.ok());
  auto b = (*store)->GetClientBudget("shared");
  ASSERT_TRUE(b.ok() && b->has_value());
  EXPECT_LE((*b)->spent_usd, kBudget + 1e-9) << "overspent";
  EXPECT_EQ((*b)->reserved_usd, 0.0);
  EXPECT_EQ((*store)->CountRows("budget_reservations").value_or(-1), 0);
  EXPECT_NEAR((*b)->spent_usd, charged_nano.load() / 1e9, 1e-6);  // what SettleBudget returned is what was charged
  EXPECT_GT(reserved.load(), 200);
  EXPECT_GE((*b)->spent_usd / kBudget, 0.99) << "share of the budget used";
  std::fprintf(stderr, "%s: %d reservations, %d refused, spent %.6f of %.2f (%.2f%%)\n",
               pg() ? "postgresql" : "sqlite", reserved.load(), refused.load(), (*b)->spent_usd, kBudget,
               100 * (*b)->spent_usd / kBudget);
}

// ---- PostgreSQL only -------------------------------------------------------------------------------------------

TEST(StoreUrlTest, RecognisesAndRedactsUrls) {
  EXPECT_TRUE(store::IsPostgresUrl("postgresql://h/db"));
  EXPECT_TRUE(store::IsPostgresUrl("POSTGRES://h/db"));
  EXPECT_FALSE(store::IsPostgresUrl("postgresql.db"));
  EXPECT_FALSE(store::IsPostgresUrl("/tmp/postgres://x"));
  EXPECT_EQ(store::RedactUrl("postgresql://bob:s3cret@db.example:5432/baton?sslmode=require"),
            "postgresql://bob:***@db.example:5432/baton?sslmode=require");
  EXPECT_EQ(store::RedactUrl("postgresql://bob@h/db?password=s3cret&x=1"), "postgresql://bob@h/db?password=***&x=1");
  EXPECT_EQ(store::RedactUrl("postgresql://h/db"), "postgresql://h/db");
  EXPECT_EQ(store::PostgresPlaceholders("SELECT ?1, '?2', \"?3\" WHERE a = ?12"),
            "SELECT $1, '?2', \"?3\" WHERE a = $12");
}

// Nothing listens: Open returns Unavailable within the retry budget, naming the database but not the password.
TEST(StoreUrlTest, UnreachableServerIsUnavailableWithoutThePassword) {
  const auto t0 = std::chrono::steady_clock::now();
  auto s = Store::Open("postgresql://bob:s3cret@127.0.0.1:1/baton",
                       {.retry_initial_ms = 20, .retry_max_ms = 100, .retry_total_ms = 400});
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kUnavailable) << s.status().ToString();
  EXPECT_EQ(s.status().message().find("s3cret"), std::string::npos) << s.status().message();
  EXPECT_NE(s.status().message().find("postgresql://bob:***@127.0.0.1:1/baton"), std::string::npos)
      << s.status().message();
  EXPECT_GE(ms, 300);   // it did retry
  EXPECT_LT(ms, 5000);  // and gave up in time
}

class PgStoreTest : public StoreTest {};
INSTANTIATE_TEST_SUITE_P(Engines, PgStoreTest, ::testing::Values(Engine::kPostgres), EngineName);

// The server ends the Store's connection (as a restart or a failover would): the next statement reconnects and
// succeeds; a transaction that was open is lost and says so (Unavailable), and the caller can retry it.
TEST_P(PgStoreTest, ReconnectsAfterTheConnectionIsKilled) {
  auto store = Open();
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  Store& s = **store;
  ASSERT_TRUE(s.UpsertExpert({.name = "before"}).ok());
  const std::string kill = fmt::format(
      "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{}' AND pid <> pg_backend_pid()",
      db_name_);
  ASSERT_EQ(PgExec(server_, kill), "");
  auto e = s.UpsertExpert({.name = "after"});
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  {
    auto tx = s.Begin();
    ASSERT_TRUE(tx.ok());
    ASSERT_TRUE(s.UpsertExpert({.name = "in lost tx"}).ok());
    ASSERT_EQ(PgExec(server_, kill), "");
    EXPECT_EQ(s.UpsertExpert({.name = "in lost tx 2"}).status().code(), StatusCode::kUnavailable);
    EXPECT_EQ(s.CountRows("experts").status().code(), StatusCode::kUnavailable);  // still the lost transaction
    Status c = tx->Commit();
    EXPECT_EQ(c.code(), StatusCode::kUnavailable) << c.ToString();
  }
  auto experts = s.ListExperts();  // a new transaction-less call reconnects
  ASSERT_TRUE(experts.ok()) << experts.status().ToString();
  EXPECT_EQ(experts->size(), 2u);
  // The budget operations are transactions of their own: retried as a whole by the caller, never half-applied.
  ASSERT_TRUE(s.UpsertClientBudget({.key_hash = "k", .budget_usd = 1}).ok());
  ASSERT_EQ(PgExec(server_, kill), "");
  auto r = s.ReserveBudget("k", 0.5, 60000, "x");  // BEGIN is retried after reconnecting
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_DOUBLE_EQ((*s.GetClientBudget("k"))->reserved_usd, 0.5);
}

// A private server: restarted under the Store (immediate shutdown, like a crash), then stopped for good.
TEST(PgServerTest, SurvivesARestartAndIsUnavailableWhenDown) {
  std::string error;
  if (PgServerUrl(&error).empty()) {
    ASSERT_TRUE(error.empty()) << error;
    GTEST_SKIP() << "PostgreSQL case skipped: set BATON_TEST_PG_URL (see the top of store_test.cc) or run it through "
                    "ctest";
  }
  testing::TempDir tmp;
  std::filesystem::permissions(tmp.path(), std::filesystem::perms(0755));  // the server runs as `postgres`
  const std::string dir = tmp.path() + "/pg";
  const std::string script = std::string(BATON_SOURCE_DIR) + "/scripts/pg_server.sh";
  FILE* p = popen(("bash " + script + " start " + dir + " 2>&1 | tail -n 1").c_str(), "r");
  char line[512] = {};
  ASSERT_NE(fgets(line, sizeof line, p), nullptr);
  const int started = pclose(p);
  std::string url(line);
  while (!url.empty() && url.back() == '\n') url.pop_back();
  struct Stop {
    std::string cmd;
    ~Stop() { (void)std::system(cmd.c_str()); }
  } stop{"bash " + script + " stop " + dir + " >/dev/null 2>&1"};
  ASSERT_EQ(started, 0) << url;
  ASSERT_TRUE(store::IsPostgresUrl(url)) << url;
  url.replace(url.find("postgres@"), 9, "postgres:s3cret@");  // trust authentication ignores it; messages must too
  auto store = Store::Open(url, {.retry_initial_ms = 50, .retry_max_ms = 1000, .retry_total_ms = 20000});
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  Store& s = **store;
  ASSERT_TRUE(s.UpsertExpert({.name = "before"}).ok());
  ASSERT_EQ(std::system(("bash " + script + " restart " + dir + " >/dev/null 2>&1").c_str()), 0);
  auto e = s.UpsertExpert({.name = "after"});
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  EXPECT_EQ(s.CountRows("experts").value_or(-1), 2);

  ASSERT_EQ(std::system(stop.cmd.c_str()), 0);
  auto down = Store::Open(url, {.retry_initial_ms = 20, .retry_max_ms = 100, .retry_total_ms = 300});
  EXPECT_EQ(down.status().code(), StatusCode::kUnavailable);
  auto n = s.CountRows("experts");
  ASSERT_FALSE(n.ok());
  EXPECT_EQ(n.status().code(), StatusCode::kUnavailable) << n.status().ToString();
  EXPECT_EQ(n.status().message().find("s3cret"), std::string::npos) << n.status().message();
  EXPECT_NE(n.status().message().find("127.0.0.1"), std::string::npos) << n.status().message();
  EXPECT_EQ(s.ReserveBudget("k", 0.1, 1000, "x").status().code(), StatusCode::kUnavailable);  // never a free pass
}

// ---- SQLite only ---------------------------------------------------------------------------------------------

TEST(SqliteStoreTest, RefusesNonDatabase) {
  testing::TempDir tmp;
  const std::string junk = tmp.Write("junk.db", std::string(4096, 'x'));
  auto s = Store::Open(junk);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kDataLoss);
}

TEST(SqliteStoreTest, UsesWal) {
  testing::TempDir tmp;
  const std::string db = tmp.path() + "/w.db";
  { ASSERT_TRUE(Store::Open(db).ok()); }
  FILE* p = popen(("sqlite3 " + db + " 'PRAGMA journal_mode'").c_str(), "r");
  char buf[32] = {};
  ASSERT_NE(fgets(buf, sizeof buf, p), nullptr);
  pclose(p);
  EXPECT_STREQ(buf, "wal\n");
}

TEST(SqliteStoreTest, InMemory) {
  auto s = Store::Open(":memory:");
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_TRUE((*s)->UpsertExpert({.name = "m"}).ok());
}

}  // namespace
}  // namespace baton
