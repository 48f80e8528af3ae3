#include "gateway/recorder.h"

#include <algorithm>
#include <cstdio>
#include <iterator>
#include <map>
#include <vector>

#include <fmt/format.h>

#include "gateway/auth.h"

namespace baton::gateway {

namespace {
constexpr size_t kWakeBatch = 256;
constexpr std::chrono::milliseconds kIdleWait{50};
constexpr std::chrono::milliseconds kRetryWait{200};  // between attempts at a batch that failed to commit
}  // namespace

Recorder::Recorder(std::unique_ptr<Store> store, size_t max_queue, std::chrono::milliseconds retry_for)
    : store_(std::move(store)), max_queue_(max_queue), retry_for_(retry_for), thread_([this] { Run(); }) {}

Recorder::~Recorder() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

bool Recorder::Enqueue(Job job) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (queue_.size() >= max_queue_) {
      dropped_.fetch_add(1);
      return false;
    }
    queue_.push_back(std::move(job));
    ++enqueued_;
    // Wake the writer only for a full batch; otherwise it wakes on its own every kIdleWait, which keeps a thread
    // wake-up (two context switches) off every request.
    if (queue_.size() < kWakeBatch) return true;
  }
  cv_.notify_one();
  return true;
}

bool Recorder::LogRequest(RequestLogRecord r) {
  return Enqueue([r = std::move(r)](Store& s) { return s.LogRequest(r); });
}

void Recorder::WhenDurable(std::function<void(bool committed)> done) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    durable_waiters_.push_back({enqueued_, budget_seq_, std::move(done)});
  }
  cv_.notify_one();
}

void Recorder::PersistBudget(const ClientBudgetRecord& b) {
  // Only the latest state of each key matters: it replaces any not yet written (one UPDATE per key per batch).
  std::lock_guard<std::mutex> lock(mu_);
  budgets_[b.key_hash] = b;
  ++budget_seq_;
}

namespace {

// The live query a prompt becomes (dataset "live"), created when new. Without the prompt (record_prompts: false)
// nothing of it is stored: the query is named by the request's id and has no text.
StatusOr<int64_t> FindOrInsertLiveQuery(Store& s, const std::string& prompt, const std::string& request_id) {
  const std::string external_id = prompt.empty() ? request_id : Sha256Hex(prompt).substr(0, 32);
  BATON_ASSIGN_OR_RETURN(std::optional<int64_t> q, s.FindQuery(kLiveDataset, external_id));
  if (q) return *q;
  QueryRecord query;
  query.external_id = external_id;
  query.dataset = kLiveDataset;
  query.text = prompt;
  query.source = "baton serve";
  return s.InsertQuery(query);
}

}  // namespace

bool Recorder::RecordOutcome(LiveOutcome o) {
  return Enqueue([o = std::move(o)](Store& s) -> Status {
    BATON_ASSIGN_OR_RETURN(int64_t q, FindOrInsertLiveQuery(s, o.prompt, o.request_id));
    ExpertRecord expert;
    expert.name = o.expert;
    BATON_ASSIGN_OR_RETURN(int64_t e, s.UpsertExpert(expert));
    return s.InsertOutcome({.query_id = q,
                            .expert_id = e,
                            .score = o.score,
                            .cost_usd = o.cost_usd,
                            .tokens_in = o.tokens_in,
                            .tokens_out = o.tokens_out,
                            .latency_ms = o.latency_ms,
                            .source = OutcomeSource::kLive});
  });
}

bool Recorder::LogArchonCalls(std::vector<ArchonCallRecord> calls) {
  return Enqueue([calls = std::move(calls)](Store& s) -> Status {
    for (const ArchonCallRecord& c : calls) BATON_RETURN_IF_ERROR(s.LogArchonCall(c));
    return Status::Ok();
  });
}

