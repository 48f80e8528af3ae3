// Universe construction scaling. Run: build/bench/baton_bench --benchmark_filter=Universe
// peak_rss_mb is the process's peak resident set (getrusage), so within one run it only grows: run one case alone
// (e.g. --benchmark_filter='UniverseBinary/1000/100000') to read its own peak.
#include <benchmark/benchmark.h>

#include <sys/resource.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "baton/dataset.h"
#include "baton/universe.h"

namespace baton {
namespace {

double PeakRssMb() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) / 1024.0;  // KB on Linux
}

// Queries have a difficulty, experts a skill and a specialty (a band of queries they are better at), so that
// several experts are worth picking. Binary: pass/fail; otherwise a score in [0, 1].
std::vector<float> Synthetic(size_t nq, size_t ne, bool binary) {
  uint64_t x = 0x9E3779B97F4A7C15ull ^ (nq * 31 + ne);
  auto next = [&x] {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    return static_cast<float>(x >> 40) / static_cast<float>(1 << 24);
  };
  std::vector<float> skill(ne), band(ne), difficulty(nq);
  for (size_t e = 0; e < ne; ++e) skill[e] = 0.05f + 0.45f * next(), band[e] = next();
  for (size_t q = 0; q < nq; ++q) difficulty[q] = next();
  std::vector<float> s(nq * ne);
  for (size_t q = 0; q < nq; ++q) {
    const float pos = static_cast<float>(q) / static_cast<float>(nq);
    for (size_t e = 0; e < ne; ++e) {
      const float d = pos - band[e];
      const float p = std::clamp(skill[e] - difficulty[q] * 0.5f + (d > -0.01f && d < 0.01f ? 0.5f : 0.f), 0.f, 1.f);
      s[q * ne + e] = binary ? (next() < p ? 1.f : 0.f) : p * (0.5f + 0.5f * next());
    }
  }
  return s;
}

void Run(benchmark::State& state, const std::vector<float>& s, size_t nq, size_t ne, size_t k) {
  std::vector<double> cost(ne);
  for (size_t e = 0; e < ne; ++e) cost[e] = 1e-4 * (1 + e % 7);
  UniverseOptions o;
  o.k = k;
  UniverseResult r;
  for (auto _ : state) {
    auto res = BuildUniverse(s, nq, ne, cost, o);
    if (!res.ok()) state.SkipWithError(res.status().ToString().c_str());
    r = std::move(*res);
  }
  state.counters["s"] = r.s;
  state.counters["picks"] = static_cast<double>(r.picks.size());
  state.counters["evaluations"] = static_cast<double>(r.evaluations);
  state.counters["peak_rss_mb"] = PeakRssMb();
}

// Real data: mmlu-pro, 30 experts x 12,032 queries (scores 0/1 -> bitset path; float path forced for comparison).
void BM_UniverseMmluPro(benchmark::State& state) {
  static auto ds = LoadDatasetDir(std::string(BATON_SOURCE_DIR) + "/data/mmlu-pro");
  if (!ds.ok()) {
    state.SkipWithError(ds.status().ToString().c_str());
    return;
  }
  UniverseOptions o;
  o.k = static_cast<size_t>(state.range(0));
  o.allow_bitset = state.range(1) != 0;
  UniverseResult r;
  for (auto _ : state) r = *BuildUniverse(*ds, o);
  state.counters["s"] = r.s;
  state.counters["evaluations"] = static_cast<double>(r.evaluations);
}
BENCHMARK(BM_UniverseMmluPro)
    ->ArgNames({"k", "bitset"})
    ->Args({5, 1})
    ->Args({5, 0})
    ->Args({30, 1})
    ->Args({30, 0})
    ->Unit(benchmark::kMillisecond);

// Synthetic binary scores: experts x queries, k = 50 (1000 x 100000 is the scale target).
void BM_UniverseBinary(benchmark::State& state) {
  const size_t ne = state.range(0), nq = state.range(1);
  const std::vector<float> s = Synthetic(nq, ne, true);
  Run(state, s, nq, ne, std::min<size_t>(50, ne));
}
BENCHMARK(BM_UniverseBinary)
    ->ArgNames({"experts", "queries"})
    ->ArgsProduct({{10, 100, 1000}, {1000, 10000, 100000}})
    ->Unit(benchmark::kMillisecond)
    ->Iterations(1);

// The same grid with fractional scores (the float path).
void BM_UniverseFloat(benchmark::State& state) {
  const size_t ne = state.range(0), nq = state.range(1);
  const std::vector<float> s = Synthetic(nq, ne, false);
  Run(state, s, nq, ne, std::min<size_t>(50, ne));
}
BENCHMARK(BM_UniverseFloat)
    ->ArgNames({"experts", "queries"})
    ->ArgsProduct({{10, 100, 1000}, {1000, 10000, 100000}})
    ->Unit(benchmark::kMillisecond)
    ->Iterations(1);

}  // namespace
}  // namespace baton
