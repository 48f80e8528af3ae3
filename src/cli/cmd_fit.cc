// baton fit: trains a predictor and a cost model on the store's outcomes and writes a model file.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>

#include "baton/dataset.h"
#include "baton/predictor.h"
#include "cli/command.h"
#include "cli/util.h"

namespace baton::cli {
namespace {

struct HeldOut {
  double log_loss = 0, best_pick = 0, oracle = 0;
  size_t queries = 0;
};

// Fits a fresh predictor on 80% of the queries and scores it on the other 20% (observed cells only).
StatusOr<HeldOut> EstimateHeldOut(const std::string& name, const PredictorOptions& opts, const Dataset& ds) {
  std::vector<size_t> rows(ds.num_queries());
  std::iota(rows.begin(), rows.end(), 0);
  uint64_t s = opts.seed * 0x9E3779B97F4A7C15ULL + 7;
  for (size_t i = rows.size(); i > 1; --i) {
    s ^= s << 13, s ^= s >> 7, s ^= s << 17;
    std::swap(rows[i - 1], rows[s % i]);
  }
  const size_t cut = rows.size() * 4 / 5;
  std::vector<size_t> tr(rows.begin(), rows.begin() + static_cast<ptrdiff_t>(cut));
  std::vector<size_t> te(rows.begin() + static_cast<ptrdiff_t>(cut), rows.end());
  const Dataset train = ds.SelectQueries(tr), test = ds.SelectQueries(te);
  BATON_ASSIGN_OR_RETURN(std::unique_ptr<Predictor> p, MakePredictor(name, opts));
  BATON_RETURN_IF_ERROR(p->Fit(train));
  const std::vector<float> pred = PredictAll(*p, test);
  const size_t ne = test.num_experts();
  HeldOut h;
  size_t cells = 0;
  for (size_t q = 0; q < test.num_queries(); ++q) {
    int best = -1;
    float oracle = -1;
    for (size_t e = 0; e < ne; ++e) {
      if (!test.observed(q, e)) continue;
      const double pr = std::clamp<double>(pred[q * ne + e], 1e-6, 1 - 1e-6), y = test.score(q, e);
      h.log_loss += -(y * std::log(pr) + (1 - y) * std::log(1 - pr)), ++cells;
      if (best < 0 || pred[q * ne + e] > pred[q * ne + best]) best = static_cast<int>(e);
      oracle = std::max(oracle, test.score(q, e));
    }
    if (best >= 0) h.best_pick += test.score(q, best), h.oracle += oracle, ++h.queries;
  }
  if (cells == 0 || h.queries == 0) return Status::FailedPrecondition("held-out split has no observed outcome");
  h.log_loss /= static_cast<double>(cells);
  h.best_pick /= static_cast<double>(h.queries);
  h.oracle /= static_cast<double>(h.queries);
  return h;
}

// "imported,live" -> sources; InvalidArgument naming the known ones.
StatusOr<std::vector<OutcomeSource>> ParseSources(const std::vector<std::string>& names) {
  std::vector<OutcomeSource> out;
  for (const std::string& n : names) {
    bool found = false;
    for (OutcomeSource s : {OutcomeSource::kImported, OutcomeSource::kLive, OutcomeSource::kSelfPlay}) {
      if (n == OutcomeSourceName(s)) out.push_back(s), found = true;
    }
    if (!found) {
      return Status::InvalidArgument(
          fmt::format("--include: unknown outcome source '{}' (known: imported, live, selfplay)", n));
    }
  }
  return out;
}

// A dataset name that looks like a held-out split.
bool LooksLikeTestSplit(const std::string& name) {
  for (const char* tag : {"test", "eval", "holdout", "held-out"}) {
    if (name.find(tag) != std::string::npos) return true;
  }
  return false;
}

std::string JoinNames(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
  return s;
}

// Which datasets to train on. Without --dataset a database holding one dataset is used whole; several are refused
// (listing them) because the silent default used to train on test splits too. "--dataset all" asks for all.
StatusOr<std::vector<std::string>> ChooseDatasets(Store& store, const std::vector<std::string>& asked) {
  BATON_ASSIGN_OR_RETURN(std::vector<std::string> stored, store.ListDatasets());
  const bool all_keyword =
      asked.size() == 1 && asked[0] == "all" && std::find(stored.begin(), stored.end(), "all") == stored.end();
  if (asked.empty() && stored.size() > 1) {
    return Status::InvalidArgument(fmt::format(
        "the database holds {} datasets ({}); say which to train on with --dataset NAME[,NAME] (or --dataset all)",
        stored.size(), JoinNames(stored)));
  }
  std::vector<std::string> chosen = asked.empty() || all_keyword ? stored : asked;
  for (const std::string& d : chosen) {
    if (LooksLikeTestSplit(d)) {
      fmt::print(stderr,
                 "warning: training on dataset '{}', whose name says it is a test split; do not bench or report on "
                 "it with this model\n",
                 d);
    }
  }
  return chosen;
}

}  // namespace

Command AddFitCommand(CLI::App& root) {
  auto* app = root.add_subcommand(
      "fit", "Train an outcome predictor and a cost model on recorded outcomes; write a model file");
  struct Opts {
    std::string db, out, predictor;
    std::vector<std::string> datasets, experts, include = {"imported"};
    uint64_t seed = 0;
    bool no_cv = false, no_holdout = false, cold_start = false;
  };
  auto o = std::make_shared<Opts>();
  o->predictor = PredictorNames().front();
  std::string predictors;
  for (const std::string& n : PredictorNames()) predictors += (predictors.empty() ? "" : ", ") + n;
  app->add_option("--db", o->db, "SQLite database file")->required()->check(CLI::ExistingFile);
  app->add_option("--out", o->out, "model file to write")->required();
  app->add_option("--predictor", o->predictor, "predictor: " + predictors + " (default: " + o->predictor + ")");
  app->add_option("--dataset", o->datasets,
                  "train on these datasets; required when the database holds several ('all' = every one)")
      ->delimiter(',');
  app->add_option("--experts", o->experts,
                  "only these experts, in this order (default: every expert with an outcome in the training data)")
      ->delimiter(',');
  app->add_option("--include", o->include,
                  "outcome sources to train on: imported,live,selfplay (default: imported); live adds the gateway's "
                  "dataset 'live' (its recorded and fed-back queries) to --dataset")
      ->delimiter(',');
  app->add_flag("--cold-start", o->cold_start,
                "keep experts named by --experts that have no training outcome (their predictions are the prior)");
  app->add_option("--seed", o->seed, "random seed (default: 0)")->check(NonNegativeInt());
  app->add_flag("--no-cv", o->no_cv, "use default hyper-parameters instead of cross-validating");
  app->add_flag("--no-holdout", o->no_holdout, "skip the 80/20 held-out quality estimate");
  return {app, [o]() -> Status {
            const auto t0 = std::chrono::steady_clock::now();
            const PredictorOptions opts{.seed = o->seed, .cross_validate = !o->no_cv};
            BATON_ASSIGN_OR_RETURN(std::unique_ptr<Predictor> predictor, MakePredictor(o->predictor, opts));
            BATON_ASSIGN_OR_RETURN(std::unique_ptr<Store> store, Store::Open(o->db, {.create = false}));
            if (!(o->datasets.size() == 1 && o->datasets[0] == "all")) {
              BATON_RETURN_IF_ERROR(CheckDatasetsExist(*store, o->datasets));
            }
            BATON_ASSIGN_OR_RETURN(std::vector<OutcomeSource> sources, ParseSources(o->include));
            BATON_ASSIGN_OR_RETURN(std::vector<std::string> datasets, ChooseDatasets(*store, o->datasets));
            // Live outcomes of `baton serve` (replayed answers, POST /v1/feedback) sit on queries of dataset "live":
            // asking for live outcomes trains on that dataset too, beside the named ones.
            if (std::find(sources.begin(), sources.end(), OutcomeSource::kLive) != sources.end() &&
                std::find(datasets.begin(), datasets.end(), "live") == datasets.end()) {
              BATON_ASSIGN_OR_RETURN(std::vector<std::string> stored, store->ListDatasets());
              if (std::find(stored.begin(), stored.end(), "live") != stored.end()) {
                fmt::print("--include live: also training on dataset 'live' (the gateway's live queries)\n");
                datasets.push_back("live");
              }
            }
            BATON_ASSIGN_OR_RETURN(
                Dataset ds, LoadDataset(*store, {.datasets = datasets, .experts = o->experts, .sources = sources}));
            // The model knows only experts it saw outcomes of: an expert of another dataset in the same database
            // would otherwise get the predictor's flat prior and be routed to as if it were known.
            std::vector<std::string> trained, cold;
            for (size_t e = 0; e < ds.num_experts(); ++e) {
              (ds.ObservedCount(e) > 0 ? trained : cold).push_back(ds.expert(e).name);
            }
            if (!cold.empty() && !trained.empty()) {
              if (o->experts.empty()) {
                fmt::print("leaving out {} expert(s) with no outcome in the training data: {}\n", cold.size(),
                           JoinNames(cold));
                BATON_ASSIGN_OR_RETURN(ds, ds.SelectExperts(trained));
              } else if (!o->cold_start) {
                return Status::FailedPrecondition(fmt::format(
                    "no training outcome for expert(s) {}; drop them from --experts or keep them as a cold start "
                    "with --cold-start",
                    JoinNames(cold)));
              } else {
                fmt::print(stderr,
                           "warning: cold start for {}: no training outcome; the model predicts the predictor's "
                           "prior for them and route/bench/predict refuse them unless given --cold-start\n",
                           JoinNames(cold));
              }
            }
            size_t observed = 0;
            for (float s : ds.score_matrix()) observed += !std::isnan(s);
            if (ds.num_queries() == 0 || observed == 0) {
              return Status::FailedPrecondition(
                  "empty training set: no observed outcome for the selected datasets/experts");
            }
            fmt::print(
                "training {} on {} queries x {} experts ({} observed outcomes, {} domains) from dataset(s) {}, "
                "outcome sources {}\n",
                o->predictor, ds.num_queries(), ds.num_experts(), observed, ds.domains().size(), JoinNames(datasets),
                JoinNames(o->include));
            if (!o->no_holdout && ds.num_queries() >= 50) {
              const auto th = std::chrono::steady_clock::now();
              BATON_ASSIGN_OR_RETURN(HeldOut h, EstimateHeldOut(o->predictor, opts, ds));
              fmt::print(
                  "held-out estimate (80/20 split, seed {}): log-loss {:.4f}, score of predicted-best expert {:.4f} "
                  "(oracle {:.4f}) over {} queries [{:.1f}s]\n",
                  o->seed, h.log_loss, h.best_pick, h.oracle, h.queries, SecondsSince(th));
            }
            const auto tf = std::chrono::steady_clock::now();
            BATON_RETURN_IF_ERROR(predictor->Fit(ds));
            fmt::print("fitted on all queries in {:.1f}s: {}\n", SecondsSince(tf), predictor->Describe());
            RouterModel model;
            BATON_ASSIGN_OR_RETURN(model.cost, CostModel::Fit(ds));
            model.predictor = std::move(predictor);
            for (size_t e = 0; e < ds.num_experts(); ++e) model.train_outcomes.push_back(ds.ObservedCount(e));
            BATON_RETURN_IF_ERROR(SaveModel(model, o->out));
            fmt::print("wrote {} ({} experts) in {:.1f}s total\n", o->out, model.predictor->num_experts(),
                       SecondsSince(t0));
            return Status::Ok();
          }};
}

}  // namespace baton::cli