bool Recorder::RecordFeedback(FeedbackSubmission f, std::function<void(StatusOr<FeedbackResult>)> done) {
  auto result = std::make_shared<StatusOr<FeedbackResult>>(Status::Internal("feedback was not processed"));
  const bool queued = Enqueue([f = std::move(f), result](Store& s) -> Status {
    *result = Status::Internal("feedback was not processed");
    FeedbackResult out;
    Status st = s.Atomically([&]() -> Status {
      BATON_ASSIGN_OR_RETURN(std::optional<RequestLogRecord> req, s.FindRequest(f.request_id));
      // Another key's request is answered exactly like an unknown id: a client learns nothing of others' requests.
      if (!req || req->client_key_hash != f.client_key_hash) {
        return Status::NotFound(fmt::format("no request with id '{}' was made with this key", f.request_id));
      }
      if (req->http_status != 200 || req->expert.empty()) {
        return Status::FailedPrecondition(
            fmt::format("request '{}' was not answered (HTTP {}{}{}): there is no answer to judge", f.request_id,
                        req->http_status, req->note.empty() ? "" : ", ", req->note));
      }
      BATON_ASSIGN_OR_RETURN(bool had, s.HasFeedback(f.request_id));
      if (had) return Status::AlreadyExists(fmt::format("request '{}' already has feedback", f.request_id));
      BATON_ASSIGN_OR_RETURN(int64_t q, FindOrInsertLiveQuery(s, req->prompt.value_or(""), f.request_id));
      ExpertRecord expert;
      expert.name = req->expert;
      BATON_ASSIGN_OR_RETURN(int64_t e, s.UpsertExpert(expert));
      BATON_ASSIGN_OR_RETURN(int64_t o, s.InsertOutcomeReturningId({.query_id = q,
                                                                    .expert_id = e,
                                                                    .score = f.score,
                                                                    .cost_usd = req->cost_usd,
                                                                    .tokens_in = req->tokens_in,
                                                                    .tokens_out = req->tokens_out,
                                                                    .latency_ms = req->latency_ms,
                                                                    .source = OutcomeSource::kLive}));
      // The primary key on request_id is what makes a second feedback impossible, even from another process.
      BATON_RETURN_IF_ERROR(s.InsertFeedback({.request_id = f.request_id,
                                              .client_key_hash = f.client_key_hash,
                                              .score = f.score,
                                              .note = f.note,
                                              .query_id = q,
                                              .expert_id = e,
                                              .outcome_id = o}));
      out = {req->expert, q, o};
      return Status::Ok();
    });
    if (st.ok()) {
      *result = std::move(out);
    } else {
      *result = std::move(st);
    }
    return Status::Ok();  // a refusal is the client's answer, not a recording failure
  });
  if (!queued) return false;
  WhenDurable([result, done = std::move(done)](bool committed) {
    if (!committed && result->ok()) {
      done(Status::IoError("the feedback could not be committed to the store"));
      return;
    }
    done(std::move(*result));
  });
  return true;
}

void Recorder::Flush() {
  std::unique_lock<std::mutex> lock(mu_);
  const uint64_t target = enqueued_, budget_target = budget_seq_;
  ++flush_waiters_;
  cv_.notify_one();
  done_cv_.wait(lock, [&] {
    return completed_ >= target && budget_done_ >= budget_target && durable_waiters_.empty() && telling_ == 0;
  });
  --flush_waiters_;
}

Status Recorder::WriteBatch(std::vector<Job>& batch, const std::map<std::string, ClientBudgetRecord>& budgets) {
  BATON_ASSIGN_OR_RETURN(Store::Transaction tx, store_->Begin());
  int64_t written = 0;
  for (Job& job : batch) {
    Status st = job(*store_);
    if (st.ok()) {
      ++written;
    } else {  // this write alone is lost (a constraint, a bad value): the rest of the batch still commits
      failed_.fetch_add(1);
      std::fprintf(stderr, "baton serve: recording failed: %s\n", st.ToString().c_str());
    }
  }
  for (const auto& [key, b] : budgets) {
    Status st = store_->SetClientSpend(b.key_hash, b.spent_usd, b.reserved_usd);
    if (!st.ok()) {
      failed_.fetch_add(1);
      std::fprintf(stderr, "baton serve: persisting a budget failed: %s\n", st.ToString().c_str());
    }
  }
  BATON_RETURN_IF_ERROR(tx.Commit());  // on failure the transaction rolls back: none of the batch is written
  written_.fetch_add(written);
  return Status::Ok();
}

