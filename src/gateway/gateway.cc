// Gateway: construction, start/stop, and the small endpoints. The chat endpoint is in chat_handler.cc.
#include "gateway/gateway.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include <unistd.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include "baton/dataset.h"

#include "baton/store.h"
#include "gateway/gateway_state.h"
#include "gateway/shared_budget.h"

namespace baton::gateway {

bool RateLimiter::Allow() {
  if (rate <= 0) return true;
  std::lock_guard<std::mutex> lock(mu);
  const auto now = std::chrono::steady_clock::now();
  const double burst = std::max(1.0, rate);
  tokens = std::min(burst, tokens + rate * std::chrono::duration<double>(now - last).count());
  last = now;
  if (tokens < 1) return false;
  tokens -= 1;
  return true;
}

int RateLimiter::RetryAfterSeconds() {
  if (rate <= 0) return 1;
  std::lock_guard<std::mutex> lock(mu);
  // Clamped before the cast: at a tiny rate (1e-10 rps) the wait does not fit an int. A day is as good as never.
  return static_cast<int>(std::clamp(std::ceil((1 - tokens) / rate), 1.0, 86400.0));
}

StatusOr<GatewayParts> BuildGatewayParts(const GatewayConfig& config) {
  GatewayParts parts;
  for (size_t i = 0; i < config.experts.size(); ++i) {
    StatusOr<std::unique_ptr<ExpertBackend>> e = MakeExpert(config.experts[i]);
    if (!e.ok())
      return e.status().WithContext(fmt::format("{}: experts[{}] '{}'", config.source, i, config.experts[i].name));
    parts.backends.push_back(std::move(*e));
  }
  const RouterConfig& rc = config.router;
  if (!rc.model_path.empty()) {
    StatusOr<RouterModel> m = LoadModel(rc.model_path);
    if (!m.ok()) return m.status().WithContext(fmt::format("{}: router.model", config.source));
    parts.router = std::move(*m);
  } else if (!rc.train_dir.empty()) {
    const std::string name = rc.predictor.empty() ? PredictorNames().front() : rc.predictor;
    BATON_ASSIGN_OR_RETURN(Dataset train, LoadDatasetDir(rc.train_dir));
    BATON_ASSIGN_OR_RETURN(std::unique_ptr<Predictor> p, MakePredictor(name));
    BATON_RETURN_IF_ERROR(p->Fit(train).WithContext(fmt::format("fitting router '{}' on {}", name, rc.train_dir)));
    BATON_ASSIGN_OR_RETURN(CostModel cost, CostModel::Fit(train));
    parts.router = RouterModel{std::move(p), std::move(cost)};
  }
  return parts;
}

Gateway::Gateway(std::unique_ptr<State> state) : state_(std::move(state)) {}
Gateway::~Gateway() {
  Shutdown(std::chrono::seconds(2));
}

namespace {

// Loads, parses and validates every configured architecture against the configured experts; errors name the YAML
// entry and the JSON file's line and column. Warnings go to stderr. Also sets s->archon_experts.
Status LoadArchitectures(const GatewayConfig& config, Gateway::State* s) {
  s->archon_experts = [router = s->router.get()](std::string_view model) -> std::optional<archon::ExpertHandle> {
    const std::vector<ExpertSlot>& experts = router->experts();
    std::optional<size_t> i = router->Find(std::string(model));
    if (!i) {  // the one expert whose upstream model it is
      for (size_t k = 0; k < experts.size(); ++k) {
        if (experts[k].config.model == model) {
          if (i) return std::nullopt;  // ambiguous
          i = k;
        }
      }
    }
    if (!i) return std::nullopt;
    return archon::ExpertHandle{experts[*i].backend.get(), &experts[*i].config};
  };
  for (size_t i = 0; i < config.architectures.size(); ++i) {
    const ArchitectureConfig& ac = config.architectures[i];
    const std::string where = fmt::format("{}: architectures[{}] '{}'", config.source, i, ac.name);
    StatusOr<archon::ParseResult> parsed = archon::LoadArchitecture(ac.path);
    if (!parsed.ok()) return parsed.status().WithContext(where);
    archon::Validate({.structure_only = false, .experts = config.experts}, &*parsed);
    for (const archon::Diagnostic& w : parsed->warnings) {
      std::fprintf(stderr, "baton serve: %s: warning: %s\n", where.c_str(), w.ToString(ac.path).c_str());
    }
    if (!parsed->errors.empty()) {
      std::string list;
      for (const archon::Diagnostic& e : parsed->errors) list += "\n  " + e.ToString(ac.path);
      return Status::InvalidArgument(fmt::format("{}: the architecture cannot run:{}", where, list));
    }
    const archon::ArchitectureCost bound = archon::ArchitectureBound(parsed->architecture, s->archon_experts, {});
    if (bound.calls > ac.max_calls) {
      return Status::InvalidArgument(
          fmt::format("{}: it makes up to {} inference calls per request, more than its "
                      "max_calls ({}); raise max_calls or shrink the architecture",
                      where, bound.calls, ac.max_calls));
    }
    s->architectures.push_back(
        std::make_unique<ServedArchitecture>(ServedArchitecture{ac, std::move(parsed->architecture)}));
  }
  return Status::Ok();
}

}  // namespace

const ServedArchitecture* FindArchitecture(const Gateway::State& s, std::string_view name) {
  for (const auto& a : s.architectures) {
    if (a->config.name == name) return a.get();
  }
  return nullptr;
}

namespace {

// A replica's default id: the host name and the port it listens on (stable across its restarts).
std::string ReplicaIdFor(const std::string& listen) {
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) != 0) std::snprintf(host, sizeof host, "localhost");
  const size_t colon = listen.rfind(':');
  const std::string port = colon == std::string::npos ? listen : listen.substr(colon + 1);
  // Port 0 (picked by the system at each start) names nothing stable: then the process id keeps replicas apart.
  if (port == "0") return fmt::format("{}:pid{}", host, static_cast<long>(getpid()));
  return fmt::format("{}:{}", host, port);
}

}  // namespace

