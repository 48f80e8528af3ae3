// baton archon: inference-time architectures (Archon). `validate` checks a configuration, `run` answers prompts
// with it, `eval` scores it on a dataset's queries against their references.
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <random>

#include <fmt/format.h>
#include <boost/asio/thread_pool.hpp>
#include <nlohmann/json.hpp>

#include "baton/answer.h"
#include "baton/archon.h"
#include "baton/predictor.h"
#include "baton/store.h"
#include "cli/command.h"
#include "cli/util.h"
#include "gateway/config.h"

namespace baton::cli {
namespace {

using archon::Architecture;
using archon::ParseResult;

// The experts section of a `baton serve` configuration. A file without client keys (a plain experts list) is
// accepted: keys only matter to the gateway.
StatusOr<gateway::GatewayConfig> LoadExperts(const std::string& path) {
  return gateway::LoadGatewayConfig(path, {.require_keys = false});
}

void PrintDiagnostics(const ParseResult& r, const std::string& source) {
  for (const auto& d : r.errors) fmt::print(stderr, "error: {}\n", d.ToString(source));
  for (const auto& d : r.warnings) fmt::print(stderr, "warning: {}\n", d.ToString(source));
}

// Loads, parses and validates; errors are printed and returned as one InvalidArgument.
StatusOr<Architecture> LoadValid(const std::string& path, const std::vector<ExpertConfig>& experts,
                                 bool quiet_warnings) {
  BATON_ASSIGN_OR_RETURN(ParseResult r, archon::LoadArchitecture(path));
  archon::Validate({.structure_only = false, .experts = experts}, &r);
  if (!r.errors.empty() || !quiet_warnings) PrintDiagnostics(r, path);
  if (!r.errors.empty()) {
    return Status::InvalidArgument(
        fmt::format("{}: {} error(s); see above (baton archon validate {})", path, r.errors.size(), path));
  }
  return std::move(r.architecture);
}

// The experts an architecture calls, built from the configuration (only those it names).
struct ExpertSet {
  std::vector<ExpertConfig> configs;
  std::map<std::string, std::unique_ptr<ExpertBackend>> backends;  // by configured name
  std::unique_ptr<boost::asio::thread_pool> blocking;
  archon::ExpertLookup Lookup() {
    return [this](std::string_view model) -> std::optional<archon::ExpertHandle> {
      const ExpertConfig* c = archon::FindExpertConfig(configs, model);
      if (c == nullptr) return std::nullopt;
      auto it = backends.find(c->name);
      if (it == backends.end()) return std::nullopt;
      return archon::ExpertHandle{it->second.get(), c};
    };
  }
};

StatusOr<std::unique_ptr<ExpertSet>> BuildExperts(const gateway::GatewayConfig& config, const Architecture& arch) {
  auto set = std::make_unique<ExpertSet>();
  set->configs = config.experts;
  for (const auto& layer : arch.layers) {
    for (const auto& c : layer.components) {
      if (!archon::NeedsModel(c.type)) continue;
      const ExpertConfig* e = archon::FindExpertConfig(set->configs, c.model);
      if (e == nullptr || set->backends.count(e->name)) continue;
      fmt::print(stderr, "loading expert {} ({})\n", e->name, e->kind);
      StatusOr<std::unique_ptr<ExpertBackend>> b = MakeExpert(*e);
      if (!b.ok()) return b.status().WithContext(fmt::format("expert '{}'", e->name));
      set->backends[e->name] = std::move(*b);
    }
  }
  set->blocking = std::make_unique<boost::asio::thread_pool>(4);
  return set;
}

bool UsesPredictedRanker(const Architecture& arch) {
  for (const auto& l : arch.layers)
    for (const auto& c : l.components)
      if (c.type == archon::ComponentType::kPredictedRanker) return true;
  return false;
}

// The predicted-score ranker's scorer, from a router model file (shared so the lambda can own it).
StatusOr<archon::CandidateScorer> LoadScorer(const std::string& model_path) {
  BATON_ASSIGN_OR_RETURN(RouterModel m, LoadModel(model_path));
  auto model = std::make_shared<RouterModel>(std::move(m));
  return archon::CandidateScorer([model](std::string_view q, const std::vector<std::string>& experts) {
    const auto& names = model->predictor->experts();
    std::vector<float> s(names.size());
    model->predictor->Predict(QueryView{.text = q}, s);
    std::vector<double> out;
    for (const std::string& e : experts) {
      auto it = std::find(names.begin(), names.end(), e);
      out.push_back(it == names.end() ? std::nan("") : s[static_cast<size_t>(it - names.begin())]);
    }
    return out;
  });
}

std::string NewRunId() {
  std::random_device rd;
  return fmt::format(
      "{:x}-{:08x}",
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count(),
      rd());
}

Status StoreTraces(Store& store, const std::vector<ArchonCallRecord>& trace) {
  BATON_ASSIGN_OR_RETURN(Store::Transaction tx, store.Begin());
  for (const auto& t : trace) BATON_RETURN_IF_ERROR(store.LogArchonCall(t));
  return tx.Commit();
}

nlohmann::json TraceJson(const ArchonCallRecord& t) {
  return {{"layer", t.layer},       {"component_index", t.component_index}, {"component", t.component},
          {"expert", t.expert},     {"prompt_tokens", t.prompt_tokens},     {"completion_tokens", t.completion_tokens},
          {"cost_usd", t.cost_usd}, {"latency_ms", t.latency_ms},           {"status", t.status},
          {"parse", t.parse}};
}

struct Query {
  std::string id, text, reference;
};

// JSON Lines of {"id", "text", "reference"?}; the line number stands in for a missing id.
StatusOr<std::vector<Query>> ReadQueries(const std::string& path, size_t limit) {
  std::ifstream in(path);
  if (!in) return Status::NotFound(fmt::format("{}: cannot open", path));
  std::vector<Query> out;
  std::string line;
  for (size_t n = 1; std::getline(in, line) && (limit == 0 || out.size() < limit); ++n) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object() || !j.contains("text") || !j["text"].is_string()) {
      return Status::InvalidArgument(fmt::format("{}:{}: expected a JSON object with a \"text\" string", path, n));
    }
    Query q{.id = std::to_string(n), .text = j["text"].get<std::string>()};
    if (j.contains("id")) q.id = j["id"].is_string() ? j["id"].get<std::string>() : j["id"].dump();
    if (j.contains("reference") && j["reference"].is_string()) q.reference = j["reference"].get<std::string>();
    out.push_back(std::move(q));
  }
  if (out.empty()) return Status::InvalidArgument(fmt::format("{}: no query", path));
  return out;
}

