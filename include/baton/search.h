// Black-box optimisation over a small mixed space: what `baton archon search` uses to find a good inference-time
// architecture with few (expensive) evaluations.
//
// A Space is a list of dimensions (integer ranges with a step, categorical choices, booleans, real intervals). A
// Point holds one value per dimension: the integer or real value itself, the index of a categorical choice, or 0/1.
// An Objective scores a point (higher is better) and reports its cost; a Feasible predicate rejects points before
// they are evaluated (Archon: configurations over the inference-call budget), and rejected points never count
// against the evaluation budget.
//
// Three algorithms:
//   - random: uniform samples; on a discrete space without replacement (every point at most once);
//   - greedy: coordinate-wise hill climbing as the Archon paper's greedy baseline: from a random start, for each
//     dimension in turn evaluate every value of that dimension (a 9-point grid for reals) with the others fixed and
//     keep the best; sweep until a full pass improves nothing, then restart from a fresh random point;
//   - bayes: Bayesian optimisation with our own Gaussian process (Matérn 5/2, ARD length scales, signal variance,
//     noise; hyper-parameters by maximising the log marginal likelihood with multi-start Nelder-Mead in log space),
//     inputs scaled to [0,1] (one-hot for categoricals), outputs standardised, expected improvement maximised over
//     the candidate set. See SearchOptions for the documented defaults.
//
// Every function here is deterministic given its seed. Thread-safety: no shared state; objects are not synchronised.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <Eigen/Dense>

#include "baton/status.h"

namespace baton::search {

enum class DimKind { kInt, kReal, kCategorical, kBool };

struct Dimension {
  std::string name;
  DimKind kind = DimKind::kInt;
  double min = 0, max = 1;          // kInt (inclusive, min + i*step) and kReal
  double step = 1;                  // kInt only
  std::vector<std::string> values;  // kCategorical
  // Number of distinct values (kReal: 0 = continuous).
  size_t Cardinality() const;
  // The i-th value of a discrete dimension, as stored in a Point.
  double ValueAt(size_t i) const;
  // "4", "true", "vote", "0.25": how a point's value prints.
  std::string Format(double v) const;
};

using Point = std::vector<double>;

class Space {
 public:
  Space() = default;
  explicit Space(std::vector<Dimension> dims) : dims_(std::move(dims)) {}

  const std::vector<Dimension>& dims() const { return dims_; }
  size_t size() const { return dims_.size(); }
  // Index of the named dimension, or nullopt.
  std::optional<size_t> Find(const std::string& name) const;
  bool AllDiscrete() const;
  // Number of points of a discrete space (saturates at UINT64_MAX); 0 when a dimension is continuous.
  uint64_t NumPoints() const;
  // The n-th point of a discrete space in mixed-radix order (first dimension fastest). REQUIRES: n < NumPoints().
  Point PointAt(uint64_t n) const;
  // A uniform random point.
  template <class Rng>
  Point Sample(Rng& rng) const;
  // The GP's input: ints and reals scaled to [0,1], bools 0/1, categoricals one-hot.
  Eigen::VectorXd Encode(const Point& p) const;
  size_t EncodedSize() const;
  // A stable text key ("generators=3,aggregation=vote") for de-duplication and output.
  std::string Key(const Point& p) const;
  // Checks that a point's values lie on the grid of each dimension.
  bool Valid(const Point& p) const;

