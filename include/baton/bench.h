// The benchmark harness behind `baton bench`: trains every router on a train split, sweeps it over lambda on a test
// split, and compares the realised (recorded, not predicted) accuracy and cost with single experts, a random router,
// the oracle and a FrugalGPT-style cascade. Writes JSON and a self-contained HTML report.
//
// Realised outcome of a routing decision. For each test query the router picks argmax(pred_score - lambda *
// pred_cost) (AssignWithLambda). Its accuracy is the RECORDED score of the chosen (query, expert) cell and its cost
// the RECORDED cost. When the chosen cell is unobserved on test, the query falls back to the best OBSERVED expert by
// the same objective (ChooseExpert with the observed experts allowed). A recorded cost that is unknown (NaN) is
// replaced by the expert's mean known cost on the test split (0 when it has none).
// accuracy = mean over test queries of the realised score; cost_per_query = mean realised cost.
//
// Metrics (a "curve" is the list of (cost_per_query, accuracy) operating points of one router):
//   hull(c)     the upper concave, non-decreasing envelope of the curve's points plus the origin (0, 0) (a router can
//               always mix two operating points, or abstain at score 0 and cost 0), flat after its last vertex.
//   aiq         RouterBench's Average Improvement in Quality: (1 / C) * integral_0^C hull(c) dc, where C is the largest
//               cost_per_query among all routers and baselines compared in one run (singles, cascade, routers).
//   cost_at_95  min { cost : point on the curve with accuracy >= 0.95 * best_single.accuracy } / best_single.cost;
//               null when no point reaches it. Raw curve points, no mixing.
//   acc_at_best_single_cost  max { accuracy : point on the curve with cost <= best_single.cost }; null when none.
//   Two-expert comparisons only (RouteLLM), strong = the expert with higher test accuracy:
//   pgr(p)      (acc(p) - acc_weak) / (acc_strong - acc_weak), p = fraction of test queries routed to the strong
//               expert. The curve's (p, pgr) points, plus anchors (0, 0) and (1, 1) when p = 0 or p = 1 are absent,
//               sorted by p (the best pgr kept for a repeated p), are joined linearly.
//   apgr        integral_0^1 pgr(p) dp (trapezoids over those points).
//   cpt50/cpt80 the smallest p at which the joined line reaches pgr 0.5 / 0.8 (a fraction 0..1); null when never.
//
// Baselines: single experts (accuracy = mean observed score, cost = mean known cost, on test); random (uniform over
// each query's observed experts, its expectation); oracle (per query the cheapest observed expert among those with
// the best recorded score); cascade (experts ordered cheap -> expensive by mean train cost; call the cheapest
// observed one, stop when the default router's predicted score for it is >= t, else call the next; the answer is the
// last called expert's, the cost the sum over all called experts; t swept over [0, 1]).
//
// Default router: the one `baton fit` and `baton serve` use. When "stack" is benchmarked and no shortlist
// (BenchOptions::default_candidates) is given, it is "stack" (src/predict/stack.cc): a weighted mean of the other
// routers whose weights are chosen by greedy selection on out-of-fold AIQ inside train; each router's cv_aiq is then
// its out-of-fold AIQ that the stack compared (the stack's own is that of its selected blend, optimistic since it
// was selected on the same out-of-fold data). With a shortlist: chosen by k-fold cross-validation INSIDE train only:
// best mean AIQ over the folds (each fold's AIQ with C = the largest cost among the candidates and singles on that
// fold), trained with cross_validate = false inside folds to keep it cheap. Either way test results never influence
// it.
//
// Thread-safety: all functions are pure (RunBench reports progress through the caller's callback from the calling
// thread); results are plain values.
#pragma once

#include <cmath>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "baton/dataset.h"
#include "baton/escalation.h"
#include "baton/predictor.h"
#include "baton/status.h"

