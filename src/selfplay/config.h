// The YAML configuration of `baton selfplay`: an experts section read exactly as `baton serve` reads it, and a
// selfplay section:
//   selfplay:
//     db: selfplay.db                 # where questions and outcomes go (--db overrides)
//     dataset: selfplay               # the store dataset of the loop's questions
//     questions: {pool: data/mmlu-pro}          # a dataset folder or a queries.jsonl with references, or
//     # questions: {writer: EXPERT, domains: [algebra, law], extra: {grammar: "..."}}
//     evaluate: reference             # or recorded (replay experts' recorded scores) or {judge: EXPERT, extra: {...}}
//     (`extra`: request fields sent with the writer's / judge's calls, passed through to OpenAI-compatible upstreams,
//     e.g. llama-server's `grammar` to hold a small model to the reply format)
//     experts: [a, b]                 # evaluated; default every expert but the writer and the judge
//     questions_per_round: 8
//     candidates_per_question: 4
//     epsilon: 0.3
//     small_pool: 4
//     spend_cap_usd: 1.0
//     refit_every: 50
//     model: selfplay.baton           # the router the loop reads and refits
//     predictor: factorized
//     refit_datasets: [selfplay]
//     refit_include: [imported, selfplay]
//     timeout_s: 60
//     max_tokens: 512                 # sent with every answer call (default: the expert's own limit)
//     seed: 0
// Relative paths are relative to the file's folder.
#pragma once

#include <string>
#include <vector>

#include "baton/expert.h"
#include "baton/selfplay.h"
#include "baton/status.h"

namespace baton::selfplay {

// The `selfplay:` section (the README, "Learning from its own work", is the reference).
struct LoopConfig {
  std::vector<ExpertConfig> all_experts;  // the experts section, as baton serve reads it
  std::string db;
  std::string pool;  // a queries.jsonl
  bool keep_unreferenced = false;
  std::string writer;  // expert writing questions ("" = use the pool)
  std::vector<std::string> domains;
  std::string evaluate = "reference";  // reference | recorded | judge
  std::string judge;
  nlohmann::json writer_extra = nlohmann::json::object();  // questions.extra
  nlohmann::json judge_extra = nlohmann::json::object();   // evaluate.extra
  std::vector<std::string> experts;  // evaluated; empty = every expert but the writer and the judge
  SelfPlayOptions loop;
  std::vector<std::string> refit_include;
};

// Reads and validates the file; InvalidArgument naming the file and the field on any error.
StatusOr<LoopConfig> LoadSelfPlayConfig(const std::string& path);

}  // namespace baton::selfplay