 private:
  std::vector<Dimension> dims_;
};

struct Evaluation {
  double score = 0;  // maximised
  double cost = 0;   // reported, not optimised (fold it into score to penalise it)
};

using Objective = std::function<StatusOr<Evaluation>(const Point&)>;
using Feasible = std::function<bool(const Point&)>;

enum class Algorithm { kRandom, kGreedy, kBayes };
const char* AlgorithmName(Algorithm a);
StatusOr<Algorithm> ParseAlgorithm(const std::string& name);

struct SearchOptions {
  Algorithm algorithm = Algorithm::kBayes;
  size_t budget = 50;  // objective evaluations (distinct points); rejected points do not count
  uint64_t seed = 0;
  // bayes: random initial points; 0 = clamp(dimensions + 1, 3, 10) (Branin 3, Hartmann-6 7, the replay space 4).
  size_t initial_points = 0;
  // bayes: hyper-parameters are refitted after every evaluation while there are at most this many observations, and
  // after every `refit_every`-th one beyond (always warm-started from the previous fit).
  size_t refit_all_until = 40;
  size_t refit_every = 5;
  // bayes: discrete spaces with at most this many points score every unevaluated feasible point; bigger or continuous
  // spaces score `random_candidates` uniform samples plus the neighbours of the best points, then refine locally.
  uint64_t enumerate_limit = 20000;
  size_t random_candidates = 2000;
  double xi = 0.01;  // EI's exploration margin, in standardised units
  // Stop as soon as a score >= stop_at is found (study mode: what comes after the target cannot change when it was
  // first reached).
  std::optional<double> stop_at;
  // Called after each evaluation (progress lines).
  std::function<void(size_t index, const Point&, const Evaluation&, double best)> on_eval;
};

struct Trial {
  Point point;
  Evaluation eval;
};

struct SearchResult {
  std::vector<Trial> trials;  // in evaluation order
  size_t rejected = 0;        // distinct infeasible points met (never evaluated)
  size_t best = 0;            // index into trials of the best score (the first one reaching it)
  // 1-based number of evaluations at which the best score was first reached (= best + 1); 0 when no trial.
  size_t first_found_at = 0;
  // 1-based evaluation count at which score >= target was first reached; 0 if never.
  size_t EvalsToReach(double target) const;
};

// Runs the search. Stops early when a discrete space has no unevaluated feasible point left. Errors: an objective's
// failure (returned as is), an empty space, budget 0.
StatusOr<SearchResult> RunSearch(const Space& space, const Objective& objective, const Feasible& feasible,
                                 const SearchOptions& options);

// --- The Gaussian process (public for tests and for reuse) ---

struct GpHyper {
  Eigen::VectorXd log_length;  // per input dimension
  double log_signal = 0;       // log signal variance
  double log_noise = -6;       // log noise variance (standardised units)
};

// Matérn 5/2 with ARD: s2 (1 + sqrt5 r + 5/3 r^2) exp(-sqrt5 r), r^2 = sum ((a_i - b_i) / l_i)^2.
double Matern52(const Eigen::VectorXd& a, const Eigen::VectorXd& b, const GpHyper& h);

class GaussianProcess {
 public:
  // Fits on inputs X (n x d, already in [0,1]) and raw outputs y; standardises y. Cholesky with growing jitter, so
  // duplicate inputs never fail. With fit_hyper, maximises the log marginal likelihood (multi-start Nelder-Mead in
  // log space: the warm start `init` if given, the default start and `restarts` random starts); otherwise uses
  // `init` (or the default).
  Status Fit(const Eigen::MatrixXd& X, const Eigen::VectorXd& y, bool fit_hyper, uint64_t seed,
             const std::optional<GpHyper>& init = std::nullopt, int restarts = 2);
  // Posterior mean and variance of the latent function at x, in the raw units of y.
  void Predict(const Eigen::VectorXd& x, double* mean, double* var) const;
  // The same in standardised units (what EI uses).
  void PredictStd(const Eigen::VectorXd& x, double* mean, double* var) const;
  // Log marginal likelihood of the standardised outputs under h; -inf when the matrix cannot be factored.
  double LogMarginalLikelihood(const GpHyper& h) const;
  const GpHyper& hyper() const { return hyper_; }
  double y_mean() const { return y_mean_; }
  double y_std() const { return y_std_; }
  // Max standardised observed output.
  double best_std() const;

 private:
  Status Factor();
  Eigen::MatrixXd X_;
  Eigen::VectorXd ys_;  // standardised
  double y_mean_ = 0, y_std_ = 1;
  GpHyper hyper_;
  Eigen::MatrixXd L_;  // Cholesky factor of K + (noise + jitter) I
  Eigen::VectorXd alpha_;
};

// Expected improvement over `best` (maximisation) for a Gaussian posterior N(mean, var), with margin xi.
// Non-negative; 0 when var is 0 and mean <= best + xi.
double ExpectedImprovement(double mean, double var, double best, double xi);

// Nelder-Mead minimisation of f from x0 with initial simplex step `step`; at most max_evals evaluations.
Eigen::VectorXd NelderMead(const std::function<double(const Eigen::VectorXd&)>& f, const Eigen::VectorXd& x0,
                           double step, int max_evals, double* fmin = nullptr);

// --- Standard test functions (minimisation form; the search maximises their negation) ---
// Branin on [-5,10] x [0,15]; global minimum 0.397887 at (-pi, 12.275), (pi, 2.275), (9.42478, 2.475).
double Branin(double x1, double x2);
inline constexpr double kBraninMin = 0.397887;
// Hartmann-6 on [0,1]^6; global minimum -3.32237 at (0.20169, 0.150011, 0.476874, 0.275332, 0.311652, 0.6573).
double Hartmann6(const double* x);
inline constexpr double kHartmann6Min = -3.32237;
Space BraninSpace();
Space Hartmann6Space();

// --- Space files ---
// {"name": ..., "dimensions": [{"name", "type": "int"|"real"|"categorical"|"bool", "min", "max", "step",
// "values"}], ...}. Other top-level keys are the caller's (ignored here). Errors name the dimension and the problem.
StatusOr<Space> ParseSpace(const std::string& json_text);

template <class Rng>
Point Space::Sample(Rng& rng) const {
  Point p(dims_.size());
  for (size_t i = 0; i < dims_.size(); ++i) {
    const Dimension& d = dims_[i];
    if (d.kind == DimKind::kReal) {
      const double u = static_cast<double>(rng() >> 11) * (1.0 / 9007199254740992.0);
      p[i] = d.min + u * (d.max - d.min);
    } else {
      p[i] = d.ValueAt(static_cast<size_t>(rng() % d.Cardinality()));
    }
  }
  return p;
}

}  // namespace baton::search
