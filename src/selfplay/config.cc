// LoadSelfPlayConfig: the YAML of `baton selfplay`.
#include "selfplay/config.h"

#include <filesystem>
#include <set>

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>
#include <nlohmann/json.hpp>

#include "gateway/config.h"

namespace baton::selfplay {
namespace {

std::string Resolve(const std::string& base, const std::string& p) {
  if (p.empty() || std::filesystem::path(p).is_absolute() || base.empty()) return p;
  return (std::filesystem::path(base) / p).lexically_normal().string();
}

template <typename T>
Status Get(const YAML::Node& n, const char* key, T* out, const std::string& where) {
  const YAML::Node v = n[key];
  if (!v.IsDefined() || v.IsNull()) return Status::Ok();
  try {
    *out = v.as<T>();
  } catch (const YAML::Exception& e) {
    return Status::InvalidArgument(fmt::format("{}: selfplay.{}: {}", where, key, e.what()));
  }
  return Status::Ok();
}

// A YAML value as JSON: maps and lists as such; a scalar as a number or boolean when it reads as one, else a string.
nlohmann::json ToJson(const YAML::Node& n) {
  if (n.IsMap()) {
    nlohmann::json o = nlohmann::json::object();
    for (const auto& kv : n) o[kv.first.as<std::string>()] = ToJson(kv.second);
    return o;
  }
  if (n.IsSequence()) {
    nlohmann::json a = nlohmann::json::array();
    for (const auto& v : n) a.push_back(ToJson(v));
    return a;
  }
  if (n.IsNull() || !n.IsDefined()) return nullptr;
  const std::string& text = n.Scalar();
  if (n.Tag() != "!") {  // not quoted in the file
    const nlohmann::json parsed = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (parsed.is_number() || parsed.is_boolean()) return parsed;
  }
  return text;
}

// The optional `extra:` map of a writer or judge: request fields passed through to the upstream.
StatusOr<nlohmann::json> ExtraFields(const YAML::Node& parent, const std::string& where) {
  const YAML::Node e = parent["extra"];
  if (!e.IsDefined() || e.IsNull()) return nlohmann::json::object();
  if (!e.IsMap()) return Status::InvalidArgument(where + ": expected a map of request fields, e.g. {grammar: \"...\"}");
  return ToJson(e);
}

StatusOr<LoopConfig> ParseLoopConfig(const YAML::Node& s, const std::string& path, const std::string& base) {
  LoopConfig c;
  if (!s.IsDefined() || s.IsNull()) {
    return Status::InvalidArgument(path + ": selfplay: missing section (it needs at least questions: {pool: DIR})");
  }
  if (!s.IsMap()) return Status::InvalidArgument(path + ": selfplay: expected a map");
  static const std::set<std::string> known = {"db",
                                              "dataset",
                                              "questions",
                                              "evaluate",
                                              "experts",
                                              "questions_per_round",
                                              "candidates_per_question",
                                              "epsilon",
                                              "small_pool",
                                              "spend_cap_usd",
                                              "refit_every",
                                              "model",
                                              "predictor",
                                              "refit_datasets",
                                              "refit_include",
                                              "timeout_s",
                                              "max_tokens",
                                              "seed"};
  for (const auto& kv : s) {
    const std::string k = kv.first.as<std::string>();
    if (!known.count(k)) {
      std::string list;
      for (const std::string& x : known) list += (list.empty() ? "" : ", ") + x;
      return Status::InvalidArgument(fmt::format("{}: selfplay.{}: unknown key (known: {})", path, k, list));
    }
  }
  BATON_RETURN_IF_ERROR(Get(s, "db", &c.db, path));
  c.db = Resolve(base, c.db);
  BATON_RETURN_IF_ERROR(Get(s, "dataset", &c.loop.dataset, path));
  if (const YAML::Node q = s["questions"]; q.IsDefined()) {
    if (!q.IsMap())
      return Status::InvalidArgument(path +
                                     ": selfplay.questions: expected {pool: FILE} or {writer: EXPERT, domains: [...]}");
    BATON_RETURN_IF_ERROR(Get(q, "pool", &c.pool, path));
    c.pool = Resolve(base, c.pool);
    if (!c.pool.empty() && std::filesystem::is_directory(c.pool)) c.pool += "/queries.jsonl";
    BATON_RETURN_IF_ERROR(Get(q, "keep_unreferenced", &c.keep_unreferenced, path));
    BATON_RETURN_IF_ERROR(Get(q, "writer", &c.writer, path));
    BATON_RETURN_IF_ERROR(Get(q, "domains", &c.domains, path));
    BATON_ASSIGN_OR_RETURN(c.writer_extra, ExtraFields(q, path + ": selfplay.questions.extra"));
  }
  if (c.pool.empty() == c.writer.empty()) {
    return Status::InvalidArgument(
        path + ": selfplay.questions: give one of pool (a dataset folder or queries.jsonl) or writer (an expert)");
  }
  if (const YAML::Node e = s["evaluate"]; e.IsDefined()) {
    if (e.IsScalar()) {
      c.evaluate = e.as<std::string>();
    } else if (e.IsMap() && e["judge"].IsDefined()) {
      c.evaluate = "judge";
      c.judge = e["judge"].as<std::string>();
      BATON_ASSIGN_OR_RETURN(c.judge_extra, ExtraFields(e, path + ": selfplay.evaluate.extra"));
    } else {
      return Status::InvalidArgument(path + ": selfplay.evaluate: expected reference, recorded or {judge: EXPERT}");
    }
  }
  if (c.evaluate != "reference" && c.evaluate != "recorded" && c.evaluate != "judge") {
    return Status::InvalidArgument(fmt::format(
        "{}: selfplay.evaluate: unknown '{}' (known: reference, recorded, {{judge: EXPERT}})", path, c.evaluate));
  }
  BATON_RETURN_IF_ERROR(Get(s, "experts", &c.experts, path));
  BATON_RETURN_IF_ERROR(Get(s, "questions_per_round", &c.loop.questions_per_round, path));
  BATON_RETURN_IF_ERROR(Get(s, "candidates_per_question", &c.loop.candidates_per_question, path));
  BATON_RETURN_IF_ERROR(Get(s, "epsilon", &c.loop.exploration.epsilon, path));
  BATON_RETURN_IF_ERROR(Get(s, "small_pool", &c.loop.exploration.small_pool, path));
  double cap = -1;
  BATON_RETURN_IF_ERROR(Get(s, "spend_cap_usd", &cap, path));
  if (s["spend_cap_usd"].IsDefined()) {
    if (!(cap >= 0)) return Status::InvalidArgument(path + ": selfplay.spend_cap_usd: must be >= 0");
    c.loop.spend_cap_usd = cap;
  }
  BATON_RETURN_IF_ERROR(Get(s, "refit_every", &c.loop.refit_every, path));
  BATON_RETURN_IF_ERROR(Get(s, "model", &c.loop.model_path, path));
  c.loop.model_path = Resolve(base, c.loop.model_path);
  BATON_RETURN_IF_ERROR(Get(s, "predictor", &c.loop.predictor, path));
  BATON_RETURN_IF_ERROR(Get(s, "refit_datasets", &c.loop.refit_datasets, path));
  BATON_RETURN_IF_ERROR(Get(s, "refit_include", &c.refit_include, path));
  double timeout_s = 60;
  BATON_RETURN_IF_ERROR(Get(s, "timeout_s", &timeout_s, path));
  if (!(timeout_s > 0)) return Status::InvalidArgument(path + ": selfplay.timeout_s: must be > 0");
  c.loop.timeout = std::chrono::milliseconds(static_cast<int64_t>(timeout_s * 1000));
  int64_t max_tokens = 0;
  BATON_RETURN_IF_ERROR(Get(s, "max_tokens", &max_tokens, path));
  if (s["max_tokens"].IsDefined()) {
    if (max_tokens <= 0) return Status::InvalidArgument(path + ": selfplay.max_tokens: must be > 0");
    c.loop.max_tokens = max_tokens;
  }
  BATON_RETURN_IF_ERROR(Get(s, "seed", &c.loop.seed, path));
  if (!(c.loop.exploration.epsilon >= 0 && c.loop.exploration.epsilon <= 1)) {
    return Status::InvalidArgument(path + ": selfplay.epsilon: must be in [0, 1]");
  }
  if (c.loop.questions_per_round == 0) {
    return Status::InvalidArgument(path + ": selfplay.questions_per_round: must be >= 1");
  }
  if (!c.refit_include.empty()) {
    c.loop.refit_sources.clear();
    for (const std::string& n : c.refit_include) {
      bool found = false;
      for (OutcomeSource src : {OutcomeSource::kImported, OutcomeSource::kLive, OutcomeSource::kSelfPlay}) {
        if (n == OutcomeSourceName(src)) c.loop.refit_sources.push_back(src), found = true;
      }
      if (!found) {
        return Status::InvalidArgument(fmt::format(
            "{}: selfplay.refit_include: unknown outcome source '{}' (known: imported, live, selfplay)", path, n));
      }
    }
  }
  return c;
}

}  // namespace

StatusOr<LoopConfig> LoadSelfPlayConfig(const std::string& path) {
  try {
    YAML::Node root = YAML::LoadFile(path);
    if (!root.IsMap()) return Status::InvalidArgument(path + ": expected a YAML map at the top level");
    for (const auto& kv : root) {
      const std::string k = kv.first.as<std::string>();
      if (k != "experts" && k != "selfplay") {
        return Status::InvalidArgument(fmt::format("{}: {}: unknown key (known: experts, selfplay)", path, k));
      }
    }
    std::string base = std::filesystem::path(path).parent_path().string();
    if (base.empty()) base = ".";
    YAML::Node only_experts;
    only_experts["experts"] = root["experts"];
    YAML::Emitter em;
    em << only_experts;
    BATON_ASSIGN_OR_RETURN(gateway::GatewayConfig gc,
                           gateway::ParseGatewayConfig(em.c_str(), path, base, {.require_keys = false}));
    if (gc.experts.empty()) return Status::InvalidArgument(path + ": experts: none configured");
    BATON_ASSIGN_OR_RETURN(LoopConfig c, ParseLoopConfig(root["selfplay"], path, base));
    c.all_experts = std::move(gc.experts);
    return c;
  } catch (const YAML::Exception& e) {
    return Status::InvalidArgument(fmt::format("{}:{}:{}: {}", path, e.mark.line + 1, e.mark.column + 1, e.msg));
  }
}

}  // namespace baton::selfplay
