#include "baton/stats.h"

#include <algorithm>
#include <cmath>

namespace baton {

DatasetStats ComputeStats(const Dataset& ds) {
  DatasetStats s;
  s.queries = ds.num_queries();
  std::vector<DomainStats> dom(ds.domains().size());
  for (size_t d = 0; d < dom.size(); ++d) dom[d].domain = ds.domains()[d];
  for (size_t q = 0; q < ds.num_queries(); ++q) {
    DomainStats& d = dom[ds.domain_of(q)];
    ++d.queries;
    for (size_t e = 0; e < ds.num_experts(); ++e) d.outcomes += ds.observed(q, e);
  }
  for (size_t e = 0; e < ds.num_experts(); ++e) {
    ExpertStats x{ds.expert(e).name, ds.ObservedCount(e), ds.MeanScore(e), ds.MeanCost(e)};
    s.outcomes += x.observed;
    s.experts.push_back(x);
  }
  std::stable_sort(dom.begin(), dom.end(), [](const DomainStats& a, const DomainStats& b) {
    return a.queries != b.queries ? a.queries > b.queries : a.domain < b.domain;
  });
  s.domains = std::move(dom);
  return s;
}

nlohmann::json StatsToJson(const DatasetStats& s) {
  auto num = [](double v) { return std::isnan(v) ? nlohmann::json(nullptr) : nlohmann::json(v); };
  nlohmann::json j = {{"queries", s.queries}, {"outcomes", s.outcomes}};
  j["experts"] = nlohmann::json::array();
  for (const auto& e : s.experts) {
    j["experts"].push_back({{"name", e.name},
                            {"observed", e.observed},
                            {"mean_score", num(e.mean_score)},
                            {"mean_cost_usd", num(e.mean_cost)}});
  }
  j["domains"] = nlohmann::json::array();
  for (const auto& d : s.domains) {
    j["domains"].push_back({{"domain", d.domain}, {"queries", d.queries}, {"outcomes", d.outcomes}});
  }
  return j;
}

}  // namespace baton
