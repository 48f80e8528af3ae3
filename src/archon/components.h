// Archon's components as steps the executor drives. Internal to src/archon/.
//
// A Step is one component of one layer in one run. The executor asks it for the calls of its next stage
// (NextCalls), makes them (concurrently, with every other step of the layer), hands each result back (OnResult), and
// asks again until a step has no more calls; then Finish gives what the step contributes to the next state. A
// component that makes no LLM call (vote, predicted ranker) has no stage and does its work in Finish.
//
// Thread-safety: a Step is used by one run, on its loop.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "archon/parsers.h"
#include "baton/archon.h"

namespace baton::archon {

// One call a step wants made.
struct CallSpec {
  std::string stage;  // the trace's component label: "generator", "verifier:reasoning", ...
  ChatRequest request;
};

// What the step reads.
struct StepInput {
  const State* state = nullptr;             // the state the previous layer left
  const ChatRequest* query = nullptr;       // the run's request (the user's conversation)
  size_t clip_bytes = 0;                    // each earlier output embedded in a prompt is cut to this many bytes
  const CandidateScorer* scorer = nullptr;  // for the predicted ranker; may be null or empty
};

// What a finished step contributes to the next state.
struct StepOutput {
  std::optional<std::vector<Candidate>> candidates;  // set: its candidates for the new state, in order
  std::map<int64_t, std::string> critiques;          // by candidate id
  std::optional<std::vector<std::string>> unit_tests;
  ParseOutcome parse;  // for components without calls: how their work went (traced); else "n/a"
};

class Step {
 public:
  virtual ~Step() = default;
  // The calls of the next stage; empty when the step has no more.
  virtual std::vector<CallSpec> NextCalls() = 0;
  // The result of the i-th call of the stage NextCalls last returned. Writes how its output parsed.
  virtual void OnResult(size_t i, const StatusOr<ChatResult>& result, ParseOutcome* parse) = 0;
  virtual StepOutput Finish() = 0;
};

// REQUIRES: in's pointers outlive the step.
std::unique_ptr<Step> MakeStep(const Component& component, StepInput in);

// The text of the user's conversation as a component prompt quotes it: the last user message alone when the
// conversation has one message, else "role: content" lines.
std::string QueryText(const ChatRequest& request);

}  // namespace baton::archon
