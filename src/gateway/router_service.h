// RouterService: the experts the gateway serves and the router model that picks among them.
//
// For model "baton" it featurises the last user message, predicts each expert's score (Predictor) and cost
// (CostModel), and orders the allowed experts best first: ChooseExpert's pick, then the others by
// score - lambda x cost (ties to the cheaper). For an expert's name it returns just that expert.
//
// Reload: Reload() swaps in a new router model (a `baton fit` file re-read on SIGHUP or POST /admin/reload). The
// routing state (model + the experts it can choose) is one immutable object behind a shared_ptr: Plan() takes its own
// reference at the start, so a request in flight keeps the model it was planned with, and the old model is freed when
// its last request is done. A model that knows none of the configured experts is refused and the old one kept.
//
// Thread-safety: the experts are immutable after Create; Plan(), Reload() and the experts' Complete() are safe from
// many threads (the model pointer is an atomic shared_ptr).
#pragma once

#include <atomic>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "baton/expert.h"
#include "baton/predictor.h"
#include "baton/status.h"
#include "gateway/request_parser.h"

namespace baton::gateway {

struct ExpertSlot {
  ExpertConfig config;
  std::unique_ptr<ExpertBackend> backend;  // metered (meter below)
  std::shared_ptr<ExpertMeter> meter;
};

struct Candidate {
  size_t expert = 0;            // index into RouterService::experts()
  double predicted_cost = 0;    // USD; 0 when unknown
  double predicted_score = -1;  // -1 when the router has no prediction (pass-through)
};

class RouterService {
 public:
  // `model` may be empty (then only pass-through by name works). Experts the model does not know can only be
  // reached by name. InvalidArgument when the model knows none of the experts.
  static StatusOr<std::unique_ptr<RouterService>> Create(std::vector<ExpertSlot> experts,
                                                         std::optional<RouterModel> model, double default_lambda);

  // The experts to try, best first. Errors: NotFound (unknown model name or unknown name in baton.experts),
  // FailedPrecondition ("baton" without a router model), InvalidArgument (no expert fits max_cost_usd).
  StatusOr<std::vector<Candidate>> Plan(const GatewayRequest& request) const;

  // The most a call can cost at the expert's list prices: `prompt_bound` tokens in (PromptTokenBound(request), from
  // baton/expert.h; passed in because it serialises the request's extra fields, so a caller computes it once per
  // request) and MaxTokensFor(expert, request) out. It is a true bound only because the gateway sends that max_tokens
  // upstream and experts clamp reported usage to these bounds. 0 when the expert has no prices.
  double PriceBound(size_t expert, const ChatRequest& request, int64_t prompt_bound) const;
  // List prices x tokens (0 for an expert without prices).
  double PriceOf(size_t expert, double tokens_in, double tokens_out) const;

  // The router model's predicted score of each named expert for `query_text` (NaN for a name it does not know; all
  // NaN without a router model). Archon's predicted-score ranker reads it.
  std::vector<double> PredictedScores(std::string_view query_text, const std::vector<std::string>& names) const;
  // Replaces the router model for requests planned from now on; requests in flight keep theirs. InvalidArgument
  // (the old model stays) when the model has no predictor or knows none of the configured experts.
  Status Reload(RouterModel model);

  const std::vector<ExpertSlot>& experts() const { return experts_; }
  std::optional<size_t> Find(const std::string& name) const;
  bool has_router() const { return routing_.load() != nullptr; }
  // Experts the router can choose now (known to its current model), by index.
  std::vector<size_t> routable() const;

 private:
  // The router model and what it means for the configured experts. Immutable once built.
  struct Routing {
    RouterModel model;
    std::vector<int> score_index, cost_index;  // per expert: its index in the predictor's / cost model's order, or -1
    std::vector<size_t> routable;
  };
  StatusOr<std::shared_ptr<const Routing>> BuildRouting(RouterModel model) const;

  RouterService() = default;
  std::vector<ExpertSlot> experts_;
  std::unordered_map<std::string, size_t> by_name_;
  std::atomic<std::shared_ptr<const Routing>> routing_;  // null = no router model
  double default_lambda_ = 0;
};

// The completion tokens a call may produce: the request's max_tokens, else the expert's default_max_tokens.
int64_t MaxTokensFor(const ExpertConfig& expert, const ChatRequest& request);

// The content of the last "user" message ("" when there is none).
std::string_view LastUserText(const ChatRequest& request);

}  // namespace baton::gateway
