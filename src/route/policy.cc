// Batch routing under a budget (Leeroo equation 1): ChooseExpert, AssignWithLambda, AssignBatch.
//
// AssignBatch is the Lagrangian relaxation of a multiple-choice knapsack. For a fixed lambda each query takes
// argmax(score - lambda * cost); as lambda grows a query only ever moves down the upper convex hull of its
// (cost, score) points, so the hull (usually 2-4 of ~30 experts) is all the dual search needs. Per hull edge we
// keep its slope (marginal score per marginal dollar) and its marginal cost; the total cost at lambda is the cost of
// the cheapest points plus the marginal costs of the edges steeper than lambda. Slopes are non-negative floats,
// and the dual search is a selection over them (see SolveDual): exact, and linear in the number of edges. Then:
//   fill 1: with the leftover budget, take further hull edges in order of slope while they fit (a heap);
//   fill 2: one pass over all experts for upgrades off the hull that still fit (best gain per dollar first);
//   repair: recompute the spend exactly and, should rounding put it over B, move queries back to their cheapest
//           expert, lowest score loss per dollar first. The result never exceeds B.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <queue>

#include <fmt/format.h>

#include "baton/policy.h"

namespace baton {
namespace {

inline bool Valid(float s, float c) {
  return !std::isnan(s) && !std::isnan(c);
}

// The upper convex hull of every query's (cost, score) points, flattened. Point j of query q is at
// off[q] + j; slope[i] / dc[i] describe the edge from point i to point i + 1 (slope -1, dc 0 on a query's last point).
struct Hulls {
  std::vector<uint32_t> off;  // nq + 1
  std::vector<int32_t> expert;
  std::vector<float> cost, score, slope, dc;
};

Hulls BuildHulls(const float* score, const float* cost, size_t nq, size_t ne) {
  Hulls h;
  h.off.resize(nq + 1);
  const size_t reserve = nq * 4;
  h.expert.reserve(reserve), h.cost.reserve(reserve), h.score.reserve(reserve);
  h.slope.reserve(reserve), h.dc.reserve(reserve);
  for (size_t q = 0; q < nq; ++q) {
    h.off[q] = static_cast<uint32_t>(h.expert.size());
    const float* s = score + q * ne;
    const float* c = cost + q * ne;
    int cur = -1;  // cheapest, ties to the better score
    for (size_t e = 0; e < ne; ++e) {
      if (!Valid(s[e], c[e])) continue;
      if (cur < 0 || c[e] < c[cur] || (c[e] == c[cur] && s[e] > s[cur])) cur = static_cast<int>(e);
    }
    while (cur >= 0) {
      h.expert.push_back(cur), h.cost.push_back(c[cur]), h.score.push_back(s[cur]);
      const double cc = c[cur], cs = s[cur];
      int next = -1;
      double bds = 0, bdc = 1;  // the best edge so far as a (d score, d cost) pair: compare slopes without dividing
      for (size_t e = 0; e < ne; ++e) {  // the steepest point up and to the right; collinear ties to the farthest
        if (!(c[e] > c[cur] && s[e] > s[cur])) continue;  // also rejects NaN
        const double ds = s[e] - cs, dc = c[e] - cc;
        const double lhs = ds * bdc, rhs = bds * dc;  // slope(e) vs best slope
        if (next < 0 || lhs > rhs || (lhs == rhs && c[e] > c[next])) next = static_cast<int>(e), bds = ds, bdc = dc;
      }
      if (next >= 0) {
        h.slope.push_back(static_cast<float>(bds / bdc));
        h.dc.push_back(c[next] - c[cur]);
      } else {
        h.slope.push_back(-1.f);
        h.dc.push_back(0.f);
      }
      cur = next;
    }
  }
  h.off[nq] = static_cast<uint32_t>(h.expert.size());
  return h;
}

// The smallest lambda (0 or an edge slope) at which the edges steeper than lambda cost at most `room` in total.
// Quickselect-style: each round takes a pivot slope from the candidates still open, sums the candidates above it,
// and keeps only the half on the answer's side, so the whole search touches about 2-4x the edges once (instead of
// one pass over all edges per bisection step). REQUIRES: the edges steeper than 0 cost more than `room`.
float SolveDual(const Hulls& h, double room) {
  struct Edge {
    float slope, dc;
  };
  std::vector<Edge> open;
  open.reserve(h.slope.size());
  for (size_t i = 0; i < h.slope.size(); ++i) {
    if (h.slope[i] > 0) open.push_back({h.slope[i], h.dc[i]});
  }
  double counted = 0;   // cost of edges known to be steeper than the answer
  float hi = INFINITY;  // feasible: the answer is <= hi
  uint64_t rng = 0x9E3779B97F4A7C15ull;
  auto begin = open.begin(), end = open.end();
  while (begin != end) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    const float p = (begin + static_cast<ptrdiff_t>(rng % static_cast<uint64_t>(end - begin)))->slope;
    auto mid = std::partition(begin, end, [p](const Edge& e) { return e.slope >= p; });  // [begin, mid): >= p
    double at_p = 0, above = 0;
    for (auto it = begin; it != mid; ++it) (it->slope > p ? above : at_p) += it->dc;
    if (counted + above <= room) {  // p is feasible; below p the edges at p and above count too
      hi = p;
      counted += above + at_p;
      begin = mid;
    } else {  // the answer is above p: edges at or below p never count again
      end = std::partition(begin, mid, [p](const Edge& e) { return e.slope > p; });
    }
  }
  if (std::isinf(hi)) {
    for (float s : h.slope) hi = std::isinf(hi) ? s : std::max(hi, s);
  }
  return hi;
}

Status CheckShape(std::span<const float> score, std::span<const float> cost, size_t num_experts) {
  if (num_experts == 0) return Status::InvalidArgument("no experts");
  if (score.size() != cost.size()) {
    return Status::InvalidArgument(fmt::format("{} scores but {} costs", score.size(), cost.size()));
  }
  if (score.size() % num_experts != 0) {
    return Status::InvalidArgument(
        fmt::format("{} cells is not a whole number of rows of {} experts", score.size(), num_experts));
  }
  return Status::Ok();
}

}  // namespace

