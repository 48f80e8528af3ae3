// Synthetic datasets for the predictor tests.
#pragma once

#include <cmath>
#include <string>
#include <vector>

#include "baton/dataset.h"
#include "predict/common.h"

namespace baton::predict::testdata {

inline const char* kMathWords[] = {"integral", "derivative", "matrix", "equation", "polynomial", "theorem", "prime"};
inline const char* kHistWords[] = {"empire", "treaty", "dynasty", "revolution", "medieval", "colonial", "pharaoh"};

inline std::string MakeText(bool math, Rng& rng) {
  const auto& words = math ? kMathWords : kHistWords;
  std::string t = "Question:";
  for (int i = 0; i < 6; ++i) t += std::string(" ") + words[rng.Next() % 7] + (rng.Next() % 2 ? " about the" : " of");
  return t;
}

// Expert "alpha" answers math prompts (score 1) and fails history (0); "beta" the reverse. Domains are "math" and
// "history"; with noise a fraction of the scores is flipped.
inline Dataset TwoSkillDataset(size_t n, uint64_t seed, double noise = 0.1) {
  Rng rng(seed);
  std::vector<ExpertRecord> experts = {{.id = 1, .name = "alpha"}, {.id = 2, .name = "beta"}};
  std::vector<QueryRecord> queries;
  std::vector<bool> is_math;
  for (size_t i = 0; i < n; ++i) {
    const bool math = i % 2 == 0;
    is_math.push_back(math);
    queries.push_back({.id = static_cast<int64_t>(i + 1),
                       .external_id = "q" + std::to_string(i),
                       .dataset = "synthetic",
                       .domain = math ? "math" : "history",
                       .text = MakeText(math, rng)});
  }
  Dataset ds(experts, queries);
  for (size_t i = 0; i < n; ++i) {
    for (size_t e = 0; e < 2; ++e) {
      float s = (is_math[i] == (e == 0)) ? 1.0f : 0.0f;
      if (rng.Uniform() < noise) s = 1.0f - s;
      ds.Set(i, e, s, 0.001f * (e + 1), 10, 20);
    }
  }
  return ds;
}

}  // namespace baton::predict::testdata
