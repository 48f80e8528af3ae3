// Baselines (single experts, random, oracle, cascade) and the pure helpers of the lambda sweep.
#include <algorithm>
#include <cmath>
#include <numeric>

#include "baton/bench.h"

namespace baton {

std::vector<ExpertPoint> EvaluateSingles(const Dataset& test) {
  std::vector<ExpertPoint> out;
  for (size_t e = 0; e < test.num_experts(); ++e) {
    out.push_back({.expert = test.expert(e).name, .accuracy = test.MeanScore(e), .cost_per_query = test.MeanCost(e)});
  }
  return out;
}

namespace {

// The recorded cost of (q, e), or the expert's mean known cost, or 0.
double CellCost(const Dataset& test, const std::vector<double>& mean_cost, size_t q, size_t e) {
  const float c = test.cost(q, e);
  if (!std::isnan(c)) return c;
  return std::isnan(mean_cost[e]) ? 0.0 : mean_cost[e];
}

std::vector<double> MeanCosts(const Dataset& test) {
  std::vector<double> m(test.num_experts());
  for (size_t e = 0; e < m.size(); ++e) m[e] = test.MeanCost(e);
  return m;
}

}  // namespace

ExpertPoint EvaluateOracle(const Dataset& test) {
  const std::vector<double> mc = MeanCosts(test);
  double acc = 0, cost = 0;
  for (size_t q = 0; q < test.num_queries(); ++q) {
    int best = -1;
    for (size_t e = 0; e < test.num_experts(); ++e) {
      if (!test.observed(q, e)) continue;
      if (best < 0 || test.score(q, e) > test.score(q, best) ||
          (test.score(q, e) == test.score(q, best) && CellCost(test, mc, q, e) < CellCost(test, mc, q, best))) {
        best = static_cast<int>(e);
      }
    }
    if (best < 0) continue;
    acc += test.score(q, best);
    cost += CellCost(test, mc, q, best);
  }
  const double n = static_cast<double>(std::max<size_t>(test.num_queries(), 1));
  return {.expert = "oracle", .accuracy = acc / n, .cost_per_query = cost / n};
}

ExpertPoint EvaluateRandom(const Dataset& test) {
  const std::vector<double> mc = MeanCosts(test);
  double acc = 0, cost = 0;
  for (size_t q = 0; q < test.num_queries(); ++q) {
    double a = 0, c = 0;
    size_t k = 0;
    for (size_t e = 0; e < test.num_experts(); ++e) {
      if (!test.observed(q, e)) continue;
      a += test.score(q, e);
      c += CellCost(test, mc, q, e);
      ++k;
    }
    if (k == 0) continue;
    acc += a / static_cast<double>(k);
    cost += c / static_cast<double>(k);
  }
  const double n = static_cast<double>(std::max<size_t>(test.num_queries(), 1));
  return {.expert = "random", .accuracy = acc / n, .cost_per_query = cost / n};
}

std::vector<double> LambdaGrid(std::span<const float> pred_score, std::span<const float> pred_cost, size_t num_experts,
                               size_t n) {
  std::vector<double> ratios;
  const size_t nq = num_experts == 0 ? 0 : pred_score.size() / num_experts;
  const size_t stride = std::max<size_t>(1, nq / 1000);  // a sample of at most ~1000 queries
  for (size_t q = 0; q < nq; q += stride) {
    const float* s = &pred_score[q * num_experts];
    const float* c = &pred_cost[q * num_experts];
    for (size_t i = 0; i < num_experts; ++i) {
      for (size_t j = 0; j < num_experts; ++j) {
        const double dc = static_cast<double>(c[j]) - c[i], ds = static_cast<double>(s[j]) - s[i];
        if (dc > 0 && ds > 0 && std::isfinite(ds / dc)) ratios.push_back(ds / dc);
      }
    }
  }
  std::vector<double> grid = {0.0};
  if (ratios.empty() || n == 0) return grid;
  std::sort(ratios.begin(), ratios.end());
  auto pct = [&](double p) { return ratios[static_cast<size_t>(p * static_cast<double>(ratios.size() - 1))]; };
  double lo = pct(0.01) / 2, hi = pct(0.99) * 2;
  if (!(hi > lo)) hi = lo * 10;
  for (size_t i = 0; i < n; ++i) {
    const double t = n == 1 ? 0.0 : static_cast<double>(i) / static_cast<double>(n - 1);
    grid.push_back(std::exp(std::log(lo) + t * (std::log(hi) - std::log(lo))));
  }
  grid.push_back(ratios.back() * 10);
  return grid;
}

std::vector<double> BreakpointLambdas(std::span<const float> pred_score, std::span<const float> pred_cost,
                                      size_t num_experts, size_t max_points) {
  std::vector<double> breaks;
  const size_t nq = num_experts == 0 ? 0 : std::min(pred_score.size(), pred_cost.size()) / num_experts;
  for (size_t q = 0; q < nq && max_points > 0; ++q) {
    const float* s = &pred_score[q * num_experts];
    const float* c = &pred_cost[q * num_experts];
    // Walk the upper envelope of the lines s_e - lambda * c_e from lambda = 0 (ChooseExpert's tie rule: cheaper).
    int cur = -1;
    for (size_t e = 0; e < num_experts; ++e) {
      if (std::isnan(s[e]) || std::isnan(c[e])) continue;
      if (cur < 0 || s[e] > s[cur] || (s[e] == s[cur] && c[e] < c[cur])) cur = static_cast<int>(e);
    }
    double at = 0;
    while (cur >= 0) {
      int next = -1;
      double best = INFINITY;
      for (size_t e = 0; e < num_experts; ++e) {
        if (std::isnan(s[e]) || std::isnan(c[e]) || !(c[e] < c[cur])) continue;
        const double x = (static_cast<double>(s[cur]) - s[e]) / (static_cast<double>(c[cur]) - c[e]);
        if (!std::isfinite(x) || x < at) continue;
        if (x < best || (x == best && c[e] < c[next])) best = x, next = static_cast<int>(e);
      }
      if (next < 0) break;
      if (best > 0) breaks.push_back(best);
      at = best;
      cur = next;
    }
  }
  std::vector<double> grid;
  if (breaks.empty()) return grid;
  std::sort(breaks.begin(), breaks.end());
  breaks.erase(std::unique(breaks.begin(), breaks.end()), breaks.end());
  // One lambda inside each interval between consecutive break-points (their geometric mean), then past the last.
  std::vector<double> mids;
  mids.reserve(breaks.size());
  for (size_t i = 0; i + 1 < breaks.size(); ++i) mids.push_back(std::sqrt(breaks[i] * breaks[i + 1]));
  mids.push_back(breaks.back() * 2);
  if (mids.size() <= max_points) return mids;
  for (size_t i = 0; i < max_points; ++i) {
    grid.push_back(mids[(i * (mids.size() - 1)) / std::max<size_t>(max_points - 1, 1)]);
  }
  grid.erase(std::unique(grid.begin(), grid.end()), grid.end());
  return grid;
}

std::vector<CurvePoint> CascadeCurve(const Dataset& test, std::span<const float> pred_score,
                                     const std::vector<size_t>& order, const std::vector<double>& thresholds) {
  const std::vector<double> mc = MeanCosts(test);
  const size_t ne = test.num_experts();
  const double n = static_cast<double>(std::max<size_t>(test.num_queries(), 1));
  std::vector<CurvePoint> curve;
  for (double t : thresholds) {
    double acc = 0, cost = 0;
    for (size_t q = 0; q < test.num_queries(); ++q) {
      int last = -1;
      for (size_t e : order) {
        if (!test.observed(q, e)) continue;  // an expert with no recorded answer cannot be called here
        last = static_cast<int>(e);
        cost += CellCost(test, mc, q, e);
        if (pred_score[q * ne + e] >= t) break;
      }
      if (last >= 0) acc += test.score(q, last);
    }
    curve.push_back({.lambda = t, .accuracy = acc / n, .cost_per_query = cost / n});
  }
  return curve;
}

std::vector<int> PriceTiers(const std::vector<double>& mean_cost) {
  const size_t n = mean_cost.size();
  std::vector<size_t> rank(n);
  std::iota(rank.begin(), rank.end(), 0);
  auto key = [&](size_t e) { return std::isnan(mean_cost[e]) ? -1.0 : mean_cost[e]; };
  std::stable_sort(rank.begin(), rank.end(), [&](size_t a, size_t b) { return key(a) < key(b); });
  std::vector<int> tier(n, 0);
  for (size_t r = 0; r < n; ++r) {
    int t = static_cast<int>(std::min<size_t>(2, r * 3 / n));
    if (n == 2) t = r == 0 ? 0 : 2;
    tier[rank[r]] = t;
  }
  return tier;
}

std::vector<double> DomainAccuracy(const Dataset& test, const std::vector<int>& choice) {
  const size_t nd = test.domains().size();
  std::vector<double> sum(nd, 0), cnt(nd, 0);
  for (size_t q = 0; q < test.num_queries() && q < choice.size(); ++q) {
    const size_t d = test.domain_of(q);
    cnt[d] += 1;
    if (choice[q] >= 0 && test.observed(q, choice[q])) sum[d] += test.score(q, choice[q]);
  }
  for (size_t d = 0; d < nd; ++d) sum[d] = cnt[d] > 0 ? sum[d] / cnt[d] : NAN;
  return sum;
}

}  // namespace baton
