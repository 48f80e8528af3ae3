#include <cmath>
#include <numbers>
#include <random>

#include <gtest/gtest.h>

#include "baton/search.h"

namespace baton::search {
namespace {

// --- Gaussian process ---

TEST(SearchGp, PosteriorInterpolatesAKnown1dFunction) {
  // sin(2 pi x) observed at 12 points: the posterior mean is close everywhere in between, and the variance is tiny
  // at the data and larger between.
  const int n = 12;
  Eigen::MatrixXd X(n, 1);
  Eigen::VectorXd y(n);
  for (int i = 0; i < n; ++i) {
    X(i, 0) = i / double(n - 1);
    y[i] = std::sin(2 * std::numbers::pi * X(i, 0));
  }
  GaussianProcess gp;
  ASSERT_TRUE(gp.Fit(X, y, true, 1).ok());
  double max_err = 0;
  for (int k = 0; k <= 100; ++k) {
    Eigen::VectorXd x(1);
    x[0] = k / 100.0;
    double m = 0, v = 0;
    gp.Predict(x, &m, &v);
    max_err = std::max(max_err, std::abs(m - std::sin(2 * std::numbers::pi * x[0])));
  }
  EXPECT_LT(max_err, 0.05);
  Eigen::VectorXd at(1), between(1);
  at[0] = X(3, 0);
  between[0] = (X(3, 0) + X(4, 0)) / 2;
  double m1 = 0, v1 = 0, m2 = 0, v2 = 0;
  gp.Predict(at, &m1, &v1);
  gp.Predict(between, &m2, &v2);
  EXPECT_NEAR(m1, y[3], 1e-2);
  EXPECT_LT(v1, v2);
  // Far outside the data the variance returns towards the prior's.
  Eigen::VectorXd far(1);
  far[0] = 5;
  double m3 = 0, v3 = 0;
  gp.Predict(far, &m3, &v3);
  EXPECT_GT(v3, 10 * v2);
}

TEST(SearchGp, MarginalLikelihoodRecoversALengthScale) {
  // Draw a sample path from a GP with length scale 0.2 on dimension 0 and a near-irrelevant dimension 1 (length 5);
  // the fitted length scales should land near 0.2 and far above it.
  const int n = 80;
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> u(0, 1);
  Eigen::MatrixXd X(n, 2);
  for (int i = 0; i < n; ++i) X(i, 0) = u(rng), X(i, 1) = u(rng);
  GpHyper truth;
  truth.log_length = Eigen::Vector2d(std::log(0.2), std::log(5.0));
  truth.log_signal = 0;
  Eigen::MatrixXd K(n, n);
  for (int i = 0; i < n; ++i) {
    for (int j = 0; j < n; ++j) K(i, j) = Matern52(X.row(i).transpose(), X.row(j).transpose(), truth);
  }
  K.diagonal().array() += 1e-6;
  Eigen::MatrixXd L = K.llt().matrixL();
  std::normal_distribution<double> g(0, 1);
  Eigen::VectorXd z(n);
  for (int i = 0; i < n; ++i) z[i] = g(rng);
  const Eigen::VectorXd y = L * z;
  GaussianProcess gp;
  ASSERT_TRUE(gp.Fit(X, y, true, 3, std::nullopt, 4).ok());
  const double l0 = std::exp(gp.hyper().log_length[0]);
  const double l1 = std::exp(gp.hyper().log_length[1]);
  EXPECT_GT(l0, 0.1) << l0;
  EXPECT_LT(l0, 0.4) << l0;
  EXPECT_GT(l1, 3 * l0) << l1;
  // The fit is at least as likely as the truth (it maximised the likelihood).
  EXPECT_GE(gp.LogMarginalLikelihood(gp.hyper()), gp.LogMarginalLikelihood(truth) - 1e-6);
}

TEST(SearchGp, DuplicatePointsNeverFail) {
  Eigen::MatrixXd X(6, 2);
  X << 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.1, 0.9, 0.1, 0.9, 0.3, 0.3;
  Eigen::VectorXd y(6);
  y << 1, 1.2, 0.8, 0, 0, 0.5;
  GaussianProcess gp;
  ASSERT_TRUE(gp.Fit(X, y, true, 0).ok());
  double m = 0, v = 0;
  gp.Predict(X.row(0).transpose(), &m, &v);
  EXPECT_NEAR(m, 1.0, 0.2);  // the mean of the duplicates, up to noise
  EXPECT_TRUE(std::isfinite(v));
  // All outputs equal: standardisation must not divide by zero.
  Eigen::VectorXd same = Eigen::VectorXd::Constant(6, 3.0);
  ASSERT_TRUE(gp.Fit(X, same, true, 0).ok());
  gp.Predict(X.row(3).transpose(), &m, &v);
  EXPECT_NEAR(m, 3.0, 1e-6);
}

TEST(SearchGp, ExpectedImprovementProperties) {
  // Non-negative; grows with the mean and (at equal mean) with the variance; equals max(mu - best - xi, 0) with no
  // variance; known closed-form value at mean = best.
  EXPECT_GE(ExpectedImprovement(-5, 0.01, 0, 0), 0.0);
  EXPECT_LT(ExpectedImprovement(0.0, 1, 0, 0), ExpectedImprovement(0.5, 1, 0, 0));
  EXPECT_LT(ExpectedImprovement(0.0, 0.25, 0, 0), ExpectedImprovement(0.0, 1, 0, 0));
  EXPECT_DOUBLE_EQ(ExpectedImprovement(2, 0, 1, 0), 1.0);
  EXPECT_DOUBLE_EQ(ExpectedImprovement(0.5, 0, 1, 0), 0.0);
  EXPECT_NEAR(ExpectedImprovement(0, 1, 0, 0), 1 / std::sqrt(2 * std::numbers::pi), 1e-12);  // sigma * phi(0)
  EXPECT_LT(ExpectedImprovement(0, 1, 0, 0.1), ExpectedImprovement(0, 1, 0, 0));
}

TEST(SearchGp, NelderMeadMinimisesRosenbrock) {
  auto f = [](const Eigen::VectorXd& x) { return 100 * std::pow(x[1] - x[0] * x[0], 2) + std::pow(1 - x[0], 2); };
  double fmin = 0;
  Eigen::VectorXd x = NelderMead(f, Eigen::Vector2d(-1.2, 1), 0.5, 2000, &fmin);
  EXPECT_NEAR(x[0], 1, 1e-3);
  EXPECT_NEAR(x[1], 1, 2e-3);
  EXPECT_LT(fmin, 1e-6);
}

// --- Spaces ---

TEST(SearchSpace, ParsesEncodesAndEnumerates) {
  auto s = ParseSpace(R"({"dimensions": [
      {"name": "generators", "type": "int", "min": 1, "max": 10},
      {"name": "fusers", "type": "int", "min": 2, "max": 10, "step": 2},
      {"name": "critic", "type": "bool"},
      {"name": "aggregation", "type": "categorical", "values": ["vote", "rank", "vote_then_rank"]}]})");
  ASSERT_TRUE(s.ok()) << s.status().message();
  EXPECT_EQ(s->NumPoints(), 10u * 5 * 2 * 3);
  EXPECT_EQ(s->EncodedSize(), 1u + 1 + 1 + 3);
  const Point p = s->PointAt(s->NumPoints() - 1);
  EXPECT_EQ(s->Key(p), "generators=10,fusers=10,critic=true,aggregation=vote_then_rank");
  EXPECT_TRUE(s->Valid(p));
  EXPECT_FALSE(s->Valid({3, 3, 0, 0}));  // 3 is off the fusers grid
  const Eigen::VectorXd x = s->Encode(p);
  EXPECT_DOUBLE_EQ(x[0], 1.0);
  EXPECT_DOUBLE_EQ(x[5], 1.0);
  EXPECT_DOUBLE_EQ(x[3], 0.0);
}

