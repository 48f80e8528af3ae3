// Seeded query splits and aligning the expert pools of two splits.
#include <algorithm>
#include <cmath>
#include <random>
#include <unordered_set>

#include <fmt/format.h>

#include "baton/bench.h"

namespace baton {

StatusOr<QuerySplit> RandomSplit(size_t num_queries, double test_fraction, uint64_t seed) {
  if (num_queries < 2) return Status::InvalidArgument(fmt::format("cannot split {} queries", num_queries));
  if (!(test_fraction > 0 && test_fraction < 1)) {
    return Status::InvalidArgument(fmt::format("--test-fraction {} is outside (0, 1)", test_fraction));
  }
  std::vector<size_t> perm(num_queries);
  for (size_t i = 0; i < num_queries; ++i) perm[i] = i;
  // Fisher-Yates with our own index draw: std::shuffle and the std distributions differ between libraries.
  std::mt19937_64 rng(seed);
  for (size_t i = num_queries - 1; i > 0; --i) {
    const size_t j = static_cast<size_t>(rng() % (i + 1));
    std::swap(perm[i], perm[j]);
  }
  size_t n_test = static_cast<size_t>(std::llround(static_cast<double>(num_queries) * test_fraction));
  n_test = std::clamp<size_t>(n_test, 1, num_queries - 1);
  QuerySplit s;
  s.test.assign(perm.begin(), perm.begin() + static_cast<std::ptrdiff_t>(n_test));
  s.train.assign(perm.begin() + static_cast<std::ptrdiff_t>(n_test), perm.end());
  std::sort(s.train.begin(), s.train.end());
  std::sort(s.test.begin(), s.test.end());
  return s;
}

namespace {

Dataset DropUnobserved(const Dataset& ds) {
  std::vector<size_t> keep;
  for (size_t q = 0; q < ds.num_queries(); ++q) {
    for (size_t e = 0; e < ds.num_experts(); ++e) {
      if (ds.observed(q, e)) {
        keep.push_back(q);
        break;
      }
    }
  }
  return keep.size() == ds.num_queries() ? ds : ds.SelectQueries(keep);
}

}  // namespace

Status AlignExperts(Dataset& train, Dataset& test, const std::vector<std::string>& experts) {
  std::vector<std::string> names = experts;
  if (names.empty()) {
    std::unordered_set<std::string> in_test;
    for (const ExpertRecord& e : test.experts()) in_test.insert(e.name);
    for (const ExpertRecord& e : train.experts()) {
      if (in_test.count(e.name)) names.push_back(e.name);
    }
    if (names.empty()) return Status::InvalidArgument("the train and test splits have no expert in common");
  }
  BATON_ASSIGN_OR_RETURN(Dataset tr, train.SelectExperts(names));
  BATON_ASSIGN_OR_RETURN(Dataset te, test.SelectExperts(names));
  train = DropUnobserved(tr);
  test = DropUnobserved(te);
  if (train.num_queries() == 0) return Status::InvalidArgument("no train query was observed on the chosen experts");
  if (test.num_queries() == 0) return Status::InvalidArgument("no test query was observed on the chosen experts");
  return Status::Ok();
}

}  // namespace baton