void Recorder::Run() {
  std::vector<Job> batch;
  std::map<std::string, ClientBudgetRecord> budgets;
  std::vector<DurableWaiter> told;
  uint64_t budget_seq = 0;
  std::optional<std::chrono::steady_clock::time_point> failing_since;  // when the current run of failures began
  while (true) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait_for(lock, kIdleWait, [&] {
        return stop_ || flush_waiters_ > 0 || !durable_waiters_.empty() || queue_.size() >= kWakeBatch;
      });
      if (queue_.empty() && budgets_.empty()) {
        // Nothing left to write: whoever waits for durability has it already.
        told.swap(durable_waiters_);
        ++telling_;
        lock.unlock();
        for (DurableWaiter& w : told) w.done(true);
        told.clear();
        lock.lock();
        --telling_;
        done_cv_.notify_all();
        if (stop_ && durable_waiters_.empty()) return;
        continue;
      }
      budgets.swap(budgets_);
      budget_seq = budget_seq_;
      // At most 1000 writes per transaction keeps a batch short.
      while (!queue_.empty() && batch.size() < 1000) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    // One transaction per batch. When it cannot begin or commit, the batch and its budget states go back to the
    // front of the queue and are retried (waiters keep waiting) for up to retry_for_; past that the batch is given
    // up, its waiters told committed = false. Jobs never run outside a transaction: they would be written while
    // their waiters are told they were not.
    Status st = WriteBatch(batch, budgets);
    const bool committed = st.ok();
    if (!committed) {
      const auto now = std::chrono::steady_clock::now();
      if (!failing_since) failing_since = now;
      const bool retry = now - *failing_since < retry_for_;
      std::fprintf(stderr, "baton serve: recording %zu writes failed (%s): %s\n", batch.size(),
                   retry ? "retrying" : "given up", st.ToString().c_str());
      {
        std::lock_guard<std::mutex> lock(mu_);
        for (auto& [key, b] : budgets) budgets_.try_emplace(key, b);  // a newer state of the key wins
        if (retry) {
          queue_.insert(queue_.begin(), std::make_move_iterator(batch.begin()), std::make_move_iterator(batch.end()));
        } else {
          failed_.fetch_add(static_cast<int64_t>(batch.size()));
        }
      }
      budgets.clear();
      if (retry) {
        batch.clear();
        std::this_thread::sleep_for(kRetryWait);
        continue;
      }
      failing_since.reset();  // the next batch gets its own retry window
    } else {
      failing_since.reset();
    }
    budgets.clear();
    {
      std::lock_guard<std::mutex> lock(mu_);
      completed_ += batch.size();
      budget_done_ = budget_seq;
      // Waiters whose writes are all in: tell them, outside the lock.
      auto covered = [&](const DurableWaiter& w) { return w.jobs <= completed_ && w.budgets <= budget_done_; };
      auto it = std::stable_partition(durable_waiters_.begin(), durable_waiters_.end(),
                                      [&](const DurableWaiter& w) { return !covered(w); });
      std::move(it, durable_waiters_.end(), std::back_inserter(told));
      durable_waiters_.erase(it, durable_waiters_.end());
      ++telling_;
    }
    for (DurableWaiter& w : told) w.done(committed);
    told.clear();
    {
      std::lock_guard<std::mutex> lock(mu_);
      --telling_;
    }
    done_cv_.notify_all();
    batch.clear();
  }
}

}  // namespace baton::gateway
