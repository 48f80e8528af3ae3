// Fitting a router model from the store: what `baton fit` does and what the self-play loop's refit calls.
//
// Loads the chosen datasets' outcomes (of the chosen sources) from the store, leaves out experts without any outcome
// (or keeps them as cold starts when asked), optionally estimates quality on an 80/20 held-out split, fits the
// predictor and the cost model on everything and writes the model file with SaveModel.
//
// Thread-safety: uses the caller's Store (one thread at a time); messages go through the caller's callbacks on the
// calling thread.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "baton/status.h"
#include "baton/store.h"

namespace baton {

struct FitOptions {
  std::string predictor;              // "" = PredictorNames().front(). Default: ""
  std::vector<std::string> datasets;  // empty: the one stored dataset (several are refused); {"all"}: every one
  std::vector<std::string> experts;   // only these, in this order; empty = every expert with an outcome
  std::vector<OutcomeSource> sources = {OutcomeSource::kImported};
  uint64_t seed = 0;
  bool cross_validate = true;                    // PredictorOptions::cross_validate. Default: true
  bool holdout = true;                           // print the 80/20 held-out estimate (>= 50 queries). Default: true
  bool cold_start = false;                       // keep experts named in `experts` that have no outcome. Default: false
  std::function<void(const std::string&)> info;  // progress lines (stdout in baton fit); empty = silent
  std::function<void(const std::string&)> warn;  // warnings (stderr in baton fit); empty = silent
};

struct FitSummary {
  std::vector<std::string> datasets;  // trained on
  size_t queries = 0, experts = 0, outcomes = 0;
};

// Fits and writes the model to `out_path`. FailedPrecondition for an empty training set or cold experts without
// `cold_start`; InvalidArgument for several stored datasets and none chosen, or an unknown predictor.
StatusOr<FitSummary> FitModelFromStore(Store& store, const FitOptions& options, const std::string& out_path);

}  // namespace baton
