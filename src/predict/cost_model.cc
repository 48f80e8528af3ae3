// CostModel: list prices x estimated tokens, or recorded mean cost scaled by prompt length; per (domain, expert) where
// the domain has enough observations, else per expert.
#include <cmath>

#include "baton/predictor.h"
#include "predict/serial.h"

namespace baton {
namespace {

// Fewer observations than this for a (domain, expert) pair: use the expert's overall figures.
constexpr double kMinDomainObservations = 5;

// Running sums for one (domain or overall, expert) cell.
struct CostSums {
  double tok = 0, tok_n = 0, cost = 0, cost_n = 0, chars = 0;
  void Add(float tokens_out, float cost_usd, size_t prompt_chars) {
    if (!std::isnan(tokens_out)) tok += tokens_out, tok_n += 1;
    if (!std::isnan(cost_usd)) cost += cost_usd, cost_n += 1, chars += static_cast<double>(prompt_chars);
  }
  double MeanTokensOut(double min_n) const { return tok_n >= min_n && tok_n > 0 ? tok / tok_n : NAN; }
  double MeanCost(double min_n) const { return cost_n >= min_n && cost_n > 0 ? cost / cost_n : NAN; }
  double MeanChars(double min_n) const { return cost_n >= min_n && cost_n > 0 ? std::max(1.0, chars / cost_n) : NAN; }
};

}  // namespace

StatusOr<CostModel> CostModel::Fit(const Dataset& train) {
  if (train.num_experts() == 0) return Status::FailedPrecondition("cost model: training set has no experts");
  CostModel m;
  const size_t ne = train.num_experts(), nd = train.domains().size();
  m.usd_per_tok_in_.assign(ne, NAN);
  m.usd_per_tok_out_.assign(ne, NAN);
  m.domains_ = train.domains();
  std::vector<CostSums> overall(ne), by_domain(nd * ne);
  for (size_t e = 0; e < ne; ++e) {
    const ExpertRecord& x = train.expert(e);
    m.experts_.push_back(x.name);
    if (x.usd_per_mtok_in && x.usd_per_mtok_out) {
      m.usd_per_tok_in_[e] = *x.usd_per_mtok_in / 1e6;
      m.usd_per_tok_out_[e] = *x.usd_per_mtok_out / 1e6;
    }
  }
  for (size_t q = 0; q < train.num_queries(); ++q) {
    const size_t d = train.domain_of(q), chars = train.query(q).text.size();
    for (size_t e = 0; e < ne; ++e) {
      overall[e].Add(train.tokens_out(q, e), train.cost(q, e), chars);
      by_domain[d * ne + e].Add(train.tokens_out(q, e), train.cost(q, e), chars);
    }
  }
  double all_tok = 0, all_tok_n = 0;
  for (size_t e = 0; e < ne; ++e) {
    m.mean_tokens_out_.push_back(overall[e].MeanTokensOut(1));
    m.mean_cost_.push_back(overall[e].MeanCost(1));
    m.mean_chars_.push_back(overall[e].MeanChars(1));
    all_tok += overall[e].tok, all_tok_n += overall[e].tok_n;
  }
  // An expert with prices but no recorded output lengths borrows the other experts' mean.
  const double fallback_tok = all_tok_n > 0 ? all_tok / all_tok_n : 0.0;
  for (double& t : m.mean_tokens_out_) {
    if (std::isnan(t)) t = fallback_tok;
  }
  for (const CostSums& c : by_domain) {
    m.dom_tokens_out_.push_back(c.MeanTokensOut(kMinDomainObservations));
    m.dom_cost_.push_back(c.MeanCost(kMinDomainObservations));
    m.dom_chars_.push_back(c.MeanChars(kMinDomainObservations));
  }
  for (size_t d = 0; d < nd; ++d) m.domain_index_.emplace(m.domains_[d], d);
  return m;
}

void CostModel::Predict(const QueryView& q, std::span<float> out) const {
  const double chars = static_cast<double>(q.text.size());
  const auto dom = domain_index_.find(std::string(q.domain));
  const size_t ne = experts_.size();
  for (size_t e = 0; e < out.size() && e < ne; ++e) {
    double tokens_out = mean_tokens_out_[e], cost = mean_cost_[e], cost_chars = mean_chars_[e];
    if (dom != domain_index_.end()) {
      const size_t i = dom->second * ne + e;
      if (!std::isnan(dom_tokens_out_[i])) tokens_out = dom_tokens_out_[i];
      if (!std::isnan(dom_cost_[i])) cost = dom_cost_[i], cost_chars = dom_chars_[i];
    }
    double c = NAN;
    if (!std::isnan(usd_per_tok_in_[e])) {
      c = chars / 4.0 * usd_per_tok_in_[e] + tokens_out * usd_per_tok_out_[e];
    } else if (!std::isnan(cost)) {
      c = cost * std::max(chars, 1.0) / cost_chars;
    }
    out[e] = static_cast<float>(c);
  }
}

std::string CostModel::Serialize() const {
  std::string s;
  predict::ByteWriter w(&s);
  w.Strs(experts_);
  w.F64s(usd_per_tok_in_);
  w.F64s(usd_per_tok_out_);
  w.F64s(mean_tokens_out_);
  w.F64s(mean_cost_);
  w.F64s(mean_chars_);
  w.Strs(domains_);
  w.F64s(dom_tokens_out_);
  w.F64s(dom_cost_);
  w.F64s(dom_chars_);
  return s;
}

StatusOr<CostModel> CostModel::Deserialize(std::string_view bytes) {
  predict::ByteReader r(bytes);
  CostModel m;
  m.experts_ = r.Strs();
  m.usd_per_tok_in_ = r.F64s();
  m.usd_per_tok_out_ = r.F64s();
  m.mean_tokens_out_ = r.F64s();
  m.mean_cost_ = r.F64s();
  m.mean_chars_ = r.F64s();
  m.domains_ = r.Strs();
  m.dom_tokens_out_ = r.F64s();
  m.dom_cost_ = r.F64s();
  m.dom_chars_ = r.F64s();
  const size_t n = m.experts_.size(), cells = m.domains_.size() * n;
  r.Expect(m.usd_per_tok_in_, n, "cost model prices in");
  r.Expect(m.usd_per_tok_out_, n, "cost model prices out");
  r.Expect(m.mean_tokens_out_, n, "cost model tokens out");
  r.Expect(m.mean_cost_, n, "cost model mean cost");
  r.Expect(m.mean_chars_, n, "cost model mean chars");
  r.Expect(m.dom_tokens_out_, cells, "cost model per-domain tokens out");
  r.Expect(m.dom_cost_, cells, "cost model per-domain cost");
  r.Expect(m.dom_chars_, cells, "cost model per-domain chars");
  BATON_RETURN_IF_ERROR(r.Finish().WithContext("cost model"));
  for (size_t d = 0; d < m.domains_.size(); ++d) m.domain_index_.emplace(m.domains_[d], d);
  return m;
}

std::vector<float> PredictAllCosts(const CostModel& cm, const Dataset& ds) {
  const size_t ne = ds.num_experts();
  std::vector<float> out(ds.num_queries() * ne);
  for (size_t q = 0; q < ds.num_queries(); ++q) {
    cm.Predict({.text = ds.query(q).text, .domain = ds.query(q).domain}, std::span<float>(out.data() + q * ne, ne));
  }
  return out;
}

}  // namespace baton
