// One routing decision = featurise the prompt + predict every expert with the default predictor (the stack) + argmax.
// Trained on half of mmlu-pro; decisions are timed over prompts of the other half. Reports median and p99 latency
// as counters (microseconds).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <numeric>
#include <string>

#include "baton/dataset.h"
#include "baton/predictor.h"
#include "predict/common.h"
#include "predict/featurizer.h"

namespace {

// `name` empty = the default predictor (PredictorNames().front(), the stack).
void RoutingDecision(benchmark::State& state, const std::string& name) {
  static baton::StatusOr<baton::Dataset> ds = baton::LoadDatasetDir(std::string(BATON_SOURCE_DIR) + "/data/mmlu-pro");
  if (!ds.ok()) {
    state.SkipWithError(ds.status().ToString().c_str());
    return;
  }
  std::vector<size_t> train_rows, test_rows;
  for (size_t q = 0; q < ds->num_queries(); ++q) (q % 2 ? test_rows : train_rows).push_back(q);
  static std::map<std::string, std::unique_ptr<baton::Predictor>> trained;
  std::unique_ptr<baton::Predictor>& p = trained[name];
  if (!p) {
    auto made = baton::MakePredictor(name.empty() ? baton::PredictorNames().front() : name);
    p = std::move(*made);
    const baton::Status st = p->Fit(ds->SelectQueries(train_rows));
    if (!st.ok()) {
      state.SkipWithError(st.ToString().c_str());
      return;
    }
  }
  std::vector<float> scores(p->num_experts());
  std::vector<double> us;
  size_t i = 0, picks = 0;
  for (auto _ : state) {
    const auto& q = ds->query(test_rows[i++ % test_rows.size()]);
    const auto t0 = std::chrono::steady_clock::now();
    p->Predict({.text = q.text, .domain = q.domain}, scores);
    const size_t best = static_cast<size_t>(std::max_element(scores.begin(), scores.end()) - scores.begin());
    benchmark::DoNotOptimize(best);
    us.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
    picks += best;
  }
  std::sort(us.begin(), us.end());
  if (!us.empty()) {
    state.counters["median_us"] = us[us.size() / 2];
    state.counters["p99_us"] = us[std::min(us.size() - 1, us.size() * 99 / 100)];
    state.counters["experts"] = static_cast<double>(p->num_experts());
  }
  state.SetLabel(p->name() + ": " + p->Describe());
}
void BM_RoutingDecision(benchmark::State& state) {
  RoutingDecision(state, "");
}
BENCHMARK(BM_RoutingDecision)->Iterations(10000)->Unit(benchmark::kMicrosecond);
// Every router by name, for comparison (the stack's candidates among them): BM_RoutingDecision/<name>.
[[maybe_unused]] const bool kRegistered = [] {
  for (const std::string& name : baton::PredictorNames()) {
    benchmark::RegisterBenchmark(("BM_RoutingDecision/" + name).c_str(),
                                 [name](benchmark::State& st) { RoutingDecision(st, name); })
        ->Iterations(2000)
        ->Unit(benchmark::kMicrosecond);
  }
  return true;
}();

}  // namespace

namespace {

// Featurisation alone (the TF-IDF sketch), on mmlu-pro prompts.
void BM_FeaturizePrompt(benchmark::State& state) {
  static baton::StatusOr<baton::Dataset> ds = baton::LoadDatasetDir(std::string(BATON_SOURCE_DIR) + "/data/mmlu-pro");
  if (!ds.ok()) {
    state.SkipWithError(ds.status().ToString().c_str());
    return;
  }
  static baton::predict::Featurizer f = [] {
    baton::predict::Featurizer g;
    std::vector<std::string_view> texts;
    for (size_t q = 0; q < ds->num_queries(); q += 2) texts.push_back(ds->query(q).text);
    g.Fit(texts);
    return g;
  }();
  std::vector<float> z(baton::predict::kEmbedDim);
  size_t i = 0;
  for (auto _ : state) {
    f.Embed(ds->query((2 * i++ + 1) % ds->num_queries()).text, z);
    benchmark::DoNotOptimize(z.data());
  }
}
BENCHMARK(BM_FeaturizePrompt)->Unit(benchmark::kMicrosecond);

}  // namespace