int ChooseExpert(std::span<const float> score, std::span<const float> cost, double lambda,
                 std::span<const bool> allowed) {
  const size_t n = std::min(score.size(), cost.size());
  int best = -1;
  double best_v = 0, best_c = 0;
  for (size_t e = 0; e < n; ++e) {
    if (!allowed.empty() && (e >= allowed.size() || !allowed[e])) continue;
    if (!Valid(score[e], cost[e])) continue;
    const double v = score[e] - lambda * cost[e];
    if (best < 0 || v > best_v || (v == best_v && cost[e] < best_c)) {
      best = static_cast<int>(e), best_v = v, best_c = cost[e];
    }
  }
  return best;
}

BatchAssignment AssignWithLambda(std::span<const float> score, std::span<const float> cost, size_t num_experts,
                                 double lambda) {
  BatchAssignment r;
  r.lambda = lambda;
  if (num_experts == 0) return r;
  const size_t nq = std::min(score.size(), cost.size()) / num_experts;
  r.expert.resize(nq);
  for (size_t q = 0; q < nq; ++q) {
    const int e =
        ChooseExpert(score.subspan(q * num_experts, num_experts), cost.subspan(q * num_experts, num_experts), lambda);
    r.expert[q] = e;
    if (e >= 0) r.predicted_score += score[q * num_experts + e], r.predicted_cost += cost[q * num_experts + e];
  }
  return r;
}

