// What the self-play loop pays for: informative questions, the router's choices, epsilon-greedy exploration.
#include <algorithm>
#include <cmath>
#include <numeric>

#include "baton/selfplay_sim.h"

namespace baton {
namespace {

// splitmix64: a tiny, platform-independent generator (std distributions differ between libraries).
uint64_t Next(uint64_t& s) {
  uint64_t z = (s += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}
double Uniform(uint64_t& s) {
  return static_cast<double>(Next(s) >> 11) * 0x1.0p-53;
}

float Clean(float v) {
  return std::isfinite(v) ? v : 0.0f;
}

}  // namespace

double PredictedDisagreement(std::span<const float> p) {
  const size_t n = p.size();
  if (n < 2) return 0;
  double s = 0, q = 0;
  for (float v : p) {
    const double x = std::clamp<double>(Clean(v), 0.0, 1.0);
    s += x, q += x * x;
  }
  // Sum over pairs i < j of P(outcomes differ) = p_i + p_j - 2 p_i p_j, divided by the number of pairs.
  const double pairs = static_cast<double>(n) * static_cast<double>(n - 1) / 2;
  return (static_cast<double>(n - 1) * s - (s * s - q)) / pairs;
}

std::vector<size_t> EnvelopeExperts(std::span<const float> score, std::span<const float> cost) {
  const size_t n = score.size();
  std::vector<size_t> out;
  if (n == 0) return out;
  auto c = [&](size_t e) { return std::isfinite(cost[e]) ? static_cast<double>(cost[e]) : 0.0; };
  auto s = [&](size_t e) { return static_cast<double>(Clean(score[e])); };
  size_t cur = 0;  // lambda = 0: the best score, ties to the cheaper
  for (size_t e = 1; e < n; ++e) {
    if (s(e) > s(cur) || (s(e) == s(cur) && c(e) < c(cur))) cur = e;
  }
  out.push_back(cur);
  // Walk down in cost: the next expert to win as lambda grows is the cheaper one with the smallest break-even ratio.
  while (true) {
    int next = -1;
    double best_ratio = 0;
    for (size_t e = 0; e < n; ++e) {
      if (c(e) >= c(cur)) continue;
      const double ratio = (s(cur) - s(e)) / (c(cur) - c(e));
      if (next < 0 || ratio < best_ratio || (ratio == best_ratio && c(e) < c(static_cast<size_t>(next)))) {
        next = static_cast<int>(e), best_ratio = ratio;
      }
    }
    if (next < 0) break;
    cur = static_cast<size_t>(next);
    out.push_back(cur);
  }
  return out;
}

std::vector<Evaluation> ChooseEvaluations(std::span<const float> pred_score, std::span<const float> pred_cost,
                                          const std::vector<bool>& payable, size_t num_experts, size_t budget,
                                          const ExplorationOptions& options, uint64_t& rng_state) {
  std::vector<Evaluation> out;
  const size_t ne = num_experts;
  if (ne == 0 || budget == 0) return out;
  const size_t nq = payable.size() / ne;
  std::vector<size_t> candidates;
  std::vector<double> info(nq, 0);
  for (size_t q = 0; q < nq; ++q) {
    bool any = false;
    for (size_t e = 0; e < ne && !any; ++e) any = payable[q * ne + e];
    if (!any) continue;
    candidates.push_back(q);
    info[q] = PredictedDisagreement(pred_score.subspan(q * ne, ne));
  }
  if (candidates.empty()) return out;
  std::vector<size_t> ranked = candidates;  // most informative first; ties by index, so the order is deterministic
  std::stable_sort(ranked.begin(), ranked.end(), [&](size_t a, size_t b) { return info[a] > info[b]; });
  std::vector<size_t> shuffled = candidates;  // for the epsilon-greedy random picks
  for (size_t i = shuffled.size(); i > 1; --i) std::swap(shuffled[i - 1], shuffled[Next(rng_state) % i]);
  std::vector<bool> used(nq, false);
  size_t next_ranked = 0, next_random = 0, picked = 0;
  auto take = [&](std::vector<size_t>& list, size_t& pos) -> int {
    while (pos < list.size() && used[list[pos]]) ++pos;
    return pos < list.size() ? static_cast<int>(list[pos++]) : -1;
  };
  while (out.size() < budget && picked < candidates.size()) {
    int q = Uniform(rng_state) < options.epsilon ? take(shuffled, next_random) : take(ranked, next_ranked);
    if (q < 0) q = take(ranked, next_ranked);
    if (q < 0) break;
    used[q] = true, ++picked;
    const size_t row = static_cast<size_t>(q) * ne;
    std::vector<size_t> pay;
    if (ne <= options.small_pool) {
      for (size_t e = 0; e < ne; ++e)
        if (payable[row + e]) pay.push_back(e);
    } else {
      std::vector<bool> routed(ne, false);
      for (size_t e : EnvelopeExperts(pred_score.subspan(row, ne), pred_cost.subspan(row, ne))) {
        routed[e] = true;
        if (payable[row + e]) pay.push_back(e);
      }
      if (pay.empty()) {  // the router's choices are known: the most uncertain unknown expert
        int best = -1;
        double best_u = -1;
        for (size_t e = 0; e < ne; ++e) {
          if (!payable[row + e]) continue;
          const double p = std::clamp<double>(Clean(pred_score[row + e]), 0.0, 1.0), u = p * (1 - p);
          if (u > best_u) best = static_cast<int>(e), best_u = u;
        }
        routed[best] = true;
        pay.push_back(static_cast<size_t>(best));
      }
      for (size_t e = 0; e < ne; ++e) {
        if (!routed[e] && payable[row + e] && Uniform(rng_state) < options.epsilon) pay.push_back(e);
      }
    }
    for (size_t e : pay) {
      if (out.size() >= budget) break;
      out.push_back({.query = static_cast<size_t>(q), .expert = e});
    }
  }
  return out;
}

}  // namespace baton
