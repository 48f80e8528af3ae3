// The realised outcome of routing a test split with a fixed lambda.
#include <algorithm>
#include <cmath>
#include <memory>

#include "baton/bench.h"
#include "baton/policy.h"

namespace baton {

Realised RealiseLambda(const Dataset& test, std::span<const float> pred_score, std::span<const float> pred_cost,
                       double lambda) {
  const size_t ne = test.num_experts(), nq = test.num_queries();
  Realised r;
  r.choice = AssignWithLambda(pred_score, pred_cost, ne, lambda).expert;
  r.choice.resize(nq, -1);
  std::vector<double> mean_cost(ne);
  for (size_t e = 0; e < ne; ++e) mean_cost[e] = test.MeanCost(e);
  std::unique_ptr<bool[]> allowed(new bool[ne]);
  double acc = 0, cost = 0;
  for (size_t q = 0; q < nq; ++q) {
    int e = r.choice[q];
    if (e < 0 || !test.observed(q, e)) {
      // Fallback: the best observed expert by the same objective.
      for (size_t k = 0; k < ne; ++k) allowed[k] = test.observed(q, k);
      e = ChooseExpert(pred_score.subspan(q * ne, ne), pred_cost.subspan(q * ne, ne), lambda,
                       std::span<const bool>(allowed.get(), ne));
      r.choice[q] = e;
    }
    if (e < 0) continue;  // no expert observed on this query (AlignExperts drops those)
    acc += test.score(q, e);
    const float c = test.cost(q, e);
    cost += !std::isnan(c) ? c : (std::isnan(mean_cost[e]) ? 0.0 : mean_cost[e]);
  }
  const double n = static_cast<double>(std::max<size_t>(nq, 1));
  r.accuracy = acc / n;
  r.cost_per_query = cost / n;
  return r;
}

}  // namespace baton
