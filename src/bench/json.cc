// The JSON form of a benchmark result, and atomic file writes.

#include <cmath>
#include <cstdio>

#include <fmt/format.h>

#include "baton/bench.h"

namespace baton {
namespace {

using nlohmann::json;

json Num(double v) {
  return std::isfinite(v) ? json(v) : json(nullptr);
}
json Opt(const std::optional<double>& v) {
  return v && std::isfinite(*v) ? json(*v) : json(nullptr);
}

json PointJson(const ExpertPoint& p) {
  return {{"expert", p.expert}, {"accuracy", Num(p.accuracy)}, {"cost_per_query", Num(p.cost_per_query)}};
}

json DomainsJson(const std::vector<std::string>& domains, const std::vector<double>& acc) {
  json out = json::object();
  for (size_t d = 0; d < domains.size() && d < acc.size(); ++d) out[domains[d]] = Num(acc[d]);
  return out;
}

json CiJson(const std::optional<ConfidenceInterval>& ci) {
  return ci ? json::array({Num(ci->lo), Num(ci->hi)}) : json(nullptr);
}

json RouterJson(const RouterResult& r, const BenchResult& b) {
  json curve = json::array();
  for (const CurvePoint& p : r.curve) {
    json pt = {{"lambda", Num(p.lambda)}, {"accuracy", Num(p.accuracy)}, {"cost_per_query", Num(p.cost_per_query)}};
    if (!std::isnan(p.strong_share)) pt["strong_share"] = p.strong_share;
    curve.push_back(std::move(pt));
  }
  json j = {{"name", r.name},
            {"default", r.is_default},
            {"curve", std::move(curve)},
            {"aiq", Num(r.aiq)},
            {"cost_at_95", Opt(r.cost_at_95)},
            {"acc_at_best_single_cost", Opt(r.acc_at_best_single_cost)},
            {"train_seconds", Num(r.train_seconds)},
            {"cv_aiq", Num(r.cv_aiq)},
            {"domain_accuracy", DomainsJson(b.domains, r.domain_accuracy)}};
  if (b.bootstrap > 0 && &r != &b.cascade) {
    j["aiq_ci"] = CiJson(r.ci.aiq);
    j["cost_at_95_ci"] = CiJson(r.ci.cost_at_95);
    j["acc_at_best_single_cost_ci"] = CiJson(r.ci.acc_at_best_single_cost);
  }
  if (b.experts.size() == 2) {
    j["apgr"] = Opt(r.apgr);
    j["cpt50"] = Opt(r.cpt50);
    j["cpt80"] = Opt(r.cpt80);
  }
  json tiers = json::array();
  for (const TierShare& t : r.tiers) {
    tiers.push_back({{"budget_fraction", t.budget_fraction},
                     {"accuracy", Num(t.accuracy)},
                     {"cost_per_query", Num(t.cost_per_query)},
                     {"cheap", Num(t.share[0])},
                     {"mid", Num(t.share[1])},
                     {"expensive", Num(t.share[2])}});
  }
  j["tier_share"] = std::move(tiers);
  if (!r.choice.empty()) {
    // Compact: one expert index per test query, aligned with the top-level test_query_ids (-1 = none).
    j["choices"] = {{"lambda", Num(r.choice_lambda)},
                    {"accuracy", Num(r.choice_accuracy)},
                    {"cost_per_query", Num(r.choice_cost_per_query)},
                    {"expert_index", r.choice}};
  }
  return j;
}

}  // namespace

json BenchResultToJson(const BenchResult& r) {
  json singles = json::array();
  for (const ExpertPoint& p : r.singles) singles.push_back(PointJson(p));
  json routers = json::array();
  for (const RouterResult& x : r.routers) routers.push_back(RouterJson(x, r));
  json universe = json::array();
  for (const UniverseStep& u : r.universe) {
    universe.push_back({{"expert", u.expert}, {"s", Num(u.s)}, {"cost_per_query", Num(u.cost_per_query)}});
  }
  json tiers = json::object();
  static const char* kTier[] = {"cheap", "mid", "expensive"};
  for (size_t e = 0; e < r.experts.size() && e < r.expert_tier.size(); ++e)
    tiers[r.experts[e]] = kTier[r.expert_tier[e]];
  json j = {{"train_queries", r.train_queries},
            {"test_queries", r.test_queries},
            {"experts", r.experts},
            {"test_query_ids", r.test_query_ids},
            {"best_single", PointJson(r.best_single)},
            {"best_single_domain_accuracy", DomainsJson(r.domains, r.best_single_domain_accuracy)},
            {"oracle", {{"accuracy", Num(r.oracle.accuracy)}, {"cost_per_query", Num(r.oracle.cost_per_query)}}},
            {"random", {{"accuracy", Num(r.random.accuracy)}, {"cost_per_query", Num(r.random.cost_per_query)}}},
            {"singles", std::move(singles)},
            {"cascade", RouterJson(r.cascade, r)},
            {"routers", std::move(routers)},
            {"default_router", r.default_router},
            {"default_selection", r.default_selection},

            {"universe", std::move(universe)},
            {"aiq_max_cost", Num(r.max_cost)},
            {"seconds", Num(r.seconds)}};
  if (r.prices_degenerate) {
    j["price_warning"] = "the experts' mean costs are equal (or unknown): no price tiers";
  } else {
    j["price_tiers"] = std::move(tiers);
  }
  if (!r.provenance.empty()) j["provenance"] = r.provenance;
  j["bootstrap_resamples"] = r.bootstrap;
  {
    const EscalationSummary& e = r.escalation;
    json esc = {{"ran", e.ran}, {"note", e.note}};
    if (e.ran) {
      json cand = json::object();
      for (const auto& [n, a] : e.candidates) cand[n] = Num(a);
      esc["cheap_experts"] = e.cheap;
      esc["acceptance_weights"] = std::vector<double>(e.model.weights().begin(), e.model.weights().end());
      esc["thresholds"] = e.thresholds;
      esc["train_aiq"] = Num(e.train_aiq);
      esc["default_train_aiq"] = Num(e.default_train_aiq);
      esc["candidates_train_aiq"] = std::move(cand);
      esc["answers_recorded_share"] = Num(e.answers_recorded_share);
    }
    j["escalation"] = std::move(esc);
  }
  if (!r.calibration.empty()) {
    // Per expert, the default router's bins of predicted score on test (empty bins left out).
    json cal = json::object();
    for (size_t e = 0; e < r.experts.size() && e < r.calibration.size(); ++e) {
      json bins = json::array();
      for (const CalibrationBin& c : r.calibration[e]) {
        if (c.count == 0) continue;
        bins.push_back({{"predicted", Num(c.predicted)}, {"realised", Num(c.realised)}, {"count", c.count}});
      }
      cal[r.experts[e]] = std::move(bins);
    }
    j["calibration"] = std::move(cal);
  }
  if (!r.domain_share.empty()) {
    json share = json::object();
    for (size_t d = 0; d < r.domains.size() && d < r.domain_share.size(); ++d) {
      json row = json::object();
      for (size_t e = 0; e < r.experts.size() && e < r.domain_share[d].size(); ++e)
        row[r.experts[e]] = Num(r.domain_share[d][e]);
      share[r.domains[d]] = std::move(row);
    }
    j["default_domain_share"] = std::move(share);
  }
  return j;
}

}  // namespace baton
