// Escalation after a cheap answer: call one or two cheap experts first, look at what they answered, and either accept
// the first one's answer or escalate to the router's choice among the other experts. Every call made is paid for.
//
// The acceptance rule is a logistic model of "the first cheap answer is right" on a few signals (features) that need
// no judge model:
//   [0] 1 (bias)
//   [1] the router's predicted score of the first cheap expert for this query
//   [2] the router's predicted score of the second cheap expert (0 when only one is called)
//   [3] the first answer commits to an answer of the task's form (a letter, a number; text: not blank)
//   [4] the second answer commits to one (0 when only one is called)
//   [5] both answers commit and are equal after normalisation (NormalizedAnswer); 0 when only one is called
//   [6] an answer text is available for the first expert (1 in serving; 0 for a recorded dataset row without one, so
//       the rule falls back on the predicted scores for such queries)
// The model is fitted on train only (the bench uses the default router's out-of-fold scores on train, so the score
// features are not optimistic); its threshold is the operating point.
//
// Use in a gateway (serving): route the request to `cheap_experts()` (buffering their answers), build CheapAnswer per
// cheap expert with the router's predicted score, call ShouldAccept(); on false, call the router's choice at the
// request's lambda among the experts not in cheap_experts() and stream that answer. The cost is the sum of all calls.
//
// Thread-safety: AcceptanceModel and EscalationPolicy are immutable after construction; const methods are safe to
// call concurrently. The free functions are pure.
#pragma once

#include <array>
#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "baton/answer.h"
#include "baton/dataset.h"
#include "baton/status.h"

namespace baton {

inline constexpr size_t kAcceptanceFeatures = 7;
using AcceptanceFeatures = std::array<float, kAcceptanceFeatures>;

// One cheap expert's answer as the acceptance rule sees it.
struct CheapAnswer {
  std::optional<std::string_view> text;  // nullopt: no answer text available (recorded data without a response)
  float predicted_score = 0;             // the router's predicted score of this expert for the query
};

// The features above for one or two cheap answers (the first is the one that would be accepted). More than two:
// the first two are used. Costs at most two answer extractions (microseconds for a few KB of text).
AcceptanceFeatures ExtractAcceptanceFeatures(std::span<const CheapAnswer> answers, AnswerForm form);

// The same from answers already normalised (NormalizedAnswer; nullopt = no answer committed), for callers that
// extract each answer once and reuse it (the bench). has_text: [6].
AcceptanceFeatures AcceptanceFeaturesOf(const std::optional<std::string>* first, const std::optional<std::string>* second,
                                        float score_first, float score_second, bool has_text);

// Logistic regression of the first cheap answer's recorded score (0..1; fractional scores are soft labels).
class AcceptanceModel {
 public:
  AcceptanceModel() = default;  // weights all 0: probability 0.5 everywhere
  explicit AcceptanceModel(const std::array<double, kAcceptanceFeatures>& w) : w_(w) {}
  // Newton iterations with an L2 penalty `l2` on the non-bias weights; deterministic. Fewer than 2 rows: all 0.
  static AcceptanceModel Fit(std::span<const AcceptanceFeatures> x, std::span<const float> label, double l2 = 1.0);
  double Probability(const AcceptanceFeatures& f) const;
  const std::array<double, kAcceptanceFeatures>& weights() const { return w_; }
  std::string Describe() const;

 private:
  std::array<double, kAcceptanceFeatures> w_{};
};

// The reusable decision: which cheap experts to call and when to accept the first one's answer.
class EscalationPolicy {
 public:
  EscalationPolicy(std::vector<std::string> cheap_experts, AcceptanceModel model, double threshold)
      : cheap_(std::move(cheap_experts)), model_(model), threshold_(threshold) {}
  const std::vector<std::string>& cheap_experts() const { return cheap_; }
  const AcceptanceModel& model() const { return model_; }
  double threshold() const { return threshold_; }
  // True: return the first cheap answer; false: escalate. `answers` follow cheap_experts()' order.
  bool ShouldAccept(std::span<const CheapAnswer> answers, AnswerForm form) const {
    return model_.Probability(ExtractAcceptanceFeatures(answers, form)) >= threshold_;
  }

 private:
  std::vector<std::string> cheap_;
  AcceptanceModel model_;
  double threshold_;
};

// Recorded answer texts, keyed by (query id, model name), from a dataset folder's responses.jsonl
// ({"query_id", "model", "response"} per line). NotFound when the file is missing; DataLoss naming path:line for a
// malformed line.
using RecordedResponses = std::unordered_map<std::string, std::string>;
StatusOr<RecordedResponses> ReadResponses(const std::string& path);
std::string ResponseKey(std::string_view query_id, std::string_view model);

// The answer texts of a Dataset's cells: nq x ne, an empty optional where none is recorded.
struct AnswerTable {
  size_t num_experts = 0;
  std::vector<std::optional<std::string>> text;  // row-major
  size_t recorded = 0;
  const std::optional<std::string>& at(size_t q, size_t e) const { return text[q * num_experts + e]; }
};
AnswerTable AnswersFor(const RecordedResponses& responses, const Dataset& ds);

// The answer form of each domain of `ds`, judged from its recorded answers (used on train only): a choice when at
// least half of the domain's answers extract a letter, else a number when at least half extract a number, else text.
// Domains with no recorded answer: text. Indexed like ds.domains().
std::vector<AnswerForm> DomainForms(const Dataset& ds, const AnswerTable& answers);

}  // namespace baton