namespace baton {

// ---------------------------------------------------------------------------------------------------------------
// Curves and metrics (metrics.cc).

struct CurvePoint {
  double lambda = 0;          // the multiplier (cascade: the confidence threshold t)
  double accuracy = 0;        // realised mean score on test
  double cost_per_query = 0;  // realised mean cost in USD
  double strong_share = NAN;  // two-expert runs: fraction of queries answered by the strong expert
};

// The upper concave non-decreasing envelope of `curve` plus (0, 0), by increasing cost.
std::vector<CurvePoint> NonDecreasingConvexHull(std::span<const CurvePoint> curve);
// hull(c) for a hull returned by NonDecreasingConvexHull.
double HullValue(std::span<const CurvePoint> hull, double cost);
// AIQ over [0, max_cost]; 0 for an empty curve or max_cost <= 0.
double Aiq(std::span<const CurvePoint> curve, double max_cost);
// The lowest cost of a point with accuracy >= `accuracy`.
std::optional<double> MinCostReaching(std::span<const CurvePoint> curve, double accuracy);
// The highest accuracy of a point with cost <= `budget` (a tiny relative tolerance absorbs rounding).
std::optional<double> MaxAccuracyWithin(std::span<const CurvePoint> curve, double budget);

struct PgrMetrics {
  double apgr = 0;
  std::optional<double> cpt50, cpt80;
};
// REQUIRES: acc_strong > acc_weak and every point has strong_share set.
PgrMetrics ComputePgr(std::span<const CurvePoint> curve, double acc_weak, double acc_strong);

// ---------------------------------------------------------------------------------------------------------------
// Splits and baselines (split.cc, baselines.cc).

struct QuerySplit {
  std::vector<size_t> train, test;  // disjoint, ascending, together 0..n-1
};
// A seeded random split (own Fisher-Yates over mt19937_64, so identical on every platform). The test part holds
// round(n * test_fraction) queries, at least 1 and at most n - 1. InvalidArgument for n < 2 or a fraction outside
// (0, 1).
StatusOr<QuerySplit> RandomSplit(size_t num_queries, double test_fraction, uint64_t seed);

// Restricts train and test to `experts` (empty = the experts both have, in train's order) and drops queries that no
// remaining expert was observed on. InvalidArgument when a split ends up empty.
Status AlignExperts(Dataset& train, Dataset& test, const std::vector<std::string>& experts);

struct ExpertPoint {
  std::string expert;
  double accuracy = NAN;
  double cost_per_query = NAN;
};
std::vector<ExpertPoint> EvaluateSingles(const Dataset& test);
ExpertPoint EvaluateOracle(const Dataset& test);
ExpertPoint EvaluateRandom(const Dataset& test);

// Realised outcome of routing every test query with fixed lambda (see the file comment for the fallback rule).
struct Realised {
  double accuracy = 0;
  double cost_per_query = 0;
  std::vector<int> choice;  // per query, the expert that answered
};
// pred_score / pred_cost: num_queries x num_experts row-major predictions for `test`.
Realised RealiseLambda(const Dataset& test, std::span<const float> pred_score, std::span<const float> pred_cost,
                       double lambda);

// 0 and `n` log-spaced lambdas spanning where choices change: the 1st..99th percentile of the positive pairwise
// break-even ratios (score_j - score_i) / (cost_j - cost_i) over (a sample of) queries, widened by 2x each side;
// plus one lambda past the largest ratio so the cheapest expert is chosen everywhere.
std::vector<double> LambdaGrid(std::span<const float> pred_score, std::span<const float> pred_cost, size_t num_experts,
                               size_t n);

// Lambdas between the exact break-points of the per-query assignment argmax(score - lambda * cost): for every query
// the lambdas where its choice changes (the upper envelope of its lines), pooled, sorted and deduplicated; one lambda
// (the geometric mean) inside each interval between consecutive break-points plus one past the last, so every
// distinct assignment is swept once. When there are more than `max_points` intervals, evenly spaced ones of them.
std::vector<double> BreakpointLambdas(std::span<const float> pred_score, std::span<const float> pred_cost,
                                      size_t num_experts, size_t max_points);

// The cascade curve; `order` lists expert indices cheap -> expensive, `thresholds` the t values to sweep.
std::vector<CurvePoint> CascadeCurve(const Dataset& test, std::span<const float> pred_score,
                                     const std::vector<size_t>& order, const std::vector<double>& thresholds);

// Price tier per expert from mean cost per query (terciles of the rank by cost): 0 cheap, 1 mid, 2 expensive. With
// two experts: cheap and expensive. NaN costs count as the cheapest.
std::vector<int> PriceTiers(const std::vector<double>& mean_cost);

// Mean realised score per domain of `test` (NaN for a domain with no query) for per-query choices.
std::vector<double> DomainAccuracy(const Dataset& test, const std::vector<int>& choice);

// ---------------------------------------------------------------------------------------------------------------
// Bootstrap confidence intervals over test queries (bootstrap.cc).
//
// A resample draws test.num_queries() test queries uniformly with replacement; it is held as a count per query, so a
// curve point's resampled accuracy and cost are count-weighted sums of the per-query realised score and cost the
// sweep already computed. Consecutive lambdas change the choice of few queries, so each curve point costs
// O(num_queries + changed queries * resamples), not O(num_queries * resamples). Memory: the counts (num_queries x
// resamples, 16 bits each) plus, per curve, two floats per (point, resample).
// Per resample the figures are recomputed as in the file comment, with the best single expert re-chosen and
// re-evaluated on the resample; C in AIQ stays the run's (the normaliser of the comparison, not a statistic of one
// router). Intervals are the 2.5th and 97.5th percentiles (linear interpolation) over the resamples where the
// figure is defined; none when it is defined on none.

struct ConfidenceInterval {
  double lo = NAN, hi = NAN;
};

struct CurveIntervals {
  std::optional<ConfidenceInterval> aiq, cost_at_95, acc_at_best_single_cost;
};

class CurveBootstrap {
 public:
  // The per-resample state of one curve, fed point by point.
  struct Curve {
    std::vector<int> last_choice;              // per query, at the previous point (-1 = none yet)
    std::vector<float> last_score, last_cost;  // per query, at the previous point (AddPointValues)
    std::vector<double> acc, cost;             // per resample, the running count-weighted sums
    std::vector<float> point_acc, point_cost;  // per point, per resample (point-major): the resampled means
    size_t points = 0;
  };

