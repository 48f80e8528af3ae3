// The decorators of expert.h: MeteredExpert, ConcurrencyLimitedExpert, RetryingExpert; and ExpertMeter.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <utility>

#include <fmt/format.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include "baton/expert.h"

namespace baton {
namespace {

namespace net = boost::asio;
using Clock = std::chrono::steady_clock;

void AtomicMax(std::atomic<int64_t>& a, int64_t v) {
  int64_t cur = a.load(std::memory_order_relaxed);
  while (cur < v && !a.compare_exchange_weak(cur, v, std::memory_order_relaxed)) {
  }
}

std::chrono::milliseconds Remaining(Clock::time_point deadline) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
}

// What ConcurrencyLimitedExpert answers a caller that waited `waited` for a slot in vain.
Status SlotsStayedBusy(const std::string& name, int slots, std::chrono::milliseconds waited) {
  return Status::ResourceExhausted(
      fmt::format("expert '{}': all {} call slots stayed busy for {} ms", name, slots, waited.count()));
}
// ... and one whose slot came too late to leave any time for the call.
Status NoTimeLeftAfterSlotWait(const std::string& name) {
  return Status::ResourceExhausted(fmt::format("expert '{}': no time left after waiting for a call slot", name));
}

// What RetryingExpert does after an attempt failed: wait `backoff` and try again, or give up with `final_status`.
struct RetryStep {
  std::optional<std::chrono::microseconds> backoff;  // set: retry after this wait
  Status final_status;                               // when not retrying
};

// `attempt` counts from 0; `delivered` says whether the sink already got content.
RetryStep NextRetryStep(const RetryPolicy& policy, const Status& status, int attempt, bool delivered,
                        Clock::time_point deadline) {
  const StatusCode code = status.code();
  const bool retryable = code == StatusCode::kUnavailable || code == StatusCode::kResourceExhausted;
  if (!retryable || delivered || attempt >= policy.max_retries) {
    if (attempt == 0 || !retryable) return {std::nullopt, status};
    return {std::nullopt, status.WithContext(fmt::format("after {} attempts", attempt + 1))};
  }
  thread_local std::mt19937_64 rng{std::random_device{}()};
  const double cap_ms =
      std::min<double>(static_cast<double>(policy.max_backoff.count()),
                       static_cast<double>(policy.initial_backoff.count()) * std::ldexp(1.0, attempt));
  const auto wait = std::chrono::microseconds(
      static_cast<int64_t>(std::uniform_real_distribution<double>(0.0, std::max(0.0, cap_ms))(rng) * 1000.0));
  // Leave at least a little time for the next attempt itself.
  if (Clock::now() + wait + std::chrono::milliseconds(1) >= deadline) {
    return {std::nullopt, status.WithContext(fmt::format("after {} attempts (no time left to retry)", attempt + 1))};
  }
  return {wait, Status::Ok()};
}

// One asynchronous call of RetryingExpert. Its attempts run one after another and everything after the first start
// happens on ctx.loop (the sink, the completion handlers of the attempts, the backoff timer), so it needs no lock.
// Owned by the handlers of its pending attempt or backoff wait.
class RetryingCall : public std::enable_shared_from_this<RetryingCall> {
 public:
  RetryingCall(ExpertBackend& inner, const RetryPolicy& policy, ChatRequest request, StreamSink sink,
               const AsyncContext& ctx, CompletionHandler done)
      : inner_(inner),
        policy_(policy),
        deadline_(Clock::now() + request.timeout),
        request_(std::move(request)),
        sink_(std::move(sink)),
        ctx_(ctx),
        done_(std::move(done)),
        backoff_(*ctx.loop) {}

  void Attempt() {
    request_.timeout = Remaining(deadline_);
    StreamSink tracking;
    if (sink_) {
      tracking = [self = shared_from_this()](const StreamDelta& delta) {
        self->delivered_ = true;
        return self->sink_(delta);
      };
    }
    inner_.CompleteAsync(request_, std::move(tracking), ctx_,
                         [self = shared_from_this()](StatusOr<ChatResult> r) { self->OnAttemptDone(std::move(r)); });
  }

