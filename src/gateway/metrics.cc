#include "gateway/metrics.h"

#include <fmt/format.h>

namespace baton::gateway {

std::string EscapeLabel(const std::string& v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '"')
      out += "\\\"";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

const std::vector<std::string>& Metrics::Routes() {
  static const std::vector<std::string> routes = {
      "/v1/chat/completions", "/v1/models", "/v1/feedback", "/healthz", "/metrics", "/admin/reload"};
  return routes;
}

namespace {
// The route label of a path: the OpenAI paths without /v1 count as their /v1 form.
const std::string& RouteLabel(const std::string& path) {
  static const std::string other = "other";
  for (const std::string& r : Metrics::Routes()) {
    if (path == r || (r.starts_with("/v1/") && path == std::string_view(r).substr(3))) return r;
  }
  return other;
}
}  // namespace

void Metrics::ObserveRequest(const std::string& path, int code, double seconds) {
  size_t b = 0;
  while (b < kBuckets.size() && seconds > kBuckets[b]) ++b;
  buckets_[b].fetch_add(1, std::memory_order_relaxed);
  latency_count_.fetch_add(1, std::memory_order_relaxed);
  latency_ns_sum_.fetch_add(static_cast<int64_t>(seconds * 1e9), std::memory_order_relaxed);
  // Status codes are bounded by the server (it only sends codes it knows), so (route, code) pairs are too.
  std::lock_guard<std::mutex> lock(mu_);
  ++requests_[{RouteLabel(path), code}];
}

void Metrics::CountClientCancellation(const std::string& expert) {
  std::lock_guard<std::mutex> lock(mu_);
  ++cancellations_[expert];
}

void Metrics::CountUsageAnomaly(const std::string& expert) {
  std::lock_guard<std::mutex> lock(mu_);
  ++usage_anomalies_[expert];
}

void Metrics::CountArchonCall(const std::string& architecture, int layer, const std::string& component,
                              const std::string& status) {
  std::lock_guard<std::mutex> lock(mu_);
  ++archon_calls_[{architecture, layer, component, status}];
}

void Metrics::CountArchonRun(const std::string& architecture, const std::string& outcome) {
  std::lock_guard<std::mutex> lock(mu_);
  ++archon_runs_[{architecture, outcome}];
}

void Metrics::AddSpend(const std::string& expert, const std::string& key_name, double usd) {
  std::lock_guard<std::mutex> lock(mu_);
  spend_by_expert_[expert] += usd;
  spend_by_key_[key_name] += usd;
}

void Metrics::CountRoutingDecision(const std::string& expert) {
  std::lock_guard<std::mutex> lock(mu_);
  ++decisions_[expert];
}

void Metrics::CountUpstreamFailure(const std::string& expert, const std::string& reason) {
  std::lock_guard<std::mutex> lock(mu_);
  ++failures_[{expert, reason}];
}

void Metrics::CountFeedback(const std::string& result) {
  std::lock_guard<std::mutex> lock(mu_);
  ++feedback_[result];
}

void Metrics::CountReload(bool ok) {
  (ok ? reloads_ok_ : reloads_failed_).fetch_add(1, std::memory_order_relaxed);
}

void Metrics::CountBudgetUnavailable() {
  budget_unavailable_.fetch_add(1, std::memory_order_relaxed);
}

void Metrics::CountFallback() {
  fallbacks_.fetch_add(1, std::memory_order_relaxed);
}

std::string Metrics::Render(const std::vector<std::pair<std::string, std::shared_ptr<ExpertMeter>>>& meters,
                            const std::vector<std::pair<std::string, double>>& extra_gauges) const {
  std::string o;
  auto header = [&o](const char* name, const char* type, const char* help) {
    o += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
  };
  {
    std::lock_guard<std::mutex> lock(mu_);
    header("baton_http_requests_total", "counter", "HTTP requests answered, by route and status code.");
    for (const auto& [k, n] : requests_) {
      o += fmt::format("baton_http_requests_total{{path=\"{}\",code=\"{}\"}} {}\n", EscapeLabel(k.first), k.second, n);
    }
    header("baton_http_errors_total", "counter", "HTTP requests answered with a status >= 400, by status code.");
    std::map<int, int64_t> errors;
    for (const auto& [k, n] : requests_) {
      if (k.second >= 400) errors[k.second] += n;
    }
    for (const auto& [code, n] : errors) o += fmt::format("baton_http_errors_total{{code=\"{}\"}} {}\n", code, n);
    header("baton_spend_usd_total", "counter", "USD spent on upstream calls, by expert.");
    for (const auto& [e, v] : spend_by_expert_) {
      o += fmt::format("baton_spend_usd_total{{expert=\"{}\"}} {:.9g}\n", EscapeLabel(e), v);
    }
    header("baton_key_spend_usd_total", "counter", "USD spent on upstream calls, by client key name.");
    for (const auto& [k, v] : spend_by_key_) {
      o += fmt::format("baton_key_spend_usd_total{{key=\"{}\"}} {:.9g}\n", EscapeLabel(k), v);
    }
    header("baton_routing_decisions_total", "counter", "Requests for model \"baton\" routed to each expert.");
    for (const auto& [e, n] : decisions_) {
      o += fmt::format("baton_routing_decisions_total{{expert=\"{}\"}} {}\n", EscapeLabel(e), n);
    }
    header("baton_upstream_failures_total", "counter", "Upstream calls that failed, by expert and reason.");
    for (const auto& [k, n] : failures_) {
      o += fmt::format("baton_upstream_failures_total{{expert=\"{}\",reason=\"{}\"}} {}\n", EscapeLabel(k.first),
                       EscapeLabel(k.second), n);
    }
    header("baton_client_cancellations_total", "counter",
           "Streamed requests whose client went away before the answer was complete, by expert.");
    for (const auto& [e, n] : cancellations_) {
      o += fmt::format("baton_client_cancellations_total{{expert=\"{}\"}} {}\n", EscapeLabel(e), n);
    }
    header("baton_upstream_usage_anomalies_total", "counter",
           "Upstream answers whose reported usage was outside what the request allowed (clamped), by expert.");
    for (const auto& [e, n] : usage_anomalies_) {
      o += fmt::format("baton_upstream_usage_anomalies_total{{expert=\"{}\"}} {}\n", EscapeLabel(e), n);
    }
    if (!archon_runs_.empty()) {
      header("baton_archon_runs_total", "counter",
             "Requests served by an Archon architecture, by outcome (ok, degraded, failed).");
      for (const auto& [k, n] : archon_runs_) {
        o += fmt::format("baton_archon_runs_total{{architecture=\"{}\",outcome=\"{}\"}} {}\n", EscapeLabel(k.first),
                         EscapeLabel(k.second), n);
      }
    }
    if (!archon_calls_.empty()) {
      header("baton_archon_calls_total", "counter",
             "Inference calls made by Archon architectures, by layer (1-based), component and status.");
      for (const auto& [k, n] : archon_calls_) {
        const auto& [arch, layer, component, status] = k;
        o += fmt::format(
            "baton_archon_calls_total{{architecture=\"{}\",layer=\"{}\",component=\"{}\",status=\"{}\"}} {}\n",
            EscapeLabel(arch), layer + 1, EscapeLabel(component), EscapeLabel(status), n);
      }
    }
    header("baton_feedback_total", "counter",
           "POST /v1/feedback calls, by result: accepted, or the reason it was rejected.");
    for (const auto& [r, n] : feedback_) {
      o += fmt::format("baton_feedback_total{{result=\"{}\"}} {}\n", EscapeLabel(r), n);
    }
  }
  header("baton_router_reloads_total", "counter",
         "Router model reloads (SIGHUP or POST /admin/reload), by result; a failed one keeps the old model.");
  o += fmt::format("baton_router_reloads_total{{result=\"ok\"}} {}\n", reloads_ok_.load());
  o += fmt::format("baton_router_reloads_total{{result=\"failed\"}} {}\n", reloads_failed_.load());
  header("baton_fallbacks_total", "counter", "Times a failed expert was replaced by the next best one.");
  o += fmt::format("baton_fallbacks_total {}\n", fallbacks_.load());
  header("baton_budget_unavailable_total", "counter",
         "Requests refused (503) because the budget store could not be reached.");
  o += fmt::format("baton_budget_unavailable_total {}\n", budget_unavailable_.load());
  header("baton_http_request_duration_seconds", "histogram", "Time from a request's arrival to its response.");
  int64_t cumulative = 0;
  for (size_t b = 0; b < kBuckets.size(); ++b) {
    cumulative += buckets_[b].load();
    o += fmt::format("baton_http_request_duration_seconds_bucket{{le=\"{}\"}} {}\n", kBuckets[b], cumulative);
  }
  cumulative += buckets_[kBuckets.size()].load();
  o += fmt::format("baton_http_request_duration_seconds_bucket{{le=\"+Inf\"}} {}\n", cumulative);
  o += fmt::format("baton_http_request_duration_seconds_sum {:.9g}\n", latency_ns_sum_.load() / 1e9);
  o += fmt::format("baton_http_request_duration_seconds_count {}\n", latency_count_.load());
  if (!meters.empty()) {
    header("baton_expert_calls_total", "counter", "Upstream call attempts finished, by expert.");
    for (const auto& [name, m] : meters) {
      o += fmt::format("baton_expert_calls_total{{expert=\"{}\"}} {}\n", EscapeLabel(name), m->Read().calls);
    }
    header("baton_expert_errors_total", "counter", "Upstream call attempts that failed, by expert.");
    for (const auto& [name, m] : meters) {
      o += fmt::format("baton_expert_errors_total{{expert=\"{}\"}} {}\n", EscapeLabel(name), m->Read().errors);
    }
    header("baton_expert_in_flight", "gauge", "Upstream calls in flight, by expert.");
    for (const auto& [name, m] : meters) {
      o += fmt::format("baton_expert_in_flight{{expert=\"{}\"}} {}\n", EscapeLabel(name), m->Read().in_flight);
    }
    header("baton_expert_tokens_total", "counter", "Tokens of successful upstream calls, by expert and direction.");
    for (const auto& [name, m] : meters) {
      const ExpertMeter::Snapshot s = m->Read();
      o += fmt::format("baton_expert_tokens_total{{expert=\"{}\",direction=\"in\"}} {}\n", EscapeLabel(name),
                       s.prompt_tokens);
      o += fmt::format("baton_expert_tokens_total{{expert=\"{}\",direction=\"out\"}} {}\n", EscapeLabel(name),
                       s.completion_tokens);
    }
  }
  for (const auto& [name, v] : extra_gauges) {
    header(name.c_str(), "gauge", "Gateway state.");
    o += fmt::format("{} {:.9g}\n", name, v);
  }
  return o;
}

}  // namespace baton::gateway