TEST(SearchSpace, RejectsBadFilesWithReasons) {
  EXPECT_NE(ParseSpace("{").status().message().find("not valid JSON"), std::string::npos);
  EXPECT_NE(ParseSpace(R"({"dimensions": [{"name": "a", "type": "weird"}]})").status().message().find("unknown type"),
            std::string::npos);
  EXPECT_NE(
      ParseSpace(R"({"dimensions": [{"name": "a", "type": "int", "min": 1}]})").status().message().find("\"max\""),
      std::string::npos);
  EXPECT_NE(ParseSpace(R"({"dimensions": [{"name": "a", "type": "bool"}, {"name": "a", "type": "bool"}]})")
                .status()
                .message()
                .find("twice"),
            std::string::npos);
  EXPECT_FALSE(ParseSpace(R"({"dimensions": []})").ok());
}

// --- Algorithms ---

Objective BraninObjective() {
  return [](const Point& p) -> StatusOr<Evaluation> { return Evaluation{-Branin(p[0], p[1]), 0}; };
}

TEST(SearchFunctions, KnownOptima) {
  EXPECT_NEAR(Branin(-std::numbers::pi, 12.275), kBraninMin, 1e-5);
  EXPECT_NEAR(Branin(std::numbers::pi, 2.275), kBraninMin, 1e-5);
  const double x[6] = {0.20169, 0.150011, 0.476874, 0.275332, 0.311652, 0.6573};
  EXPECT_NEAR(Hartmann6(x), kHartmann6Min, 1e-4);
}

