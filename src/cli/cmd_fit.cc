// baton fit: trains a predictor and a cost model on the store's outcomes and writes a model file.
#include <fmt/format.h>

#include "baton/fit.h"
#include "baton/predictor.h"
#include "cli/command.h"
#include "cli/util.h"

namespace baton::cli {
namespace {

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
  app->add_option("--db", o->db, "database: an SQLite file or a postgresql:// URL")->required()->check(ExistingDb());
  app->add_option("--out", o->out, "model file to write")->required();
  app->add_option("--predictor", o->predictor, "predictor: " + predictors + " (default: " + o->predictor + ")");
  app->add_option("--dataset", o->datasets,
                  "train on these datasets; required when the database holds several ('all' = every one)")
      ->delimiter(',');
  app->add_option("--experts", o->experts,
                  "only these experts, in this order (default: every expert with an outcome in the training data)")
      ->delimiter(',');
  app->add_option("--include", o->include, "outcome sources to train on: imported,live,selfplay (default: imported)")
      ->delimiter(',');
  app->add_flag("--cold-start", o->cold_start,
                "keep experts named by --experts that have no training outcome (their predictions are the prior)");
  app->add_option("--seed", o->seed, "random seed (default: 0)")->check(NonNegativeInt());
  app->add_flag("--no-cv", o->no_cv, "use default hyper-parameters instead of cross-validating");
  app->add_flag("--no-holdout", o->no_holdout, "skip the 80/20 held-out quality estimate");
  return {app, [o]() -> Status {
            {  // an unknown predictor is reported before anything else, as always
              BATON_ASSIGN_OR_RETURN(std::unique_ptr<Predictor> probe, MakePredictor(o->predictor));
              (void)probe;
            }
            BATON_ASSIGN_OR_RETURN(std::unique_ptr<Store> store, Store::Open(o->db, {.create = false}));
            if (!(o->datasets.size() == 1 && o->datasets[0] == "all")) {
              BATON_RETURN_IF_ERROR(CheckDatasetsExist(*store, o->datasets));
            }
            FitOptions fit;
            BATON_ASSIGN_OR_RETURN(fit.sources, ParseSources(o->include));
            fit.predictor = o->predictor;
            fit.datasets = o->datasets;
            fit.experts = o->experts;
            fit.seed = o->seed;
            fit.cross_validate = !o->no_cv;
            fit.holdout = !o->no_holdout;
            fit.cold_start = o->cold_start;
            fit.info = [](const std::string& m) { fmt::print("{}\n", m); };
            fit.warn = [](const std::string& m) { fmt::print(stderr, "{}\n", m); };
            BATON_ASSIGN_OR_RETURN(FitSummary summary, FitModelFromStore(*store, fit, o->out));
            (void)summary;
            return Status::Ok();
          }};
}

}  // namespace baton::cli
