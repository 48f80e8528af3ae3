// Archon's components: their prompts (our own wording of what the Archon paper describes) and how each turns model
// outputs into the next state.
#include "archon/components.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <numeric>
#include <utility>

#include <fmt/format.h>

#include "baton/answer.h"

namespace baton::archon {
namespace {

constexpr int64_t kVerdictMaxTokens = 32;

// The candidates as a numbered list, critiques attached when `with_critiques`.
std::string ListCandidates(const std::vector<Candidate>& cands, size_t clip, bool with_critiques) {
  std::string s;
  for (size_t i = 0; i < cands.size(); ++i) {
    s += fmt::format("[{}]\n{}\n", i + 1, Clip(cands[i].text, clip));
    if (with_critiques && !cands[i].critique.empty()) {
      s += fmt::format("Critique of [{}]:\n{}\n", i + 1, Clip(cands[i].critique, clip));
    }
    s += '\n';
  }
  return s;
}

bool AnyCritique(const std::vector<Candidate>& cands) {
  return std::any_of(cands.begin(), cands.end(), [](const Candidate& c) { return !c.critique.empty(); });
}

// The user's conversation with `system` put in front (merged into the conversation's own leading system message).
ChatRequest WithSystem(const ChatRequest& query, const std::string& system) {
  ChatRequest r = query;
  if (!r.messages.empty() && r.messages.front().role == "system") {
    r.messages.front().content = system + "\n\n" + r.messages.front().content;
  } else {
    r.messages.insert(r.messages.begin(), ChatMessage{.role = "system", .content = system});
  }
  return r;
}

ChatRequest UserPrompt(const ChatRequest& query, std::string prompt) {
  ChatRequest r;
  r.messages = {ChatMessage{.role = "user", .content = std::move(prompt)}};
  r.timeout = query.timeout;
  return r;
}

ChatRequest Tuned(ChatRequest r, const Component& c, std::optional<int64_t> max_tokens = std::nullopt) {
  r.temperature = c.temperature;
  r.max_tokens = max_tokens.value_or(c.max_tokens);
  return r;
}

// ---------------------------------------------------------------------------------------------------------------------
// Generator and fuser: `samples` calls, each a candidate.

class SamplingStep : public Step {
 public:
  SamplingStep(const Component& c, StepInput in) : c_(c), in_(in) {}
  std::vector<CallSpec> NextCalls() override {
    if (asked_) return {};
    asked_ = true;
    const std::vector<Candidate>& prev = in_.state->candidates;
    ChatRequest base = *in_.query;
    if (!prev.empty() && c_.type == ComponentType::kGenerator) {
      // Mixture-of-Agents: a generator in a later layer sees the previous layer's candidates.
      base = WithSystem(*in_.query,
                        "Other assistants have already answered the user's latest message; their responses are listed "
                        "below. Some may be wrong, biased or incomplete. Read them critically, then write your own "
                        "single best response to the user's message, keeping what is correct in them and fixing what "
                        "is not. Do not mention the other responses.\n\nResponses:\n" +
                            ListCandidates(prev, in_.clip_bytes, false));
    } else if (!prev.empty()) {
      const bool crit = AnyCritique(prev);
      base = WithSystem(
          *in_.query,
          fmt::format("You are given candidate responses from several assistants to the user's latest message{}. "
                      "Fuse them into one response of higher quality: keep what is correct and well supported, drop "
                      "what is wrong, settle disagreements by reasoning about the question itself, and follow any "
                      "format the user asked for. Reply with the fused response only, without mentioning the "
                      "candidates.\n\nCandidates:\n{}",
                      crit ? ", each followed by a critique of its strengths and weaknesses" : "",
                      ListCandidates(prev, in_.clip_bytes, true)));
    }
    std::vector<CallSpec> calls;
    for (int s = 0; s < c_.samples; ++s) calls.push_back({ComponentTypeName(c_.type), Tuned(base, c_)});
    results_.resize(calls.size());
    return calls;
  }
  void OnResult(size_t i, const StatusOr<ChatResult>& r, ParseOutcome* parse) override {
    parse->text = "n/a";
    if (r.ok()) results_[i] = *r;
  }
  StepOutput Finish() override {
    StepOutput out;
    std::vector<Candidate> cands;
    for (const auto& r : results_) {
      if (!r) continue;
      Candidate c;
      c.text = r->content;
      c.recorded_score = r->recorded_score;
      c.expert = c_.model;
      c.component = ComponentTypeName(c_.type);
      cands.push_back(std::move(c));
    }
    out.candidates = std::move(cands);  // empty when every call failed: the layer then keeps what it had
    out.parse.text = "n/a";
    return out;
  }

