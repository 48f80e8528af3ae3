// LoadDataset: store -> outcome matrix.
#include <algorithm>
#include <unordered_map>

#include <fmt/format.h>

#include "baton/dataset.h"
#include "baton/importer.h"

namespace baton {

StatusOr<Dataset> LoadDataset(Store& store, const DatasetFilter& filter) {
  BATON_ASSIGN_OR_RETURN(std::vector<ExpertRecord> all_experts, store.ListExperts());
  std::vector<ExpertRecord> experts;
  if (filter.experts.empty()) {
    experts = std::move(all_experts);
  } else {
    for (const std::string& name : filter.experts) {
      bool found = false;
      for (const auto& e : all_experts) {
        if (e.name == name) experts.push_back(e), found = true;
      }
      if (!found) {
        std::string known;
        for (const auto& e : all_experts) known += (known.empty() ? "" : ", ") + e.name;
        return Status::NotFound(fmt::format("unknown expert '{}' (known: {})", name, known));
      }
    }
  }
  BATON_ASSIGN_OR_RETURN(std::vector<QueryRecord> queries, store.ListQueries(filter.datasets));
  if (!filter.datasets.empty()) {
    BATON_ASSIGN_OR_RETURN(std::vector<std::string> known, store.ListDatasets());
    for (const std::string& d : filter.datasets) {
      if (std::find(known.begin(), known.end(), d) == known.end()) {
        return Status::NotFound(fmt::format("no dataset named '{}' in the database", d));
      }
    }
  }

  std::unordered_map<int64_t, size_t> row_of, col_of;
  row_of.reserve(queries.size());
  for (size_t i = 0; i < queries.size(); ++i) row_of.emplace(queries[i].id, i);
  for (size_t j = 0; j < experts.size(); ++j) col_of.emplace(experts[j].id, j);

  const size_t n_e = experts.size();
  Dataset full(experts, std::move(queries));
  // Sums per cell, turned into means at the end (several outcomes may exist for one pair).
  const size_t cells = full.num_queries() * n_e;
  std::vector<uint16_t> count(cells, 0);
  std::vector<double> s(cells, 0), c(cells, 0), ti(cells, 0), to(cells, 0);
  std::vector<uint16_t> cost_n(cells, 0), tok_n(cells, 0);
  BATON_RETURN_IF_ERROR(store.ForEachOutcome([&](const OutcomeRecord& o) {
    auto r = row_of.find(o.query_id);
    auto k = col_of.find(o.expert_id);
    if (r == row_of.end() || k == col_of.end()) return;
    if (!filter.sources.empty() &&
        std::find(filter.sources.begin(), filter.sources.end(), o.source) == filter.sources.end()) {
      return;
    }
    const size_t i = r->second * n_e + k->second;
    if (count[i] == UINT16_MAX) return;
    ++count[i];
    s[i] += o.score;
    if (o.cost_usd) c[i] += *o.cost_usd, ++cost_n[i];
    if (o.tokens_in && o.tokens_out)
      ti[i] += static_cast<double>(*o.tokens_in), to[i] += static_cast<double>(*o.tokens_out), ++tok_n[i];
  }));
  std::vector<size_t> keep;
  for (size_t q = 0; q < full.num_queries(); ++q) {
    bool any = false;
    for (size_t e = 0; e < n_e; ++e) {
      const size_t i = q * n_e + e;
      if (!count[i]) continue;
      any = true;
      full.Set(q, e, static_cast<float>(s[i] / count[i]), cost_n[i] ? static_cast<float>(c[i] / cost_n[i]) : NAN,
               tok_n[i] ? static_cast<float>(ti[i] / tok_n[i]) : NAN,
               tok_n[i] ? static_cast<float>(to[i] / tok_n[i]) : NAN);
    }
    if (any || !filter.drop_unobserved_queries) keep.push_back(q);
  }
  if (keep.size() == full.num_queries()) return full;
  return full.SelectQueries(keep);
}

StatusOr<Dataset> LoadDatasetDir(const std::string& dir, const DatasetFilter& filter) {
  BATON_ASSIGN_OR_RETURN(std::unique_ptr<Store> store, Store::Open(":memory:"));
  ImportOptions options;
  options.with_responses = false;
  BATON_ASSIGN_OR_RETURN(ImportSummary summary, ImportDir(*store, dir, options));
  (void)summary;
  return LoadDataset(*store, filter);
}

}  // namespace baton
