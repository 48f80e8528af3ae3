// The gateway's YAML configuration (`baton serve --config FILE`): what to listen on, where to keep budgets and
// recordings, which router model to use, which client keys to accept and which experts to serve.
//
// Example (see examples/replay.yaml):
//   listen: 127.0.0.1:8080
//   store: baton-gateway.db
//   router: {model: router.baton, lambda: 50}      # or {train_dir: data/routerbench-train, predictor: knn}
//   record_prompts: false
//   max_body_bytes: 1048576
//   keys:
//     - {name: demo, key: sk-baton-demo, budget_usd: 5, max_concurrency: 8}  # plain keys are hashed at load
//     - {name: prod, sha256: 9f86d08..., budget_usd: 100}
//   experts:
//     - {name: gpt-4, kind: openai, base_url: "https://api.openai.com/v1", api_key_env: OPENAI_API_KEY}
//   architectures:                                   # optional: served as model "archon/<name>"
//     - {name: critic-rank-fuse, file: archon/critic_rank_fuse.json, max_calls: 12, max_cost_usd: 0.05}
//
// Thread-safety: a plain value; immutable once loaded.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "baton/expert.h"
#include "baton/status.h"

namespace baton::gateway {

struct ClientKeyConfig {
  std::string name;
  std::string key_sha256;  // lowercase hex; from `sha256:` or computed from `key:` at load (the plain key is dropped)
  double budget_usd = 0;   // REQUIRES: >= 0
  double rate_limit_rps = 0;  // requests per second allowed to this key, 0 = unlimited. Default: 0
  int max_concurrency = 0;    // requests of this key in flight at once (more get 429), 0 = unlimited. Default: 0
};

struct RouterConfig {
  std::string model_path;  // a model file written by `baton fit`; "" = fit at start-up from train_dir
  std::string train_dir;   // a dataset folder to fit on at start-up when model_path is ""
  std::string predictor;   // predictor to fit (MakePredictor name). Default: PredictorNames()[0]
  double lambda = 0;       // default price of cost in score units per USD. Default: 0 (best predicted score)
};

// An Archon architecture served as model "archon/<name>" (see baton/archon.h).
struct ArchitectureConfig {
  std::string name;    // clients ask for "archon/<name>" (unique among architectures)
  std::string path;    // its Archon-format JSON file (relative paths: to the YAML file's folder)
  int max_calls = 64;  // inference calls one request may make at most; a bound above this is refused. Default: 64
  std::optional<double> max_cost_usd;  // the most one request may cost; default: only the key's budget limits it
  int max_concurrency = 8;             // calls of one request in flight at once. Default: 8
  std::chrono::milliseconds timeout{120'000};  // the whole run of one request. Default: 120 s
};

struct GatewayConfig {
  std::string source;  // the file it was read from (for messages)
  std::string listen = "127.0.0.1:8080";
  std::string store_path = ":memory:";  // SQLite file or postgresql:// URL for budgets and recordings. Default: memory
  // Where key budgets are kept: in this process (false; persisted to the store) or in the store itself (true), so
  // that replicas sharing the store never together overspend. Default: shared for a postgresql:// store, else local.
  bool shared_budgets = false;
  std::string replica_id;  // this replica's id for its budget reservations, stable across restarts. Default: host:port
  std::chrono::milliseconds reservation_ttl{300'000};  // a shared reservation not settled by then is released
  RouterConfig router;  // router.model_path and router.train_dir both "" = no "baton" routing
  bool record_prompts = false;
  int64_t max_body_bytes = 1 << 20;  // Default: 1 MiB
  int io_threads = 2;                // event loops, one thread each; requests run on them end to end. Default: 2
  int worker_threads = 16;           // threads for experts that can only block (llamacpp). Default: 16
  int64_t max_in_flight = 10'000;    // requests in flight at once; more get 503. Default: 10,000
  double reserve_factor = 2.0;       // an unpriced expert's reservation = predicted cost x this. Default: 2
  int64_t max_connections = 10'000;  // open client connections; more are shed with a 503. 0 = unlimited
  // GET /metrics shows per-key spend and budgets. With metrics_key_sha256 set it answers only `Authorization: Bearer
  // <metrics key>`; without, only when metrics_public is true (else 403). Default: not served.
  std::string metrics_key_sha256;  // from `metrics_key:` (hashed at load) or `metrics_key_sha256:`
  bool metrics_public = false;
  std::vector<ClientKeyConfig> keys;
  std::vector<ExpertConfig> experts;
  std::vector<ArchitectureConfig> architectures;  // Default: none
};

// How strictly to read a configuration. Tools that only call the experts (`baton archon`, `baton selfplay`, `baton
// onboard`) read the same file and need no client keys.
struct ConfigReadOptions {
  bool require_keys = true;  // at least one client key (the gateway needs one). Default: true
};

// Parses YAML text; `source` names it in messages ("config.yaml: experts[2].kind: unknown kind 'foo' (...)").
// Relative paths (store, router files, replay folders, GGUF files) are resolved against `base_dir` when it is not "".
// InvalidArgument naming the field on any error.
StatusOr<GatewayConfig> ParseGatewayConfig(std::string_view yaml, const std::string& source,
                                           const std::string& base_dir = "", ConfigReadOptions options = {});

// Reads and parses the file. Relative paths inside are relative to the file's own folder, wherever baton runs from.
StatusOr<GatewayConfig> LoadGatewayConfig(const std::string& path, ConfigReadOptions options = {});

}  // namespace baton::gateway