 private:
  const Component& c_;
  StepInput in_;
  bool asked_ = false;
  std::vector<std::optional<ChatResult>> results_;
};

// ---------------------------------------------------------------------------------------------------------------------
// Ranker: one call ranks every candidate; keeps the top_k.

class RankerStep : public Step {
 public:
  RankerStep(const Component& c, StepInput in) : c_(c), in_(in) {}
  std::vector<CallSpec> NextCalls() override {
    if (asked_) return {};
    asked_ = true;
    const auto& prev = in_.state->candidates;
    if (prev.empty()) return {};
    std::string p = fmt::format(
        "Instruction:\n{}\n\nCandidate responses:\n{}Rank the {} responses from best to worst by how well they "
        "answer the instruction: correctness first, then completeness, helpfulness and clarity.{} Reply with the "
        "ranking only, as identifiers in order, for example: [2] > [1] > [3].",
        Clip(QueryText(*in_.query), in_.clip_bytes), ListCandidates(prev, in_.clip_bytes, true), prev.size(),
        AnyCritique(prev) ? " Use the critiques given with the responses." : "");
    return {{"ranker", Tuned(UserPrompt(*in_.query, std::move(p)), c_)}};
  }
  void OnResult(size_t, const StatusOr<ChatResult>& r, ParseOutcome* parse) override {
    if (!r.ok()) return;
    order_ = ParseRanking(r->content, static_cast<int>(in_.state->candidates.size()), parse);
    if (!parse->usable()) order_.clear();
  }
  StepOutput Finish() override {
    StepOutput out;
    const auto& prev = in_.state->candidates;
    std::vector<Candidate> cands;
    if (order_.empty()) {
      cands = prev;  // the call failed or its ranking could not be read: the candidates stay as they were
    } else {
      for (int i : order_) {
        if (static_cast<int>(cands.size()) >= c_.top_k) break;
        cands.push_back(prev[static_cast<size_t>(i)]);
      }
    }
    out.candidates = std::move(cands);
    out.parse.text = "n/a";
    return out;
  }

 private:
  const Component& c_;
  StepInput in_;
  bool asked_ = false;
  std::vector<int> order_;
};

// ---------------------------------------------------------------------------------------------------------------------
// Critic: one call writes strengths and weaknesses of every candidate.

class CriticStep : public Step {
 public:
  CriticStep(const Component& c, StepInput in) : c_(c), in_(in) {}
  std::vector<CallSpec> NextCalls() override {
    if (asked_) return {};
    asked_ = true;
    const auto& prev = in_.state->candidates;
    if (prev.empty()) return {};
    std::string p = fmt::format(
        "Instruction:\n{}\n\nCandidate responses:\n{}For each of the {} responses, write its strengths and its "
        "weaknesses as an answer to the instruction: what it gets right, what it gets wrong or leaves out. Be specific "
        "and brief. Cover every response, in order, in exactly this layout:\n[1]\nStrengths: ...\nWeaknesses: ...\n"
        "[2]\nStrengths: ...\nWeaknesses: ...",
        Clip(QueryText(*in_.query), in_.clip_bytes), ListCandidates(prev, in_.clip_bytes, false), prev.size());
    return {{"critic", Tuned(UserPrompt(*in_.query, std::move(p)), c_)}};
  }
  void OnResult(size_t, const StatusOr<ChatResult>& r, ParseOutcome* parse) override {
    if (!r.ok()) return;
    critiques_ = ParseCritiques(r->content, static_cast<int>(in_.state->candidates.size()), parse);
  }
  StepOutput Finish() override {
    StepOutput out;
    const auto& prev = in_.state->candidates;
    for (size_t i = 0; i < critiques_.size() && i < prev.size(); ++i) {
      if (!critiques_[i].empty()) out.critiques[prev[i].id] = critiques_[i];
    }
    out.parse.text = "n/a";
    return out;
  }