StatusOr<std::unique_ptr<Gateway>> Gateway::Create(GatewayConfig config, GatewayParts parts) {
  auto s = std::make_unique<State>();
  if (parts.backends.size() != config.experts.size()) {
    return Status::InvalidArgument("one backend per configured expert is required");
  }
  std::vector<ExpertSlot> slots;
  for (size_t i = 0; i < config.experts.size(); ++i) {
    auto meter = std::make_shared<ExpertMeter>();
    slots.push_back({config.experts[i], std::make_unique<MeteredExpert>(std::move(parts.backends[i]), meter), meter});
  }
  BATON_ASSIGN_OR_RETURN(s->router,
                         RouterService::Create(std::move(slots), std::move(parts.router), config.router.lambda));
  BATON_RETURN_IF_ERROR(LoadArchitectures(config, s.get()));
  s->keys = std::make_unique<KeyRing>(config.keys);
  if (!config.metrics_key_sha256.empty()) {
    s->metrics_key = std::make_unique<KeyRing>(
        std::vector<ClientKeyConfig>{{.name = "metrics", .key_sha256 = config.metrics_key_sha256}});
  }

  // Budgets: the configured budget wins, what was spent survives restarts. A local ledger's reservations do not
  // survive (this process held them all); shared ones belong to every replica and expire instead.
  // The store's folder may not exist yet (e.g. out/ in a fresh clone); a postgresql:// URL has none.
  if (config.store_path != ":memory:" && !IsDatabaseUrl(config.store_path)) {
    const std::filesystem::path parent = std::filesystem::path(config.store_path).parent_path();
    std::error_code ec;
    if (!parent.empty()) std::filesystem::create_directories(parent, ec);
    if (ec) {
      return Status::IoError(
          fmt::format("{}: store: cannot create the folder {}: {}", config.source, parent.string(), ec.message()));
    }
  }
  BATON_ASSIGN_OR_RETURN(std::unique_ptr<Store> store, Store::Open(config.store_path));
  std::vector<BudgetAccount> accounts;
  {
    BATON_ASSIGN_OR_RETURN(Store::Transaction tx, store->Begin());
    for (const auto& k : config.keys) {
      BATON_RETURN_IF_ERROR(store->UpsertClientBudget({k.key_sha256, k.name, k.budget_usd, 0, 0}));
    }
    BATON_ASSIGN_OR_RETURN(std::vector<ClientBudgetRecord> rows, store->ListClientBudgets());
    for (const auto& k : config.keys) {
      BudgetAccount a{k.key_sha256, k.name, k.budget_usd, 0, 0};
      for (const auto& r : rows) {
        if (r.key_hash == k.key_sha256) a.spent_usd = r.spent_usd;
      }
      if (!config.shared_budgets) BATON_RETURN_IF_ERROR(store->SetClientSpend(a.key_hash, a.spent_usd, 0));
      accounts.push_back(std::move(a));
    }
    BATON_RETURN_IF_ERROR(tx.Commit());
  }
  s->recorder = std::make_unique<Recorder>(std::move(store));
  if (config.shared_budgets) {
    if (config.store_path == ":memory:") {
      return Status::InvalidArgument(config.source +
                                     ": budgets: 'shared' needs a store that replicas can share "
                                     "(a postgresql:// URL or an SQLite file), not ':memory:'");
    }
    const std::string holder = config.replica_id.empty() ? ReplicaIdFor(config.listen) : config.replica_id;
    BATON_ASSIGN_OR_RETURN(
        s->ledger,
        SharedBudgetLedger::Create(std::move(accounts),
                                   {.store_url = config.store_path,
                                    .holder = holder,
                                    .reservation_ttl_ms = config.reservation_ttl.count(),
                                    .max_connections = static_cast<size_t>(std::max(2, config.io_threads * 2))}));
  } else {
    Recorder* rec = s->recorder.get();
    s->ledger = std::make_unique<LocalBudgetLedger>(std::move(accounts), [rec](const BudgetAccount& a) {
      rec->PersistBudget({a.key_hash, a.name, a.budget_usd, a.spent_usd, a.reserved_usd});
    });
  }
  for (const auto& k : config.keys) {
    auto ks = std::make_unique<KeyState>();
    ks->limiter.rate = k.rate_limit_rps;
    ks->limiter.tokens = std::max(1.0, k.rate_limit_rps);
    ks->limiter.last = std::chrono::steady_clock::now();
    s->key_state.push_back(std::move(ks));
  }
  nlohmann::json models = {{"object", "list"}, {"data", nlohmann::json::array()}};
  auto add_model = [&models](const std::string& id) {
    models["data"].push_back({{"id", id}, {"object", "model"}, {"created", 0}, {"owned_by", "baton"}});
  };
  add_model("baton");
  for (const auto& e : s->router->experts()) add_model(e.config.name);
  for (const auto& a : s->architectures) add_model(std::string(kArchitecturePrefix) + a->config.name);
  s->models_json = models.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  s->config = std::move(config);
  return std::unique_ptr<Gateway>(new Gateway(std::move(s)));
}

