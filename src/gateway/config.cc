// Loading and validating the gateway's YAML configuration. yaml-cpp throws; every exception is caught here and
// becomes an InvalidArgument that names the file and the field.
#include "gateway/config.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include "baton/store.h"
#include "gateway/auth.h"

namespace baton::gateway {
namespace {

// Reads typed fields of one YAML map, remembering the first error with its dotted path.
class Fields {
 public:
  Fields(const YAML::Node& node, std::string path, const std::string& source)
      : node_(node), path_(std::move(path)), source_(source) {}

  Status Error(const std::string& field, const std::string& what) const {
    return Status::InvalidArgument(fmt::format("{}: {}{}: {}", source_, path_, field, what));
  }
  std::string Path(const std::string& field) const { return path_ + field; }

  // Fails when the map has a key outside `known`.
  Status OnlyKnown(const std::set<std::string>& known) const {
    for (const auto& kv : node_) {
      const std::string k = kv.first.as<std::string>();
      if (!known.count(k)) {
        std::string list;
        for (const auto& n : known) list += (list.empty() ? "" : ", ") + n;
        return Error(k, fmt::format("unknown field (valid: {})", list));
      }
    }
    return Status::Ok();
  }

  template <typename T>
  Status Get(const std::string& field, T* out) const {
    const YAML::Node v = node_[field];
    if (!v.IsDefined() || v.IsNull()) return Status::Ok();
    if (!v.IsScalar()) return Error(field, "expected a scalar value");
    try {
      *out = v.as<T>();
    } catch (const YAML::Exception&) {
      return Error(field, fmt::format("cannot read '{}' as {}", v.Scalar(), TypeName<T>()));
    }
    return Status::Ok();
  }
  Status GetMs(const std::string& field, std::chrono::milliseconds* out) const {
    double seconds = -1;
    BATON_RETURN_IF_ERROR(Get(field, &seconds));
    if (node_[field].IsDefined() && !node_[field].IsNull()) {
      if (!(seconds > 0)) return Error(field, "must be a positive number of seconds");
      *out = std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000));
    }
    return Status::Ok();
  }
  Status GetOpt(const std::string& field, std::optional<double>* out) const {
    double v = 0;
    if (!node_[field].IsDefined() || node_[field].IsNull()) return Status::Ok();
    BATON_RETURN_IF_ERROR(Get(field, &v));
    if (!(v >= 0) || !std::isfinite(v)) return Error(field, "must be a finite number >= 0");
    *out = v;
    return Status::Ok();
  }

 private:
  template <typename T>
  static const char* TypeName() {
    if constexpr (std::is_same_v<T, bool>) return "a boolean";
    if constexpr (std::is_integral_v<T>) return "an integer";
    if constexpr (std::is_floating_point_v<T>) return "a number";
    return "a string";
  }
  const YAML::Node node_;  // a handle: copying is cheap and keeps temporaries alive
  std::string path_;
  const std::string& source_;
};

std::string Resolve(const std::string& base_dir, const std::string& p) {
  if (p.empty() || base_dir.empty() || p == ":memory:" || IsDatabaseUrl(p) || std::filesystem::path(p).is_absolute()) {
    return p;  // a postgresql:// URL is not a path
  }
  return (std::filesystem::path(base_dir) / p).string();
}

bool IsHex64(const std::string& s) {
  return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
         });
}

