// Gateway: `baton serve`. One OpenAI-compatible endpoint in front of the configured experts.
//
// Endpoints: POST /v1/chat/completions (streaming or not), POST /v1/feedback (a client's score of an answer: a live
// outcome; feedback_handler.cc), GET /v1/models, GET /healthz, GET /metrics, POST /admin/reload (re-read the router
// model file; needs the metrics key).
// A chat request is authenticated (client key, constant-time), parsed, planned (router or pass-through), its cost
// reserved against the key's budget, sent to the best expert (falling back to the next best when it fails), settled,
// answered, and recorded in the store off the request path.
//
// Threads: requests run on the HTTP server's event loops from end to end (upstream calls are asynchronous on the
// same loop); only experts that can only block (llamacpp) use the blocking pool.
// Ownership: the Gateway owns the HTTP server, the blocking pool, the experts, the router, the budget ledger, the
// recorder (and through it the store). Shutdown order: stop accepting and finish requests in flight, stop the event
// loops, join the blocking pool, destroy the loops, flush the recorder.
// Thread-safety: Start/Shutdown from one controlling thread; everything else is internal.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "baton/expert.h"
#include "baton/predictor.h"
#include "baton/status.h"
#include "gateway/config.h"

namespace baton::gateway {

class BudgetLedger;
class Metrics;
class Recorder;
class RouterService;

// What Create builds from the configuration; tests pass their own (fake backends, a small router model).
struct GatewayParts {
  std::vector<std::unique_ptr<ExpertBackend>> backends;  // one per config.experts, same order
  std::optional<RouterModel> router;
};

// Builds the experts with MakeExpert and the router from router.model_path (LoadModel) or router.train_dir (fits
// router.predictor at start-up).
StatusOr<GatewayParts> BuildGatewayParts(const GatewayConfig& config);

class Gateway {
 public:
  // Opens the store (schema up to date), loads the key budgets into the ledger, starts the recorder.
  static StatusOr<std::unique_ptr<Gateway>> Create(GatewayConfig config, GatewayParts parts);
  ~Gateway();  // Shutdown() if running

  // Listens on config.listen ("HOST:PORT"; port 0 = any free one) or on `listen_override` when not "".
  Status Start(const std::string& listen_override = "");
  uint16_t port() const;
  // Graceful: stops accepting, waits up to `grace` for requests in flight, then stops. Idempotent.
  void Shutdown(std::chrono::milliseconds grace = std::chrono::seconds(10));

  // Re-reads the router model file (router.model in the configuration; a `baton fit` output, written atomically) and
  // swaps it in for requests planned from now on; requests in flight keep the model they were planned with. On any
  // error (no model file configured, unreadable or corrupt file, a model that knows none of the experts) the old model
  // keeps serving, the error is logged and counted (baton_router_reloads_total{result="failed"}) and returned.
  // `baton serve` calls it on SIGHUP. Thread-safe; reloads are serialised.
  Status ReloadRouter();

  Metrics& metrics();
  BudgetLedger& ledger();
  Recorder& recorder();
  const RouterService& router() const;

  struct State;

 private:
  explicit Gateway(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace baton::gateway
