// The routing policy: which expert answers each query, given predicted scores and costs and a budget.
//
// Leeroo's equation 1: choose an expert per query to maximise the summed score while the summed cost stays within a
// budget B. Per query the policy picks argmax(score - lambda * cost) among experts whose cost fits what is left.
// OnlineRouter paces lambda so that B is spent evenly over the expected number of queries; AssignBatch solves the
// whole set at once (Lagrangian dual over each query's convex hull of (cost, score) points, an exact selection of
// lambda, greedy fill passes with the leftover budget, then a repair pass) and never exceeds B. 1M queries x 30
// experts take about 0.5 s on one core.
//
// Thread-safety: OnlineRouter is not thread-safe (one per stream, or guard it); the free functions are pure.
#pragma once

#include <cstddef>
#include <span>
#include <vector>

#include "baton/status.h"

namespace baton {

// Index of argmax(score[e] - lambda * cost[e]) over allowed experts (all when `allowed` is empty), ties to the
// cheaper expert. -1 when no expert is allowed.
int ChooseExpert(std::span<const float> score, std::span<const float> cost, double lambda,
                 std::span<const bool> allowed = {});

struct OnlineOptions {
  double budget_usd = 0;        // total budget B for the stream. REQUIRES: > 0
  size_t expected_queries = 0;  // how many queries B must last. REQUIRES: > 0
  double initial_lambda = -1;   // starting lambda; < 0 = derive from the first query. Default: -1
  double pacing_gain = 0.5;     // how fast lambda reacts to over/under-spending. Default: 0.5
};

// Pacing rule. On the first query (when initial_lambda < 0) lambda starts at the query's score spread over its cost
// spread, (max score - min score) / (max cost - min cost), the price at which the best and the cheapest expert are
// about even (1 / mean cost when there is no spread). After each Settle() with n queries served and S spent, the
// target spend is B * n / expected_queries and lambda is multiplied by (S / target)^pacing_gain, clamped to
// [0.5, 2] per query (and kept above 1e-6 of the starting scale so that it can rise again): overspending raises
// the price of cost, underspending lowers it. An expert whose predicted cost exceeds the remaining budget is never
// chosen. To keep money for the rest of the stream, an expert is also passed over when it would eat into a reserve of
// (queries still expected) x (mean cheapest predicted cost so far) plus, while queries
// remain, the dearest cheapest cost seen as a cushion; when that leaves none, the cheapest expert that
// fits the remaining budget is chosen.
class OnlineRouter {
 public:
  // InvalidArgument for a non-positive budget or query count.
  static StatusOr<OnlineRouter> Create(const OnlineOptions& options);

  // Chooses an expert whose predicted cost fits the remaining budget. ResourceExhausted when none fits (the budget
  // is below the cheapest expert).
  StatusOr<size_t> Choose(std::span<const float> predicted_score, std::span<const float> predicted_cost);
  // Records what the chosen call really cost; updates the remaining budget and lambda.
  void Settle(double realised_cost_usd);

  double lambda() const { return lambda_; }
  double remaining_usd() const { return remaining_; }
  size_t served() const { return served_; }

 private:
  explicit OnlineRouter(const OnlineOptions& o) : options_(o), remaining_(o.budget_usd) {}
  OnlineOptions options_;
  double lambda_ = -1;
  double remaining_ = 0;
  size_t served_ = 0;
  double spent_ = 0;
  double scale_ = 0;      // lambda scale from the first query; a floor for lambda
  double cheap_sum_ = 0;  // sum over queries seen by Choose() of the cheapest predicted cost
  double cheap_max_ = 0;  // the largest cheapest predicted cost seen
  size_t seen_ = 0;       // queries seen by Choose()
};

struct BatchAssignment {
  std::vector<int> expert;     // per query, the chosen expert index
  double lambda = 0;           // the multiplier found
  double predicted_score = 0;  // sum over queries of the predicted score of the choice
  double predicted_cost = 0;   // sum over queries of the predicted cost of the choice (<= budget)
};

// Equation 1 over a whole set: score and cost are num_queries x num_experts, row-major; a NaN score or cost marks an
// expert as not allowed for that query. Every query gets an expert (-1 only when none is allowed), the summed cost
// stays <= budget_usd, and the summed score is within one query's score range of the LP bound. ResourceExhausted
// when even the cheapest expert for every query exceeds the budget; InvalidArgument for mismatched sizes or a
// negative budget.
StatusOr<BatchAssignment> AssignBatch(std::span<const float> score, std::span<const float> cost, size_t num_experts,
                                      double budget_usd);
// The same with a fixed lambda and no budget (for sweeping a cost/quality curve): ChooseExpert per query.
BatchAssignment AssignWithLambda(std::span<const float> score, std::span<const float> cost, size_t num_experts,
                                 double lambda);

}  // namespace baton
