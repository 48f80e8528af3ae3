// The recorder when its store cannot commit for a while: another process holds SQLite's write lock past the store's
// busy timeout (5 s). Found by the fault campaign (tests/campaigns/faults.py): the batch's rows were then written one
// by one outside a transaction while the answers said "x-baton-recorded: false", and budget states of a failed commit
// were dropped (lost on a crash before the key's next request).
#include "gateway/recorder.h"

#include <sqlite3.h>

#include <atomic>
#include <chrono>
#include <thread>

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "baton/store.h"
#include "gateway/sse.h"
#include "test_util.h"

namespace baton::gateway {
namespace {

using std::chrono::milliseconds;

// Holds an exclusive write lock on a SQLite file, from another connection, until destroyed.
class WriteLock {
 public:
  explicit WriteLock(const std::string& path) {
    EXPECT_EQ(sqlite3_open(path.c_str(), &db_), SQLITE_OK);
    EXPECT_EQ(sqlite3_exec(db_, "BEGIN EXCLUSIVE", nullptr, nullptr, nullptr), SQLITE_OK);
  }
  ~WriteLock() {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    sqlite3_close(db_);
  }

 private:
  sqlite3* db_ = nullptr;
};

int64_t CountRows(const std::string& path) {
  sqlite3* db = nullptr;
  sqlite3_open(path.c_str(), &db);
  sqlite3_stmt* s = nullptr;
  sqlite3_prepare_v2(db, "SELECT count(*) FROM requests", -1, &s, nullptr);
  int64_t n = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int64(s, 0) : -1;
  sqlite3_finalize(s);
  sqlite3_close(db);
  return n;
}

double StoredSpend(const std::string& path) {
  auto store = Store::Open(path);
  if (!store.ok()) return -1;
  auto rows = (*store)->ListClientBudgets();
  return rows.ok() && !rows->empty() ? rows->front().spent_usd : -1;
}

struct LockedStore {
  testing::TempDir dir;
  std::string path = dir.path() + "/gw.db";
  std::unique_ptr<Recorder> rec;
  explicit LockedStore(milliseconds retry_for) {
    auto store = Store::Open(path);
    EXPECT_TRUE(store.ok()) << store.status().ToString();
    EXPECT_TRUE((*store)->UpsertClientBudget({"h", "k", 10, 0, 0}).ok());
    rec = std::make_unique<Recorder>(std::move(*store), 1000, retry_for);
  }
};

// A lock held past the busy timeout: the batch waits and is retried, then committed whole, and the waiter is told
// it was (the answer is not marked unrecorded); the budget state written with it is there too.
TEST(RecorderTest, BatchRetriedWhileTheStoreIsLocked) {
  LockedStore s(std::chrono::seconds(30));
  std::atomic<int> told{-1};
  {
    WriteLock lock(s.path);
    RequestLogRecord r;
    r.http_status = 200;
    r.request_id = "r1";
    ASSERT_TRUE(s.rec->LogRequest(r));
    s.rec->PersistBudget({"h", "k", 10, 1.5, 0});
    s.rec->WhenDurable([&](bool committed) { told = committed ? 1 : 0; });
    std::this_thread::sleep_for(milliseconds(6500));  // past the 5 s busy timeout
    EXPECT_EQ(told.load(), -1) << "the waiter was told before the batch was written";
  }
  s.rec->Flush();
  EXPECT_EQ(told.load(), 1);
  EXPECT_EQ(CountRows(s.path), 1);
  s.rec.reset();
  EXPECT_DOUBLE_EQ(StoredSpend(s.path), 1.5);
}

// Past retry_for the batch is given up: its waiter is told it was not recorded, and then it is indeed not (no row
// written outside the transaction); the budget state stays queued and reaches the store once it is free again.
TEST(RecorderTest, GivenUpBatchIsNotHalfWritten) {
  LockedStore s(milliseconds(1));
  std::atomic<int> told{-1};
  {
    WriteLock lock(s.path);
    RequestLogRecord r;
    r.http_status = 200;
    r.request_id = "r1";
    ASSERT_TRUE(s.rec->LogRequest(r));
    s.rec->PersistBudget({"h", "k", 10, 2.5, 0});
    s.rec->WhenDurable([&](bool committed) { told = committed ? 1 : 0; });
    for (int i = 0; i < 200 && told.load() == -1; ++i) std::this_thread::sleep_for(milliseconds(100));
    EXPECT_EQ(told.load(), 0);
  }
  s.rec->Flush();
  EXPECT_EQ(CountRows(s.path), 0) << "a row written although its answer said it was not";
  s.rec.reset();
  EXPECT_DOUBLE_EQ(StoredSpend(s.path), 2.5) << "the budget state of the failed batch was dropped";
}

// How a stream says its row could not be written (plain answers use the x-baton-recorded: false header): the last
// event stays one well-formed SSE event whose JSON keeps its fields and gains "x_baton_recorded": false.
TEST(RecorderTest, StreamEventsSayTheyWereNotRecorded) {
  for (const std::string& event : {SseChunk("id1", 7, "m", "", "", "stop", ChatUsage{3, 4}, 0.25),
                                   SseError("expert 'x' failed", "server_error", "upstream_error")}) {
    const std::string marked = SseMarkUnrecorded(event);
    ASSERT_TRUE(marked.starts_with("data: ") && marked.ends_with("\n\n")) << marked;
    const nlohmann::json before = nlohmann::json::parse(event.substr(6));
    nlohmann::json after = nlohmann::json::parse(marked.substr(6));
    EXPECT_EQ(after["x_baton_recorded"], false) << marked;
    after.erase("x_baton_recorded");
    EXPECT_EQ(after, before);
  }
}

}  // namespace
}  // namespace baton::gateway
