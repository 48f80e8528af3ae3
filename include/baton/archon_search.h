// The Archon search space (ITAS) and the recorded-answer objective that `baton archon search` optimises.
//
// A space file (examples/archon/*.json) lists dimensions (see baton/search.h's ParseSpace); the names below have an
// Archon meaning, any other name is an error:
//   generators     top-k experts of the ranking as generators (paper: 1-10)
//   samples        samples per generator (paper: 1-5)
//   fusion_layers  fusion layers after the generators (paper: 1-4; 0 allowed)
//   fusers         fusers per fusion layer (paper: 2-10 step 2)
//   critic, ranker bool: a critic / a ranker (top_k 5) before the fusers of every fusion layer
//   verifier       bool: a verifier after the last layer
//   unit_tests     bool: a unit-test generator first and a unit-test evaluator last (for code)
//   aggregation    categorical of vote | rank | vote_then_rank: a call-free aggregation after the generators
//   ranking        categorical of task | domain: the generators are the top-k of the experts ranked by train accuracy
//                  over the whole task, or over the query's domain (replay only)
// A point maps to an Archon-format architecture ({"name", "layers": [[component, ...], ...]}) that `baton archon run`
// executes, and to its inference-call count (the budget check).
//
// Thread-safety: the objects are immutable after construction; Evaluate is const and safe to call concurrently.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "baton/search.h"
#include "baton/status.h"

namespace baton::archon_search {

struct ArchonSpace {
  search::Space space;
  std::vector<std::string> experts;  // optional ranking from the space file ("experts"), best first
  std::string name;
};

// Parses a space file and checks every dimension name is one of the above.
StatusOr<ArchonSpace> ParseArchonSpace(const std::string& json_text);

// The values of a point with defaults for absent dimensions (generators 1, samples 1, no fusion, fusers 2, ...).
struct Config {
  int generators = 1, samples = 1, fusion_layers = 0, fusers = 2;
  bool critic = false, ranker = false, verifier = false, unit_tests = false;
  std::string aggregation;  // "" = none
  std::string ranking = "task";
};
Config ConfigOf(const search::Space& space, const search::Point& p);

// Inference calls of a configuration: unit-test generator 1; generators k*s (candidates c = k*s); per fusion layer
// critic 1 (one call critiques all candidates), ranker 1 (keeps min(c, 5)), fusers n (c = n); verifier 2 per remaining
// candidate (reasoning, verdict); unit-test evaluator 1 per remaining candidate. vote / rank cost no call.
int CallCount(const Config& c);

// The Archon-format architecture of a configuration. `ranking` names the experts best first (generators are its
// first k; critics, rankers, fusers, verifiers and unit-test components use its first model; fuser j uses
// ranking[j % k]). The vote / predicted-score components are {"type": "vote"} and {"type": "predicted_score_ranker",
// "top_k": 1}; vote_then_rank is {"type": "vote", "tie_break": "predicted_score"}.
nlohmann::json ToArchitecture(const Config& c, const std::vector<std::string>& ranking, const std::string& name);

// --- The recorded-answer (replay) objective ---

// Answers of every expert on every query of a dataset folder, from responses.jsonl (letters extracted with
// ExtractChoice), outcomes.csv (cost; for references: the letters of experts that scored 1 when queries.jsonl has no
// reference, as RouterBench) and queries.jsonl (domain, reference). Queries with no letter-form answer space (no
// reference letter and at most half the domain's recorded responses extract to a letter, e.g. MBPP's code) are dropped.
class ReplayData {
 public:
  static StatusOr<std::unique_ptr<ReplayData>> Load(const std::string& dir);
  size_t num_queries() const { return queries_.size(); }
  const std::vector<std::string>& experts() const { return experts_; }
  size_t dropped() const { return dropped_; }

  struct Query {
    std::string id;
    uint32_t domain = 0;
    uint32_t correct = 0;           // bit (letter - 'A') set for each accepted letter
    std::vector<uint8_t> letter;    // per expert: 0 = no answer or no row, else 'A'..'Z'
    std::vector<uint8_t> observed;  // per expert: 1 when the expert has a recorded row
    std::vector<float> cost;        // per expert, 0 when unknown
  };
  const std::vector<Query>& queries() const { return queries_; }
  const std::vector<std::string>& domains() const { return domains_; }
  // Index of a domain name, adding it when new (used to align a test folder's domains with the train folder's).
  uint32_t DomainIndex(const std::string& name);
  // Makes this (test) data use `train`'s expert columns and domain indices; error naming an expert train has and
  // this data lacks.
  Status AlignTo(ReplayData& train);
  // Keeps only the given rows (in that order).
  void Select(const std::vector<size_t>& rows);
  // Restricts (and orders) the expert columns to these names; error naming a missing one.
  Status SelectExperts(const std::vector<std::string>& names);

 private:
  std::vector<std::string> experts_, domains_;
  std::vector<Query> queries_;
  size_t dropped_ = 0;
};

struct ReplayOutcome {
  double accuracy = 0;  // share of queries answered correctly
  double cost = 0;      // mean cost per query (USD): the sum of the generators' recorded costs
  size_t queries = 0;
};

// Rankings learned on a train split: experts by accuracy overall (task) and per domain; accuracies per domain.
class ReplayModel {
 public:
  explicit ReplayModel(const ReplayData& train);
  const std::vector<size_t>& task_ranking() const { return task_; }
  const std::vector<size_t>& domain_ranking(uint32_t domain) const;
  double domain_accuracy(uint32_t domain, size_t expert) const;
  double task_accuracy(size_t expert) const { return task_acc_[expert]; }
  // Names of the task ranking, best first.
  std::vector<std::string> TaskRankingNames(const ReplayData& data) const;

  // Replays the configuration on `data` (its experts must be the train data's, in the same order). Only the
  // generators / aggregation / ranking dimensions can be replayed; the caller checks that (ReplayableSpace).
  ReplayOutcome Evaluate(const Config& c, const ReplayData& data) const;

 private:
  std::vector<size_t> task_;
  std::vector<double> task_acc_;
  std::vector<std::vector<size_t>> domain_rank_;
  std::vector<std::vector<double>> domain_acc_;
};

// OK when every dimension of the space can be replayed from recorded answers (generators, aggregation, ranking;
// samples only fixed at 1); else an error naming the dimension and why.
Status ReplayableSpace(const search::Space& space);

}  // namespace baton::archon_search
