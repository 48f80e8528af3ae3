// Curve metrics: the non-decreasing convex hull, AIQ, cost/accuracy look-ups and RouteLLM's PGR family.
#include <algorithm>
#include <cmath>

#include "baton/bench.h"

namespace baton {
namespace {

// > 0 when a -> b -> c turns left (counter-clockwise) in (cost, accuracy) space.
double Cross(const CurvePoint& a, const CurvePoint& b, const CurvePoint& c) {
  return (b.cost_per_query - a.cost_per_query) * (c.accuracy - a.accuracy) -
         (b.accuracy - a.accuracy) * (c.cost_per_query - a.cost_per_query);
}

}  // namespace

std::vector<CurvePoint> NonDecreasingConvexHull(std::span<const CurvePoint> curve) {
  std::vector<CurvePoint> pts;
  pts.reserve(curve.size() + 1);
  pts.push_back({.lambda = NAN, .accuracy = 0, .cost_per_query = 0});
  for (const CurvePoint& p : curve) {
    if (std::isfinite(p.accuracy) && std::isfinite(p.cost_per_query) && p.cost_per_query >= 0) pts.push_back(p);
  }
  std::sort(pts.begin(), pts.end(), [](const CurvePoint& a, const CurvePoint& b) {
    if (a.cost_per_query != b.cost_per_query) return a.cost_per_query < b.cost_per_query;
    return a.accuracy > b.accuracy;
  });
  // Keep the best accuracy per cost, and stop at the first point with the maximum accuracy: the hull is flat after.
  std::vector<CurvePoint> uniq;
  for (const CurvePoint& p : pts) {
    if (!uniq.empty() && uniq.back().cost_per_query == p.cost_per_query) continue;
    uniq.push_back(p);
  }
  size_t best = 0;
  for (size_t i = 1; i < uniq.size(); ++i) {
    if (uniq[i].accuracy > uniq[best].accuracy) best = i;
  }
  uniq.resize(best + 1);
  // Upper hull (Andrew's monotone chain, left to right): keep only clockwise turns.
  std::vector<CurvePoint> hull;
  for (const CurvePoint& p : uniq) {
    while (hull.size() >= 2 && Cross(hull[hull.size() - 2], hull.back(), p) >= 0) hull.pop_back();
    hull.push_back(p);
  }
  return hull;
}

double HullValue(std::span<const CurvePoint> hull, double cost) {
  if (hull.empty()) return 0;
  if (cost <= hull.front().cost_per_query) return hull.front().accuracy;
  for (size_t i = 1; i < hull.size(); ++i) {
    const CurvePoint &a = hull[i - 1], &b = hull[i];
    if (cost <= b.cost_per_query) {
      const double t = (cost - a.cost_per_query) / (b.cost_per_query - a.cost_per_query);
      return a.accuracy + t * (b.accuracy - a.accuracy);
    }
  }
  return hull.back().accuracy;
}

double Aiq(std::span<const CurvePoint> curve, double max_cost) {
  if (curve.empty() || !(max_cost > 0)) return 0;
  const std::vector<CurvePoint> hull = NonDecreasingConvexHull(curve);
  double area = 0;
  for (size_t i = 1; i < hull.size(); ++i) {
    const double x0 = hull[i - 1].cost_per_query, x1 = std::min(hull[i].cost_per_query, max_cost);
    if (x1 <= x0) break;
    area += (x1 - x0) * (HullValue(hull, x0) + HullValue(hull, x1)) / 2;
  }
  const double last = hull.back().cost_per_query;
  if (last < max_cost) area += (max_cost - last) * hull.back().accuracy;
  return area / max_cost;
}

std::optional<double> MinCostReaching(std::span<const CurvePoint> curve, double accuracy) {
  std::optional<double> best;
  for (const CurvePoint& p : curve) {
    if (p.accuracy >= accuracy - 1e-12 && (!best || p.cost_per_query < *best)) best = p.cost_per_query;
  }
  return best;
}

std::optional<double> MaxAccuracyWithin(std::span<const CurvePoint> curve, double budget) {
  std::optional<double> best;
  for (const CurvePoint& p : curve) {
    if (p.cost_per_query <= budget * (1 + 1e-9) + 1e-15 && (!best || p.accuracy > *best)) best = p.accuracy;
  }
  return best;
}

PgrMetrics ComputePgr(std::span<const CurvePoint> curve, double acc_weak, double acc_strong) {
  struct P {
    double share, pgr;
  };
  std::vector<P> pts;
  const double gap = acc_strong - acc_weak;
  for (const CurvePoint& c : curve) {
    if (std::isnan(c.strong_share) || !(gap > 0)) continue;
    pts.push_back({c.strong_share, (c.accuracy - acc_weak) / gap});
  }
  auto has = [&](double s) { return std::any_of(pts.begin(), pts.end(), [&](const P& p) { return p.share == s; }); };
  if (!has(0.0)) pts.push_back({0.0, 0.0});
  if (!has(1.0)) pts.push_back({1.0, 1.0});
  std::sort(pts.begin(), pts.end(), [](const P& a, const P& b) {
    if (a.share != b.share) return a.share < b.share;
    return a.pgr > b.pgr;
  });
  std::vector<P> line;
  for (const P& p : pts) {
    if (line.empty() || line.back().share != p.share) line.push_back(p);
  }
  PgrMetrics m;
  for (size_t i = 1; i < line.size(); ++i) {
    m.apgr += (line[i].share - line[i - 1].share) * (line[i].pgr + line[i - 1].pgr) / 2;
  }
  auto cpt = [&](double target) -> std::optional<double> {
    for (size_t i = 0; i < line.size(); ++i) {
      if (line[i].pgr < target) continue;
      if (i == 0) return line[0].share;
      const P &a = line[i - 1], &b = line[i];
      return a.share + (target - a.pgr) / (b.pgr - a.pgr) * (b.share - a.share);
    }
    return std::nullopt;
  };
  m.cpt50 = cpt(0.5);
  m.cpt80 = cpt(0.8);
  return m;
}

}  // namespace baton
