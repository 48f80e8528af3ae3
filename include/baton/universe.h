// The universe constructor (Leeroo equation 2, Algorithm 1): pick the k experts that together cover the queries
// best, S(U) = mean over queries of max_{e in U} score(q, e). S is monotone submodular, so greedy selection is within
// (1 - 1/e) of the optimum; the lazy variant keeps stale marginal gains in a priority queue and re-evaluates only the
// top. The cost-aware variant picks by gain per unit of serving cost under a per-query serving budget, and returns
// the better of that and the best single affordable expert (the standard cost-benefit greedy guarantee).
//
// Cost: one transposed copy of the scores (4 bytes a cell) and a float per query; when every score is 0, 1 or
// unobserved, one bit per cell instead (1,000 experts x 100,000 queries: 12.5 MB, ~0.3 s for k = 50).
//
// Thread-safety: pure functions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "baton/dataset.h"
#include "baton/status.h"

namespace baton {

struct UniverseOptions {
  size_t k = 0;                              // at most k experts. REQUIRES: 1 <= k <= pool size
  std::optional<double> max_cost_per_query;  // serving budget: the sum of picked experts' mean cost per query must
                                             // stay within it; enables the cost-benefit greedy. Default: none
  bool allow_bitset = true;                  // use the packed bitset path when every score is 0, 1 or unobserved
                                             // (same picks, far faster). Default: true
};

struct UniversePick {
  size_t expert = 0;  // index in the dataset
  std::string name;
  double s = 0;               // S(U) after this pick
  double cost_per_query = 0;  // this expert's mean cost per query (0 when unknown)
};

struct UniverseResult {
  std::vector<UniversePick> picks;  // in pick order; stops early when no expert improves S(U)
  double s = 0;
  size_t evaluations = 0;  // marginal-gain evaluations (lazy greedy does far fewer than k x N)
};

// Unobserved cells count as score 0 for coverage. InvalidArgument for k = 0 or k > pool,
// ResourceExhausted when no single expert fits max_cost_per_query.
StatusOr<UniverseResult> BuildUniverse(const Dataset& ds, const UniverseOptions& options);

// The same objective on a raw num_queries x num_experts row-major score matrix (the scaling benchmark uses it).
StatusOr<UniverseResult> BuildUniverse(const std::vector<float>& score, size_t num_queries, size_t num_experts,
                                       const std::vector<double>& cost_per_query, const UniverseOptions& options);

// Exhaustive search over all subsets of size <= k (for tests; REQUIRES: small pools).
UniverseResult BestUniverseExhaustive(const Dataset& ds, size_t k);

}  // namespace baton