struct CommonOpts {
  std::string arch_path, config, db, router_model;
  int64_t max_calls = 0;
  double max_cost = 0;
  int concurrency = 8;
  double timeout_s = 300;
};

void AddCommon(CLI::App* app, CommonOpts* o) {
  app->add_option("CONFIG", o->arch_path, "Archon architecture (JSON)")->required()->check(CLI::ExistingFile);
  app->add_option("--config", o->config, "`baton serve` YAML whose experts the architecture's models name")
      ->required()
      ->check(CLI::ExistingFile);
  app->add_option("--db", o->db, "database (SQLite file or postgresql:// URL) to record every call's trace in (table archon_calls)");
  app->add_option("--router-model", o->router_model,
                  "model file (`baton fit`) for predicted_ranker components. Default: the config's router.model")
      ->check(CLI::ExistingFile);
  app->add_option("--max-calls", o->max_calls, "cap on one run's inference calls; a bigger bound is refused (0 = none)")
      ->check(NonNegativeInt());
  app->add_option("--max-cost", o->max_cost,
                  "cap on one run's cost in USD: a layer that could pass it is not started (0 = none)")
      ->check(NonNegative());
  app->add_option("--concurrency", o->concurrency, "calls of one run in flight at once. Default: 8")
      ->check(PositiveInt());
  app->add_option("--timeout", o->timeout_s, "seconds allowed to one run. Default: 300")->check(NonNegative());
}

