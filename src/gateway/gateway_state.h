// Gateway::State: everything a running gateway owns. Internal to src/gateway/.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "gateway/auth.h"
#include "gateway/budget.h"
#include "gateway/config.h"
#include "gateway/gateway.h"
#include "gateway/http_server.h"
#include "gateway/metrics.h"
#include "gateway/recorder.h"
#include "gateway/router_service.h"
#include "gateway/worker_pool.h"

namespace baton::gateway {

// Token bucket of one client key. Thread-safety: mu guards the bucket.
struct RateLimiter {
  double rate = 0;  // tokens per second; 0 = unlimited
  std::mutex mu;
  double tokens = 0;
  std::chrono::steady_clock::time_point last;
  bool Allow();
};

struct Gateway::State {
  GatewayConfig config;
  std::unique_ptr<KeyRing> keys;
  std::unique_ptr<RouterService> router;
  std::unique_ptr<Recorder> recorder;  // owns the store; declared before ledger (ledger persists through it)
  std::unique_ptr<BudgetLedger> ledger;
  Metrics metrics;
  std::vector<std::unique_ptr<RateLimiter>> limiters;  // per key
  std::string models_json;                             // GET /v1/models, built once
  std::unique_ptr<WorkerPool> workers;                 // upstream calls; joined before server is destroyed
  std::unique_ptr<HttpServer> server;
  bool shut_down = false;
};

// POST /v1/chat/completions, on a worker thread. Answers through `ex` in every case; never throws.
void HandleChatCompletions(Gateway::State& s, HttpRequest req, std::shared_ptr<HttpExchange> ex);

// Authenticates the request's bearer key: the key index, or the 401 response to send.
std::optional<size_t> Authenticate(const Gateway::State& s, const HttpRequest& req, HttpResponse* error);

}  // namespace baton::gateway
