// Onboarding: should a new expert join the serving universe, replace one of its members, or stay out?
//
// The universe's objective is the coverage S(U) = mean over queries of max_{e in U} score(q, e) (baton/universe.h).
// The members' scores on a pool of queries are known (recorded outcomes); the newcomer's are not, and each one costs a
// call. Onboard draws K queries from the pool, calls the newcomer on each distinct one (through `evaluate`), and
// estimates from those answers:
//   gain      = S(U + new) - S(U)      = mean_q max(0, s_new(q) - best_U(q))
//   swap(X)   = S(U - X + new) - S(U)  = [S(U - X) - S(U)] (exact, over the whole pool)
//                                        + mean_q max(0, s_new(q) - best_{U-X}(q))  (estimated)
//   extra cost per query = mean_q 1{s_new(q) > best_U(q)} x (cost_new(q) - cost of U's best on q): what a router that
//                          sends each query to its best expert would spend more (or less) with the newcomer in U.
//
// Which queries (the informative rule). A query can only show a gain where the universe leaves headroom, and can only
// show a swap's loss where one member alone covers it. Each pool query gets the weight
//   w(q) = 0.05 + (1 - best_U(q)) + max_X (best_U(q) - best_{U-X}(q))
// (headroom plus the largest single-member uniqueness; 0.05 keeps every query possible) and the K draws are taken
// with replacement with probability p(q) = w(q) / sum w. Every mean above is then estimated without bias by
// importance weighting: mean_q f(q) ~= (1/K) sum_draws f(q_d) / (N p(q_d)). Queries where the universe already scores
// 1 everywhere (nothing to gain, nothing unique) are drawn rarely: that is where a newcomer's answer teaches nothing.
// Member scores that were never recorded are taken from `member_predictions` when given (the router model's
// prediction), else counted as 0 (as BuildUniverse does).
//
// Uncertainty: a bootstrap over the K draws (resampled with replacement, B times) gives each estimate's
// [lower, upper] percentile interval at the chosen confidence (one-sided lower bound = (1 - confidence) quantile).
//
// Decision (in this order):
//   join     when the universe has room (no fixed k, or fewer than k members), the gain's lower bound is > 0 and the
//            gain is worth its cost: the lower bound of gain - lambda x extra cost is > 0 (lambda: score units per USD,
//            the router's; 0 = cost does not matter);
//   replace  the member X whose swap raises swap(X) - lambda x swap_cost(X) most, when that has a lower bound > 0;
//            swap_cost(X) = what a best-expert router spends more per query after the swap (exact for dropping X, plus
//            the estimated change where the newcomer beats U - X);
//   reject   otherwise.
// A failed call (an error, or an answer that cannot be scored against the reference) is reported and its draws are
// left out of every estimate (the remaining draws keep their weights).
//
// Thread-safety: pure functions, except that Onboard calls `evaluate` from the calling thread.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "baton/dataset.h"
#include "baton/expert.h"
#include "baton/status.h"

namespace baton {

struct OnboardOptions {
  size_t queries = 50;       // K: draws from the pool (the newcomer is called once per distinct query). Default: 50
  std::optional<size_t> k;   // the universe's fixed size; nullopt = it may grow by one. Default: nullopt
  double lambda = 0;         // score units per USD for the cost check. Default: 0 (cost does not matter)
  size_t bootstrap = 2000;   // bootstrap resamples. Default: 2000
  double confidence = 0.95;  // one-sided confidence of the lower bounds. Default: 0.95
  uint64_t seed = 0;         // draws and bootstrap. Default: 0
};

// The newcomer's answer to one query.
struct OnboardEvaluation {
  std::optional<double> score;  // in [0, 1]; nullopt = could not be scored (no reference, no extractable answer)
  double cost_usd = 0;
  int64_t tokens_in = 0, tokens_out = 0;
  double latency_ms = 0;
};

// Calls the newcomer on one query. An error counts as a failed call.
using OnboardEvaluate = std::function<StatusOr<OnboardEvaluation>(const QueryRecord& query)>;

// An evaluator over an expert backend: sends the query text as one user message; the score is the recorded one for
// replay experts (ChatResult::recorded_score), else the answer matched against the query's reference
// (ScoreAgainstReference). `backend` must outlive the evaluator.
OnboardEvaluate EvaluateWithBackend(ExpertBackend& backend);

struct OnboardInterval {
  double estimate = 0, lower = 0, upper = 0;
};

struct OnboardCall {
  size_t query = 0;                         // row in the pool
  size_t draws = 0;                         // how many of the K draws landed on it
  double probability = 0;                   // p(q), its draw probability
  std::optional<OnboardEvaluation> result;  // nullopt = failed (see error)
  std::string error;
};

struct OnboardSwap {
  std::string member;
  double loss_without = 0;    // S(U - X) - S(U), exact (<= 0)
  OnboardInterval delta;      // S(U - X + new) - S(U)
  double extra_cost = 0;      // USD per query a best-expert router spends more after the swap (exact part + estimate)
  OnboardInterval net;        // delta - lambda x extra_cost
  double cost_per_query = 0;  // X's mean cost per query
};

struct OnboardReport {
  std::string expert;
  std::vector<std::string> members;
  size_t pool_queries = 0, draws = 0, called = 0, answered = 0, failed = 0;
  double s_universe = 0;           // S(U) over the pool, exact
  OnboardInterval gain;            // S(U + new) - S(U)
  OnboardInterval extra_cost;      // USD per query
  OnboardInterval net_gain;        // gain - lambda x extra cost
  double cost_new = 0;             // the newcomer's mean cost per query (importance-weighted estimate)
  double cost_members = 0;         // the members' mean cost per query, averaged over members
  double spent_usd = 0;            // what the onboarding calls cost
  std::vector<OnboardSwap> swaps;  // best first
  std::string decision;            // "join", "replace" or "reject"
  std::string replaces;            // the member, for "replace"
  std::string reason;              // one sentence saying why
  std::vector<OnboardCall> calls;  // one per distinct drawn query
  OnboardOptions options;
};

// `pool`: the queries with the members' recorded outcomes (one column per member, the newcomer not among them).
// `member_predictions`: optional pool.num_queries() x pool.num_experts() row-major predicted scores for cells never
// recorded (empty = count them as 0). InvalidArgument for an empty pool or no members, K = 0, or a fixed k smaller
// than the member count; FailedPrecondition when every call failed.
StatusOr<OnboardReport> Onboard(const Dataset& pool, const std::string& expert, const OnboardEvaluate& evaluate,
                                const OnboardOptions& options, const std::vector<float>& member_predictions = {});

// The report as a JSON object (what `baton onboard --json` prints and what the store keeps as evidence).
std::string OnboardReportJson(const OnboardReport& report, const Dataset& pool);

}  // namespace baton