// Everything `run` and `eval` need: the architecture, its experts, options and the trace store.
struct Prepared {
  Architecture arch;
  std::unique_ptr<ExpertSet> experts;
  archon::ArchonRunOptions options;
  std::unique_ptr<Store> store;
};

StatusOr<Prepared> Prepare(const CommonOpts& o, bool quiet_warnings) {
  Prepared p;
  BATON_ASSIGN_OR_RETURN(gateway::GatewayConfig config, LoadExperts(o.config));
  BATON_ASSIGN_OR_RETURN(p.arch, LoadValid(o.arch_path, config.experts, quiet_warnings));
  BATON_ASSIGN_OR_RETURN(p.experts, BuildExperts(config, p.arch));
  p.options.limits.max_calls = o.max_calls;
  p.options.limits.max_cost_usd = o.max_cost;
  p.options.limits.max_concurrency = o.concurrency;
  p.options.limits.timeout = std::chrono::milliseconds(static_cast<int64_t>(o.timeout_s * 1000));
  if (UsesPredictedRanker(p.arch)) {
    const std::string model = !o.router_model.empty() ? o.router_model : config.router.model_path;
    if (model.empty()) {
      fmt::print(stderr,
                 "warning: {} has a predicted_ranker but no router model was given (--router-model FILE or the "
                 "config's router.model); it keeps the candidates' order\n",
                 o.arch_path);
    } else {
      BATON_ASSIGN_OR_RETURN(p.options.scorer, LoadScorer(model));
    }
  }
  if (!o.db.empty()) {
    BATON_ASSIGN_OR_RETURN(p.store, Store::Open(o.db));
  }
  return p;
}

StatusOr<archon::ArchonResult> RunOne(Prepared& p, const std::string& text) {
  ChatRequest req;
  req.messages = {ChatMessage{.role = "user", .content = text}};
  archon::ArchonRunOptions opt = p.options;
  opt.run_id = NewRunId();
  StatusOr<archon::ArchonResult> r =
      archon::RunArchitecture(p.arch, p.experts->Lookup(), std::move(req), opt, p.experts->blocking.get());
  if (r.ok() && p.store) BATON_RETURN_IF_ERROR(StoreTraces(*p.store, r->trace));
  return r;
}

Command AddValidate(CLI::App& parent) {
  auto* app = parent.add_subcommand("validate", "Check an Archon architecture: errors (exit 1) and warnings");
  struct Opts {
    std::string path, experts;
    bool structure_only = false;
    bool json = false;
  };
  auto o = std::make_shared<Opts>();
  app->add_option("CONFIG", o->path, "Archon architecture (JSON)")->required()->check(CLI::ExistingFile);
  app->add_flag("--structure-only", o->structure_only, "do not check that each model maps to a configured expert");
  app->add_option("--experts,--config", o->experts,
                  "YAML with an `experts:` list (a `baton serve` configuration) to map models to")
      ->check(CLI::ExistingFile);
  return {app, [o]() -> Status {
            if (!o->structure_only && o->experts.empty()) {
              return Status::InvalidArgument(
                  "give --experts YAML (the `baton serve` configuration) to check the models, or --structure-only");
            }
            archon::ValidateOptions v{.structure_only = o->structure_only};
            if (!o->structure_only) {
              BATON_ASSIGN_OR_RETURN(gateway::GatewayConfig c, LoadExperts(o->experts));
              v.experts = c.experts;
            }
            BATON_ASSIGN_OR_RETURN(ParseResult r, archon::LoadArchitecture(o->path));
            archon::Validate(v, &r);
            PrintDiagnostics(r, o->path);
            if (!r.errors.empty()) {
              return Status::InvalidArgument(
                  fmt::format("{}: {} error(s), {} warning(s)", o->path, r.errors.size(), r.warnings.size()));
            }
            size_t components = 0;
            for (const auto& l : r.architecture.layers) components += l.components.size();
            fmt::print("{}: ok: architecture '{}', {} layers, {} components, {} warning(s)\n", o->path,
                       r.architecture.name, r.architecture.layers.size(), components, r.warnings.size());
            return Status::Ok();
          }};
}

