// Routing policy throughput. Run: build/bench/baton_bench --benchmark_filter='Assign|Online'
#include <benchmark/benchmark.h>

#include <cstdint>
#include <vector>

#include "baton/policy.h"

namespace baton {
namespace {

// Synthetic predictions: per expert a quality and a price per token; per query a length and noise. Cost rises with
// quality on average but not strictly, like real price lists.
struct Matrix {
  size_t nq, ne;
  std::vector<float> score, cost;
};

Matrix Synthetic(size_t nq, size_t ne) {
  uint64_t x = 88172645463325252ull;
  auto next = [&x] {  // xorshift64, uniform in [0, 1)
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    return static_cast<float>(x >> 40) / static_cast<float>(1 << 24);
  };
  Matrix m{nq, ne, std::vector<float>(nq * ne), std::vector<float>(nq * ne)};
  std::vector<float> quality(ne), price(ne);
  for (size_t e = 0; e < ne; ++e) quality[e] = next(), price[e] = 1e-6f * (0.1f + 20 * quality[e] * next() + next());
  for (size_t q = 0; q < nq; ++q) {
    const float len = 100 + 900 * next();
    for (size_t e = 0; e < ne; ++e) {
      m.score[q * ne + e] = quality[e] * (0.7f + 0.3f * next());
      m.cost[q * ne + e] = price[e] * len;
    }
  }
  return m;
}

const Matrix& Big() {
  static const Matrix m = Synthetic(1'000'000, 30);
  return m;
}

// Budget halfway between everyone-cheapest and everyone-best.
double MidBudget(const Matrix& m) {
  const double hi = AssignWithLambda(m.score, m.cost, m.ne, 0).predicted_cost;
  const double lo = AssignWithLambda(m.score, m.cost, m.ne, 1e12).predicted_cost;
  return lo + 0.5 * (hi - lo);
}

void BM_AssignBatch1Mx30(benchmark::State& state) {
  const Matrix& m = Big();
  const double budget = MidBudget(m);
  for (auto _ : state) {
    auto r = AssignBatch(m.score, m.cost, m.ne, budget);
    if (!r.ok()) state.SkipWithError(r.status().ToString().c_str());
    benchmark::DoNotOptimize(r);
    state.counters["spend_over_budget"] = r.ok() ? r->predicted_cost / budget : 0;
    state.counters["lambda"] = r.ok() ? r->lambda : 0;
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(m.nq));
}
BENCHMARK(BM_AssignBatch1Mx30)->Unit(benchmark::kMillisecond)->MinTime(2);

void BM_AssignWithLambda1Mx30(benchmark::State& state) {
  const Matrix& m = Big();
  for (auto _ : state) {
    auto r = AssignWithLambda(m.score, m.cost, m.ne, 100.0);
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(m.nq));
}
BENCHMARK(BM_AssignWithLambda1Mx30)->Unit(benchmark::kMillisecond);

void BM_OnlineRouterChoose30(benchmark::State& state) {
  const Matrix m = Synthetic(10'000, 30);
  OnlineOptions o;
  o.budget_usd = MidBudget(m);
  o.expected_queries = m.nq;
  size_t q = 0;
  auto router = OnlineRouter::Create(o);
  for (auto _ : state) {
    if (q == m.nq) {
      state.PauseTiming();
      router = OnlineRouter::Create(o);
      q = 0;
      state.ResumeTiming();
    }
    const std::span<const float> s(&m.score[q * m.ne], m.ne), c(&m.cost[q * m.ne], m.ne);
    auto e = router->Choose(s, c);
    if (e.ok()) router->Settle(c[*e]);
    ++q;
  }
}
BENCHMARK(BM_OnlineRouterChoose30);

}  // namespace
}  // namespace baton