 private:
  const Component& c_;
  StepInput in_;
  bool asked_ = false;
  std::vector<std::string> critiques_;
};

// ---------------------------------------------------------------------------------------------------------------------
// Verifier: per candidate, reasoning, then a verdict in the same conversation; drops candidates judged incorrect.

class VerifierStep : public Step {
 public:
  VerifierStep(const Component& c, StepInput in)
      : c_(c), in_(in), reasoning_(in.state->candidates.size()), verdict_(in.state->candidates.size()) {}
  std::vector<CallSpec> NextCalls() override {
    const auto& prev = in_.state->candidates;
    std::vector<CallSpec> calls;
    pending_.clear();
    if (stage_ == 0) {
      for (size_t i = 0; i < prev.size(); ++i) {
        calls.push_back({"verifier:reasoning", Tuned(UserPrompt(*in_.query, FirstPrompt(i)), c_)});
        pending_.push_back(i);
      }
    } else if (stage_ == 1) {
      for (size_t i = 0; i < prev.size(); ++i) {
        if (!reasoning_[i]) continue;  // its reasoning failed: the candidate stays, unjudged
        ChatRequest r = UserPrompt(*in_.query, FirstPrompt(i));
        r.messages.push_back({.role = "assistant", .content = Clip(*reasoning_[i], in_.clip_bytes)});
        r.messages.push_back({.role = "user",
                              .content = "Given your reasoning, is the response correct? Reply with one word: "
                                         "Correct or Incorrect."});
        calls.push_back({"verifier:verdict", Tuned(std::move(r), c_, kVerdictMaxTokens)});
        pending_.push_back(i);
      }
    }
    ++stage_;
    return calls;
  }
  void OnResult(size_t i, const StatusOr<ChatResult>& r, ParseOutcome* parse) override {
    const size_t cand = pending_[i];
    if (stage_ == 1) {
      parse->text = "n/a";
      if (r.ok()) reasoning_[cand] = r->content;
    } else if (r.ok()) {
      verdict_[cand] = ParseVerdict(r->content, parse);
    }
  }
  StepOutput Finish() override {
    StepOutput out;
    const auto& prev = in_.state->candidates;
    std::vector<Candidate> kept;
    for (size_t i = 0; i < prev.size(); ++i) {
      if (verdict_[i] && !*verdict_[i]) continue;  // judged incorrect
      Candidate c = prev[i];
      if (reasoning_[i]) c.verification = *reasoning_[i];
      kept.push_back(std::move(c));
    }
    if (kept.empty() && !prev.empty()) {
      out.candidates = prev;  // every candidate judged incorrect: keep them all rather than answer nothing
      out.parse.text = "partial: every candidate judged incorrect; all kept";
      return out;
    }
    out.candidates = std::move(kept);
    out.parse.text = "n/a";
    return out;
  }

 private:
  std::string FirstPrompt(size_t i) const {
    const Candidate& c = in_.state->candidates[i];
    return fmt::format(
        "Instruction:\n{}\n\nResponse:\n{}\n\n{}Think step by step about whether this response answers the "
        "instruction correctly and completely. Check each claim and each step of its reasoning, and explain what is "
        "right and what is wrong in it.",
        Clip(QueryText(*in_.query), in_.clip_bytes), Clip(c.text, in_.clip_bytes),
        c.critique.empty() ? "" : "A reviewer's critique of it:\n" + Clip(c.critique, in_.clip_bytes) + "\n\n");
  }

  const Component& c_;
  StepInput in_;
  int stage_ = 0;
  std::vector<size_t> pending_;
  std::vector<std::optional<std::string>> reasoning_;
  std::vector<std::optional<bool>> verdict_;
};

// ---------------------------------------------------------------------------------------------------------------------
// Unit-test generator and evaluator.

class UnitTestGeneratorStep : public Step {
 public:
  UnitTestGeneratorStep(const Component& c, StepInput in) : c_(c), in_(in) {}
  std::vector<CallSpec> NextCalls() override {
    if (asked_) return {};
    asked_ = true;
    std::string p = fmt::format(
        "Instruction:\n{}\n\nDo not answer the instruction. Instead write {} short unit tests for an answer to it: "
        "statements, each checkable on its own, that a correct and complete answer satisfies (for example \"The "
        "answer states that the result is 42.\" or \"The answer names both causes.\"). Reply with a numbered list, "
        "one test per line, and nothing else.",
        Clip(QueryText(*in_.query), in_.clip_bytes), kUnitTestsPerGenerator);
    return {{"unit_test_generator", Tuned(UserPrompt(*in_.query, std::move(p)), c_)}};
  }
  void OnResult(size_t, const StatusOr<ChatResult>& r, ParseOutcome* parse) override {
    if (!r.ok()) return;
    std::vector<std::string> tests = ParseUnitTests(Clip(r->content, in_.clip_bytes), kUnitTestsPerGenerator, parse);
    if (parse->usable()) tests_ = std::move(tests);
  }
  StepOutput Finish() override {
    StepOutput out;
    if (tests_) out.unit_tests = std::move(tests_);
    out.parse.text = "n/a";
    return out;
  }

