// MakePredictor / PredictorNames / PredictAll.
#include <algorithm>
#include <thread>

#include "predict/common.h"

namespace baton {
namespace {

struct Entry {
  const char* name;
  std::unique_ptr<Predictor> (*make)(const PredictorOptions&);
};

constexpr Entry kEntries[] = {
    // The default of `baton fit`, `baton serve` and `baton bench`: a weighted mean of the routers below, weights
    // chosen by greedy selection on out-of-fold AIQ inside train (stack.cc).
    {"stack", predict::NewStackPredictor},
    {"factorized", predict::NewFactorizedPredictor},
    // A log-loss-weighted mix of domain-prior, factorized, knn and routerbench-mlp: ties or slightly beats each on
    // train-only validation, at the price of running all four (the kNN search dominates) on every decision.
    {"ensemble", predict::NewEnsemblePredictor},
    {"domain-prior", predict::NewDomainPriorPredictor},
    {"knn", predict::NewKnnPredictor},
    {"routellm-mf", predict::NewRouteLlmMfPredictor},
    {"routellm-sw", predict::NewRouteLlmSwPredictor},
    {"routerbench-knn", predict::NewRouterBenchKnnPredictor},
    {"routerbench-mlp", predict::NewRouterBenchMlpPredictor},
};

}  // namespace

std::vector<std::string> PredictorNames() {
  std::vector<std::string> names;
  for (const auto& e : kEntries) names.emplace_back(e.name);
  return names;
}

StatusOr<std::unique_ptr<Predictor>> MakePredictor(const std::string& name, const PredictorOptions& options) {
  for (const auto& e : kEntries) {
    if (name == e.name) return e.make(options);
  }
  std::string known;
  for (const auto& e : kEntries) known += (known.empty() ? "" : ", ") + std::string(e.name);
  return Status::InvalidArgument("unknown predictor '" + name + "'; known: " + known);
}

std::vector<float> PredictAll(const Predictor& p, const Dataset& ds) {
  const size_t n = ds.num_queries(), ne = p.num_experts();
  std::vector<float> out(n * ne);
  auto work = [&](size_t begin, size_t end) {
    for (size_t q = begin; q < end; ++q) {
      const QueryRecord& r = ds.query(q);
      p.Predict({.text = r.text, .domain = r.domain, .subdomain = r.source}, std::span<float>(out.data() + q * ne, ne));
    }
  };
  const size_t threads = n < 256 ? 1 : std::clamp<size_t>(std::thread::hardware_concurrency(), 1, 2);
  if (threads == 1) {
    work(0, n);
    return out;
  }
  std::vector<std::thread> pool;
  const size_t chunk = (n + threads - 1) / threads;
  for (size_t t = 0; t < threads; ++t) pool.emplace_back(work, std::min(n, t * chunk), std::min(n, (t + 1) * chunk));
  for (auto& th : pool) th.join();
  return out;
}

}  // namespace baton
