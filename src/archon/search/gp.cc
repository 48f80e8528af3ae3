// The Gaussian process behind Bayesian search: Matérn 5/2 ARD kernel, Cholesky with jitter, log marginal likelihood
// maximised by multi-start Nelder-Mead in log space, expected improvement.
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>

#include "baton/search.h"

namespace baton::search {

namespace {

constexpr double kSqrt5 = 2.23606797749979;
constexpr double kLog2Pi = 1.8378770664093453;

// Hyper-parameter bounds (log space). Inputs are in [0,1] and outputs standardised, so these are wide.
constexpr double kMinLogLength = -4.6;  // 0.01
constexpr double kMaxLogLength = 2.3;   // 10
constexpr double kMinLogSignal = -3.0;  // 0.05
constexpr double kMaxLogSignal = 3.0;   // 20
constexpr double kMinLogNoise = -13.8;  // 1e-6
constexpr double kMaxLogNoise = 0.0;    // 1

Eigen::VectorXd Pack(const GpHyper& h) {
  Eigen::VectorXd v(h.log_length.size() + 2);
  v.head(h.log_length.size()) = h.log_length;
  v[h.log_length.size()] = h.log_signal;
  v[h.log_length.size() + 1] = h.log_noise;
  return v;
}

GpHyper Unpack(const Eigen::VectorXd& v) {
  GpHyper h;
  const Eigen::Index d = v.size() - 2;
  h.log_length = v.head(d).cwiseMax(kMinLogLength).cwiseMin(kMaxLogLength);
  h.log_signal = std::clamp(v[d], kMinLogSignal, kMaxLogSignal);
  h.log_noise = std::clamp(v[d + 1], kMinLogNoise, kMaxLogNoise);
  return h;
}

// Distance beyond the box, to steer Nelder-Mead back in (the objective itself sees clamped values).
double OutOfBox(const Eigen::VectorXd& v) {
  const Eigen::Index d = v.size() - 2;
  double out = 0;
  auto over = [](double x, double lo, double hi) { return x < lo ? lo - x : (x > hi ? x - hi : 0.0); };
  for (Eigen::Index i = 0; i < d; ++i) out += over(v[i], kMinLogLength, kMaxLogLength);
  out += over(v[d], kMinLogSignal, kMaxLogSignal);
  out += over(v[d + 1], kMinLogNoise, kMaxLogNoise);
  return out;
}

GpHyper DefaultHyper(Eigen::Index d) {
  GpHyper h;
  h.log_length = Eigen::VectorXd::Constant(d, std::log(0.3));
  h.log_signal = 0;
  h.log_noise = std::log(1e-4);
  return h;
}

double KernelScaled(const Eigen::VectorXd& a, const Eigen::VectorXd& b, const Eigen::VectorXd& inv_len, double signal) {
  const double r2 = (a - b).cwiseProduct(inv_len).squaredNorm();
  const double r = std::sqrt(r2);
  return signal * (1 + kSqrt5 * r + 5.0 / 3.0 * r2) * std::exp(-kSqrt5 * r);
}

// Cholesky of K(X,X) + (noise + jitter) I with jitter growing until it factors. Returns false if it never does.
bool Cholesky(const Eigen::MatrixXd& X, const GpHyper& h, Eigen::MatrixXd* L) {
  const Eigen::Index n = X.rows();
  const Eigen::VectorXd inv_len = (-h.log_length.array()).exp().matrix();
  const double signal = std::exp(h.log_signal);
  const double noise = std::exp(h.log_noise);
  Eigen::MatrixXd K(n, n);
  for (Eigen::Index i = 0; i < n; ++i) {
    K(i, i) = signal;
    for (Eigen::Index j = 0; j < i; ++j) {
      K(i, j) = K(j, i) = KernelScaled(X.row(i).transpose(), X.row(j).transpose(), inv_len, signal);
    }
  }
  double jitter = 1e-10 * signal;
  for (int attempt = 0; attempt < 8; ++attempt, jitter *= 10) {
    Eigen::MatrixXd A = K;
    A.diagonal().array() += noise + jitter;
    Eigen::LLT<Eigen::MatrixXd> llt(A);
    if (llt.info() == Eigen::Success) {
      *L = llt.matrixL();
      return true;
    }
  }
  return false;
}

double NormPdf(double z) {
  return 0.3989422804014327 * std::exp(-0.5 * z * z);
}
double NormCdf(double z) {
  return 0.5 * std::erfc(-z / std::sqrt(2.0));
}

}  // namespace

double Matern52(const Eigen::VectorXd& a, const Eigen::VectorXd& b, const GpHyper& h) {
  return KernelScaled(a, b, (-h.log_length.array()).exp().matrix(), std::exp(h.log_signal));
}

double ExpectedImprovement(double mean, double var, double best, double xi) {
  const double imp = mean - best - xi;
  if (!(var > 1e-18)) return std::max(imp, 0.0);
  const double s = std::sqrt(var);
  const double z = imp / s;
  return std::max(0.0, imp * NormCdf(z) + s * NormPdf(z));
}

Eigen::VectorXd NelderMead(const std::function<double(const Eigen::VectorXd&)>& f, const Eigen::VectorXd& x0,
                           double step, int max_evals, double* fmin) {
  const Eigen::Index n = x0.size();
  std::vector<Eigen::VectorXd> x(n + 1, x0);
  std::vector<double> fx(n + 1);
  for (Eigen::Index i = 0; i < n; ++i) x[i + 1][i] += step;
  int evals = 0;
  auto eval = [&](const Eigen::VectorXd& v) {
    ++evals;
    const double r = f(v);
    return std::isfinite(r) ? r : std::numeric_limits<double>::max();
  };
  for (Eigen::Index i = 0; i <= n; ++i) fx[i] = eval(x[i]);
  std::vector<size_t> order(n + 1);
  while (evals < max_evals) {
    std::iota(order.begin(), order.end(), 0);
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return fx[a] < fx[b]; });
    const size_t best = order.front(), worst = order.back(), second = order[n - 1];
    if (std::abs(fx[worst] - fx[best]) < 1e-9 * (1 + std::abs(fx[best]))) break;
    Eigen::VectorXd c = Eigen::VectorXd::Zero(n);
    for (size_t i : order) {
      if (i != worst) c += x[i];
    }
    c /= static_cast<double>(n);
    const Eigen::VectorXd xr = c + (c - x[worst]);
    const double fr = eval(xr);
    if (fr < fx[best]) {
      const Eigen::VectorXd xe = c + 2 * (c - x[worst]);
      const double fe = eval(xe);
      if (fe < fr) {
        x[worst] = xe, fx[worst] = fe;
      } else {
        x[worst] = xr, fx[worst] = fr;
      }
    } else if (fr < fx[second]) {
      x[worst] = xr, fx[worst] = fr;
    } else {
      const bool outside = fr < fx[worst];
      const Eigen::VectorXd xc =
          outside ? Eigen::VectorXd(c + 0.5 * (xr - c)) : Eigen::VectorXd(c + 0.5 * (x[worst] - c));
      const double fc = eval(xc);
      if (fc < (outside ? fr : fx[worst])) {
        x[worst] = xc, fx[worst] = fc;
      } else {  // shrink towards the best
        for (Eigen::Index i = 0; i <= n; ++i) {
          if (static_cast<size_t>(i) == best) continue;
          x[i] = x[best] + 0.5 * (x[i] - x[best]);
          fx[i] = eval(x[i]);
        }
      }
    }
  }
  const size_t b = static_cast<size_t>(std::min_element(fx.begin(), fx.end()) - fx.begin());
  if (fmin != nullptr) *fmin = fx[b];
  return x[b];
}