 private:
  const Component& c_;
  StepInput in_;
  bool asked_ = false;
  std::optional<std::vector<std::string>> tests_;
};

class UnitTestEvaluatorStep : public Step {
 public:
  UnitTestEvaluatorStep(const Component& c, StepInput in) : c_(c), in_(in), passed_(in.state->candidates.size()) {}
  std::vector<CallSpec> NextCalls() override {
    if (asked_) return {};
    asked_ = true;
    const auto& prev = in_.state->candidates;
    const auto& tests = in_.state->unit_tests;
    if (tests.empty()) return {};
    std::string list;
    for (size_t t = 0; t < tests.size(); ++t) list += fmt::format("{}. {}\n", t + 1, tests[t]);
    std::vector<CallSpec> calls;
    for (const Candidate& c : prev) {
      std::string p = fmt::format(
          "Instruction:\n{}\n\nResponse:\n{}\n\nUnit tests:\n{}\nFor each unit test, decide whether the response "
          "passes it. Reply with one line per test, in order, as \"<number>: PASS\" or \"<number>: FAIL\", and "
          "nothing else.",
          Clip(QueryText(*in_.query), in_.clip_bytes), Clip(c.text, in_.clip_bytes), list);
      calls.push_back({"unit_test_evaluator", Tuned(UserPrompt(*in_.query, std::move(p)), c_)});
    }
    return calls;
  }
  void OnResult(size_t i, const StatusOr<ChatResult>& r, ParseOutcome* parse) override {
    if (!r.ok()) return;
    passed_[i] = ParseTestResults(r->content, static_cast<int>(in_.state->unit_tests.size()), parse);
  }
  StepOutput Finish() override {
    StepOutput out;
    std::vector<Candidate> cands = in_.state->candidates;
    for (size_t i = 0; i < cands.size(); ++i) cands[i].tests_passed = passed_[i];
    // Most tests passed first; candidates whose evaluation failed go after the evaluated ones, in their order.
    std::stable_sort(cands.begin(), cands.end(), [](const Candidate& a, const Candidate& b) {
      return a.tests_passed.value_or(-1) > b.tests_passed.value_or(-1);
    });
    out.candidates = std::move(cands);
    out.parse.text = "n/a";
    return out;
  }

 private:
  const Component& c_;
  StepInput in_;
  bool asked_ = false;
  std::vector<std::optional<int>> passed_;
};

// ---------------------------------------------------------------------------------------------------------------------
// Components without calls.

// Majority over the candidates' extracted answers; ties go to the answer whose earliest candidate came first.
class VoteStep : public Step {
 public:
  VoteStep(const Component& c, StepInput in) : in_(in) { (void)c; }
  std::vector<CallSpec> NextCalls() override { return {}; }
  void OnResult(size_t, const StatusOr<ChatResult>&, ParseOutcome*) override {}
  StepOutput Finish() override {
    StepOutput out;
    const auto& prev = in_.state->candidates;
    // The answer form: letters when any candidate commits to one, else numbers, else the whole text.
    AnswerForm form = AnswerForm::kText;
    for (AnswerForm f : {AnswerForm::kChoice, AnswerForm::kNumber}) {
      if (std::any_of(prev.begin(), prev.end(), [f](const Candidate& c) { return NormalizedAnswer(c.text, f); })) {
        form = f;
        break;
      }
    }
    struct Tally {
      int votes = 0;
      size_t first = 0;  // position of its earliest candidate (candidates are in generator order)
    };
    std::map<std::string, Tally> tally;
    int voters = 0;
    for (size_t i = 0; i < prev.size(); ++i) {
      std::optional<std::string> a = NormalizedAnswer(prev[i].text, form);
      if (!a) continue;
      ++voters;
      auto [it, fresh] = tally.try_emplace(*a, Tally{0, i});
      ++it->second.votes;
    }
    if (tally.empty()) {
      out.candidates = prev;
      out.parse.text = prev.empty() ? "failed: no candidates" : "failed: no answer could be extracted; kept all";
      return out;
    }
    const Tally* best = nullptr;
    std::string best_answer;
    for (const auto& [answer, t] : tally) {
      if (best == nullptr || t.votes > best->votes || (t.votes == best->votes && t.first < best->first)) {
        best = &t;
        best_answer = answer;
      }
    }
    out.candidates = std::vector<Candidate>{prev[best->first]};
    out.parse.text = fmt::format("ok: {} '{}' with {} of {} votes ({} candidates had no answer)", AnswerFormName(form),
                                 best_answer.substr(0, 40), best->votes, voters, prev.size() - voters);
    return out;
  }

