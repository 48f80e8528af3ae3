// baton onboard: tries a new expert on informative queries and decides whether it joins the serving universe,
// replaces a member (at a fixed k) or stays out; stores the decision, its evidence and the outcomes. The rule, the
// estimates and the decision are documented in include/baton/onboard.h.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <memory>

#include <fmt/format.h>

#include "baton/dataset.h"
#include "baton/onboard.h"
#include "baton/predictor.h"
#include "baton/store.h"
#include "cli/command.h"
#include "cli/util.h"
#include "gateway/config.h"

namespace baton::cli {
namespace {

// The dataset column a configured expert answers for: its replay_model (the recorded name) or its name.
std::string ColumnOf(const ExpertConfig& e) {
  return e.replay_model.empty() ? e.name : e.replay_model;
}

std::string Signed(double v) {
  return fmt::format("{:+.4f}", v);
}

// Writes the newcomer's outcomes (source selfplay: the system's own evaluation work, like the self-play loop's) and
// the decision with its evidence, all in one transaction.
Status StoreOnboarding(Store& store, const OnboardReport& r, const Dataset& pool, const ExpertConfig& newcomer,
                       const std::string& evidence) {
  BATON_ASSIGN_OR_RETURN(Store::Transaction tx, store.Begin());
  ExpertRecord er;
  er.name = ColumnOf(newcomer);
  er.usd_per_mtok_in = newcomer.usd_per_mtok_in;
  er.usd_per_mtok_out = newcomer.usd_per_mtok_out;
  BATON_ASSIGN_OR_RETURN(int64_t expert_id, store.UpsertExpert(er));
  for (const OnboardCall& c : r.calls) {
    if (!c.result) continue;
    const QueryRecord& q = pool.query(c.query);
    BATON_ASSIGN_OR_RETURN(std::optional<int64_t> qid, store.FindQuery(q.dataset, q.external_id));
    if (!qid) {
      QueryRecord copy = q;
      copy.id = 0;
      BATON_ASSIGN_OR_RETURN(int64_t id, store.InsertQuery(copy));
      qid = id;
    }
    BATON_RETURN_IF_ERROR(store.InsertOutcome({.query_id = *qid,
                                               .expert_id = expert_id,
                                               .score = *c.result->score,
                                               .cost_usd = c.result->cost_usd,
                                               .tokens_in = c.result->tokens_in,
                                               .tokens_out = c.result->tokens_out,
                                               .latency_ms = c.result->latency_ms,
                                               .source = OutcomeSource::kSelfPlay}));
  }
  BATON_RETURN_IF_ERROR(
      store
          .InsertOnboarding(
              {.expert = r.expert, .decision = r.decision, .replaces = r.replaces, .evidence_json = evidence})
          .status());
  return tx.Commit();
}

void PrintReport(const OnboardReport& r, const std::string& pool_name) {
  const std::string conf = fmt::format("{:.0f}%", r.options.confidence * 100);
  fmt::print("onboarding '{}' into a universe of {} experts{}, on {} ({} queries)\n", r.expert, r.members.size(),
             r.options.k ? fmt::format(" (fixed k = {})", *r.options.k) : std::string(), pool_name, r.pool_queries);
  fmt::print("sampled {} informative draws: {} distinct queries called, {} scored, {} failed; spent {}\n\n", r.draws,
             r.called, r.answered, r.failed, FormatUsd(r.spent_usd));
  std::vector<std::vector<std::string>> rows = {
      {"S(U) now (exact over the pool)", fmt::format("{:.4f}", r.s_universe), "", ""},
      {"gain S(U + new) - S(U)", Signed(r.gain.estimate), Signed(r.gain.lower), Signed(r.gain.upper)},
      {"extra cost, USD/query", fmt::format("{:+.6f}", r.extra_cost.estimate),
       fmt::format("{:+.6f}", r.extra_cost.lower), fmt::format("{:+.6f}", r.extra_cost.upper)},
      {fmt::format("gain - {:g} x extra cost", r.options.lambda), Signed(r.net_gain.estimate), Signed(r.net_gain.lower),
       Signed(r.net_gain.upper)},
      {"new expert's cost, USD/query", FormatUsd(r.cost_new), "", ""},
      {"members' mean cost, USD/query", FormatUsd(r.cost_members), "", ""},
  };
  PrintTable({"estimate", "value", fmt::format("{} lower", conf), fmt::format("{} upper", conf)}, rows);
  fmt::print("\nswaps at fixed k (S(U - member + new) - S(U)), best first:\n");
  rows.clear();
  for (size_t i = 0; i < r.swaps.size() && i < 5; ++i) {
    const OnboardSwap& s = r.swaps[i];
    rows.push_back({s.member, Signed(s.loss_without), Signed(s.delta.estimate), Signed(s.delta.lower),
                    fmt::format("{:+.6f}", s.extra_cost), Signed(s.net.estimate), Signed(s.net.lower)});
  }
  PrintTable({"member", "S(U - member) - S(U)", "swap dS", fmt::format("{} lower", conf), "extra USD/query",
              fmt::format("dS - {:g} x extra", r.options.lambda), fmt::format("{} lower", conf)},
             rows);
  fmt::print("\ndecision: {}{}: {}\n",
             r.decision == "join"      ? "JOIN"
             : r.decision == "replace" ? "REPLACE"
                                       : "REJECT",
             r.replaces.empty() ? "" : " '" + r.replaces + "'", r.reason);
}

}  // namespace

Command AddOnboardCommand(CLI::App& root) {
  auto* app = root.add_subcommand(
      "onboard",
      "Try a new expert on informative queries and decide whether it joins the universe, replaces a member at a "
      "fixed k, or stays out (S(U) gain with a bootstrap interval, and its cost)");
  struct Opts {
    std::string expert, config, db, dataset;
    size_t queries = 50, bootstrap = 2000;
    size_t k = 0;
    double lambda = -1;
    uint64_t seed = 0;
    bool json = false;
  };
  auto o = std::make_shared<Opts>();
  app->add_option("EXPERT", o->expert, "the new expert: one of the configuration's experts")->required();
  app->add_option("--config", o->config,
                  "a `baton serve` YAML: its experts are the universe (EXPERT among them) and its router says which "
                  "model (router.model) and pool of queries (router.train_dir) to use")
      ->required()
      ->check(CLI::ExistingFile);
  app->add_option("--queries", o->queries, "informative draws to evaluate the new expert on (default: 50)")
      ->check(PositiveInt());
  app->add_option("--db", o->db,
                  "where the decision, its evidence and the new outcomes are stored (default: the configuration's "
                  "store)");
  app->add_option("--dataset", o->dataset,
                  "take the pool of queries from this dataset of --db instead of router.train_dir");
  app->add_option("--k", o->k, "the universe's fixed size (default: it may grow by one)")->check(PositiveInt());
  app->add_option("--lambda", o->lambda, "score units per USD for the cost check (default: the router's lambda)")
      ->check(NonNegative());
  app->add_option("--bootstrap", o->bootstrap, "bootstrap resamples (default: 2000)")->check(PositiveInt());
  app->add_option("--seed", o->seed, "random seed of the draws and the bootstrap (default: 0)")
      ->check(NonNegativeInt());
  app->add_flag("--json", o->json, "print the report as JSON instead of tables");
  return {app, [o, app]() -> Status {
            BATON_ASSIGN_OR_RETURN(gateway::GatewayConfig config,
                                   gateway::LoadGatewayConfig(o->config, {.require_keys = false}));
            const ExpertConfig* newcomer = nullptr;
            std::vector<std::string> members;
            std::string names;
            for (const ExpertConfig& e : config.experts) {
              names += (names.empty() ? "" : ", ") + e.name;
              if (e.name == o->expert) {
                newcomer = &e;
              } else {
                members.push_back(ColumnOf(e));
              }
            }
            if (newcomer == nullptr) {
              return Status::InvalidArgument(
                  fmt::format("{}: no expert named '{}' (it has: {})", o->config, o->expert, names));
            }
            if (members.empty()) {
              return Status::InvalidArgument(
                  fmt::format("{}: '{}' is its only expert: there is no universe to join", o->config, o->expert));
            }
            const std::string db_path = !o->db.empty() ? o->db : config.store_path;
            std::unique_ptr<Store> store;
            if (db_path != ":memory:") {
              // The store's folder may not exist yet (out/ in a fresh clone), as for `baton serve`.
              const std::filesystem::path parent = std::filesystem::path(db_path).parent_path();
              std::error_code ec;
              if (!parent.empty()) std::filesystem::create_directories(parent, ec);
              if (ec)
                return Status::IoError(fmt::format("cannot create the folder {}: {}", parent.string(), ec.message()));
              BATON_ASSIGN_OR_RETURN(store, Store::Open(db_path));
            }
            // The pool: the members' recorded outcomes (never the newcomer's: it must earn them by being called).
            Dataset pool;
            std::string pool_name;
            const DatasetFilter filter{.experts = members, .sources = {OutcomeSource::kImported}};
            if (!o->dataset.empty()) {
              if (!store)
                return Status::InvalidArgument("--dataset needs --db (the configuration's store is in memory)");
              BATON_RETURN_IF_ERROR(CheckDatasetsExist(*store, {o->dataset}));
              DatasetFilter f = filter;
              f.datasets = {o->dataset};
              BATON_ASSIGN_OR_RETURN(pool, LoadDataset(*store, f));
              pool_name = "dataset " + o->dataset + " of " + db_path;
            } else if (!config.router.train_dir.empty()) {
              BATON_ASSIGN_OR_RETURN(pool, LoadDatasetDir(config.router.train_dir, filter));
              pool_name = config.router.train_dir;
            } else {
              return Status::InvalidArgument(fmt::format(
                  "{}: no pool of queries: set router.train_dir in the configuration, or pass --db and --dataset",
                  o->config));
            }
            // Members' cells never recorded: the router model's prediction when there is a model file.
            std::vector<float> predictions;
            size_t unobserved = 0;
            for (float v : pool.score_matrix()) unobserved += std::isnan(v);
            if (unobserved > 0 && !config.router.model_path.empty()) {
              BATON_ASSIGN_OR_RETURN(RouterModel model, LoadModel(config.router.model_path));
              std::vector<int> col(pool.num_experts(), -1);
              const auto& known = model.predictor->experts();
              for (size_t e = 0; e < pool.num_experts(); ++e) {
                auto it = std::find(known.begin(), known.end(), pool.expert(e).name);
                if (it != known.end()) col[e] = static_cast<int>(it - known.begin());
              }
              predictions.assign(pool.num_queries() * pool.num_experts(), NAN);
              std::vector<float> out(known.size());
              for (size_t q = 0; q < pool.num_queries(); ++q) {
                QueryView view;
                view.text = pool.query(q).text;
                view.domain = pool.query(q).domain;
                view.subdomain = pool.query(q).source;
                model.predictor->Predict(view, out);
                for (size_t e = 0; e < pool.num_experts(); ++e) {
                  if (col[e] >= 0) predictions[q * pool.num_experts() + e] = out[col[e]];
                }
              }
            }
            BATON_ASSIGN_OR_RETURN(std::unique_ptr<ExpertBackend> backend, MakeExpert(*newcomer));
            OnboardOptions opts;
            opts.queries = o->queries;
            opts.bootstrap = o->bootstrap;
            opts.seed = o->seed;
            opts.lambda = app->count("--lambda") > 0 ? o->lambda : config.router.lambda;
            if (app->count("--k") > 0) opts.k = o->k;
            if (!o->json) {
              fmt::print(stderr, "calling '{}' on up to {} informative queries of {}\n", o->expert, o->queries,
                         pool_name);
            }
            BATON_ASSIGN_OR_RETURN(OnboardReport report,
                                   Onboard(pool, o->expert, EvaluateWithBackend(*backend), opts, predictions));
            const std::string evidence = OnboardReportJson(report, pool);
            if (store) {
              BATON_RETURN_IF_ERROR(StoreOnboarding(*store, report, pool, *newcomer, evidence)
                                        .WithContext("storing the decision in " + db_path));
            }
            if (o->json) {
              fmt::print("{}\n", evidence);
            } else {
              PrintReport(report, pool_name);
              fmt::print("{}\n", store ? fmt::format("stored in {} (table onboarding; {} outcomes, source selfplay)",
                                                     db_path, report.answered)
                                       : std::string("not stored: the configuration's store is in memory (pass --db)"));
            }
            return Status::Ok();
          }};
}

}  // namespace baton::cli