Command AddRun(CLI::App& parent) {
  auto* app = parent.add_subcommand("run", "Answer prompts with an Archon architecture over configured experts");
  struct Opts : CommonOpts {
    std::string prompt, queries;
    bool json = false;
  };
  auto o = std::make_shared<Opts>();
  AddCommon(app, o.get());
  app->add_option("--prompt", o->prompt, "one prompt");
  app->add_option("--queries", o->queries, "JSON Lines of {\"id\", \"text\"}: one answer per line")
      ->check(CLI::ExistingFile);
  app->add_flag("--json", o->json, "print a JSON object per query: answer, expert, cost, calls, trace");
  return {app, [o, app]() -> Status {
            if ((app->count("--prompt") > 0) == !o->queries.empty()) {
              return Status::InvalidArgument("give either --prompt TEXT or --queries FILE.jsonl");
            }
            std::vector<Query> queries;
            if (o->queries.empty()) {
              queries.push_back({.id = "prompt", .text = o->prompt});
            } else {
              BATON_ASSIGN_OR_RETURN(queries, ReadQueries(o->queries, 0));
            }
            BATON_ASSIGN_OR_RETURN(Prepared p, Prepare(*o, false));
            size_t failed = 0;
            for (const Query& q : queries) {
              StatusOr<archon::ArchonResult> r = RunOne(p, q.text);
              if (!r.ok()) {
                ++failed;
                if (o->json) {
                  fmt::print("{}\n", nlohmann::json{{"id", q.id}, {"error", r.status().ToString()}}.dump());
                } else {
                  fmt::print(stderr, "{}: error: {}\n", q.id, r.status().ToString());
                }
                continue;
              }
              if (o->json) {
                nlohmann::json j = {{"id", q.id},
                                    {"answer", r->answer},
                                    {"expert", r->answer_expert},
                                    {"cost_usd", r->cost_usd},
                                    {"calls", r->calls},
                                    {"stop_reason", r->stop_reason},
                                    {"trace", nlohmann::json::array()}};
                for (const auto& t : r->trace) j["trace"].push_back(TraceJson(t));
                fmt::print("{}\n", j.dump());
              } else {
                if (queries.size() > 1) fmt::print("== {}\n", q.id);
                fmt::print("{}\n", r->answer);
                fmt::print(stderr, "[{}: {} calls, ${:.6f}{}]\n", p.arch.name, r->calls, r->cost_usd,
                           r->stop_reason.empty() ? "" : ", stopped: " + r->stop_reason);
              }
            }
            if (failed == queries.size()) return Status::Unavailable(fmt::format("every run failed ({})", failed));
            return Status::Ok();
          }};
}