 private:
  StepInput in_;
};

// Orders candidates by the outcome predictor's score of their expert for this query; keeps the top_k.
class PredictedRankerStep : public Step {
 public:
  PredictedRankerStep(const Component& c, StepInput in) : c_(c), in_(in) {}
  std::vector<CallSpec> NextCalls() override { return {}; }
  void OnResult(size_t, const StatusOr<ChatResult>&, ParseOutcome*) override {}
  StepOutput Finish() override {
    StepOutput out;
    std::vector<Candidate> cands = in_.state->candidates;
    if (in_.scorer == nullptr || !*in_.scorer) {
      out.candidates = std::move(cands);
      out.parse.text = "failed: no scorer (no router model); order kept";
      return out;
    }
    std::vector<std::string> experts;
    for (const Candidate& c : cands) experts.push_back(c.expert);
    std::vector<double> scores = (*in_.scorer)(QueryText(*in_.query), experts);
    if (scores.size() != cands.size()) {
      out.candidates = std::move(cands);
      out.parse.text = "failed: the scorer returned the wrong number of scores; order kept";
      return out;
    }
    std::vector<size_t> idx(cands.size());
    std::iota(idx.begin(), idx.end(), 0);
    auto key = [&](size_t i) {
      return std::isfinite(scores[i]) ? scores[i] : -std::numeric_limits<double>::infinity();
    };
    std::stable_sort(idx.begin(), idx.end(), [&](size_t a, size_t b) { return key(a) > key(b); });
    std::vector<Candidate> kept;
    int unknown = 0;
    for (size_t i : idx) {
      if (!std::isfinite(scores[i])) ++unknown;
      if (static_cast<int>(kept.size()) < c_.top_k) kept.push_back(cands[i]);
    }
    out.candidates = std::move(kept);
    out.parse.text =
        unknown == 0 ? "ok" : fmt::format("partial: {} candidates' experts unknown to the predictor", unknown);
    return out;
  }

 private:
  const Component& c_;
  StepInput in_;
};

}  // namespace

std::string QueryText(const ChatRequest& request) {
  if (request.messages.size() == 1) return request.messages[0].content;
  std::string s;
  for (const ChatMessage& m : request.messages) s += m.role + ": " + m.content + "\n";
  return s;
}

std::unique_ptr<Step> MakeStep(const Component& component, StepInput in) {
  switch (component.type) {
    case ComponentType::kGenerator:
    case ComponentType::kFuser:
      return std::make_unique<SamplingStep>(component, in);
    case ComponentType::kRanker:
      return std::make_unique<RankerStep>(component, in);
    case ComponentType::kCritic:
      return std::make_unique<CriticStep>(component, in);
    case ComponentType::kVerifier:
      return std::make_unique<VerifierStep>(component, in);
    case ComponentType::kUnitTestGenerator:
      return std::make_unique<UnitTestGeneratorStep>(component, in);
    case ComponentType::kUnitTestEvaluator:
      return std::make_unique<UnitTestEvaluatorStep>(component, in);
    case ComponentType::kVote:
      return std::make_unique<VoteStep>(component, in);
    case ComponentType::kPredictedRanker:
      return std::make_unique<PredictedRankerStep>(component, in);
  }
  return nullptr;
}

}  // namespace baton::archon
