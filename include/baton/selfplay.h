// The self-play loop (`baton selfplay`): baton asks its experts questions, scores their answers, stores the outcomes
// (source = selfplay) and refits its router, so it learns from its own work.
//
// Pluggable parts, each usable and tested on its own:
//   QuestionSource  where questions come from: a pool of real questions with references (PoolQuestionSource, a
//                   dataset folder), or an expert asked to write a hard question and its answer for a domain
//                   (GeneratedQuestionSource).
//   Evaluator       how an answer is scored: ReferenceEvaluator (the letter or number the answer commits to against the
//                   reference, baton/answer.h), JudgeEvaluator (an expert's verdict, which must parse: else no
//                   outcome), RecordedEvaluator (a replay expert's recorded score).
//   orchestration   which candidate questions to ask and which experts to pay for: ChooseEvaluations
//                   (baton/selfplay_sim.h) on the current router's predictions: informative questions first, the
//                   router's choices plus epsilon-greedy exploration, every expert when the pool is small or no model
//                   exists yet.
//
// Durability: every question is stored with its outcomes (and any failed calls, as request-log rows) in ONE store
// transaction; the question's (dataset, external_id) is unique, so a loop killed at any point (kill -9) and restarted
// neither loses a committed outcome nor stores one twice: a question whose transaction did not commit was never
// stored and is asked again; a pool question already stored is skipped.
//
// Refit: after every `refit_every` new outcomes (counted over the whole history of the dataset, so across restarts)
// the router is refitted with FitModelFromStore (as `baton fit` does) and the model file replaced; a running `baton
// serve` picks it up on SIGHUP.
//
// Thread-safety: RunSelfPlay runs on the calling thread; the parts are used from that thread only.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "baton/expert.h"
#include "baton/selfplay_sim.h"
#include "baton/status.h"
#include "baton/store.h"

namespace baton {

// One question to ask.
struct SelfPlayQuestion {
  std::string external_id;  // unique within the self-play dataset: the question's durable key
  std::string domain;
  std::string text;
  std::string reference;  // "" when unknown (then only a judge can score answers)
  std::string source;     // provenance, e.g. "pool:data/mmlu" or "generated:gpt-4"
};

class QuestionSource {
 public:
  virtual ~QuestionSource() = default;
  virtual std::string name() const = 0;
  // Up to `n` new candidate questions. `already_stored(external_id)` says whether a question is stored (a pool skips
  // those). Fewer than n (or none) when the source runs dry. Cost of generating them is added to *spent_usd.
  virtual StatusOr<std::vector<SelfPlayQuestion>> Next(size_t n,
                                                       const std::function<bool(const std::string&)>& already_stored,
                                                       double* spent_usd) = 0;
};

// Questions of a dataset folder's queries.jsonl (with references), in a seeded random order.
class PoolQuestionSource : public QuestionSource {
 public:
  // `queries_jsonl`: a file of {"id", "domain", "text", "reference"} lines (a dataset folder's queries.jsonl, or
  // data/mmlu/test.jsonl). Questions without a reference are kept only when `keep_unreferenced`.
  static StatusOr<std::unique_ptr<PoolQuestionSource>> Open(const std::string& queries_jsonl, uint64_t seed,
                                                            bool keep_unreferenced);
  std::string name() const override { return "pool:" + path_; }
  StatusOr<std::vector<SelfPlayQuestion>> Next(size_t n, const std::function<bool(const std::string&)>& already_stored,
                                               double* spent_usd) override;
  size_t size() const { return questions_.size(); }

 private:
  std::string path_;
  std::vector<SelfPlayQuestion> questions_;
  size_t next_ = 0;
};

// Asks `writer` for a hard question with its answer, for each domain in turn. The reply must read
//   QUESTION: <the question>
//   ANSWER: <the short final answer>
// (last occurrence of each wins); a reply that does not parse yields no question.
class GeneratedQuestionSource : public QuestionSource {
 public:
  // `extra`: request fields sent with every writer call, passed through to OpenAI-compatible upstreams (e.g.
  // llama-server's {"grammar": ...} or vLLM's {"guided_regex": ...}, to hold a small model to the reply format).
  GeneratedQuestionSource(ExpertBackend* writer, std::vector<std::string> domains, std::chrono::milliseconds timeout,
                          nlohmann::json extra = nlohmann::json::object());
  std::string name() const override { return "generated:" + writer_->name(); }
  StatusOr<std::vector<SelfPlayQuestion>> Next(size_t n, const std::function<bool(const std::string&)>& already_stored,
                                               double* spent_usd) override;
  // The prompt sent to the writer for `domain`, and the parse of its reply (nullopt when it does not parse).
  static std::string Prompt(const std::string& domain);
  static std::optional<std::pair<std::string, std::string>> ParseReply(const std::string& reply);

