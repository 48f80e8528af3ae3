// Routing for the Python module and its C++ benchmark twin (bench_route.cc): the same steps as `baton route`
// (src/cli/cmd_route.cc) on public baton_core calls — PredictAll for the scores, the model's CostModel for the
// costs (mapped by expert name), AssignBatch under the total budget.
#pragma once

#include <string>
#include <vector>

#include "baton/dataset.h"
#include "baton/policy.h"
#include "baton/predictor.h"
#include "baton/status.h"

namespace baton::py {

struct Routed {
  BatchAssignment assignment;  // expert[q] indexes the model's experts; -1 when none was allowed
  std::vector<float> score;    // predicted, num_queries x num_experts row-major (NaN for an expert not allowed)
  std::vector<float> cost;     // predicted, the same shape
};

// Predicted scores (model.predictor's expert order) and costs for every query of `ds`. REQUIRES: `ds` has the
// model's experts in its order (Dataset::SelectExperts(model.predictor->experts())).
StatusOr<Routed> Predict(const RouterModel& model, const Dataset& ds);

// Routes every query of `ds` under `budget_usd` in total. `allowed` names the candidate experts (empty = like
// `baton route`: those with a recorded outcome in `ds`, else all); NotFound for a name the model does not know.
StatusOr<Routed> RouteDataset(const RouterModel& model, const Dataset& ds, double budget_usd,
                              const std::vector<std::string>& allowed);

// A dataset of the model's experts holding these prompts (no outcomes), to predict or route. `domains` and
// `subdomains` are empty or one per prompt.
StatusOr<Dataset> PromptDataset(const RouterModel& model, std::vector<std::string> texts,
                                std::vector<std::string> domains, std::vector<std::string> subdomains);

}  // namespace baton::py