Status ParseExpert(const YAML::Node& n, const std::string& path, const std::string& source, const std::string& base,
                   ExpertConfig* e) {
  Fields f(n, path, source);
  if (!n.IsMap()) return f.Error("", "expected a map of expert fields");
  BATON_RETURN_IF_ERROR(f.OnlyKnown({"name", "kind", "usd_per_mtok_in", "usd_per_mtok_out", "base_url", "model",
                                     "api_key_env", "replay_db", "replay_dir", "replay_dataset", "replay_model",
                                     "gguf_path", "n_ctx", "default_max_tokens", "timeout_s", "max_retries",
                                     "max_concurrency", "max_response_bytes", "http_client"}));
  BATON_RETURN_IF_ERROR(f.Get("name", &e->name));
  if (e->name.empty()) return f.Error("name", "missing (every expert needs a unique name)");
  if (e->name == "baton") return f.Error("name", "'baton' is reserved for routed requests");
  BATON_RETURN_IF_ERROR(f.Get("kind", &e->kind));
  const auto& kinds = ExpertKinds();
  if (std::find(kinds.begin(), kinds.end(), e->kind) == kinds.end()) {
    std::string list;
    for (const auto& k : kinds) list += (list.empty() ? "" : ", ") + k;
    return f.Error("kind", e->kind.empty() ? fmt::format("missing (valid: {})", list)
                                           : fmt::format("unknown kind '{}' (valid: {})", e->kind, list));
  }
  BATON_RETURN_IF_ERROR(f.GetOpt("usd_per_mtok_in", &e->usd_per_mtok_in));
  BATON_RETURN_IF_ERROR(f.GetOpt("usd_per_mtok_out", &e->usd_per_mtok_out));
  for (auto [field, out] : {std::pair{"base_url", &e->base_url},
                            {"model", &e->model},
                            {"api_key_env", &e->api_key_env},
                            {"replay_db", &e->replay_db},
                            {"replay_dir", &e->replay_dir},
                            {"replay_dataset", &e->replay_dataset},
                            {"replay_model", &e->replay_model},
                            {"gguf_path", &e->gguf_path},
                            {"http_client", &e->http_client}}) {
    BATON_RETURN_IF_ERROR(f.Get(field, out));
  }
  e->replay_db = Resolve(base, e->replay_db);
  e->replay_dir = Resolve(base, e->replay_dir);
  e->gguf_path = Resolve(base, e->gguf_path);
  BATON_RETURN_IF_ERROR(f.Get("n_ctx", &e->n_ctx));
  BATON_RETURN_IF_ERROR(f.Get("default_max_tokens", &e->default_max_tokens));
  BATON_RETURN_IF_ERROR(f.GetMs("timeout_s", &e->timeout));
  BATON_RETURN_IF_ERROR(f.Get("max_retries", &e->max_retries));
  BATON_RETURN_IF_ERROR(f.Get("max_concurrency", &e->max_concurrency));
  BATON_RETURN_IF_ERROR(f.Get("max_response_bytes", &e->max_response_bytes));
  if (e->max_response_bytes <= 0) return f.Error("max_response_bytes", "must be > 0");
  if (e->default_max_tokens <= 0) return f.Error("default_max_tokens", "must be > 0");
  if (e->max_retries < 0) return f.Error("max_retries", "must be >= 0");
  if (e->max_concurrency < 0) return f.Error("max_concurrency", "must be >= 0");
  if (e->kind == "openai" && e->base_url.empty()) return f.Error("base_url", "required for kind 'openai'");
  if (e->http_client != "auto" && e->http_client != "curl") {
    return f.Error("http_client", "must be 'auto' (Beast for http://, libcurl for https://) or 'curl'");
  }
  if (e->kind == "replay" && e->replay_db.empty() && e->replay_dir.empty()) {
    return f.Error("replay_dir", "kind 'replay' needs replay_dir or replay_db");
  }
  if (e->kind == "llamacpp" && e->gguf_path.empty()) return f.Error("gguf_path", "required for kind 'llamacpp'");
  return Status::Ok();
}

