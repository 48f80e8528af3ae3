// The gateway's Prometheus metrics, rendered by hand in the text exposition format 0.0.4.
//
// Thread-safety: every method is safe from many threads. Counters keyed by label live in maps guarded by mu_; the
// latency histogram's buckets are atomics (no lock on the request path for it).
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "baton/expert.h"

namespace baton::gateway {

class Metrics {
 public:
  // One finished HTTP exchange: its path, status code and total latency. Requests are labelled by route (one of
  // Routes(), or "other"), never by the raw path: a client sending unique paths cannot grow the metrics.
  void ObserveRequest(const std::string& path, int code, double seconds);
  // The routes requests are labelled with, besides "other".
  static const std::vector<std::string>& Routes();
  void AddSpend(const std::string& expert, const std::string& key_name, double usd);
  void CountRoutingDecision(const std::string& expert);
  void CountUpstreamFailure(const std::string& expert, const std::string& reason);
  void CountFallback();
  // A request refused with 503 because the budget ledger could not be reached (its shared database is down).
  void CountBudgetUnavailable();
  // A streaming client went away before its answer was complete (not an upstream failure).
  void CountClientCancellation(const std::string& expert);
  // An upstream reported usage outside what the request allowed; it was clamped (see ChatResult).
  void CountUsageAnomaly(const std::string& expert);

  // One inference call of an Archon architecture (or a component that made none), by layer, component and how it
  // ended ("ok" or the error's code name).
  void CountArchonCall(const std::string& architecture, int layer, const std::string& component,
                       const std::string& status);
  // One request served by an architecture: "ok", "degraded" (stopped early or a component failed), "failed".
  void CountArchonRun(const std::string& architecture, const std::string& outcome);
  // A POST /v1/feedback answered: "accepted" or the rejection's reason (a fixed set of codes, so labels stay bounded).
  void CountFeedback(const std::string& result);
  // A router model reload finished (ok) or was refused, the old model still serving (!ok).
  void CountReload(bool ok);

  // Renders every metric; `meters` adds each expert's meter (calls, errors, in flight, tokens).
  std::string Render(const std::vector<std::pair<std::string, std::shared_ptr<ExpertMeter>>>& meters,
                     const std::vector<std::pair<std::string, double>>& extra_gauges = {}) const;

  static constexpr std::array<double, 14> kBuckets = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
                                                      0.025,  0.05,    0.1,    0.25,  0.5,    1,     5};

 private:
  mutable std::mutex mu_;
  std::map<std::pair<std::string, int>, int64_t> requests_;          // (path, code); guarded by mu_
  std::map<std::string, double> spend_by_expert_, spend_by_key_;     // guarded by mu_
  std::map<std::string, int64_t> decisions_;                         // guarded by mu_
  std::map<std::pair<std::string, std::string>, int64_t> failures_;  // (expert, reason); guarded by mu_
  std::map<std::string, int64_t> cancellations_, usage_anomalies_;   // by expert; guarded by mu_
  // (architecture, layer, component, status); guarded by mu_. Bounded: architectures and their layers are configured.
  std::map<std::tuple<std::string, int, std::string, std::string>, int64_t> archon_calls_;
  std::map<std::pair<std::string, std::string>, int64_t> archon_runs_;  // (architecture, outcome); guarded by mu_
  std::map<std::string, int64_t> feedback_;                             // by result; guarded by mu_
  std::atomic<int64_t> fallbacks_{0};
  std::atomic<int64_t> budget_unavailable_{0};
  std::atomic<int64_t> reloads_ok_{0}, reloads_failed_{0};
  std::array<std::atomic<int64_t>, kBuckets.size() + 1> buckets_{};  // last = +Inf
  std::atomic<int64_t> latency_count_{0};
  std::atomic<int64_t> latency_ns_sum_{0};
};

// Escapes a label value for the text format (backslash, double quote, newline).
std::string EscapeLabel(const std::string& v);

}  // namespace baton::gateway