double GaussianProcess::LogMarginalLikelihood(const GpHyper& h) const {
  Eigen::MatrixXd L;
  if (!Cholesky(X_, h, &L)) return -std::numeric_limits<double>::infinity();
  const Eigen::VectorXd a = L.triangularView<Eigen::Lower>().solve(ys_);
  const double n = static_cast<double>(ys_.size());
  return -0.5 * a.squaredNorm() - L.diagonal().array().log().sum() - 0.5 * n * kLog2Pi;
}

Status GaussianProcess::Factor() {
  if (!Cholesky(X_, hyper_, &L_)) {
    return Status::Internal("the Gaussian process covariance could not be factored even with jitter");
  }
  alpha_ = L_.transpose().triangularView<Eigen::Upper>().solve(L_.triangularView<Eigen::Lower>().solve(ys_));
  return Status::Ok();
}

Status GaussianProcess::Fit(const Eigen::MatrixXd& X, const Eigen::VectorXd& y, bool fit_hyper, uint64_t seed,
                            const std::optional<GpHyper>& init, int restarts) {
  if (X.rows() == 0 || X.rows() != y.size()) return Status::InvalidArgument("GP fit needs as many outputs as inputs");
  if (!y.allFinite()) return Status::InvalidArgument("GP fit: an output is not finite");
  X_ = X;
  y_mean_ = y.mean();
  const double var = X.rows() > 1 ? (y.array() - y_mean_).square().sum() / static_cast<double>(y.size() - 1) : 0;
  y_std_ = var > 1e-24 ? std::sqrt(var) : 1.0;
  ys_ = (y.array() - y_mean_) / y_std_;
  const Eigen::Index d = X.cols();
  GpHyper start = init && init->log_length.size() == d ? *init : DefaultHyper(d);
  if (!fit_hyper) {
    hyper_ = start;
    return Factor();
  }
  auto neg = [&](const Eigen::VectorXd& v) {
    const double ll = LogMarginalLikelihood(Unpack(v));
    if (!std::isfinite(ll)) return std::numeric_limits<double>::infinity();
    return -ll + 10.0 * OutOfBox(v);
  };
  std::vector<Eigen::VectorXd> starts = {Pack(start)};
  if (init) starts.push_back(Pack(DefaultHyper(d)));
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(0, 1);
  for (int r = 0; r < restarts; ++r) {
    GpHyper h;
    h.log_length = Eigen::VectorXd(d);
    for (Eigen::Index i = 0; i < d; ++i) h.log_length[i] = std::log(0.05) + u(rng) * (std::log(3.0) - std::log(0.05));
    h.log_signal = -1 + 2 * u(rng);
    h.log_noise = std::log(1e-6) + u(rng) * (std::log(0.1) - std::log(1e-6));
    starts.push_back(Pack(h));
  }
  const int max_evals = static_cast<int>(std::clamp<Eigen::Index>(40 * (d + 2), 150, 600));
  double best_f = std::numeric_limits<double>::infinity();
  Eigen::VectorXd best_v = starts.front();
  for (const Eigen::VectorXd& s : starts) {
    double f = 0;
    const Eigen::VectorXd v = NelderMead(neg, s, 0.5, max_evals, &f);
    if (f < best_f) best_f = f, best_v = v;
  }
  hyper_ = Unpack(best_v);
  return Factor();
}

void GaussianProcess::PredictStd(const Eigen::VectorXd& x, double* mean, double* var) const {
  const Eigen::Index n = X_.rows();
  const Eigen::VectorXd inv_len = (-hyper_.log_length.array()).exp().matrix();
  const double signal = std::exp(hyper_.log_signal);
  Eigen::VectorXd k(n);
  for (Eigen::Index i = 0; i < n; ++i) k[i] = KernelScaled(X_.row(i).transpose(), x, inv_len, signal);
  *mean = k.dot(alpha_);
  const Eigen::VectorXd v = L_.triangularView<Eigen::Lower>().solve(k);
  *var = std::max(signal - v.squaredNorm(), 1e-12 * signal);
}

void GaussianProcess::Predict(const Eigen::VectorXd& x, double* mean, double* var) const {
  PredictStd(x, mean, var);
  *mean = *mean * y_std_ + y_mean_;
  *var *= y_std_ * y_std_;
}

double GaussianProcess::best_std() const {
  return ys_.size() == 0 ? 0.0 : ys_.maxCoeff();
}

}  // namespace baton::search
