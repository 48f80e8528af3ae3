// Gateway::State: everything a running gateway owns. Internal to src/gateway/.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/thread_pool.hpp>

#include "baton/archon.h"
#include "gateway/auth.h"
#include "gateway/budget.h"
#include "gateway/config.h"
#include "gateway/gateway.h"
#include "gateway/http_server.h"
#include "gateway/metrics.h"
#include "gateway/recorder.h"
#include "gateway/router_service.h"

namespace baton::gateway {

// Token bucket of one client key. Thread-safety: mu guards the bucket.
struct RateLimiter {
  double rate = 0;  // tokens per second; 0 = unlimited
  std::mutex mu;
  double tokens = 0;
  std::chrono::steady_clock::time_point last;
  bool Allow();
  // Whole seconds until the next request would be allowed (at least 1): a 429's Retry-After.
  int RetryAfterSeconds();
};

// What the gateway tracks per client key besides its budget (the ledger holds that).
struct KeyState {
  RateLimiter limiter;
  std::atomic<int> in_flight{0};  // requests of this key not yet finished
};

// An architecture served as model "archon/<name>": its configuration and the parsed Archon JSON, loaded and
// validated against the configured experts at start-up.
struct ServedArchitecture {
  ArchitectureConfig config;
  archon::Architecture arch;
};
inline constexpr std::string_view kArchitecturePrefix = "archon/";

struct Gateway::State {
  GatewayConfig config;
  std::unique_ptr<KeyRing> keys;
  std::unique_ptr<KeyRing> metrics_key;  // null = no metrics key configured
  std::unique_ptr<RouterService> router;
  std::unique_ptr<Recorder> recorder;  // owns the store; declared before ledger (ledger persists through it)
  std::unique_ptr<BudgetLedger> ledger;
  Metrics metrics;
  std::vector<std::unique_ptr<KeyState>> key_state;                // per key, in config.keys order
  std::vector<std::unique_ptr<ServedArchitecture>> architectures;  // config.architectures order
  archon::ExpertLookup archon_experts;  // an architecture's model name -> the expert of that name (or upstream model)
  std::string models_json;              // GET /v1/models, built once
  std::unique_ptr<boost::asio::thread_pool> blocking;  // experts that can only block; joined before server dies
  std::unique_ptr<HttpServer> server;
  bool shut_down = false;
  std::mutex reload_mu;  // one router reload at a time
};

// The architecture served as "archon/<name>", nullptr when none is configured.
const ServedArchitecture* FindArchitecture(const Gateway::State& s, std::string_view name);

// POST /v1/chat/completions, on the connection's event loop; returns once the upstream call is under way. Answers
// through `ex` in every case; never throws.
void HandleChatCompletions(Gateway::State& s, HttpRequest req, std::shared_ptr<HttpExchange> ex);

// POST /v1/feedback (feedback_handler.cc): answers through `ex` in every case, once the store has decided; never
// throws.
void HandleFeedback(Gateway::State& s, HttpRequest req, std::shared_ptr<HttpExchange> ex);

// Re-reads the router model file and swaps it in (Gateway::ReloadRouter).
Status ReloadRouter(Gateway::State& s);

// Authenticates the request's bearer key: the key index, or the 401 response to send.
std::optional<size_t> Authenticate(const Gateway::State& s, const HttpRequest& req, HttpResponse* error);

}  // namespace baton::gateway
