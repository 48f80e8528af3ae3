#include "gateway/budget.h"

#include <sqlite3.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "baton/store.h"
#include "store/schema.h"

namespace baton::gateway {
namespace {

TEST(BudgetTest, ReserveSettleNeverExceeds) {
  int persisted = 0;
  LocalBudgetLedger l({{"h", "k", 1.0, 0.25, 0}}, [&](const BudgetAccount&) { ++persisted; });
  EXPECT_TRUE(l.Reserve(0, 0.5).ok());
  EXPECT_EQ(l.Reserve(0, 0.5).status().code(), StatusCode::kResourceExhausted);  // 0.25 + 0.5 + 0.5 > 1
  l.Settle(0, {0.5}, 0.1);
  EXPECT_NEAR(l.Get(0).spent_usd, 0.35, 1e-12);
  EXPECT_NEAR(l.Get(0).reserved_usd, 0, 1e-12);
  EXPECT_EQ(persisted, 2);
}

TEST(BudgetTest, ConcurrentReservationsStayWithinBudget) {
  LocalBudgetLedger l({{"h", "k", 1.0, 0, 0}});
  std::atomic<int> ok{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < 8; ++t) {
    ts.emplace_back([&] {
      for (int i = 0; i < 500; ++i) {
        if (l.Reserve(0, 0.02).ok()) {
          l.Settle(0, {0.02}, 0.01);
          ++ok;
        }
      }
    });
  }
  for (auto& t : ts) t.join();
  EXPECT_LE(l.Get(0).spent_usd, 1.0 + 1e-9);
  EXPECT_NEAR(l.Get(0).spent_usd, ok.load() * 0.01, 1e-9);
}

// An upstream that lies (absurd or negative usage) can never push spend past the budget or below zero.
TEST(BudgetTest, ACallCostingMoreThanWhatIsLeftIsChargedOnlyUpToTheBudget) {
  LocalBudgetLedger l({{"h", "k", 1000.0, 0, 0}});
  ASSERT_TRUE(l.Reserve(0, 0.01).ok());
  ASSERT_TRUE(l.Reserve(0, 0.01).ok());  // another call in flight keeps its reservation
  EXPECT_NEAR(l.Settle(0, {0.01}, 3000.0), 1000.0 - 0.01, 1e-9);
  EXPECT_NEAR(l.Get(0).spent_usd, 1000.0 - 0.01, 1e-9);
  EXPECT_NEAR(l.Settle(0, {0.01}, 0.01), 0.01, 1e-12);  // the other call still gets what it reserved
  EXPECT_LE(l.Get(0).spent_usd, 1000.0 + 1e-9);
  EXPECT_EQ(l.overruns(), 1);
  EXPECT_NEAR(l.unbilled_usd(), 2000.01, 1e-6);
  ASSERT_TRUE(l.Reserve(0, 0).ok());
  EXPECT_EQ(l.Settle(0, {0}, -5.0), 0.0);
  EXPECT_EQ(l.Settle(0, {0}, std::nan("")), 0.0);
  EXPECT_NEAR(l.Get(0).spent_usd, 1000.0, 1e-9);
}

// A call that costs more than it reserved is charged in full when the key has room for it.
TEST(BudgetTest, AnUnderestimatedCallIsChargedInFullWhenItFits) {
  LocalBudgetLedger l({{"h", "k", 1.0, 0, 0}});
  ASSERT_TRUE(l.Reserve(0, 0.1).ok());
  EXPECT_NEAR(l.Settle(0, {0.1}, 0.3), 0.3, 1e-12);
  EXPECT_EQ(l.overruns(), 0);
}

}  // namespace
}  // namespace baton::gateway

namespace baton::gateway {
namespace {

// A database written by a v1 baton (no client_budgets table) is migrated to v2 on open, its rows kept.
TEST(BudgetTest, StoreMigratesSchemaV1ToV2) {
  const std::string path = ::testing::TempDir() + "/baton_v1_" + std::to_string(::getpid()) + ".db";
  std::remove(path.c_str());
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db, store::kSchemaV1, nullptr, nullptr, nullptr), SQLITE_OK);
    ASSERT_EQ(
        sqlite3_exec(db, "INSERT INTO experts(name) VALUES ('old'); PRAGMA user_version=1", nullptr, nullptr, nullptr),
        SQLITE_OK);
    sqlite3_close(db);
  }
  auto s = Store::Open(path);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  auto old = (*s)->FindExpert("old");
  ASSERT_TRUE(old.ok()) << old.status().ToString();
  EXPECT_TRUE(old->has_value());
  ASSERT_TRUE((*s)->UpsertClientBudget({"abc", "k", 2.0, 0.5, 0}).ok());
  ASSERT_TRUE((*s)->UpsertClientBudget({"abc", "renamed", 3.0, 0, 0}).ok());  // keeps what was spent
  ASSERT_TRUE((*s)->SetClientSpend("abc", 0.75, 0.25).ok());
  EXPECT_EQ((*s)->SetClientSpend("nope", 1, 0).code(), StatusCode::kNotFound);
  auto rows = (*s)->ListClientBudgets();
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->size(), 1u);
  EXPECT_EQ((*rows)[0].name, "renamed");
  EXPECT_DOUBLE_EQ((*rows)[0].budget_usd, 3.0);
  EXPECT_DOUBLE_EQ((*rows)[0].spent_usd, 0.75);
  EXPECT_DOUBLE_EQ((*rows)[0].reserved_usd, 0.25);
  // ... and on to v3: request logs carry the request's id and a note.
  EXPECT_TRUE((*s)->LogRequest({.http_status = 200, .request_id = "chatcmpl-x", .note = "client_cancelled"}).ok());
  s->reset();
  for (const char* suffix : {"", "-wal", "-shm"}) std::remove((path + suffix).c_str());
}

}  // namespace
}  // namespace baton::gateway
