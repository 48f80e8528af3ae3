#include "route.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

namespace baton::py {

StatusOr<Routed> Predict(const RouterModel& model, const Dataset& ds) {
  const std::vector<std::string>& names = model.predictor->experts();
  const size_t nq = ds.num_queries(), ne = names.size();
  if (ds.num_experts() != ne) {
    return Status::InvalidArgument(fmt::format("the dataset has {} experts, the model {}", ds.num_experts(), ne));
  }
  for (size_t e = 0; e < ne; ++e) {
    if (ds.expert(e).name != names[e]) {
      return Status::InvalidArgument(
          fmt::format("expert {} is '{}' in the dataset but '{}' in the model", e, ds.expert(e).name, names[e]));
    }
  }
  // The cost model may list the experts in another order: map by name.
  const auto& cost_names = model.cost.experts();
  std::vector<size_t> cost_col(ne);
  for (size_t e = 0; e < ne; ++e) {
    const auto it = std::find(cost_names.begin(), cost_names.end(), names[e]);
    if (it == cost_names.end()) {
      return Status::DataLoss(fmt::format("model file: the cost model has no entry for '{}'", names[e]));
    }
    cost_col[e] = static_cast<size_t>(it - cost_names.begin());
  }
  Routed r;
  r.score = PredictAll(*model.predictor, ds);
  r.cost.resize(nq * ne);
  std::vector<float> row(cost_names.size());
  for (size_t q = 0; q < nq; ++q) {
    model.cost.Predict({.text = ds.query(q).text, .domain = ds.query(q).domain}, row);
    for (size_t e = 0; e < ne; ++e) r.cost[q * ne + e] = row[cost_col[e]];
  }
  return r;
}

StatusOr<Routed> RouteDataset(const RouterModel& model, const Dataset& ds, double budget_usd,
                              const std::vector<std::string>& allowed_names) {
  if (!(budget_usd >= 0) || std::isinf(budget_usd)) {
    return Status::InvalidArgument(fmt::format("budget {} must be a non-negative amount", budget_usd));
  }
  if (ds.num_queries() == 0) return Status::FailedPrecondition("no queries to route");
  const std::vector<std::string>& names = model.predictor->experts();
  const size_t ne = names.size();
  std::vector<bool> allowed(ne, false);
  if (allowed_names.empty()) {
    for (size_t e = 0; e < ne && e < ds.num_experts(); ++e) allowed[e] = ds.ObservedCount(e) > 0;
    if (std::find(allowed.begin(), allowed.end(), true) == allowed.end()) allowed.assign(ne, true);
  }
  for (const std::string& name : allowed_names) {
    const auto it = std::find(names.begin(), names.end(), name);
    if (it == names.end()) {
      std::string known;
      for (const auto& n : names) known += (known.empty() ? "" : ", ") + n;
      return Status::NotFound(fmt::format("the model does not know expert '{}' (known: {})", name, known));
    }
    allowed[static_cast<size_t>(it - names.begin())] = true;
  }
  BATON_ASSIGN_OR_RETURN(Routed r, Predict(model, ds));
  for (size_t q = 0; q < ds.num_queries(); ++q) {
    for (size_t e = 0; e < ne; ++e) {
      if (!allowed[e]) r.score[q * ne + e] = NAN;  // not allowed = not a candidate
    }
  }
  BATON_ASSIGN_OR_RETURN(r.assignment, AssignBatch(r.score, r.cost, ne, budget_usd));
  return r;
}

StatusOr<Dataset> PromptDataset(const RouterModel& model, std::vector<std::string> texts,
                                std::vector<std::string> domains, std::vector<std::string> subdomains) {
  const size_t n = texts.size();
  if (!domains.empty() && domains.size() != n) {
    return Status::InvalidArgument(fmt::format("{} prompts but {} domains", n, domains.size()));
  }
  if (!subdomains.empty() && subdomains.size() != n) {
    return Status::InvalidArgument(fmt::format("{} prompts but {} subdomains", n, subdomains.size()));
  }
  std::vector<ExpertRecord> experts;
  for (const std::string& name : model.predictor->experts()) experts.push_back({.name = name});
  std::vector<QueryRecord> queries(n);
  for (size_t i = 0; i < n; ++i) {
    queries[i].id = static_cast<int64_t>(i + 1);
    queries[i].external_id = std::to_string(i);
    queries[i].text = std::move(texts[i]);
    if (!domains.empty()) queries[i].domain = std::move(domains[i]);
    if (!subdomains.empty()) queries[i].source = std::move(subdomains[i]);
  }
  return Dataset(std::move(experts), std::move(queries));
}

}  // namespace baton::py
