#include "gateway/router_service.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include <fmt/format.h>

#include "baton/policy.h"

namespace baton::gateway {

std::string_view LastUserText(const ChatRequest& request) {
  for (auto it = request.messages.rbegin(); it != request.messages.rend(); ++it) {
    if (it->role == "user") return it->content;
  }
  return {};
}

StatusOr<std::unique_ptr<RouterService>> RouterService::Create(std::vector<ExpertSlot> experts,
                                                               std::optional<RouterModel> model,
                                                               double default_lambda) {
  std::unique_ptr<RouterService> r(new RouterService());
  r->experts_ = std::move(experts);
  r->default_lambda_ = default_lambda;
  for (size_t i = 0; i < r->experts_.size(); ++i) r->by_name_[r->experts_[i].config.name] = i;
  if (model) {
    BATON_ASSIGN_OR_RETURN(std::shared_ptr<const Routing> routing, r->BuildRouting(std::move(*model)));
    r->routing_.store(std::move(routing));
  }
  return r;
}

StatusOr<std::shared_ptr<const RouterService::Routing>> RouterService::BuildRouting(RouterModel model) const {
  if (!model.predictor) return Status::InvalidArgument("router model has no predictor");
  auto r = std::make_shared<Routing>();
  r->score_index.assign(experts_.size(), -1);
  r->cost_index.assign(experts_.size(), -1);
  const auto& names = model.predictor->experts();
  const auto& cost_names = model.cost.experts();
  for (size_t i = 0; i < experts_.size(); ++i) {
    // An expert is matched to the model by its replay_model (the recorded name) or its name.
    const ExpertConfig& c = experts_[i].config;
    for (const std::string& n : {c.replay_model, c.name}) {
      if (n.empty()) continue;
      auto it = std::find(names.begin(), names.end(), n);
      if (it != names.end() && r->score_index[i] < 0) {
        r->score_index[i] = static_cast<int>(it - names.begin());
        auto ct = std::find(cost_names.begin(), cost_names.end(), n);
        if (ct != cost_names.end()) r->cost_index[i] = static_cast<int>(ct - cost_names.begin());
      }
    }
    // An expert the model was trained on no outcome of (a `baton fit --cold-start`) would be routed on the
    // predictor's prior alone: it stays reachable by name only, never chosen silently.
    const int k = r->score_index[i];
    const bool cold = k >= 0 && !model.train_outcomes.empty() && model.train_outcomes[k] == 0;
    if (cold) {
      std::fprintf(stderr,
                   "baton serve: expert '%s' has no training outcome in the router model (a cold start): it is "
                   "served by name only, never routed to\n",
                   c.name.c_str());
    }
    if (k >= 0 && !cold) r->routable.push_back(i);
  }
  if (r->routable.empty()) {
    std::string known;
    for (size_t i = 0; i < names.size() && i < 5; ++i) known += (i ? ", " : "") + names[i];
    return Status::InvalidArgument(fmt::format("the router model knows none of the configured experts (it knows {}{})",
                                               known, names.size() > 5 ? ", ..." : ""));
  }
  r->model = std::move(model);
  return std::shared_ptr<const Routing>(std::move(r));
}

Status RouterService::Reload(RouterModel model) {
  BATON_ASSIGN_OR_RETURN(std::shared_ptr<const Routing> routing, BuildRouting(std::move(model)));
  routing_.store(std::move(routing));
  return Status::Ok();
}

std::vector<size_t> RouterService::routable() const {
  const std::shared_ptr<const Routing> r = routing_.load();
  return r ? r->routable : std::vector<size_t>{};
}

std::optional<size_t> RouterService::Find(const std::string& name) const {
  auto it = by_name_.find(name);
  if (it == by_name_.end()) return std::nullopt;
  return it->second;
}

std::vector<double> RouterService::PredictedScores(std::string_view query_text,
                                                   const std::vector<std::string>& names) const {
  std::vector<double> out(names.size(), std::nan(""));
  const std::shared_ptr<const Routing> r = routing_.load();
  if (!r) return out;
  std::vector<float> score(r->model.predictor->num_experts());
  QueryView q;
  q.text = query_text;
  r->model.predictor->Predict(q, score);
  for (size_t i = 0; i < names.size(); ++i) {
    const std::optional<size_t> e = Find(names[i]);
    if (e && r->score_index[*e] >= 0) out[i] = score[r->score_index[*e]];
  }
  return out;
}

int64_t MaxTokensFor(const ExpertConfig& expert, const ChatRequest& request) {
  return request.max_tokens.value_or(expert.default_max_tokens);
}

double RouterService::PriceOf(size_t expert, double tokens_in, double tokens_out) const {
  const ExpertConfig& c = experts_[expert].config;
  return (tokens_in * c.usd_per_mtok_in.value_or(0) + tokens_out * c.usd_per_mtok_out.value_or(0)) / 1e6;
}

double RouterService::PriceBound(size_t expert, const ChatRequest& request, int64_t prompt_bound) const {
  const ExpertConfig& c = experts_[expert].config;
  if (!c.usd_per_mtok_in && !c.usd_per_mtok_out) return 0;
  return PriceOf(expert, static_cast<double>(prompt_bound), static_cast<double>(MaxTokensFor(c, request)));
}

StatusOr<std::vector<Candidate>> RouterService::Plan(const GatewayRequest& request) const {
  const BatonOptions& o = request.baton;
  std::vector<bool> in_pool(experts_.size(), o.experts.empty());
  for (const std::string& n : o.experts) {
    auto i = Find(n);
    if (!i) return Status::NotFound(fmt::format("baton.experts: unknown expert '{}'", n.substr(0, 100)));
    in_pool[*i] = true;
  }
  // This request's own reference: a reload meanwhile does not change the model under it.
  const std::shared_ptr<const Routing> routing = routing_.load();
  const RouterModel* model = routing ? &routing->model : nullptr;
  std::vector<float> score, cost;
  QueryView q;
  q.text = LastUserText(request.chat);
  if (model) {  // the score prediction (the expensive part) only when routing
    cost.resize(model->cost.experts().size());
    model->cost.Predict(q, cost);
    if (request.model == "baton") {
      score.resize(model->predictor->num_experts());
      model->predictor->Predict(q, score);
    }
  }
  // The prompt's token bound serialises the request's extra fields: computed at most once, and only when needed.
  std::optional<int64_t> bound;
  auto prompt_bound = [&] {
    if (!bound) bound = PromptTokenBound(request.chat);
    return *bound;
  };
  auto predicted_cost = [&](size_t i) {
    const int ci = routing ? routing->cost_index[i] : -1;
    double c = ci >= 0 ? cost[ci] : std::nan("");
    if (!std::isfinite(c) || c < 0) c = PriceBound(i, request.chat, prompt_bound());
    return c;
  };
  if (request.model != "baton") {
    auto i = Find(request.model);
    if (!i) {
      return Status::NotFound(
          fmt::format("model '{}' does not exist (use \"baton\" or an expert's name; see "
                      "GET /v1/models)",
                      request.model.substr(0, 100)));
    }
    Candidate c{.expert = *i,
                .predicted_cost = model ? predicted_cost(*i) : PriceBound(*i, request.chat, prompt_bound())};
    if (o.max_cost_usd && c.predicted_cost > *o.max_cost_usd) {
      return Status::InvalidArgument(fmt::format("expert '{}' is predicted to cost ${:.6f}, over max_cost_usd ${:.6f}",
                                                 request.model, c.predicted_cost, *o.max_cost_usd));
    }
    return std::vector<Candidate>{c};
  }
  if (!model) {
    return Status::FailedPrecondition("this gateway has no router model; ask for an expert by name");
  }
  const double lambda = o.lambda.value_or(default_lambda_);
  // Per routable expert in the pool and under max_cost: its score and cost, in the router's own arrays.
  std::vector<float> s, c;
  std::vector<size_t> idx;
  for (size_t i : routing->routable) {
    if (!in_pool[i]) continue;
    const double pc = predicted_cost(i);
    if (o.max_cost_usd && pc > *o.max_cost_usd) continue;
    idx.push_back(i);
    s.push_back(score[routing->score_index[i]]);
    c.push_back(static_cast<float>(pc));
  }
  if (idx.empty()) {
    return Status::InvalidArgument(o.max_cost_usd ? "no expert is predicted to cost at most baton.max_cost_usd"
                                                  : "no routable expert in baton.experts");
  }
  std::vector<size_t> order(idx.size());
  for (size_t k = 0; k < order.size(); ++k) order[k] = k;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    const double ua = s[a] - lambda * c[a], ub = s[b] - lambda * c[b];
    if (ua != ub) return ua > ub;
    return c[a] < c[b];
  });
  // The policy's own pick goes first (it agrees with the sort but for NaN handling and tie rules).
  const int best = ChooseExpert(s, c, lambda);
  if (best >= 0) {
    auto it = std::find(order.begin(), order.end(), static_cast<size_t>(best));
    std::rotate(order.begin(), it, it + 1);
  }
  std::vector<Candidate> out;
  for (size_t k : order) out.push_back({.expert = idx[k], .predicted_cost = c[k], .predicted_score = s[k]});
  return out;
}

}  // namespace baton::gateway
