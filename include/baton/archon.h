// Archon: inference-time architectures. An architecture spends several LLM calls on one query (generate candidates
// with several experts, critique, rank, verify, test, fuse them) to answer better than any single expert.
//
// An Architecture is parsed from JSON compatible with the Archon project's configuration files:
//   {"name": "moa", "layers": [
//      [{"type": "generator", "model": "qwen-72b", "samples": 2}, {"type": "generator", "model": "llama-70b"}],
//      [{"type": "critic", "model": "qwen-72b"}],
//      [{"type": "ranker", "model": "qwen-72b", "top_k": 2}],
//      [{"type": "fuser", "model": "qwen-72b"}]]}
// A layer is a list of components, the older object form {"branches": n, "models": [components]}, or a single
// component object. Unknown keys are kept (Component::unknown) and reported as warnings, never fatal.
//
// Semantics (as in Archon's own executor). A State (candidates, with critiques and verifier reasoning attached, and
// unit tests) flows from layer to layer. Every component of a layer reads the state the previous layer left (the
// first layer reads an empty state: only the query) and contributes to the new one:
//   - candidates: the candidates output by the layer's components that produce candidates (generator, fuser, ranker,
//     verifier, unit-test evaluator, vote, predicted-score ranker) concatenate in component order; a layer with no such
//     component passes the previous candidates through. So a layer of [generator, fuser] leaves the generator's
//     candidates followed by the fused ones, and a generator in a later layer sees the previous candidates
//     (Mixture-of-Agents) and replaces them with its own.
//   - critiques: a critic attaches a critique to each candidate it read; a critique travels with its candidate (by
//     candidate id) into the new state when that candidate survives the layer.
//   - unit tests: a unit-test generator's tests replace the state's; otherwise they pass through, so tests written
//     from the instruction in layer 1 reach an evaluator several layers later.
// The answer is the FIRST candidate the last layer leaves (deterministic; a ranker, evaluator or vote puts its best
// first). A run whose last layers produced nothing new answers with what passed through.
//
// Thread-safety: Architecture, State and the parse/validate functions are plain values and pure functions. A run
// (RunArchitectureAsync) lives on one event loop: every callback of it runs on ctx.loop, so it needs no lock.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "baton/expert.h"
#include "baton/status.h"
#include "baton/store.h"

