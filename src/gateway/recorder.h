// Recorder: writes request logs, live outcomes and budget state to the store on its own thread, so that SQLite
// writes never sit on the request path.
//
// Latency: the writer wakes every 50 ms, when 256 writes are queued, or at once when someone waits for durability
// (WhenDurable): then everything queued is committed in one transaction (group commit) and the waiters are told.
// Durability: the store runs SQLite in WAL mode with synchronous=NORMAL, so a commit survives the process being killed
// (kill -9, a crash); surviving a power cut as well would need synchronous=FULL.
// Thread-safety: Enqueue/Flush/counters are safe from many threads. The writer thread alone uses the Store it owns;
// mu_ guards the queue. Writes are applied in the order they were enqueued, grouped in one transaction per batch.
// The queue is bounded (max_queue): when it is full new writes are dropped and counted, never blocking a request.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "baton/store.h"

namespace baton::gateway {

// A live outcome of a replay expert: the recorded score its answer earned.
struct LiveOutcome {
  std::string prompt;      // the query text; "" when prompts may not be recorded (then nothing of it is stored)
  std::string request_id;  // names the query when there is no prompt
  std::string expert;
  double score = 0;
  double cost_usd = 0;
  int64_t tokens_in = 0, tokens_out = 0;
  double latency_ms = 0;
};

// A client's judgement of one of its requests (POST /v1/feedback), to become a live outcome.
struct FeedbackSubmission {
  std::string request_id;       // the request's x-request-id
  std::string client_key_hash;  // the key sending the feedback: only the request's own key may
  double score = 0;             // REQUIRES: in [0, 1] (the handler checks it)
  std::string note;
};

// What accepted feedback became.
struct FeedbackResult {
  std::string expert;      // the expert that answered the request
  int64_t query_id = 0;    // the live query (dataset "live") its prompt became
  int64_t outcome_id = 0;  // the outcome row, source 'live'
};

// The dataset that live queries (the prompts of recorded outcomes and of feedback) are stored in.
inline constexpr const char* kLiveDataset = "live";

class Recorder {
 public:
  // A batch whose transaction cannot begin or commit (the store locked by another process past its busy timeout, a
  // database restarting) is retried, with its budget states, for up to `retry_for`; its durability waiters wait
  // meanwhile. Past that its waiters are told committed = false and nothing of it is written (never half of it).
  explicit Recorder(std::unique_ptr<Store> store, size_t max_queue = 100'000,
                    std::chrono::milliseconds retry_for = std::chrono::seconds(10));
  ~Recorder();  // writes what is queued, then stops the thread
  Recorder(const Recorder&) = delete;
  Recorder& operator=(const Recorder&) = delete;

  // Each returns false when the write was dropped (the queue is full).
  bool LogRequest(RequestLogRecord r);
  bool RecordOutcome(LiveOutcome o);
  // The per-call traces of one Archon run (one job, so they commit together).
  bool LogArchonCalls(std::vector<ArchonCallRecord> calls);
  void PersistBudget(const ClientBudgetRecord& b);
  // Checks and writes the feedback as one all-or-nothing unit on the writer thread (a savepoint inside the batch's
  // transaction), then calls `done` there, after the commit, with what it became or why not: NotFound (no request
  // with that id was made with this key: another key's request looks exactly like an unknown one), FailedPrecondition
  // (the request was not answered: it failed, was refused or cancelled), AlreadyExists (it already has feedback),
  // IoError (the write or its commit failed). Returns false, never calling `done`, when the queue is full. `done`
  // must not block (post to an event loop).
  bool RecordFeedback(FeedbackSubmission f, std::function<void(StatusOr<FeedbackResult>)> done);
  // Blocks until everything enqueued before the call is written and every WhenDurable callback registered before it
  // has returned.
  void Flush();
  // Calls `done(committed)` on the writer thread once everything enqueued before this call (budget states included)
  // is committed; `committed` is false when that commit failed. Never blocks the caller; `done` must not block either
  // (post to an event loop). Waiters still queued when the recorder is destroyed are told after its last commit.
  void WhenDurable(std::function<void(bool committed)> done);

  int64_t written() const { return written_.load(); }
  int64_t dropped() const { return dropped_.load(); }
  int64_t failed() const { return failed_.load(); }

 private:
  using Job = std::function<Status(Store&)>;
  bool Enqueue(Job job);
  void Run();
  // Writes `batch` and `budgets` in one transaction; an error when it could not begin or commit (nothing written).
  Status WriteBatch(std::vector<Job>& batch, const std::map<std::string, ClientBudgetRecord>& budgets);

  std::unique_ptr<Store> store_;  // used only by thread_ after construction
  const size_t max_queue_;
  const std::chrono::milliseconds retry_for_;
  std::mutex mu_;
  std::condition_variable cv_, done_cv_;
  std::deque<Job> queue_;   // guarded by mu_
  uint64_t enqueued_ = 0;   // guarded by mu_
  uint64_t completed_ = 0;  // guarded by mu_
  bool stop_ = false;       // guarded by mu_
  int flush_waiters_ = 0;   // guarded by mu_
  struct DurableWaiter {
    uint64_t jobs, budgets;  // enqueued_ and budget_seq_ when it was registered
    std::function<void(bool)> done;
  };
  std::vector<DurableWaiter> durable_waiters_;         // guarded by mu_
  int telling_ = 0;                                    // batches of waiters being told now; guarded by mu_
  std::map<std::string, ClientBudgetRecord> budgets_;  // latest unwritten state per key hash; guarded by mu_
  uint64_t budget_seq_ = 0, budget_done_ = 0;          // budget changes seen / written; guarded by mu_
  std::atomic<int64_t> written_{0}, dropped_{0}, failed_{0};
  std::thread thread_;
};

}  // namespace baton::gateway