Status ParseArchitectureEntry(const YAML::Node& n, const std::string& path, const std::string& source,
                              const std::string& base, ArchitectureConfig* a) {
  Fields f(n, path, source);
  if (!n.IsMap()) return f.Error("", "expected a map with name and file");
  BATON_RETURN_IF_ERROR(f.OnlyKnown({"name", "file", "max_calls", "max_cost_usd", "max_concurrency", "timeout_s"}));
  BATON_RETURN_IF_ERROR(f.Get("name", &a->name));
  if (a->name.empty()) return f.Error("name", "missing (clients ask for \"archon/<name>\")");
  if (a->name.find_first_of(" \t/") != std::string::npos) return f.Error("name", "must not contain blanks or '/'");
  BATON_RETURN_IF_ERROR(f.Get("file", &a->path));
  if (a->path.empty()) return f.Error("file", "missing (the architecture's Archon-format JSON file)");
  a->path = Resolve(base, a->path);
  BATON_RETURN_IF_ERROR(f.Get("max_calls", &a->max_calls));
  if (a->max_calls <= 0) return f.Error("max_calls", "must be > 0");
  BATON_RETURN_IF_ERROR(f.GetOpt("max_cost_usd", &a->max_cost_usd));
  BATON_RETURN_IF_ERROR(f.Get("max_concurrency", &a->max_concurrency));
  if (a->max_concurrency <= 0) return f.Error("max_concurrency", "must be > 0");
  BATON_RETURN_IF_ERROR(f.GetMs("timeout_s", &a->timeout));
  return Status::Ok();
}

