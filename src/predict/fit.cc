// FitModelFromStore: the body of `baton fit`, shared with the self-play loop's refit.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>

#include <fmt/format.h>

#include "baton/dataset.h"
#include "baton/fit.h"
#include "baton/predictor.h"

namespace baton {
namespace {

double SecondsSince(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

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
StatusOr<std::vector<std::string>> ChooseDatasets(Store& store, const std::vector<std::string>& asked,
                                                  const std::function<void(const std::string&)>& warn) {
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
      warn(fmt::format(
          "warning: training on dataset '{}', whose name says it is a test split; do not bench or report on "
          "it with this model",
          d));
    }
  }
  return chosen;
}

}  // namespace

StatusOr<FitSummary> FitModelFromStore(Store& store, const FitOptions& o, const std::string& out_path) {
  auto info = [&](const std::string& m) {
    if (o.info) o.info(m);
  };
  auto warn = [&](const std::string& m) {
    if (o.warn) o.warn(m);
  };
  const auto t0 = std::chrono::steady_clock::now();
  const std::string name = o.predictor.empty() ? PredictorNames().front() : o.predictor;
  const PredictorOptions opts{.seed = o.seed, .cross_validate = o.cross_validate};
  BATON_ASSIGN_OR_RETURN(std::unique_ptr<Predictor> predictor, MakePredictor(name, opts));
  BATON_ASSIGN_OR_RETURN(std::vector<std::string> datasets, ChooseDatasets(store, o.datasets, warn));
  // Live outcomes of `baton serve` (replayed answers, POST /v1/feedback) sit on queries of dataset "live": asking
  // for live outcomes trains on that dataset too, beside the named ones.
  if (std::find(o.sources.begin(), o.sources.end(), OutcomeSource::kLive) != o.sources.end() &&
      std::find(datasets.begin(), datasets.end(), "live") == datasets.end()) {
    BATON_ASSIGN_OR_RETURN(std::vector<std::string> stored, store.ListDatasets());
    if (std::find(stored.begin(), stored.end(), "live") != stored.end()) {
      info("--include live: also training on dataset 'live' (the gateway's live queries)");
      datasets.push_back("live");
    }
  }
  BATON_ASSIGN_OR_RETURN(Dataset ds,
                         LoadDataset(store, {.datasets = datasets, .experts = o.experts, .sources = o.sources}));
  // The model knows only experts it saw outcomes of: an expert of another dataset in the same database would
  // otherwise get the predictor's flat prior and be routed to as if it were known.
  std::vector<std::string> trained, cold;
  for (size_t e = 0; e < ds.num_experts(); ++e) (ds.ObservedCount(e) > 0 ? trained : cold).push_back(ds.expert(e).name);
  if (!cold.empty() && !trained.empty()) {
    if (o.experts.empty()) {
      info(fmt::format("leaving out {} expert(s) with no outcome in the training data: {}", cold.size(),
                       JoinNames(cold)));
      BATON_ASSIGN_OR_RETURN(ds, ds.SelectExperts(trained));
    } else if (!o.cold_start) {
      return Status::FailedPrecondition(
          fmt::format("no training outcome for expert(s) {}; drop them from --experts or keep them as a cold start "
                      "with --cold-start",
                      JoinNames(cold)));
    } else {
      warn(
          fmt::format("warning: cold start for {}: no training outcome; the model predicts the predictor's prior "
                      "for them and route/bench/predict refuse them unless given --cold-start",
                      JoinNames(cold)));
    }
  }
  size_t observed = 0;
  for (float s : ds.score_matrix()) observed += !std::isnan(s);
  if (ds.num_queries() == 0 || observed == 0) {
    return Status::FailedPrecondition("empty training set: no observed outcome for the selected datasets/experts");
  }
  std::vector<std::string> source_names;
  for (OutcomeSource s : o.sources) source_names.emplace_back(OutcomeSourceName(s));
  info(fmt::format(
      "training {} on {} queries x {} experts ({} observed outcomes, {} domains) from dataset(s) {}, outcome sources "
      "{}",
      name, ds.num_queries(), ds.num_experts(), observed, ds.domains().size(), JoinNames(datasets),
      JoinNames(source_names)));
  if (o.holdout && ds.num_queries() >= 50) {
    const auto th = std::chrono::steady_clock::now();
    BATON_ASSIGN_OR_RETURN(HeldOut h, EstimateHeldOut(name, opts, ds));
    info(
        fmt::format("held-out estimate (80/20 split, seed {}): log-loss {:.4f}, score of predicted-best expert "
                    "{:.4f} (oracle {:.4f}) over {} queries [{:.1f}s]",
                    o.seed, h.log_loss, h.best_pick, h.oracle, h.queries, SecondsSince(th)));
  }
  const auto tf = std::chrono::steady_clock::now();
  BATON_RETURN_IF_ERROR(predictor->Fit(ds));
  info(fmt::format("fitted on all queries in {:.1f}s: {}", SecondsSince(tf), predictor->Describe()));
  RouterModel model;
  BATON_ASSIGN_OR_RETURN(model.cost, CostModel::Fit(ds));
  model.predictor = std::move(predictor);
  for (size_t e = 0; e < ds.num_experts(); ++e) model.train_outcomes.push_back(ds.ObservedCount(e));
  BATON_RETURN_IF_ERROR(SaveModel(model, out_path));
  info(fmt::format("wrote {} ({} experts) in {:.1f}s total", out_path, model.predictor->num_experts(),
                   SecondsSince(t0)));
  return FitSummary{
      .datasets = datasets, .queries = ds.num_queries(), .experts = ds.num_experts(), .outcomes = observed};
}

}  // namespace baton