std::optional<size_t> Authenticate(const Gateway::State& s, const HttpRequest& req, HttpResponse* error) {
  const std::string_view token = BearerToken(req.authorization);
  if (token.empty()) {
    *error = ErrorResponse(401, "missing API key: send your client key as 'Authorization: Bearer <key>'",
                           "invalid_request_error", "missing_api_key");
    return std::nullopt;
  }
  std::optional<size_t> k = s.keys->Find(token);
  if (!k) {
    *error = ErrorResponse(401, "incorrect API key", "invalid_request_error", "invalid_api_key");
    return std::nullopt;
  }
  return k;
}

Status ReloadRouter(Gateway::State& s) {
  std::lock_guard<std::mutex> lock(s.reload_mu);
  const std::string& path = s.config.router.model_path;
  Status st = [&]() -> Status {
    if (path.empty()) {
      return Status::FailedPrecondition(
          "this gateway has no router.model file to reload (its router was fitted at start-up or is absent)");
    }
    BATON_ASSIGN_OR_RETURN(RouterModel model, LoadModel(path));
    return s.router->Reload(std::move(model)).WithContext(path);
  }();
  s.metrics.CountReload(st.ok());
  if (st.ok()) {
    std::fprintf(stderr, "baton serve: router model reloaded from %s (%zu routable experts)\n", path.c_str(),
                 s.router->routable().size());
  } else {
    std::fprintf(stderr, "baton serve: router reload failed, the old model keeps serving: %s\n", st.ToString().c_str());
  }
  return st;
}