TEST(SearchAlgorithms, BayesReachesBraninOptimum) {
  SearchOptions o;
  o.algorithm = Algorithm::kBayes;
  o.budget = 60;
  o.seed = 1;
  o.stop_at = -kBraninMin * 1.01;
  auto r = RunSearch(BraninSpace(), BraninObjective(), nullptr, o);
  ASSERT_TRUE(r.ok()) << r.status().message();
  const double best = -r->trials[r->best].eval.score;
  EXPECT_LT(best, kBraninMin * 1.01) << best;  // within 1% of the published optimum
}

TEST(SearchAlgorithms, BayesReachesHartmann6Optimum) {
  SearchOptions o;
  o.algorithm = Algorithm::kBayes;
  o.budget = 120;
  o.seed = 2;
  o.stop_at = -kHartmann6Min * 0.97;  // stop once within 3% (keeps the test fast)
  auto r = RunSearch(
      Hartmann6Space(),
      [](const Point& p) -> StatusOr<Evaluation> {
        return Evaluation{-Hartmann6(p.data()), 0};
      },
      nullptr, o);
  ASSERT_TRUE(r.ok()) << r.status().message();
  const double best = -r->trials[r->best].eval.score;
  EXPECT_LT(best, kHartmann6Min * 0.97) << best;  // within 3% of -3.32237
}

TEST(SearchAlgorithms, RandomVisitsEachDiscretePointOnceAndRespectsFeasibility) {
  auto s = ParseSpace(R"({"dimensions": [{"name": "a", "type": "int", "min": 1, "max": 6},
                                          {"name": "b", "type": "bool"}]})");
  ASSERT_TRUE(s.ok());
  SearchOptions o;
  o.algorithm = Algorithm::kRandom;
  o.budget = 100;
  auto feasible = [](const Point& p) { return p[0] <= 4; };  // 8 feasible points, 4 rejected
  auto r = RunSearch(
      *s,
      [](const Point& p) -> StatusOr<Evaluation> {
        return Evaluation{p[0] + p[1], p[0]};
      },
      feasible, o);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->trials.size(), 8u);
  EXPECT_EQ(r->rejected, 4u);
  EXPECT_DOUBLE_EQ(r->trials[r->best].eval.score, 5.0);
  EXPECT_EQ(r->first_found_at, r->best + 1);
  EXPECT_EQ(r->EvalsToReach(5.0), r->first_found_at);
}

TEST(SearchAlgorithms, GreedyClimbsASeparableObjective) {
  // Separable: one coordinate sweep from any start finds the optimum, within 1 + 10 + 10 + 4 evaluations.
  auto s = ParseSpace(R"({"dimensions": [{"name": "a", "type": "int", "min": 1, "max": 10},
                                          {"name": "b", "type": "int", "min": 1, "max": 10},
                                          {"name": "c", "type": "categorical", "values": ["x", "y", "z", "w"]}]})");
  ASSERT_TRUE(s.ok());
  SearchOptions o;
  o.algorithm = Algorithm::kGreedy;
  o.budget = 30;
  o.seed = 5;
  auto obj = [](const Point& p) -> StatusOr<Evaluation> {
    return Evaluation{-std::abs(p[0] - 7) - std::abs(p[1] - 3) - (p[2] == 2 ? 0 : 1), 0};
  };
  auto r = RunSearch(*s, obj, nullptr, o);
  ASSERT_TRUE(r.ok());
  EXPECT_DOUBLE_EQ(r->trials[r->best].eval.score, 0.0);
  EXPECT_LE(r->first_found_at, 25u);
}

TEST(SearchAlgorithms, ObjectiveErrorsPropagate) {
  SearchOptions o;
  o.algorithm = Algorithm::kBayes;
  auto r = RunSearch(
      BraninSpace(), [](const Point&) -> StatusOr<Evaluation> { return Status::Internal("boom"); }, nullptr, o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "boom");
}

}  // namespace
}  // namespace baton::search
