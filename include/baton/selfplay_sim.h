// The offline evidence for the self-play loop (`baton selfplay-sim`): is paying for (query, expert) evaluations the
// way the loop chooses them worth its cost?
//
// Replay experts reveal a recorded outcome only when the simulation pays for that evaluation. Three strategies spend
// the same growing budget of paid evaluations on a train pool (the recorded (query, expert) cells):
//   selfplay  the loop's choice (ChooseEvaluations): questions ranked by predicted disagreement among the experts
//             (the probability that two experts' outcomes differ, from the current router's predictions), with
//             epsilon-greedy exploration over questions and experts; on a chosen question it pays for the experts the
//             current router would pick at some lambda (its upper envelope of predicted score vs cost), or, when those
//             are known, the most uncertain unknown expert; every expert when the pool has at most `small_pool`.
//             It is steered by a router refitted after every round, on the paid outcomes only.
//   random    uniformly random unpaid cells.
//   all       every expert on each question, questions in random order.
// After each round the router (`router`, default: the default predictor of `baton fit`) and a cost model are fitted on
// the paid outcomes only, swept over lambda on the test split and scored by AIQ (bench.h) with one C for the whole
// run: the largest single expert's mean cost on test. The test split is only measured, never used to choose.
//
// Rounds: a warm start (every expert on `warm_start` x the pool's questions; the same questions for all three
// strategies, so their first points coincide) then `rounds` equal steps up to every recorded cell. The last point of
// each curve has paid for every cell, so the three coincide there by construction.
//
// fraction_to_match_all: the evaluations at which the selfplay curve first reaches the `all` curve's final AIQ,
// divided by the pool's recorded cells; points that paid for every cell do not count (they match by construction),
// so it is null when the loop only matches there.
//
// Thread-safety: RunSelfPlaySim is pure (progress goes through the caller's callback on the calling thread).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "baton/dataset.h"
#include "baton/status.h"

namespace baton {

// How the loop chooses what to pay for (used by the simulation and by `baton selfplay`).
struct ExplorationOptions {
  // Probability of a random question, and of paying for each non-routed expert. Default: 0.3 (chosen among 0.1, 0.3
  // and whole questions on a development split of routerbench-train, never on a test split; see bench/RESULTS.md, "Does
  // self-play pay for itself?")
  double epsilon = 0.3;
  size_t small_pool = 4;  // with at most this many experts, every expert is evaluated on each question. Default: 4
};

// One question's predicted outcome per expert, and whether each (query, expert) can still be paid for.
// pred_score / pred_cost: num_queries x num_experts row-major; payable: same shape (false = known or not available).
// Returns (query, expert) pairs to evaluate, at most `budget`, in the order chosen. `rng_state` is advanced.
struct Evaluation {
  size_t query = 0, expert = 0;
};
std::vector<Evaluation> ChooseEvaluations(std::span<const float> pred_score, std::span<const float> pred_cost,
                                          const std::vector<bool>& payable, size_t num_experts, size_t budget,
                                          const ExplorationOptions& options, uint64_t& rng_state);

// The probability that two distinct experts' outcomes differ on a question, given each expert's predicted probability
// of a right answer (independent outcomes): high when predictions spread or sit near 0.5. 0 for fewer than 2 experts.
double PredictedDisagreement(std::span<const float> p);

// Experts the router would choose for this question at some lambda >= 0 (argmax score - lambda * cost): the upper
// envelope of (cost, score), from the best-scoring down to the cheapest. NaN costs count as 0.
std::vector<size_t> EnvelopeExperts(std::span<const float> score, std::span<const float> cost);

struct SimPoint {
  size_t evaluations = 0;
  double aiq = 0;
};

struct SimOptions {
  std::string router;        // predictor name; "" = PredictorNames().front(). Default: ""
  uint64_t seed = 0;         // every random choice of the run (strategies, predictor). Default: 0
  size_t rounds = 20;        // equal budget steps after the warm start. Default: 20
  double warm_start = 0.01;  // fraction of pool questions evaluated on every expert first. Default: 0.01
  ExplorationOptions exploration;
  size_t breakpoint_lambdas = 300;  // lambdas between exact break-points per sweep (bench.h). Default: 300
  std::function<void(const std::string&)> progress;  // progress lines; empty = silent
};

struct SimResult {
  std::string router;
  size_t pool_queries = 0, test_queries = 0, experts = 0;
  size_t total_evaluations = 0;  // recorded cells in the pool = the `all` curve's last point
  double max_cost = 0;           // C in AIQ
  std::vector<SimPoint> selfplay, random, all;
  std::optional<double> fraction_to_match_all;
  std::optional<double> random_fraction_to_match_all;  // the same figure for the random curve, for comparison
  double seconds = 0;
};

// The first point's evaluations / total among points with evaluations < total whose AIQ >= target; nullopt if none.
std::optional<double> FractionToMatch(const std::vector<SimPoint>& curve, double target, size_t total);

// REQUIRES: pool and test have the same experts in the same order (AlignExperts). FailedPrecondition for an empty
// split; InvalidArgument for an unknown router.
StatusOr<SimResult> RunSelfPlaySim(const Dataset& pool, const Dataset& test, const SimOptions& options);

// {"curves": {"selfplay": [{"evaluations": n, "aiq": x}, ...], "random": [...], "all": [...]},
//  "fraction_to_match_all": x | null, ...run details}.
nlohmann::json SimResultToJson(const SimResult& r);

// AIQ against paid evaluations for one or more runs (seeds) as a standalone SVG: one colour per strategy, one line
// per run.
std::string RenderSimSvg(const std::vector<SimResult>& runs, const std::string& title);

}  // namespace baton