namespace {

// Whether the request carries the metrics key; otherwise `error` is the answer to send.
bool HasMetricsKey(const Gateway::State& s, const HttpRequest& req, const char* what, HttpResponse* error) {
  if (!s.metrics_key) {
    *error = ErrorResponse(403, fmt::format("{} is off: set metrics_key in the gateway's configuration", what),
                           "invalid_request_error", "admin_disabled");
    return false;
  }
  const std::string_view token = BearerToken(req.authorization);
  if (token.empty() || !s.metrics_key->Find(token)) {
    *error = ErrorResponse(401, fmt::format("{} needs the metrics key: 'Authorization: Bearer <metrics_key>'", what),
                           "invalid_request_error", "invalid_api_key");
    return false;
  }
  return true;
}

// Runs on an event-loop thread: answers the small endpoints at once and starts chat requests there too.
void Dispatch(Gateway::State& s, HttpRequest req, std::shared_ptr<HttpExchange> ex) {
  const std::string path = req.target.substr(0, req.target.find('?'));
  auto method_not_allowed = [&](const char* allowed) {
    HttpResponse r =
        ErrorResponse(405, fmt::format("{} {} is not supported (use {})", req.method.substr(0, 10), path, allowed),
                      "invalid_request_error", "method_not_allowed");
    r.headers.emplace_back("Allow", allowed);
    ex->Respond(std::move(r));
  };
  if (path == "/v1/chat/completions" || path == "/chat/completions") {
    if (req.method != "POST") return method_not_allowed("POST");
    if (s.server && s.server->in_flight() > s.config.max_in_flight) {
      return ex->Respond(ErrorResponse(
          503, fmt::format("the gateway has over {} requests in flight; retry later", s.config.max_in_flight),
          "server_error", "overloaded"));
    }
    return HandleChatCompletions(s, std::move(req), std::move(ex));
  }
  if (path == "/v1/feedback" || path == "/feedback") {
    if (req.method != "POST") return method_not_allowed("POST");
    return HandleFeedback(s, std::move(req), std::move(ex));
  }
  if (path == "/admin/reload") {
    if (req.method != "POST") return method_not_allowed("POST");
    HttpResponse err;
    if (!HasMetricsKey(s, req, "POST /admin/reload", &err)) return ex->Respond(std::move(err));
    // Reading and deserialising a model takes a while: off the event loop, answered back on it.
    boost::asio::post(*s.blocking, [&s, ex] {
      Status st = ReloadRouter(s);
      boost::asio::post(ex->loop(), [&s, ex, st] {
        if (!st.ok()) {
          return ex->Respond(ErrorResponse(500,
                                           fmt::format("reload failed; the old model keeps serving: {}", st.message()),
                                           "server_error", "reload_failed"));
        }
        const nlohmann::json body = {{"reloaded", true},
                                     {"model", s.config.router.model_path},
                                     {"routable_experts", s.router->routable().size()}};
        ex->Respond(MakeHttpResponse(200, body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)));
      });
    });
    return;
  }
  if (path == "/healthz") {
    if (req.method != "GET" && req.method != "HEAD") return method_not_allowed("GET");
    return ex->Respond(MakeHttpResponse(200, R"({"status":"ok"})"));
  }
  if (path == "/metrics") {
    if (req.method != "GET") return method_not_allowed("GET");
    // Per-key spend and budgets are not for every client: a metrics key, or an explicit opt-in to serve them openly.
    if (s.metrics_key) {
      const std::string_view token = BearerToken(req.authorization);
      if (token.empty() || !s.metrics_key->Find(token)) {
        return ex->Respond(ErrorResponse(401,
                                         "GET /metrics needs the metrics key: 'Authorization: Bearer <metrics_key>'",
                                         "invalid_request_error", "invalid_api_key"));
      }
    } else if (!s.config.metrics_public) {
      return ex->Respond(ErrorResponse(
          403, "GET /metrics is off: set metrics_key (or metrics_public: true) in the gateway's configuration",
          "invalid_request_error", "metrics_disabled"));
    }
    std::vector<std::pair<std::string, std::shared_ptr<ExpertMeter>>> meters;
    for (const auto& e : s.router->experts()) meters.emplace_back(e.config.name, e.meter);
    std::vector<std::pair<std::string, double>> gauges = {
        {"baton_http_in_flight", static_cast<double>(s.server ? s.server->in_flight() : 0)},
        {"baton_recorder_dropped_total", static_cast<double>(s.recorder->dropped())},
        {"baton_budget_overruns_total", static_cast<double>(s.ledger->overruns())},
        {"baton_budget_unbilled_usd_total", s.ledger->unbilled_usd()}};
    HttpResponse r =
        MakeHttpResponse(200, s.metrics.Render(meters, gauges), "text/plain; version=0.0.4; charset=utf-8");
    for (size_t i = 0; i < s.ledger->size(); ++i) {
      const BudgetAccount a = s.ledger->Get(i);
      if (i == 0)
        r.body +=
            "# HELP baton_key_budget_remaining_usd Budget left per client key.\n"
            "# TYPE baton_key_budget_remaining_usd gauge\n";
      r.body += fmt::format("baton_key_budget_remaining_usd{{key=\"{}\"}} {:.9g}\n", EscapeLabel(a.name),
                            a.budget_usd - a.spent_usd - a.reserved_usd);
    }
    return ex->Respond(std::move(r));
  }
  if (path == "/v1/models" || path == "/models") {
    if (req.method != "GET") return method_not_allowed("GET");
    HttpResponse err;
    if (!Authenticate(s, req, &err)) return ex->Respond(std::move(err));
    return ex->Respond(MakeHttpResponse(200, s.models_json));
  }
  ex->Respond(ErrorResponse(404, fmt::format("no such endpoint: {}", path.substr(0, 200)), "invalid_request_error",
                            "not_found"));
}