namespace baton::archon {

// ---------------------------------------------------------------------------------------------------------------------
// Data model.

enum class ComponentType {
  kGenerator,          // "generator": samples candidate responses from one expert
  kFuser,              // "fuser": merges the candidates (and critiques) into better responses
  kRanker,             // "ranker": orders the candidates, keeps the top `top_k`
  kCritic,             // "critic": strengths and weaknesses of each candidate
  kVerifier,           // "verifier": reasoning, then a verdict per candidate; drops those judged incorrect
  kUnitTestGenerator,  // "unit_test_generator": short checkable statements a good answer satisfies
  kUnitTestEvaluator,  // "unit_test_evaluator": counts the tests each candidate passes, orders by that
  kVote,               // "vote" (alias "vote_fuser"): majority over extracted answers; no LLM call
  kPredictedRanker,    // "predicted_ranker" (alias "predicted_score_ranker"): the outcome predictor's score of each
                       // candidate's expert for this query; no LLM call
};
// The canonical name ("generator", "unit_test_generator", "vote", ...).
const char* ComponentTypeName(ComponentType type);
// The type named `name` (canonical names and the aliases above), nullopt when unknown.
std::optional<ComponentType> ComponentTypeFromName(std::string_view name);
// Whether the component makes LLM calls (so needs a `model`): every type but kVote and kPredictedRanker.
bool NeedsModel(ComponentType type);

// Where something stands in the configuration text: 1-based line and column (0 = unknown).
struct SourceLocation {
  int line = 0;
  int column = 0;
};

// How many unit tests a unit-test generator asks for.
inline constexpr int kUnitTestsPerGenerator = 5;

struct Component {
  ComponentType type = ComponentType::kGenerator;
  std::string model;          // the expert to call: an expert's name (or its upstream `model`); "" for vote/predicted
  std::string model_type;     // as written (Archon's provider, e.g. "Together_API"); informational
  double temperature = 0.7;   // Default: 0.7 (Archon's)
  int64_t max_tokens = 2048;  // per call. Default: 2048 (Archon's)
  int samples = 1;            // generator / fuser: responses per call site. Default: 1
  int top_k = 5;              // ranker / predicted ranker: candidates kept. Default: 5
  nlohmann::json unknown = nlohmann::json::object();  // keys baton does not read, as written
  SourceLocation where;                               // of the component's object
};

struct Layer {
  std::vector<Component> components;
  SourceLocation where;  // of the layer's value
};

struct Architecture {
  std::string name;  // "name"; Default: the file name without extension, or "archon"
  std::vector<Layer> layers;
  nlohmann::json unknown = nlohmann::json::object();  // top-level keys baton does not read
  std::string source;                                 // where it was read from, for messages
};

// One diagnostic. `layer` / `component` are 0-based, -1 when not about one.
struct Diagnostic {
  SourceLocation where;
  int layer = -1;
  int component = -1;
  std::string message;
  // "SOURCE:LINE:COL: layer L component C: MESSAGE" (1-based layer and component; omitted parts left out).
  std::string ToString(const std::string& source) const;
};

struct ParseResult {
  Architecture architecture;
  std::vector<Diagnostic> errors;    // what cannot run; non-empty = the architecture must not be run
  std::vector<Diagnostic> warnings;  // unknown keys, ...
};

// Parses the JSON text. Invalid JSON is one error naming the line and column. Structural errors (an unknown
// component type, a missing `type` or `model`, an empty layer, a value of the wrong type) are collected, not thrown.
ParseResult ParseArchitecture(std::string_view json_text, const std::string& source);
// Reads the file and parses it; NotFound / PermissionDenied when it cannot be read.
StatusOr<ParseResult> LoadArchitecture(const std::string& path);

// What Validate checks the models against: the configured experts, by name.
struct ValidateOptions {
  bool structure_only = false;  // true = do not check that each `model` maps to a configured expert
  // The configured experts (checked unless structure_only). A model maps to an expert of that name or, failing that,
  // to the one expert whose upstream `model` it is.
  std::vector<ExpertConfig> experts;
  int64_t context_tokens = 32'768;  // the context window assumed when warning about too many candidates
};

// Semantic checks of a parsed architecture, appended to `result`; nothing when parsing already failed (errors and
// warnings as the module comment lists): errors: a component that needs state no earlier layer can produce (an
// evaluator with no unit-test generator before it; a ranker, critic, verifier, vote or predicted ranker with no
// candidates); a model that maps to no expert. warnings: a fuser with nothing to fuse (answers like a generator, as in
// Archon); a ranker, critic, verifier or unit-test component sharing its layer (the paper's guidance: layers of one
// such component); a critic whose critiques no later ranker, fuser or verifier reads; more candidates than a context
// window holds.
void Validate(const ValidateOptions& options, ParseResult* result);

// The expert a model name maps to among `experts` (see ValidateOptions), nullptr when none.
const ExpertConfig* FindExpertConfig(const std::vector<ExpertConfig>& experts, std::string_view model);

// ---------------------------------------------------------------------------------------------------------------------
// State.

struct Candidate {
  int64_t id = 0;  // unique within a run
  std::string text;
  std::string expert;               // the expert whose call produced it ("" for none)
  int layer = 0;                    // 0-based layer that produced it
  std::string component;            // the component type that produced it
  int generator_order = 0;          // order of production within the run (vote ties go to the lowest)
  std::string critique;             // a critic's strengths and weaknesses, "" = none
  std::string verification;         // a verifier's reasoning, "" = none
  std::optional<int> tests_passed;  // a unit-test evaluator's count
  // Replay experts: the score the recorded answer earned (ChatResult::recorded_score), so that an architecture whose
  // answer is a recorded answer verbatim (vote, rankers) can be scored on datasets without references.
  std::optional<double> recorded_score;
};

struct State {
  std::vector<Candidate> candidates;
  std::vector<std::string> unit_tests;
};

// ---------------------------------------------------------------------------------------------------------------------
// Execution.

// An expert an architecture may call. Neither pointer is owned; both must outlive the runs that use them.
struct ExpertHandle {
  ExpertBackend* backend = nullptr;
  const ExpertConfig* config = nullptr;  // prices and default_max_tokens for the cost bound; may be null (unpriced)
};
// Maps a component's `model` to an expert; nullopt = unknown (the component's calls then fail and degrade).
using ExpertLookup = std::function<std::optional<ExpertHandle>(std::string_view model)>;
// The predicted-score ranker's scorer: for the query (the user's message; a multi-message conversation as
// "role: content" lines) and the candidates' experts, one
// predicted score per expert (NaN = unknown; such candidates go last). Called on the run's loop; must not block long.
using CandidateScorer =
    std::function<std::vector<double>(std::string_view query, const std::vector<std::string>& experts)>;

struct ArchonLimits {
  // Inference calls allowed to one run; 0 = no cap. A run whose bound (ArchitectureBound().calls) is over the cap is
  // refused before its first call (ResourceExhausted), since the bound is exact for fixed-size layers.
  int64_t max_calls = 0;
  // Cost allowed to one run in USD; 0 = no cap. Checked before each layer against what was spent plus that layer's
  // bound (computed from the actual prompts): a layer that would pass the cap does not start, and the run stops
  // cleanly with the candidates it has (ArchonResult::stop_reason says so); with no candidate at all it fails.
  double max_cost_usd = 0;
  int max_concurrency = 8;                     // calls of one run in flight at once. Default: 8
  std::chrono::milliseconds timeout{300'000};  // the whole run; each call gets the time left. Default: 5 min
};

// Upper bound of one run's cost and calls, for a budget reservation before the first call. A call's cost bound is
// its expert's list prices x (PromptTokenBound of the prompt it may send, in which each earlier output it quotes
// counts as kCandidateBytesPerToken x the architecture's largest max_tokens bytes, the executor clipping longer texts
// to that) and x its max_tokens out; an unpriced expert bounds at 0 (as in the gateway). Calls: generator and fuser
// `samples` each, ranker, critic and unit-test generator 1, verifier 2 and evaluator 1 per candidate it may see, vote
// and predicted ranker 0.
struct ArchitectureCost {
  double cost_usd = 0;
  int64_t calls = 0;
};
inline constexpr int64_t kCandidateBytesPerToken = 16;
ArchitectureCost ArchitectureBound(const Architecture& arch, const ExpertLookup& experts, const ChatRequest& request);

struct ArchonResult {
  std::string answer;                   // the first candidate's text
  std::string answer_expert;            // the expert that produced it
  double cost_usd = 0;                  // the sum of every successful call's cost (an error reports no usage)
  int64_t calls = 0;                    // inference calls made
  std::vector<ArchonCallRecord> trace;  // one per call (and one per no-call component), in completion order
  State final_state;
  // True when `answer` was delivered piece by piece through the final sink (the caller must not write it again).
  bool streamed = false;
  std::string stop_reason;  // "" = every layer ran; else why the run stopped early ("cost cap", "timeout")
};
using ArchonDoneHandler = std::function<void(StatusOr<ArchonResult>)>;

struct ArchonRunOptions {
  ArchonLimits limits;
  std::string run_id;      // copied into every trace record
  CandidateScorer scorer;  // needed only by predicted rankers (without it they keep the order, parse "no scorer")
  // Receives the final layer's answer as it is produced, when the final layer is one generator or fuser making one
  // call (then ArchonResult::streamed is true if any piece went through). Otherwise the answer arrives in `done`
  // only. Returning false cancels that call. May be empty.
  StreamSink final_sink;
  // Called on ctx.loop as each call (or no-call component) finishes, with its trace record, before `done`: lets a
  // caller meter and account a run as it goes, including the calls of a run that ends up failing (whose cost `done`
  // cannot report). A component-level parse note added when its layer ends (ArchonResult::trace has it) is not
  // repeated here. May be empty.
  std::function<void(const ArchonCallRecord&)> on_call;
};

// Runs `arch` on `request` (its messages are the query) on ctx.loop: every call through ExpertBackend::CompleteAsync,
// each layer's calls concurrently up to limits.max_concurrency, layers in order. Returns at once; `done` is called
// exactly once on ctx.loop (never from inside this function), unless the loop is destroyed first.
// A component call that fails (or whose output cannot be parsed) degrades: the state stays as the previous layer
// left it for that component's part, the failure is traced. The run fails only when no candidate exists at the end
// (Unavailable, with the first call error; ResourceExhausted when the cost cap stopped it before any candidate), when
// it is refused by limits.max_calls (ResourceExhausted), when the streamed final call fails after some of its pieces
// went to the sink (Unavailable: the client saw part of an answer that will not be completed), or when the
// architecture is empty (InvalidArgument).
// REQUIRES: arch passed ParseArchitecture without errors. `experts` and what it returns outlive the run.
void RunArchitectureAsync(const Architecture& arch, ExpertLookup experts, ChatRequest request, const AsyncContext& ctx,
                          ArchonRunOptions options, ArchonDoneHandler done);

// Blocking convenience wrapper (the CLI): runs a private event loop on the calling thread until done. `blocking`
// may be null when no expert needs a blocking pool.
StatusOr<ArchonResult> RunArchitecture(const Architecture& arch, ExpertLookup experts, ChatRequest request,
                                       ArchonRunOptions options, boost::asio::thread_pool* blocking = nullptr);

}  // namespace baton::archon
