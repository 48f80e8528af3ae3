// Bootstrap confidence intervals over test queries for a router's curve figures (see bench.h).
#include <algorithm>
#include <cmath>
#include <limits>
#include <random>

#include "baton/bench.h"

namespace baton {
namespace {

// The realised cost of (q, e) exactly as RealiseLambda counts it: recorded, else the expert's mean known cost, else 0.
double RealisedCost(const Dataset& test, const std::vector<double>& mean_cost, size_t q, int e) {
  if (e < 0) return 0;
  const float c = test.cost(q, e);
  if (!std::isnan(c)) return c;
  return std::isnan(mean_cost[e]) ? 0.0 : mean_cost[e];
}

double RealisedScore(const Dataset& test, size_t q, int e) {
  return e < 0 ? 0.0 : static_cast<double>(test.score(q, e));
}

// The p-th percentile (0..1) of `v`, linear interpolation between order statistics; none for an empty `v`.
std::optional<ConfidenceInterval> Percentiles(std::vector<double> v) {
  if (v.empty()) return std::nullopt;
  std::sort(v.begin(), v.end());
  auto at = [&](double p) {
    const double pos = p * static_cast<double>(v.size() - 1);
    const size_t i = static_cast<size_t>(pos);
    const double t = pos - static_cast<double>(i);
    return i + 1 < v.size() ? v[i] + t * (v[i + 1] - v[i]) : v[i];
  };
  return ConfidenceInterval{.lo = at(0.025), .hi = at(0.975)};
}

}  // namespace

CurveBootstrap::CurveBootstrap(const Dataset& test, size_t resamples, uint64_t seed)
    : test_(&test), resamples_(resamples) {
  const size_t nq = test.num_queries(), ne = test.num_experts(), nb = resamples;
  count_.assign(nq * nb, 0);
  // Own draws over mt19937_64 (not std::uniform_int_distribution) so the resamples are identical on every platform;
  // the modulo bias is below 1e-14 for any realistic query count.
  std::mt19937_64 rng(seed ^ 0xb0075742a9e1c0deULL);
  for (size_t b = 0; b < nb; ++b) {
    for (size_t i = 0; i < nq; ++i) {
      uint16_t& c = count_[(rng() % nq) * nb + b];
      if (c < std::numeric_limits<uint16_t>::max()) ++c;  // a query drawn 65535 times in one resample: never
    }
  }
  mean_cost_.resize(ne);
  for (size_t e = 0; e < ne; ++e) mean_cost_[e] = test.MeanCost(e);
  // Single experts on each resample (EvaluateSingles with counts as weights), then BestSingle's rule: the highest
  // accuracy, ties to the lower cost.
  bs_acc_.assign(nb, NAN);
  bs_cost_.assign(nb, NAN);
  std::vector<double> s(nb), ns(nb), c(nb), nc(nb);
  for (size_t e = 0; e < ne; ++e) {
    std::fill(s.begin(), s.end(), 0.0);
    std::fill(ns.begin(), ns.end(), 0.0);
    std::fill(c.begin(), c.end(), 0.0);
    std::fill(nc.begin(), nc.end(), 0.0);
    for (size_t q = 0; q < nq; ++q) {
      const float sc = test.score(q, e), co = test.cost(q, e);
      const uint16_t* w = &count_[q * nb];
      if (!std::isnan(sc)) {
        for (size_t b = 0; b < nb; ++b) s[b] += w[b] * sc, ns[b] += w[b];
      }
      if (!std::isnan(co)) {
        for (size_t b = 0; b < nb; ++b) c[b] += w[b] * co, nc[b] += w[b];
      }
    }
    for (size_t b = 0; b < nb; ++b) {
      const double acc = ns[b] > 0 ? s[b] / ns[b] : NAN, cost = nc[b] > 0 ? c[b] / nc[b] : NAN;
      if (std::isnan(acc)) continue;
      if (std::isnan(bs_acc_[b]) || acc > bs_acc_[b] || (acc == bs_acc_[b] && cost < bs_cost_[b])) {
        bs_acc_[b] = acc;
        bs_cost_[b] = cost;
      }
    }
  }
}

CurveBootstrap::Curve CurveBootstrap::NewCurve() const {
  Curve c;
  c.last_choice.assign(test_->num_queries(), -1);
  c.acc.assign(resamples_, 0.0);
  c.cost.assign(resamples_, 0.0);
  return c;
}

void CurveBootstrap::AddPoint(Curve& curve, std::span<const int> choice) const {
  const size_t nq = test_->num_queries(), nb = resamples_;
  for (size_t q = 0; q < nq && q < choice.size(); ++q) {
    const int was = curve.last_choice[q], now = choice[q];
    if (was == now) continue;
    const double ds = RealisedScore(*test_, q, now) - RealisedScore(*test_, q, was);
    const double dc = RealisedCost(*test_, mean_cost_, q, now) - RealisedCost(*test_, mean_cost_, q, was);
    const uint16_t* w = &count_[q * nb];
    for (size_t b = 0; b < nb; ++b) {
      curve.acc[b] += w[b] * ds;
      curve.cost[b] += w[b] * dc;
    }
    curve.last_choice[q] = now;
  }
  // Every resample holds nq draws, so a mean is the weighted sum over nq (as RealiseLambda divides by nq).
  const double n = static_cast<double>(std::max<size_t>(nq, 1));
  for (size_t b = 0; b < nb; ++b) {
    curve.point_acc.push_back(static_cast<float>(curve.acc[b] / n));
    curve.point_cost.push_back(static_cast<float>(curve.cost[b] / n));
  }
  ++curve.points;
}

void CurveBootstrap::AddPointValues(Curve& curve, std::span<const float> score, std::span<const float> cost) const {
  const size_t nq = test_->num_queries(), nb = resamples_;
  if (curve.last_score.size() != nq) curve.last_score.assign(nq, 0.0f), curve.last_cost.assign(nq, 0.0f);
  for (size_t q = 0; q < nq && q < score.size() && q < cost.size(); ++q) {
    const double ds = static_cast<double>(score[q]) - curve.last_score[q];
    const double dc = static_cast<double>(cost[q]) - curve.last_cost[q];
    if (ds == 0 && dc == 0) continue;
    const uint16_t* w = &count_[q * nb];
    for (size_t b = 0; b < nb; ++b) {
      curve.acc[b] += w[b] * ds;
      curve.cost[b] += w[b] * dc;
    }
    curve.last_score[q] = score[q];
    curve.last_cost[q] = cost[q];
  }
  const double n = static_cast<double>(std::max<size_t>(nq, 1));
  for (size_t b = 0; b < nb; ++b) {
    curve.point_acc.push_back(static_cast<float>(curve.acc[b] / n));
    curve.point_cost.push_back(static_cast<float>(curve.cost[b] / n));
  }
  ++curve.points;
}

CurveIntervals CurveBootstrap::Intervals(const Curve& curve, double max_cost) const {
  std::vector<double> aiq, c95, acc_at;
  std::vector<CurvePoint> pts(curve.points);
  for (size_t b = 0; b < resamples_; ++b) {
    for (size_t k = 0; k < curve.points; ++k) {
      pts[k].accuracy = curve.point_acc[k * resamples_ + b];
      pts[k].cost_per_query = curve.point_cost[k * resamples_ + b];
    }
    aiq.push_back(Aiq(pts, max_cost));
    const double bs_acc = bs_acc_[b], bs_cost = bs_cost_[b];
    if (std::isnan(bs_acc)) continue;
    // float storage of the resampled means: compare with a tolerance far above its rounding, far below any gap.
    if (std::optional<double> c = MinCostReaching(pts, 0.95 * bs_acc - 1e-6); c && bs_cost > 0) {
      c95.push_back(*c / bs_cost);
    }
    if (std::optional<double> a = MaxAccuracyWithin(pts, bs_cost * (1 + 1e-6))) acc_at.push_back(*a);
  }
  CurveIntervals out;
  if (curve.points > 0) out.aiq = Percentiles(std::move(aiq));
  out.cost_at_95 = Percentiles(std::move(c95));
  out.acc_at_best_single_cost = Percentiles(std::move(acc_at));
  return out;
}

}  // namespace baton