 private:
  void OnAttemptDone(StatusOr<ChatResult> r) {
    if (r.ok()) return done_(std::move(r));
    RetryStep step = NextRetryStep(policy_, r.status(), attempt_, delivered_, deadline_);
    if (!step.backoff) return done_(std::move(step.final_status));
    ++attempt_;
    backoff_.expires_after(*step.backoff);
    // Nothing cancels the timer: its handler runs when the wait is over, or is destroyed unrun with the loop.
    backoff_.async_wait([self = shared_from_this()](const boost::system::error_code&) { self->Attempt(); });
  }

  ExpertBackend& inner_;
  const RetryPolicy& policy_;
  const Clock::time_point deadline_;
  ChatRequest request_;  // timeout: the time left when the latest attempt started
  StreamSink sink_;
  const AsyncContext ctx_;
  CompletionHandler done_;
  net::steady_timer backoff_;
  int attempt_ = 0;         // 0-based number of the attempt running
  bool delivered_ = false;  // the sink got content: no more retries
};

}  // namespace

// ---------------------------------------------------------------------------------------------------------------------
// ExpertMeter

void ExpertMeter::Record(const Status& status, const ChatResult* result, double latency_ms) {
  calls.fetch_add(1, std::memory_order_relaxed);
  if (!status.ok()) {
    errors.fetch_add(1, std::memory_order_relaxed);
    const int code = static_cast<int>(status.code());
    if (code >= 0 && code < 16) errors_by_code[code].fetch_add(1, std::memory_order_relaxed);
  } else if (result != nullptr) {
    // Counters only grow, whatever a backend reports (negative or NaN usage counts as 0).
    prompt_tokens.fetch_add(std::max<int64_t>(0, result->usage.prompt_tokens), std::memory_order_relaxed);
    completion_tokens.fetch_add(std::max<int64_t>(0, result->usage.completion_tokens), std::memory_order_relaxed);
    const double cost = result->cost_usd > 0 && std::isfinite(result->cost_usd) ? result->cost_usd : 0.0;
    cost_nano_usd.fetch_add(std::llround(std::min(cost, 9e9) * 1e9), std::memory_order_relaxed);
  }
  const auto us = static_cast<int64_t>(std::llround(latency_ms * 1000));
  latency_us_sum.fetch_add(us, std::memory_order_relaxed);
  AtomicMax(latency_us_max, us);
}

ExpertMeter::Snapshot ExpertMeter::Read() const {
  Snapshot s;
  s.calls = calls.load(std::memory_order_relaxed);
  s.errors = errors.load(std::memory_order_relaxed);
  s.in_flight = in_flight.load(std::memory_order_relaxed);
  s.prompt_tokens = prompt_tokens.load(std::memory_order_relaxed);
  s.completion_tokens = completion_tokens.load(std::memory_order_relaxed);
  s.cost_usd = static_cast<double>(cost_nano_usd.load(std::memory_order_relaxed)) * 1e-9;
  s.latency_ms_sum = static_cast<double>(latency_us_sum.load(std::memory_order_relaxed)) / 1000.0;
  s.latency_ms_max = static_cast<double>(latency_us_max.load(std::memory_order_relaxed)) / 1000.0;
  for (int i = 0; i < 16; ++i) s.errors_by_code[i] = errors_by_code[i].load(std::memory_order_relaxed);
  return s;
}

// ---------------------------------------------------------------------------------------------------------------------
// MeteredExpert

MeteredExpert::MeteredExpert(std::unique_ptr<ExpertBackend> inner, std::shared_ptr<ExpertMeter> meter)
    : inner_(std::move(inner)), meter_(meter ? std::move(meter) : std::make_shared<ExpertMeter>()) {}

StatusOr<ChatResult> MeteredExpert::Complete(const ChatRequest& request, const StreamSink* sink) {
  meter_->in_flight.fetch_add(1, std::memory_order_relaxed);
  const auto start = Clock::now();
  StatusOr<ChatResult> r = inner_->Complete(request, sink);
  const double ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
  meter_->Record(r.status(), r.ok() ? &*r : nullptr, ms);
  meter_->in_flight.fetch_sub(1, std::memory_order_relaxed);
  return r;
}

