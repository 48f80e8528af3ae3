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

}  // namespace

Command AddFitCommand(CLI::App& root) {
  auto* app = root.add_subcommand(
      "fit", "Train an outcome predictor and a cost model on recorded outcomes; write a model file");
  struct Opts {
    std::string db, out, predictor;
    std::vector<std::string> datasets, experts;
    uint64_t seed = 0;
    bool no_cv = false, no_holdout = false;
  };
  auto o = std::make_shared<Opts>();
  o->predictor = PredictorNames().front();
  app->add_option("--db", o->db, "SQLite database file")->required()->check(CLI::ExistingFile);
  app->add_option("--out", o->out, "model file to write")->required();
  app->add_option("--predictor", o->predictor, "predictor name (default: " + o->predictor + ")");
  app->add_option("--dataset", o->datasets, "only these datasets (default: all)")->delimiter(',');
  app->add_option("--experts", o->experts, "only these experts, in this order (default: all)")->delimiter(',');
  app->add_option("--seed", o->seed, "random seed (default: 0)")->check(NonNegativeInt());
  app->add_flag("--no-cv", o->no_cv, "use default hyper-parameters instead of cross-validating");
  app->add_flag("--no-holdout", o->no_holdout, "skip the 80/20 held-out quality estimate");
  return {app, [o]() -> Status {
            const auto t0 = std::chrono::steady_clock::now();
            const PredictorOptions opts{.seed = o->seed, .cross_validate = !o->no_cv};
            BATON_ASSIGN_OR_RETURN(std::unique_ptr<Predictor> predictor, MakePredictor(o->predictor, opts));
            BATON_ASSIGN_OR_RETURN(std::unique_ptr<Store> store, Store::Open(o->db, {.create = false}));
            BATON_ASSIGN_OR_RETURN(Dataset ds, LoadDataset(*store, {.datasets = o->datasets, .experts = o->experts}));
            size_t observed = 0;
            for (float s : ds.score_matrix()) observed += !std::isnan(s);
            if (ds.num_queries() == 0 || observed == 0) {
              return Status::FailedPrecondition(
                  "empty training set: no observed outcome for the selected datasets/experts");
            }
            fmt::print("training {} on {} queries x {} experts ({} observed outcomes, {} domains)\n", o->predictor,
                       ds.num_queries(), ds.num_experts(), observed, ds.domains().size());
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
            BATON_RETURN_IF_ERROR(SaveModel(model, o->out));
            fmt::print("wrote {} ({} experts) in {:.1f}s total\n", o->out, model.predictor->num_experts(),
                       SecondsSince(t0));
            return Status::Ok();
          }};
}

}  // namespace baton::cli