  // `resamples` resamples of `test` drawn from `seed` (the same seed gives the same resamples on every platform).
  CurveBootstrap(const Dataset& test, size_t resamples, uint64_t seed);
  size_t resamples() const { return resamples_; }

  Curve NewCurve() const;
  // Adds the next curve point from its per-query choices (RealiseLambda's: observed experts, or -1).
  void AddPoint(Curve& curve, std::span<const int> choice) const;
  // Adds the next curve point from per-query realised scores and costs (routers whose cost is not one expert's, e.g.
  // escalation: the sum of every call made). Do not mix with AddPoint on one curve.
  void AddPointValues(Curve& curve, std::span<const float> score, std::span<const float> cost) const;
  CurveIntervals Intervals(const Curve& curve, double max_cost) const;

 private:
  const Dataset* test_;
  size_t resamples_;
  std::vector<uint16_t> count_;           // query-major: count_[q * resamples_ + b]
  std::vector<double> mean_cost_;         // per expert, the full test split's (the fallback for unknown costs)
  std::vector<double> bs_acc_, bs_cost_;  // per resample, the best single expert's accuracy and cost
};

// ---------------------------------------------------------------------------------------------------------------
// Escalation after a cheap answer (escalate.cc); the policy's core is baton/escalation.h.

// The acceptance features of every query of `ds` for the cheap experts `cheap` (1 or 2; the first is the accepted
// one): answers normalised in their domain's form (`form`, per query), pred_score the router's (n x ne).
std::vector<AcceptanceFeatures> EscalationFeatures(const Dataset& ds, const AnswerTable& answers,
                                                   std::span<const AnswerForm> form, std::span<const size_t> cheap,
                                                   std::span<const float> pred_score);

// One operating point. Per query: when the first cheap expert has no recorded outcome, the router's choice at lambda
// (argmax pred_score - lambda * pred_cost over the observed experts) answers at its cost. Otherwise every cheap
// expert with an outcome is called (their costs summed); when accept_prob[q] >= threshold the first one's recorded
// score is the outcome, else the router's choice among the observed experts NOT in `cheap` answers and its cost is
// added (no such expert: the first cheap answer stands). Unknown costs: the expert's mean known cost on `ds`, else 0.
struct EscalationOutcome {
  std::vector<float> score, cost;  // per query, realised
  std::vector<int> choice;         // per query, the expert whose answer is returned
  std::vector<uint8_t> escalated;  // per query, 1 when an expert beyond the cheap ones was called
  double accuracy = 0, cost_per_query = 0;
};
EscalationOutcome RealiseEscalation(const Dataset& ds, std::span<const size_t> cheap, std::span<const double> accept_prob,
                                    double threshold, std::span<const float> pred_score,
                                    std::span<const float> pred_cost, double lambda);

// ---------------------------------------------------------------------------------------------------------------
// The harness (harness.cc, json.cc, report.cc).

struct TierShare {
  double budget_fraction = 0;  // the budget as a fraction of best_single.cost_per_query
  double accuracy = NAN;       // of the operating point used (best accuracy within the budget)
  double cost_per_query = NAN;
  double share[3] = {NAN, NAN, NAN};  // fraction of test queries sent to cheap / mid / expensive experts
};

struct RouterResult {
  std::string name;
  bool is_default = false;
  std::vector<CurvePoint> curve;  // by increasing lambda
  double aiq = 0;
  std::optional<double> cost_at_95;
  std::optional<double> acc_at_best_single_cost;
  std::optional<double> apgr, cpt50, cpt80;
  double cv_aiq = NAN;  // mean AIQ over the train folds when it was a default candidate
  double train_seconds = 0;
  std::vector<double> domain_accuracy;  // per BenchResult::domains, at the acc_at_best_single_cost point (else the
                                        // most accurate point)
  std::vector<TierShare> tiers;         // at the budgets BenchOptions::tier_budgets
  // Per test query (BenchResult::test_query_ids order), the index into BenchResult::experts chosen at the operating
  // point: the most accurate curve point within the best single expert's cost (else the most accurate); -1 = none.
  std::vector<int> choice;
  double choice_lambda = NAN, choice_accuracy = NAN, choice_cost_per_query = NAN;
  CurveIntervals ci;  // bootstrap intervals (BenchOptions::bootstrap > 0; not for the cascade)
};

// One bin of predicted score for one expert: test cells (observed) whose predicted score fell in the bin.
struct CalibrationBin {
  double predicted = NAN;  // mean predicted score
  double realised = NAN;   // mean recorded score
  size_t count = 0;
};

struct UniverseStep {
  std::string expert;
  double s = 0;               // S(U) after the pick
  double cost_per_query = 0;  // the expert's mean cost per query on train
};

// The escalation router (escalate.cc): call the cheap expert(s) chosen on train, accept the first one's answer when
// the acceptance model (baton/escalation.h, fitted on train with the default router's out-of-fold scores) gives it a
// probability >= t, else escalate to the default router's choice at lambda among the other experts; the cost is the
// sum of every call. Cheap sets compared on train: each of the (up to 5) cheapest experts on train's accuracy-cost
// frontier other than the most accurate expert, alone or followed by a cheaper one of them (agreement of two
// answers); the one with the best train AIQ (out-of-fold scores, C = the costliest single expert's mean train cost)
// is kept. Its thresholds are quantiles of its acceptance probabilities on train; its curve sweeps threshold x lambda
// (lambdas: LambdaGrid of the test predictions, as for every router) and is sorted by cost, not by lambda.
// A query whose first cheap expert has no recorded outcome is routed by the default router directly.
struct EscalationSummary {
  bool ran = false;
  std::string note;                  // why it did not run, or what it chose, in words
  std::vector<std::string> cheap;    // the chosen cheap experts, the first is the accepted one
  AcceptanceModel model;             // fitted on train
  std::vector<double> thresholds;    // the t values swept (chosen on train)
  double train_aiq = NAN;            // of the chosen cheap set, on train (out-of-fold scores)
  double default_train_aiq = NAN;    // the default router's on train with the same scores and C
  std::vector<std::pair<std::string, double>> candidates;  // train AIQ per cheap set ("a+b")
  double answers_recorded_share = NAN;  // of the test cells of the cheap experts, the share with an answer text
};

struct BenchResult {
  size_t train_queries = 0, test_queries = 0;
  std::vector<std::string> experts;
  std::vector<int> expert_tier;             // PriceTiers of mean train cost
  std::vector<std::string> domains;         // of the test split
  std::vector<std::string> test_query_ids;  // QueryRecord::external_id of each test query, in order
  // Fewer than two distinct mean train costs among the experts: every router collapses to one point and price tiers
  // mean nothing, so the report warns and labels none.
  bool prices_degenerate = false;
  std::string provenance;  // how the run was made (command line, seed, baton version, date); set by the caller
  std::vector<ExpertPoint> singles;
  ExpertPoint best_single, oracle, random;
  std::vector<double> best_single_domain_accuracy;
  RouterResult cascade;               // the FrugalGPT-style baseline (driven by the default router's predictions)
  std::vector<RouterResult> routers;  // exactly one is_default
  std::string default_router;
  std::string default_selection;       // how the default was chosen, in words
  std::vector<UniverseStep> universe;  // BuildUniverse on train, k = pool size
  // The default router's calibration on test: per expert, kCalibrationBins equal-width bins of predicted score over
  // [0, 1] (predictions outside are clamped into the end bins).
  static constexpr size_t kCalibrationBins = 10;
  std::vector<std::vector<CalibrationBin>> calibration;
  // The default router at its operating point (RouterResult::choice): per domain (`domains`), the share of that
  // domain's test queries sent to each expert (`experts`); NaN for a domain without queries.
  std::vector<std::vector<double>> domain_share;
  EscalationSummary escalation;  // routers[] holds "escalate" when it ran
  size_t bootstrap = 0;  // resamples behind RouterResult::ci (0 = none)
  double max_cost = 0;   // C in AIQ
  double seconds = 0;
};

using PredictorFactory =
    std::function<StatusOr<std::unique_ptr<Predictor>>(const std::string& name, const PredictorOptions& options)>;

struct BenchOptions {
  std::vector<std::string> routers;             // predictor names; empty = PredictorNames(). Default: all
  std::vector<std::string> default_candidates;  // shortlist for the CV default choice (ties: the earlier one);
                                                // empty = "stack" when among `routers`, else all of `routers`.
                                                // Default: empty
  size_t cv_folds = 3;               // folds for the default choice (1 = skip CV, take the first). Default: 3
  size_t num_lambdas = 40;           // log-spaced lambdas besides 0. Default: 40
  size_t breakpoint_lambdas = 1500;  // plus up to this many lambdas between exact break-points (BreakpointLambdas),
                                     // so the curve is measured at every distinct assignment; 0 = off. Default: 1500
  uint64_t seed = 0;                 // predictor seeds and CV folds. Default: 0
  bool cross_validate = true;        // PredictorOptions::cross_validate for the final training. Default: true
  std::vector<double> tier_budgets = {0.1, 0.25, 0.5, 1.0};  // fractions of best_single cost for TierShare
  size_t bootstrap = 200;  // resamples for the confidence intervals (CurveBootstrap), seeded by `seed`; 0 = off
  // Recorded answer texts of train's and test's cells (AnswersFor). Both set: the escalation router ("escalate") is
  // benchmarked too; else it is skipped with a note. Not owned; must outlive RunBench. Default: none
  const AnswerTable* train_answers = nullptr;
  const AnswerTable* test_answers = nullptr;
  PredictorFactory make_predictor;                   // empty = MakePredictor
  std::function<void(const std::string&)> progress;  // progress lines (no newline); empty = silent
};

// Trains and evaluates every router. InvalidArgument for an unknown router name or mismatched experts;
// FailedPrecondition when train or test is empty.
StatusOr<BenchResult> RunBench(const Dataset& train, const Dataset& test, const BenchOptions& options);

// The JSON form (see the project README for the schema). NaN and missing values are null.
nlohmann::json BenchResultToJson(const BenchResult& r);

// The self-contained HTML report (inline SVG, no scripts).
std::string RenderBenchReport(const BenchResult& r, const std::string& title);

}  // namespace baton
