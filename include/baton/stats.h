// Summary statistics of a Dataset: what `baton stats` prints.
// Thread-safety: pure functions.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "baton/dataset.h"

namespace baton {

struct ExpertStats {
  std::string name;
  size_t observed = 0;    // queries with an outcome
  double mean_score = 0;  // over observed queries; NaN when none
  double mean_cost = 0;   // USD per query over queries with a known cost; NaN when none
};

struct DomainStats {
  std::string domain;
  size_t queries = 0;
  size_t outcomes = 0;
};

struct DatasetStats {
  size_t queries = 0;
  size_t outcomes = 0;
  std::vector<ExpertStats> experts;  // in the dataset's expert order
  std::vector<DomainStats> domains;  // by decreasing query count, then name
};

DatasetStats ComputeStats(const Dataset& ds);
// {"queries": N, "outcomes": N, "experts": [{"name", "observed", "mean_score", "mean_cost_usd"}],
//  "domains": [{"domain", "queries", "outcomes"}]}; unknown means are null.
nlohmann::json StatsToJson(const DatasetStats& s);

}  // namespace baton
