// The C++ twin of python/bench_route.py: routes N prompts (the dataset's texts and domains, cycled) under a budget
// with the same calls the Python module makes (PromptDataset + RouteDataset, route.h) and prints the best and the
// median wall and CPU time of R repetitions.
//   baton_route_bench MODEL DATASET_DIR [N=10000] [BUDGET_PER_QUERY=0.001] [R=10]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>
#include <vector>

#include "baton/dataset.h"
#include "baton/predictor.h"
#include "route.h"

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s MODEL DATASET_DIR [N=10000] [BUDGET_PER_QUERY=0.001] [R=10]\n", argv[0]);
    return 2;
  }
  const size_t n = argc > 3 ? std::strtoul(argv[3], nullptr, 10) : 10000;
  const double per_query = argc > 4 ? std::strtod(argv[4], nullptr) : 0.001;
  const int reps = argc > 5 ? std::atoi(argv[5]) : 10;
  auto model = baton::LoadModel(argv[1]);
  auto ds = baton::LoadDatasetDir(argv[2]);
  if (!model.ok() || !ds.ok()) {
    std::fprintf(stderr, "%s\n", (!model.ok() ? model.status() : ds.status()).ToString().c_str());
    return 1;
  }
  std::vector<std::string> texts(n), domains(n);
  for (size_t i = 0; i < n; ++i) {
    const baton::QueryRecord& q = ds->query(i % ds->num_queries());
    texts[i] = q.text, domains[i] = q.domain;
  }
  std::vector<double> secs, cpu;  // wall and process CPU time (all threads), per run
  size_t routed = 0;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    const std::clock_t c0 = std::clock();
    // The copies are part of the call, as in Python (the module converts the lists into these vectors).
    auto prompts = baton::py::PromptDataset(*model, texts, domains, {});
    auto out = baton::py::RouteDataset(*model, *prompts, per_query * static_cast<double>(n), {});
    secs.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    cpu.push_back(static_cast<double>(std::clock() - c0) / CLOCKS_PER_SEC);
    if (!out.ok()) {
      std::fprintf(stderr, "%s\n", out.status().ToString().c_str());
      return 1;
    }
    routed = out->assignment.expert.size();
  }
  std::sort(secs.begin(), secs.end());
  std::sort(cpu.begin(), cpu.end());
  std::printf(
      "c++: routed %zu prompts over %zu experts: best %.4f s, median %.4f s wall; cpu best %.4f s, median %.4f s (%d "
      "runs)\n",
      routed, model->predictor->num_experts(), secs.front(), secs[secs.size() / 2], cpu.front(), cpu[cpu.size() / 2],
      reps);
  return 0;
}