void MeteredExpert::CompleteAsync(ChatRequest request, StreamSink sink, const AsyncContext& ctx,
                                  CompletionHandler done) {
  if (ctx.loop == nullptr) return;  // as ExpertBackend::CompleteAsync: no call, so nothing to count
  meter_->in_flight.fetch_add(1, std::memory_order_relaxed);
  const auto start = Clock::now();
  inner_->CompleteAsync(std::move(request), std::move(sink), ctx,
                        [meter = meter_, start, done = std::move(done)](StatusOr<ChatResult> r) {
                          const double ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
                          meter->Record(r.status(), r.ok() ? &*r : nullptr, ms);
                          meter->in_flight.fetch_sub(1, std::memory_order_relaxed);
                          done(std::move(r));
                        });
}

// ---------------------------------------------------------------------------------------------------------------------
// ConcurrencyLimitedExpert

// A caller queued for a slot. Shared by the queue and, for an asynchronous caller, the handlers of its timer and of
// its start, so that whichever runs last frees it.
struct ConcurrencyLimitedExpert::Waiter {
  bool granted = false;                              // guarded by mu_: a slot was handed over (it left the queue then)
  std::list<std::shared_ptr<Waiter>>::iterator pos;  // guarded by mu_: its place in waiters_ while queued
  // A blocked Complete: woken on hand-over.
  std::condition_variable wake;
  // A CompleteAsync (ctx.loop != nullptr): the call to start on its loop on hand-over.
  AsyncContext ctx;
  ChatRequest request;
  StreamSink sink;
  CompletionHandler done;
  Clock::time_point deadline;
  // Owned by its own pending wait, so that it goes away with the loop if the loop dies first; cancelled on hand-over.
  std::weak_ptr<net::steady_timer> timer;
};

ConcurrencyLimitedExpert::ConcurrencyLimitedExpert(std::unique_ptr<ExpertBackend> inner, int max_in_flight)
    : inner_(std::move(inner)), max_in_flight_(std::max(1, max_in_flight)) {}

int ConcurrencyLimitedExpert::in_flight() const {
  std::lock_guard<std::mutex> lock(mu_);
  return in_flight_;
}

int ConcurrencyLimitedExpert::waiting() const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<int>(waiters_.size());
}

void ConcurrencyLimitedExpert::Release() {
  std::shared_ptr<Waiter> next;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (waiters_.empty()) {
      --in_flight_;
      return;
    }
    // The slot passes to the oldest waiter as it is: in_flight_ stays.
    next = std::move(waiters_.front());
    waiters_.pop_front();
    next->granted = true;
  }
  if (next->ctx.loop != nullptr) {
    net::post(*next->ctx.loop, [this, next] { StartHandedOver(next); });
  } else {
    next->wake.notify_one();  // `next` keeps the condition variable alive even if the waiter already woke
  }
}

StatusOr<ChatResult> ConcurrencyLimitedExpert::Complete(const ChatRequest& request, const StreamSink* sink) {
  const auto start = Clock::now();
  const auto deadline = start + request.timeout;
  {
    std::unique_lock<std::mutex> lock(mu_);
    // Waiters exist only while every slot is taken, so a free slot means nobody is ahead of this caller.
    if (in_flight_ < max_in_flight_) {
      ++in_flight_;
    } else {
      auto w = std::make_shared<Waiter>();
      waiters_.push_back(w);
      w->pos = std::prev(waiters_.end());
      if (!w->wake.wait_until(lock, deadline, [&w] { return w->granted; })) {
        waiters_.erase(w->pos);
        return SlotsStayedBusy(name(), max_in_flight_, request.timeout);
      }
    }
  }
  struct SlotRelease {
    ConcurrencyLimitedExpert* self;
    ~SlotRelease() {
      try {
        self->Release();
      } catch (...) {  // a mutex that cannot be locked: the slot is lost, which only lowers the limit
      }
    }
  } release{this};
  ChatRequest rest = request;
  rest.timeout = Remaining(deadline);
  if (rest.timeout.count() <= 0) {
    return NoTimeLeftAfterSlotWait(name());
  }
  return inner_->Complete(rest, sink);
}