StatusOr<GatewayConfig> Parse(const YAML::Node& root, const std::string& source, const std::string& base,
                              ConfigReadOptions options) {
  GatewayConfig c;
  c.source = source;
  Fields f(root, "", source);
  if (!root.IsMap()) return Status::InvalidArgument(source + ": expected a YAML map at the top level");
  BATON_RETURN_IF_ERROR(f.OnlyKnown({"listen", "store", "router", "record_prompts", "max_body_bytes", "io_threads",
                                     "worker_threads", "max_in_flight", "reserve_factor", "max_connections",
                                     "metrics_key", "metrics_key_sha256", "metrics_public", "keys", "experts",
                                     "architectures", "budgets", "replica_id", "reservation_ttl_s"}));
  BATON_RETURN_IF_ERROR(f.Get("listen", &c.listen));
  BATON_RETURN_IF_ERROR(f.Get("store", &c.store_path));
  c.store_path = Resolve(base, c.store_path);
  {
    std::string budgets = IsDatabaseUrl(c.store_path) ? "shared" : "local";
    BATON_RETURN_IF_ERROR(f.Get("budgets", &budgets));
    if (budgets != "local" && budgets != "shared") {
      return f.Error("budgets",
                     "must be 'local' (this process keeps the accounts) or 'shared' (the store does, for "
                     "replicas sharing it)");
    }
    c.shared_budgets = budgets == "shared";
  }
  BATON_RETURN_IF_ERROR(f.Get("replica_id", &c.replica_id));
  double ttl_s = static_cast<double>(c.reservation_ttl.count()) / 1000.0;
  BATON_RETURN_IF_ERROR(f.Get("reservation_ttl_s", &ttl_s));
  if (!(ttl_s >= 1) || !(ttl_s <= 86'400)) return f.Error("reservation_ttl_s", "must be in [1, 86400]");
  c.reservation_ttl = std::chrono::milliseconds(static_cast<int64_t>(ttl_s * 1000));
  BATON_RETURN_IF_ERROR(f.Get("record_prompts", &c.record_prompts));
  BATON_RETURN_IF_ERROR(f.Get("max_body_bytes", &c.max_body_bytes));
  if (c.max_body_bytes <= 0) return f.Error("max_body_bytes", "must be > 0");
  BATON_RETURN_IF_ERROR(f.Get("io_threads", &c.io_threads));
  if (c.io_threads < 1 || c.io_threads > 64) return f.Error("io_threads", "must be in [1, 64]");
  BATON_RETURN_IF_ERROR(f.Get("worker_threads", &c.worker_threads));
  if (c.worker_threads < 1 || c.worker_threads > 1024) return f.Error("worker_threads", "must be in [1, 1024]");
  BATON_RETURN_IF_ERROR(f.Get("max_in_flight", &c.max_in_flight));
  if (c.max_in_flight < 1) return f.Error("max_in_flight", "must be >= 1");
  BATON_RETURN_IF_ERROR(f.Get("reserve_factor", &c.reserve_factor));
  if (!(c.reserve_factor >= 1) || !std::isfinite(c.reserve_factor)) return f.Error("reserve_factor", "must be >= 1");
  BATON_RETURN_IF_ERROR(f.Get("max_connections", &c.max_connections));
  if (c.max_connections < 0) return f.Error("max_connections", "must be >= 0 (0 = unlimited)");
  BATON_RETURN_IF_ERROR(f.Get("metrics_public", &c.metrics_public));
  {
    std::string plain;
    BATON_RETURN_IF_ERROR(f.Get("metrics_key", &plain));
    BATON_RETURN_IF_ERROR(f.Get("metrics_key_sha256", &c.metrics_key_sha256));
    if (!plain.empty() && !c.metrics_key_sha256.empty()) {
      return f.Error("metrics_key", "give either metrics_key or metrics_key_sha256, not both");
    }
    if (!plain.empty()) {
      c.metrics_key_sha256 = Sha256Hex(plain);
      std::fill(plain.begin(), plain.end(), '\0');
    } else if (!c.metrics_key_sha256.empty() && !IsHex64(c.metrics_key_sha256)) {
      return f.Error("metrics_key_sha256", "must be 64 hex digits (the SHA-256 of the key)");
    }
    std::transform(c.metrics_key_sha256.begin(), c.metrics_key_sha256.end(), c.metrics_key_sha256.begin(),
                   [](char ch) { return static_cast<char>(std::tolower(static_cast<unsigned char>(ch))); });
  }

  if (const YAML::Node r = root["router"]; r.IsDefined() && !r.IsNull()) {
    Fields rf(r, "router.", source);
    if (!r.IsMap()) return f.Error("router", "expected a map (model, train_dir, predictor, lambda)");
    BATON_RETURN_IF_ERROR(rf.OnlyKnown({"model", "train_dir", "predictor", "lambda"}));
    BATON_RETURN_IF_ERROR(rf.Get("model", &c.router.model_path));
    BATON_RETURN_IF_ERROR(rf.Get("train_dir", &c.router.train_dir));
    BATON_RETURN_IF_ERROR(rf.Get("predictor", &c.router.predictor));
    BATON_RETURN_IF_ERROR(rf.Get("lambda", &c.router.lambda));
    c.router.model_path = Resolve(base, c.router.model_path);
    c.router.train_dir = Resolve(base, c.router.train_dir);
    if (!(c.router.lambda >= 0) || !std::isfinite(c.router.lambda)) return rf.Error("lambda", "must be >= 0");
    if (!c.router.model_path.empty() && !c.router.train_dir.empty()) {
      return rf.Error("model", "give either model or train_dir, not both");
    }
  }

  const YAML::Node keys = root["keys"];
  const bool have_keys = keys.IsDefined() && !keys.IsNull();  // Type() throws on a missing node: test this first
  if (have_keys && !keys.IsSequence()) return f.Error("keys", "expected a list");
  std::set<std::string> key_hashes, key_names;
  for (size_t i = 0; have_keys && i < keys.size(); ++i) {
    const std::string path = fmt::format("keys[{}].", i);
    Fields kf(keys[i], path, source);
    if (!keys[i].IsMap()) return kf.Error("", "expected a map (name, sha256 or key, budget_usd)");
    BATON_RETURN_IF_ERROR(kf.OnlyKnown({"name", "sha256", "key", "budget_usd", "rate_limit_rps", "max_concurrency"}));
    ClientKeyConfig k;
    std::string plain;
    BATON_RETURN_IF_ERROR(kf.Get("name", &k.name));
    BATON_RETURN_IF_ERROR(kf.Get("sha256", &k.key_sha256));
    BATON_RETURN_IF_ERROR(kf.Get("key", &plain));
    if (k.name.empty()) return kf.Error("name", "missing");
    if (!key_names.insert(k.name).second) return kf.Error("name", fmt::format("duplicate key name '{}'", k.name));
    if (!plain.empty() && !k.key_sha256.empty()) return kf.Error("key", "give either key or sha256, not both");
    if (!plain.empty()) {
      k.key_sha256 = Sha256Hex(plain);
      std::fill(plain.begin(), plain.end(), '\0');
    } else if (!IsHex64(k.key_sha256)) {
      return kf.Error("sha256", k.key_sha256.empty() ? "missing (or give a plain key: for demos)"
                                                     : "must be 64 hex digits (the SHA-256 of the key)");
    }
    std::transform(k.key_sha256.begin(), k.key_sha256.end(), k.key_sha256.begin(),
                   [](char ch) { return static_cast<char>(std::tolower(static_cast<unsigned char>(ch))); });
    if (!key_hashes.insert(k.key_sha256).second) return kf.Error("sha256", "the same key is listed twice");
    if (!root["keys"][i]["budget_usd"].IsDefined()) return kf.Error("budget_usd", "missing");
    BATON_RETURN_IF_ERROR(kf.Get("budget_usd", &k.budget_usd));
    if (!(k.budget_usd >= 0) || !std::isfinite(k.budget_usd)) return kf.Error("budget_usd", "must be >= 0");
    BATON_RETURN_IF_ERROR(kf.Get("rate_limit_rps", &k.rate_limit_rps));
    if (!(k.rate_limit_rps >= 0) || !std::isfinite(k.rate_limit_rps)) {
      return kf.Error("rate_limit_rps", "must be a finite number >= 0 (0 = unlimited)");
    }
    BATON_RETURN_IF_ERROR(kf.Get("max_concurrency", &k.max_concurrency));
    if (k.max_concurrency < 0) return kf.Error("max_concurrency", "must be >= 0 (0 = unlimited)");
    c.keys.push_back(std::move(k));
  }
  if (c.keys.empty() && options.require_keys) return f.Error("keys", "at least one client key is required");

  const YAML::Node experts = root["experts"];
  if (!experts.IsDefined() || !experts.IsSequence() || experts.size() == 0) {
    return f.Error("experts", "a non-empty list of experts is required");
  }
  std::set<std::string> names;
  for (size_t i = 0; i < experts.size(); ++i) {
    ExpertConfig e;
    const std::string path = fmt::format("experts[{}].", i);
    BATON_RETURN_IF_ERROR(ParseExpert(experts[i], path, source, base, &e));
    if (!names.insert(e.name).second) {
      return Status::InvalidArgument(fmt::format("{}: {}name: duplicate expert name '{}'", source, path, e.name));
    }
    c.experts.push_back(std::move(e));
  }

  const YAML::Node archs = root["architectures"];
  if (archs.IsDefined() && !archs.IsNull() && !archs.IsSequence()) return f.Error("architectures", "expected a list");
  std::set<std::string> arch_names;
  for (size_t i = 0; archs.IsDefined() && archs.IsSequence() && i < archs.size(); ++i) {
    ArchitectureConfig a;
    const std::string path = fmt::format("architectures[{}].", i);
    BATON_RETURN_IF_ERROR(ParseArchitectureEntry(archs[i], path, source, base, &a));
    if (!arch_names.insert(a.name).second) {
      return Status::InvalidArgument(fmt::format("{}: {}name: duplicate architecture name '{}'", source, path, a.name));
    }
    c.architectures.push_back(std::move(a));
  }
  return c;
}

}  // namespace

StatusOr<GatewayConfig> ParseGatewayConfig(std::string_view yaml, const std::string& source,
                                           const std::string& base_dir, ConfigReadOptions options) {
  try {
    const YAML::Node root = YAML::Load(std::string(yaml));
    return Parse(root, source, base_dir, options);
  } catch (const YAML::Exception& e) {
    return Status::InvalidArgument(fmt::format("{}:{}:{}: {}", source, e.mark.line + 1, e.mark.column + 1, e.msg));
  } catch (const std::exception& e) {
    return Status::InvalidArgument(fmt::format("{}: {}", source, e.what()));
  }
}

StatusOr<GatewayConfig> LoadGatewayConfig(const std::string& path, ConfigReadOptions options) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::NotFound(fmt::format("{}: cannot open the configuration file", path));
  std::stringstream ss;
  ss << in.rdbuf();
  std::string base = std::filesystem::path(path).parent_path().string();
  if (base.empty()) base = ".";
  return ParseGatewayConfig(ss.str(), path, base, options);
}

}  // namespace baton::gateway
