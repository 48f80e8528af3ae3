// The acceptance check after a cheap answer (baton/escalation.h): extract and normalise the two cheap answers,
// compare them, evaluate the logistic acceptance model. Timed per check over real recorded answer pairs (GSM8K's
// free-text answers of two experts, the longest the bundled data holds, and RouterBench's letter answers). Reports
// median and p99 latency as counters (microseconds); compare with BM_RoutingDecision (predict_bench.cc).
// Run: build/bench/baton_bench --benchmark_filter='AcceptanceCheck'
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "baton/escalation.h"

namespace {

// Pairs of answers to one query by two different models, from a responses.jsonl.
std::vector<std::pair<std::string, std::string>> Pairs(const std::string& path) {
  std::vector<std::pair<std::string, std::string>> out;
  baton::StatusOr<baton::RecordedResponses> r = baton::ReadResponses(path);
  if (!r.ok()) return out;
  std::map<std::string, std::vector<const std::string*>> by_query;
  for (const auto& [key, text] : *r) by_query[key.substr(0, key.find('\x1f'))].push_back(&text);
  for (const auto& [q, texts] : by_query)
    if (texts.size() >= 2) out.emplace_back(*texts[0], *texts[1]);
  return out;
}

void AcceptanceCheck(benchmark::State& state, const std::string& dataset, baton::AnswerForm form) {
  const auto pairs = Pairs(std::string(BATON_SOURCE_DIR) + "/data/" + dataset + "/responses.jsonl");
  if (pairs.empty()) {
    state.SkipWithError("no answer pairs (responses.jsonl missing?)");
    return;
  }
  const baton::AcceptanceModel model({-2.0, 1.5, 0.5, 0.8, 0.2, 2.5, 0.3});
  const baton::EscalationPolicy policy({"a", "b"}, model, 0.6);
  std::vector<double> us;
  size_t i = 0, accepted = 0;
  for (auto _ : state) {
    const auto& [a, b] = pairs[i++ % pairs.size()];
    const auto t0 = std::chrono::steady_clock::now();
    const baton::CheapAnswer answers[] = {{a, 0.7f}, {b, 0.5f}};
    const bool accept = policy.ShouldAccept(answers, form);
    benchmark::DoNotOptimize(accept);
    us.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
    accepted += accept;
  }
  std::sort(us.begin(), us.end());
  if (!us.empty()) {
    state.counters["median_us"] = us[us.size() / 2];
    state.counters["p99_us"] = us[std::min(us.size() - 1, us.size() * 99 / 100)];
    state.counters["accept_share"] = static_cast<double>(accepted) / static_cast<double>(us.size());
  }
  state.SetLabel(dataset + ", " + std::to_string(pairs.size()) + " answer pairs");
}

void BM_AcceptanceCheckGsm8k(benchmark::State& state) {
  AcceptanceCheck(state, "routellm-mmlu-gsm8k", baton::AnswerForm::kNumber);
}
BENCHMARK(BM_AcceptanceCheckGsm8k)->Iterations(10000)->Unit(benchmark::kMicrosecond);
void BM_AcceptanceCheckLetters(benchmark::State& state) {
  AcceptanceCheck(state, "routerbench-test", baton::AnswerForm::kChoice);
}
BENCHMARK(BM_AcceptanceCheckLetters)->Iterations(10000)->Unit(benchmark::kMicrosecond);

}  // namespace