void ConcurrencyLimitedExpert::CompleteAsync(ChatRequest request, StreamSink sink, const AsyncContext& ctx,
                                             CompletionHandler done) {
  if (ctx.loop == nullptr) return;  // as ExpertBackend::CompleteAsync: nowhere to answer, so no slot is taken
  const auto deadline = Clock::now() + request.timeout;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (in_flight_ >= max_in_flight_) {
      auto w = std::make_shared<Waiter>();
      w->ctx = ctx;
      w->request = std::move(request);
      w->sink = std::move(sink);
      w->done = std::move(done);
      w->deadline = deadline;
      waiters_.push_back(w);
      w->pos = std::prev(waiters_.end());
      // Armed under the lock: a hand-over (which cancels the timer on the loop) cannot come before the wait exists.
      auto timer = std::make_shared<net::steady_timer>(*ctx.loop, deadline);
      w->timer = timer;
      timer->async_wait([this, w, timer](const boost::system::error_code&) { OnWaitTimer(w); });
      return;
    }
    ++in_flight_;
  }
  RunInSlot(std::move(request), std::move(sink), ctx, std::move(done), deadline);
}

void ConcurrencyLimitedExpert::OnWaitTimer(const std::shared_ptr<Waiter>& w) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (w->granted) return;  // the hand-over came first: StartHandedOver is queued on this loop
    waiters_.erase(w->pos);
  }
  w->done(SlotsStayedBusy(name(), max_in_flight_, w->request.timeout));
}

void ConcurrencyLimitedExpert::StartHandedOver(const std::shared_ptr<Waiter>& w) {
  if (std::shared_ptr<net::steady_timer> timer = w->timer.lock()) timer->cancel();
  RunInSlot(std::move(w->request), std::move(w->sink), w->ctx, std::move(w->done), w->deadline);
}

void ConcurrencyLimitedExpert::RunInSlot(ChatRequest request, StreamSink sink, const AsyncContext& ctx,
                                         CompletionHandler done, Clock::time_point deadline) {
  request.timeout = Remaining(deadline);
  if (request.timeout.count() <= 0) {
    Release();
    // Posted: this may still run inside CompleteAsync.
    net::post(*ctx.loop, [done = std::move(done), status = NoTimeLeftAfterSlotWait(name())] { done(status); });
    return;
  }
  inner_->CompleteAsync(std::move(request), std::move(sink), ctx,
                        [this, done = std::move(done)](StatusOr<ChatResult> r) {
                          Release();
                          done(std::move(r));
                        });
}

// ---------------------------------------------------------------------------------------------------------------------
// RetryingExpert

RetryingExpert::RetryingExpert(std::unique_ptr<ExpertBackend> inner, RetryPolicy policy)
    : inner_(std::move(inner)), policy_(policy) {}

StatusOr<ChatResult> RetryingExpert::Complete(const ChatRequest& request, const StreamSink* sink) {
  const auto deadline = Clock::now() + request.timeout;
  bool delivered = false;
  StreamSink tracking;
  if (sink != nullptr && *sink) {
    tracking = [&delivered, sink](const StreamDelta& delta) {
      delivered = true;
      return (*sink)(delta);
    };
  }
  ChatRequest attempt_request = request;
  for (int attempt = 0;; ++attempt) {
    attempt_request.timeout = Remaining(deadline);
    StatusOr<ChatResult> r = inner_->Complete(attempt_request, tracking ? &tracking : nullptr);
    if (r.ok()) return r;
    RetryStep step = NextRetryStep(policy_, r.status(), attempt, delivered, deadline);
    if (!step.backoff) return step.final_status;
    std::this_thread::sleep_for(*step.backoff);
  }
}

void RetryingExpert::CompleteAsync(ChatRequest request, StreamSink sink, const AsyncContext& ctx,
                                   CompletionHandler done) {
  if (ctx.loop == nullptr) return;  // as ExpertBackend::CompleteAsync: nowhere to answer
  std::make_shared<RetryingCall>(*inner_, policy_, std::move(request), std::move(sink), ctx, std::move(done))
      ->Attempt();
}

}  // namespace baton