 private:
  ExpertBackend* writer_;  // not owned
  std::vector<std::string> domains_;
  std::chrono::milliseconds timeout_;
  nlohmann::json extra_;
  size_t calls_ = 0;
};

// The score of one answer, or nullopt when it cannot be scored (no outcome is stored then).
class Evaluator {
 public:
  virtual ~Evaluator() = default;
  virtual std::string name() const = 0;
  virtual std::optional<double> Score(const SelfPlayQuestion& q, const ChatResult& answer, double* spent_usd) = 0;
};

// ScoreAgainstReference (baton/answer.h): 1 when the answer's letter / number / text matches the reference, else 0;
// nullopt when the question has no reference.
class ReferenceEvaluator : public Evaluator {
 public:
  std::string name() const override { return "reference"; }
  std::optional<double> Score(const SelfPlayQuestion& q, const ChatResult& answer, double* spent_usd) override;
};

// A replay expert's recorded score for the answer (ChatResult::recorded_score); nullopt for other experts.
class RecordedEvaluator : public Evaluator {
 public:
  std::string name() const override { return "recorded"; }
  std::optional<double> Score(const SelfPlayQuestion& q, const ChatResult& answer, double* spent_usd) override;
};

// Asks `judge` whether the answer is right. The reply must end its verdict with "VERDICT: CORRECT" or "VERDICT:
// INCORRECT" (the last one wins, case-insensitive); anything else (or a failed call) is no outcome, never a guess.
class JudgeEvaluator : public Evaluator {
 public:
  // `extra`: request fields sent with every judge call (see GeneratedQuestionSource).
  JudgeEvaluator(ExpertBackend* judge, std::chrono::milliseconds timeout,
                 nlohmann::json extra = nlohmann::json::object())
      : judge_(judge), timeout_(timeout), extra_(std::move(extra)) {}
  std::string name() const override { return "judge:" + judge_->name(); }
  std::optional<double> Score(const SelfPlayQuestion& q, const ChatResult& answer, double* spent_usd) override;
  static std::string Prompt(const SelfPlayQuestion& q, const std::string& answer);
  static std::optional<double> ParseVerdict(const std::string& reply);

 private:
  ExpertBackend* judge_;  // not owned
  std::chrono::milliseconds timeout_;
  nlohmann::json extra_;
};

struct SelfPlayOptions {
  std::string dataset = "selfplay";  // the store dataset that holds the loop's questions. Default: "selfplay"
  size_t rounds = 1;
  size_t questions_per_round = 8;      // Default: 8
  size_t candidates_per_question = 4;  // candidates drawn per question asked; the most informative win. Default: 4
  ExplorationOptions exploration;
  // Stop cleanly (after a committed question) before a question whose expected cost (calls planned x mean cost per
  // call so far) would take the total past the cap, and within a question before a call expected to pass it (the
  // question is then stored with the answers it has), so the cap is passed by at most one call's cost; the total counts
  // the dataset's recorded outcome costs plus this run's generation and judging. Default: none
  std::optional<double> spend_cap_usd;
  size_t refit_every = 50;                  // refit after this many new outcomes; 0 = never. Default: 50
  std::string model_path;                   // the router model the loop reads and refits; "" = none (evaluate all)
  std::string predictor;                    // for the refit; "" = default
  std::vector<std::string> refit_datasets;  // train on these datasets; empty = just `dataset`
  std::vector<OutcomeSource> refit_sources = {OutcomeSource::kImported, OutcomeSource::kSelfPlay};
  std::chrono::milliseconds timeout{60'000};  // per expert call. Default: 60 s
  std::optional<int64_t> max_tokens;          // sent with every answer call; Default: none (the expert's own limit)
  uint64_t seed = 0;
  std::function<void(const std::string&)> progress;  // one line per event (round summaries, refits, failures)
  std::function<void(size_t round, size_t question, size_t questions)> tick;  // after every question (progress bar)
};

struct RoundSummary {
  size_t round = 0;      // 1-based, over the whole history of the dataset
  size_t questions = 0;  // asked (stored) this round
  size_t separated = 0;  // of those, questions whose outcomes differed between experts
  size_t outcomes = 0, failed_calls = 0, unscored = 0;
  double spent_usd = 0;  // this round, answers + generation + judging
  size_t refits = 0;
};

struct SelfPlayReport {
  std::vector<RoundSummary> rounds;
  size_t outcomes_before = 0, outcomes_after = 0;  // selfplay outcomes of the dataset in the store
  double spent_usd = 0;                            // this run
  double spent_total_usd = 0;                      // recorded cost of the dataset's outcomes + this run's overheads
  size_t refits = 0;
  bool stopped_by_cap = false, source_exhausted = false;
};

// Runs the loop. `experts` are the experts to evaluate (not owned; names as in the store). Errors only for the store
// or the refit; expert failures are recorded and the loop goes on.
StatusOr<SelfPlayReport> RunSelfPlay(Store& store, const std::vector<ExpertBackend*>& experts,
                                     const std::vector<ExpertConfig>& configs, QuestionSource& source,
                                     Evaluator& evaluator, const SelfPlayOptions& options);

}  // namespace baton