StatusOr<std::pair<std::string, uint16_t>> SplitHostPort(const std::string& listen) {
  const size_t colon = listen.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    return Status::InvalidArgument(fmt::format("listen address '{}': expected HOST:PORT", listen));
  }
  std::string host = listen.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  const std::string port = listen.substr(colon + 1);
  if (port.empty() || port.size() > 5 || !std::all_of(port.begin(), port.end(), ::isdigit) || std::stoi(port) > 65535) {
    return Status::InvalidArgument(fmt::format("listen address '{}': the port must be a number in [0, 65535]", listen));
  }
  return std::make_pair(host, static_cast<uint16_t>(std::stoi(port)));
}

}  // namespace

Status Gateway::Start(const std::string& listen_override) {
  State& s = *state_;
  if (s.server) return Status::FailedPrecondition("the gateway is already running");
  BATON_ASSIGN_OR_RETURN(auto hp, SplitHostPort(listen_override.empty() ? s.config.listen : listen_override));
  s.blocking = std::make_unique<boost::asio::thread_pool>(s.config.worker_threads);
  HttpServerOptions o{.host = hp.first,
                      .port = hp.second,
                      .io_threads = s.config.io_threads,
                      .max_body_bytes = s.config.max_body_bytes,
                      .max_connections = s.config.max_connections};
  State* state = &s;
  BATON_ASSIGN_OR_RETURN(s.server, HttpServer::Start(
                                       o,
                                       [state](HttpRequest req, std::shared_ptr<HttpExchange> ex) {
                                         Dispatch(*state, std::move(req), std::move(ex));
                                       },
                                       [state](const std::string& path, int code, double seconds) {
                                         state->metrics.ObserveRequest(path, code, seconds);
                                       }));
  return Status::Ok();
}

uint16_t Gateway::port() const {
  return state_->server ? state_->server->port() : 0;
}

void Gateway::Shutdown(std::chrono::milliseconds grace) {
  State& s = *state_;
  if (s.shut_down) return;
  s.shut_down = true;
  if (s.server) s.server->Shutdown(grace);  // stops accepting; requests in flight get `grace` to finish; stops loops
  if (s.blocking) s.blocking->join();       // blocking calls finish; what they post to the stopped loops never runs
  // Writes everything and runs the last durability callbacks (they post to the loops, which must still exist).
  if (s.recorder) s.recorder->Flush();
  s.server.reset();  // destroys the loops and what was queued on them
  s.blocking.reset();
}

Status Gateway::ReloadRouter() {
  return gateway::ReloadRouter(*state_);
}

Metrics& Gateway::metrics() {
  return state_->metrics;
}
BudgetLedger& Gateway::ledger() {
  return *state_->ledger;
}
Recorder& Gateway::recorder() {
  return *state_->recorder;
}
const RouterService& Gateway::router() const {
  return *state_->router;
}

}  // namespace baton::gateway