Command AddEval(CLI::App& parent) {
  auto* app = parent.add_subcommand(
      "eval", "Run an Archon architecture over a dataset's queries and score the answers against the references");
  struct Opts : CommonOpts {
    std::string data, json_out;
    size_t limit = 0;
  };
  auto o = std::make_shared<Opts>();
  AddCommon(app, o.get());
  app->add_option("--data", o->data, "dataset folder with queries.jsonl (id, text, reference)")
      ->required()
      ->check(CLI::ExistingDirectory);
  app->add_option("--limit", o->limit, "only the first N queries (0 = all)")->check(NonNegativeInt());
  app->add_option("--json", o->json_out, "write the summary and per-query results to this JSON file");
  return {app, [o]() -> Status {
            BATON_ASSIGN_OR_RETURN(std::vector<Query> queries,
                                   ReadQueries((std::filesystem::path(o->data) / "queries.jsonl").string(), o->limit));
            BATON_ASSIGN_OR_RETURN(Prepared p, Prepare(*o, false));
            const auto t0 = std::chrono::steady_clock::now();
            double score_sum = 0, cost = 0;
            int64_t calls = 0, scored = 0, failed = 0, stopped = 0, by_recorded = 0;
            nlohmann::json rows = nlohmann::json::array();
            for (size_t i = 0; i < queries.size(); ++i) {
              const Query& q = queries[i];
              StatusOr<archon::ArchonResult> r = RunOne(p, q.text);
              nlohmann::json row = {{"id", q.id}};
              std::optional<double> s;
              if (r.ok()) {
                cost += r->cost_usd;
                calls += r->calls;
                stopped += r->stop_reason.empty() ? 0 : 1;
                s = ScoreAgainstReference(r->answer, q.reference);
                // Without a reference, an answer that is a replayed answer verbatim is scored by what it earned when
                // it was recorded.
                const auto& first = r->final_state.candidates.front();
                if (!s && first.recorded_score && first.text == r->answer) {
                  s = first.recorded_score;
                  ++by_recorded;
                }
                row["answer"] = r->answer.substr(0, 200);
                row["expert"] = r->answer_expert;
                row["cost_usd"] = r->cost_usd;
                row["calls"] = r->calls;
              } else {
                ++failed;
                row["error"] = r.status().ToString();
                s = 0;  // a failed run answers nothing: wrong
              }
              if (s) {
                ++scored;
                score_sum += *s;
                row["score"] = *s;
              }
              rows.push_back(std::move(row));
              if ((i + 1) % 50 == 0 || i + 1 == queries.size()) {
                fmt::print(stderr, "[{}/{}] accuracy {:.4f}, cost ${:.6f}, {} calls, {} failed, {:.1f}s\n", i + 1,
                           queries.size(), scored ? score_sum / scored : 0.0, cost, calls, failed, SecondsSince(t0));
              }
            }
            const double acc = scored ? score_sum / static_cast<double>(scored) : std::nan("");
            const double n = static_cast<double>(queries.size());
            fmt::print("architecture  {}\n", p.arch.name);
            fmt::print(
                "queries       {} ({} scored: {} against a reference, {} by the replayed answer's recorded score, {} "
                "failed runs as 0; {} stopped early)\n",
                queries.size(), scored, scored - by_recorded - failed, by_recorded, failed, stopped);
            fmt::print("accuracy      {}\n", FormatFraction(acc));
            fmt::print("cost          ${:.6f} total, ${:.8f} per query\n", cost, cost / n);
            fmt::print("calls         {} total, {:.2f} per query\n", calls, static_cast<double>(calls) / n);
            if (!o->json_out.empty()) {
              nlohmann::json j = {{"architecture", p.arch.name},
                                  {"config", o->arch_path},
                                  {"data", o->data},
                                  {"queries", queries.size()},
                                  {"scored", scored},
                                  {"scored_by_recorded_score", by_recorded},
                                  {"failed", failed},
                                  {"accuracy", scored ? nlohmann::json(acc) : nlohmann::json(nullptr)},
                                  {"cost_usd", cost},
                                  {"calls", calls},
                                  {"results", rows}};
              BATON_RETURN_IF_ERROR(WriteFileAtomically(o->json_out, j.dump(1) + "\n"));
            }
            return Status::Ok();
          }};
}

}  // namespace

Command AddArchonCommand(CLI::App& root) {
  auto* app = root.add_subcommand("archon", "Archon inference-time architectures: validate, run, eval, search");
  app->require_subcommand(1);
  auto subs = std::make_shared<std::vector<Command>>();
  subs->push_back(AddValidate(*app));
  subs->push_back(AddRun(*app));
  subs->push_back(AddEval(*app));
  subs->push_back(AddArchonSearchSubcommand(*app));
  return {app, [subs]() -> Status {
            for (const Command& c : *subs)
              if (c.app->parsed()) return c.run();
            return Status::InvalidArgument("give a subcommand: validate, run, eval or search");
          }};
}

}  // namespace baton::cli
