// Dataset: the in-memory outcome matrix that predictors, routers, the universe constructor and the benchmark use.
//
// Rows are queries, columns experts. Each cell holds a score in [0, 1] and a cost in USD, or NaN when the pair was
// never observed (score) or its cost is unknown (cost). Storage is one contiguous float array per measure (no
// per-cell heap objects): 12,032 queries x 30 experts is 1.4 MB per measure. When the store holds several outcomes
// for one pair (say an imported one and live ones), the cell holds their mean.
//
// Example:
//   BATON_ASSIGN_OR_RETURN(Dataset ds, LoadDataset(*store, {.datasets = {"mmlu-pro"}}));
//   for (size_t q = 0; q < ds.num_queries(); ++q)
//     for (size_t e = 0; e < ds.num_experts(); ++e)
//       if (ds.observed(q, e)) total += ds.score(q, e);
//
// Thread-safety: immutable after loading; safe to share between threads for reading.
#pragma once

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "baton/status.h"
#include "baton/store.h"

namespace baton {

class Dataset {
 public:
  Dataset() = default;
  Dataset(std::vector<ExpertRecord> experts, std::vector<QueryRecord> queries);

  size_t num_queries() const { return queries_.size(); }
  size_t num_experts() const { return experts_.size(); }
  const std::vector<ExpertRecord>& experts() const { return experts_; }
  const std::vector<QueryRecord>& queries() const { return queries_; }
  const ExpertRecord& expert(size_t e) const { return experts_[e]; }
  const QueryRecord& query(size_t q) const { return queries_[q]; }

  // Domains are numbered in order of first appearance.
  const std::vector<std::string>& domains() const { return domains_; }
  uint32_t domain_of(size_t q) const { return domain_of_[q]; }

  bool observed(size_t q, size_t e) const { return !std::isnan(score_[q * experts_.size() + e]); }
  // NaN when unobserved.
  float score(size_t q, size_t e) const { return score_[q * experts_.size() + e]; }
  // NaN when unknown.
  float cost(size_t q, size_t e) const { return cost_[q * experts_.size() + e]; }
  float tokens_in(size_t q, size_t e) const { return tokens_in_[q * experts_.size() + e]; }
  float tokens_out(size_t q, size_t e) const { return tokens_out_[q * experts_.size() + e]; }
  // Row-major views, num_queries() x num_experts().
  const std::vector<float>& score_matrix() const { return score_; }
  const std::vector<float>& cost_matrix() const { return cost_; }

  // Sets one cell; a NaN score marks it unobserved. REQUIRES: q < num_queries(), e < num_experts().
  void Set(size_t q, size_t e, float score, float cost, float tokens_in = NAN, float tokens_out = NAN);

  // Index of the expert named `name`, or NotFound listing the known names.
  StatusOr<size_t> ExpertIndex(const std::string& name) const;

  // A new dataset holding the given query rows (in that order), all experts.
  Dataset SelectQueries(const std::vector<size_t>& rows) const;
  // A new dataset restricted to the named experts (in that order). NotFound for an unknown name,
  // InvalidArgument for an empty list or a repeated name.
  StatusOr<Dataset> SelectExperts(const std::vector<std::string>& names) const;

  // Mean observed score and mean known cost of expert e over all queries (NaN when none).
  double MeanScore(size_t e) const;
  double MeanCost(size_t e) const;
  size_t ObservedCount(size_t e) const;

 private:
  void IndexDomains();

  std::vector<ExpertRecord> experts_;
  std::vector<QueryRecord> queries_;
  std::vector<std::string> domains_;
  std::vector<uint32_t> domain_of_;
  std::vector<float> score_, cost_, tokens_in_, tokens_out_;
};

struct DatasetFilter {
  std::vector<std::string> datasets;    // dataset names as stored (folder names); empty = all. Default: all
  std::vector<std::string> experts;     // expert names; empty = all. Default: all
  bool drop_unobserved_queries = true;  // drop queries no selected expert was observed on. Default: true
  // Outcome sources to read (imported, live, selfplay); empty = all. Default: all. `baton fit` reads only imported
  // outcomes unless told otherwise: live outcomes recorded by a replay gateway may be copies of test labels.
  std::vector<OutcomeSource> sources;
};

// Loads the outcome matrix from the store.
StatusOr<Dataset> LoadDataset(Store& store, const DatasetFilter& filter = {});

// Imports a dataset folder (models.csv, queries.jsonl, outcomes.csv) into a private in-memory store and loads it.
// The same validation as `baton import` applies.
StatusOr<Dataset> LoadDatasetDir(const std::string& dir, const DatasetFilter& filter = {});

}  // namespace baton