StatusOr<BatchAssignment> AssignBatch(std::span<const float> score, std::span<const float> cost, size_t num_experts,
                                      double budget_usd) {
  BATON_RETURN_IF_ERROR(CheckShape(score, cost, num_experts));
  if (!(budget_usd >= 0) || std::isinf(budget_usd)) {
    return Status::InvalidArgument(fmt::format("budget {} must be a finite non-negative amount", budget_usd));
  }
  const size_t ne = num_experts, nq = score.size() / ne;
  const Hulls h = BuildHulls(score.data(), cost.data(), nq, ne);

  double cheapest = 0;
  for (size_t q = 0; q < nq; ++q) {
    if (h.off[q] < h.off[q + 1]) cheapest += h.cost[h.off[q]];
  }
  if (cheapest > budget_usd) {
    return Status::ResourceExhausted(fmt::format(
        "budget ${:.6g} is below the ${:.6g} the cheapest expert for every query would cost", budget_usd, cheapest));
  }

  // Dual: the smallest lambda (as a float bit pattern) whose edge cost fits what the cheapest points leave.
  const double room = budget_usd - cheapest;
  float lambda = 0.f;
  {
    double all = 0;
    for (float dc : h.dc) all += dc;  // terminal points carry dc = 0
    if (all > room) lambda = SolveDual(h, room);
  }

  // Primal: each query at the hull point where the edges stop being steeper than lambda.
  std::vector<uint32_t> pos(nq);  // absolute index into the hull arrays; unused for queries with no valid expert
  double spent = 0;
  for (size_t q = 0; q < nq; ++q) {
    uint32_t i = h.off[q];
    if (i == h.off[q + 1]) continue;
    while (h.slope[i] > lambda) ++i;
    pos[q] = i;
    spent += h.cost[i];
  }

  // Fill 1: further hull edges, steepest first, while they fit.
  {
    using Cand = std::pair<float, uint32_t>;  // slope, query
    std::vector<Cand> cands;
    for (size_t q = 0; q < nq; ++q) {
      if (h.off[q] == h.off[q + 1]) continue;
      const uint32_t i = pos[q];
      if (h.slope[i] >= 0 && spent + h.dc[i] <= budget_usd) cands.emplace_back(h.slope[i], q);
    }
    std::priority_queue<Cand> heap(std::less<Cand>(), std::move(cands));
    while (!heap.empty()) {
      const uint32_t q = heap.top().second;
      heap.pop();
      const uint32_t i = pos[q];
      const double next = spent - h.cost[i] + h.cost[i + 1];
      if (next > budget_usd) continue;  // later edges of q cost even more
      spent = next;
      pos[q] = i + 1;
      if (h.slope[i + 1] >= 0 && spent + h.dc[i + 1] <= budget_usd) heap.emplace(h.slope[i + 1], q);
    }
  }

  BatchAssignment r;
  r.lambda = lambda;
  r.expert.assign(nq, -1);
  for (size_t q = 0; q < nq; ++q) {
    if (h.off[q] < h.off[q + 1]) r.expert[q] = h.expert[pos[q]];
  }

  // Fill 2: any expert (on the hull or not) that raises a query's score and still fits, best gain per dollar first.
  {
    struct Up {
      double ratio;
      uint32_t q;
      int32_t e;
    };
    std::vector<Up> ups;
    const double left = budget_usd - spent;
    for (size_t q = 0; q < nq; ++q) {
      const int cur = r.expert[q];
      if (cur < 0) continue;
      const float* s = score.data() + q * ne;
      const float* c = cost.data() + q * ne;
      const double cs = s[cur], cc = c[cur];
      const float cap = static_cast<float>(cc + left) * (1 + 1e-6f);  // loose float pre-filter; exact check below
      double best = -1;
      int arg = -1;
      for (size_t e = 0; e < ne; ++e) {
        if (!(s[e] > s[cur] && c[e] <= cap)) continue;
        if (!(c[e] - cc <= left)) continue;
        const double ratio = (s[e] - cs) / std::max(c[e] - cc, 1e-30);
        if (ratio > best) best = ratio, arg = static_cast<int>(e);
      }
      if (arg >= 0) ups.push_back({best, static_cast<uint32_t>(q), arg});
    }
    std::sort(ups.begin(), ups.end(), [](const Up& a, const Up& b) { return a.ratio > b.ratio; });
    for (const Up& u : ups) {
      const size_t base = static_cast<size_t>(u.q) * ne;
      const double next = spent - cost[base + r.expert[u.q]] + cost[base + u.e];
      if (next <= budget_usd) spent = next, r.expert[u.q] = u.e;
    }
  }

  // Exact totals, and the repair pass should rounding have put the spend over the budget.
  auto totals = [&] {
    r.predicted_score = r.predicted_cost = 0;
    for (size_t q = 0; q < nq; ++q) {
      if (r.expert[q] < 0) continue;
      r.predicted_score += score[q * ne + r.expert[q]];
      r.predicted_cost += cost[q * ne + r.expert[q]];
    }
  };
  totals();
  if (r.predicted_cost > budget_usd) {
    std::vector<std::pair<double, uint32_t>> down;  // score lost per dollar saved, query
    for (size_t q = 0; q < nq; ++q) {
      if (r.expert[q] < 0 || r.expert[q] == h.expert[h.off[q]]) continue;
      const double ds = score[q * ne + r.expert[q]] - h.score[h.off[q]];
      const double dc = cost[q * ne + r.expert[q]] - h.cost[h.off[q]];
      down.emplace_back(ds / std::max(dc, 1e-30), q);
    }
    std::sort(down.begin(), down.end());
    double over = r.predicted_cost - budget_usd;
    for (const auto& [ratio, q] : down) {
      if (over <= 0) break;
      over -= cost[q * ne + r.expert[q]] - h.cost[h.off[q]];
      r.expert[q] = h.expert[h.off[q]];
    }
    totals();
    if (r.predicted_cost > budget_usd) {  // only the cheapest points are left: they fit by the check above
      for (size_t q = 0; q < nq; ++q) {
        if (r.expert[q] >= 0) r.expert[q] = h.expert[h.off[q]];
      }
      totals();
    }
  }
  return r;
}

}  // namespace baton
