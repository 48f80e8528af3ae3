// The decorators of expert.h: MeteredExpert, ConcurrencyLimitedExpert, RetryingExpert; and ExpertMeter.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <random>
#include <thread>
#include <utility>

#include <fmt/format.h>

#include "baton/expert.h"

namespace baton {
namespace {

using Clock = std::chrono::steady_clock;

void AtomicMax(std::atomic<int64_t>& a, int64_t v) {
  int64_t cur = a.load(std::memory_order_relaxed);
  while (cur < v && !a.compare_exchange_weak(cur, v, std::memory_order_relaxed)) {
  }
}

std::chrono::milliseconds Remaining(Clock::time_point deadline) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
}

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
    prompt_tokens.fetch_add(result->usage.prompt_tokens, std::memory_order_relaxed);
    completion_tokens.fetch_add(result->usage.completion_tokens, std::memory_order_relaxed);
    cost_nano_usd.fetch_add(std::llround(result->cost_usd * 1e9), std::memory_order_relaxed);
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

// ---------------------------------------------------------------------------------------------------------------------
// ConcurrencyLimitedExpert

ConcurrencyLimitedExpert::ConcurrencyLimitedExpert(std::unique_ptr<ExpertBackend> inner, int max_in_flight)
    : inner_(std::move(inner)), max_in_flight_(std::max(1, max_in_flight)) {}

int ConcurrencyLimitedExpert::in_flight() const {
  std::lock_guard<std::mutex> lock(mu_);
  return in_flight_;
}

StatusOr<ChatResult> ConcurrencyLimitedExpert::Complete(const ChatRequest& request, const StreamSink* sink) {
  const auto start = Clock::now();
  const auto deadline = start + request.timeout;
  {
    std::unique_lock<std::mutex> lock(mu_);
    if (!cv_.wait_until(lock, deadline, [this] { return in_flight_ < max_in_flight_; })) {
      return Status::ResourceExhausted(fmt::format("expert '{}': all {} call slots stayed busy for {} ms", name(),
                                                   max_in_flight_, request.timeout.count()));
    }
    ++in_flight_;
  }
  struct SlotRelease {
    ConcurrencyLimitedExpert* self;
    ~SlotRelease() {
      {
        std::lock_guard<std::mutex> lock(self->mu_);
        --self->in_flight_;
      }
      self->cv_.notify_one();
    }
  } release{this};
  ChatRequest rest = request;
  rest.timeout = Remaining(deadline);
  if (rest.timeout.count() <= 0) {
    return Status::ResourceExhausted(fmt::format("expert '{}': no time left after waiting for a call slot", name()));
  }
  return inner_->Complete(rest, sink);
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
    tracking = [&delivered, sink](std::string_view delta) {
      delivered = true;
      return (*sink)(delta);
    };
  }
  thread_local std::mt19937_64 rng{std::random_device{}()};
  ChatRequest attempt_request = request;
  for (int attempt = 0;; ++attempt) {
    attempt_request.timeout = Remaining(deadline);
    StatusOr<ChatResult> r = inner_->Complete(attempt_request, tracking ? &tracking : nullptr);
    if (r.ok()) return r;
    const StatusCode code = r.status().code();
    const bool retryable = code == StatusCode::kUnavailable || code == StatusCode::kResourceExhausted;
    if (!retryable || delivered || attempt >= policy_.max_retries) {
      if (attempt == 0 || !retryable) return r;
      return r.status().WithContext(fmt::format("after {} attempts", attempt + 1));
    }
    const double cap_ms =
        std::min<double>(static_cast<double>(policy_.max_backoff.count()),
                         static_cast<double>(policy_.initial_backoff.count()) * std::ldexp(1.0, attempt));
    const auto wait = std::chrono::microseconds(
        static_cast<int64_t>(std::uniform_real_distribution<double>(0.0, std::max(0.0, cap_ms))(rng) * 1000.0));
    // Leave at least a little time for the next attempt itself.
    if (Clock::now() + wait + std::chrono::milliseconds(1) >= deadline) {
      return r.status().WithContext(fmt::format("after {} attempts (no time left to retry)", attempt + 1));
    }
    std::this_thread::sleep_for(wait);
  }
}

}  // namespace baton
