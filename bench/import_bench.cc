// Import and load throughput on the bundled data. Run: build/bench/baton_bench --benchmark_filter=Import
#include <benchmark/benchmark.h>

#include <unistd.h>

#include "baton/dataset.h"
#include "baton/importer.h"

namespace baton {
namespace {

const std::string kDataDir = std::string(BATON_SOURCE_DIR) + "/data/";

// Import of data/mmlu-pro (12,032 queries, 359,247 outcomes) into a fresh on-disk WAL database.
void BM_ImportMmluPro(benchmark::State& state) {
  const std::string db = "/tmp/baton-bench-import-" + std::to_string(::getpid()) + ".db";
  for (auto _ : state) {
    state.PauseTiming();
    for (const char* suffix : {"", "-wal", "-shm"}) std::remove((db + suffix).c_str());
    auto store = Store::Open(db);
    state.ResumeTiming();
    auto s = ImportDir(**store, kDataDir + "mmlu-pro");
    if (!s.ok()) state.SkipWithError(s.status().ToString().c_str());
    state.counters["outcomes"] = static_cast<double>(s.ok() ? s->outcomes : 0);
  }
  for (const char* suffix : {"", "-wal", "-shm"}) std::remove((db + suffix).c_str());
}
BENCHMARK(BM_ImportMmluPro)->Unit(benchmark::kMillisecond)->Iterations(3);

// Store -> in-memory matrix for mmlu-pro.
void BM_LoadMatrixMmluPro(benchmark::State& state) {
  auto store = Store::Open(":memory:");
  (void)ImportDir(**store, kDataDir + "mmlu-pro");
  for (auto _ : state) {
    auto ds = LoadDataset(**store);
    benchmark::DoNotOptimize(ds);
  }
}
BENCHMARK(BM_LoadMatrixMmluPro)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace baton

BENCHMARK_MAIN();
