// CostModel: list prices x estimated tokens, or recorded mean cost scaled by prompt length.
#include <cmath>

#include "baton/predictor.h"
#include "predict/serial.h"

namespace baton {

StatusOr<CostModel> CostModel::Fit(const Dataset& train) {
  if (train.num_experts() == 0) return Status::FailedPrecondition("cost model: training set has no experts");
  CostModel m;
  const size_t ne = train.num_experts();
  m.usd_per_tok_in_.assign(ne, NAN);
  m.usd_per_tok_out_.assign(ne, NAN);
  m.mean_tokens_out_.assign(ne, NAN);
  m.mean_cost_.assign(ne, NAN);
  m.mean_chars_.assign(ne, NAN);
  double all_tok = 0, all_tok_n = 0;
  for (size_t e = 0; e < ne; ++e) {
    const ExpertRecord& x = train.expert(e);
    m.experts_.push_back(x.name);
    if (x.usd_per_mtok_in && x.usd_per_mtok_out) {
      m.usd_per_tok_in_[e] = *x.usd_per_mtok_in / 1e6;
      m.usd_per_tok_out_[e] = *x.usd_per_mtok_out / 1e6;
    }
    double tok = 0, tok_n = 0, cost = 0, cost_n = 0, chars = 0;
    for (size_t q = 0; q < train.num_queries(); ++q) {
      const float t = train.tokens_out(q, e);
      if (!std::isnan(t)) tok += t, tok_n += 1;
      const float c = train.cost(q, e);
      if (!std::isnan(c)) cost += c, cost_n += 1, chars += static_cast<double>(train.query(q).text.size());
    }
    if (tok_n > 0) m.mean_tokens_out_[e] = tok / tok_n, all_tok += tok, all_tok_n += tok_n;
    if (cost_n > 0) m.mean_cost_[e] = cost / cost_n, m.mean_chars_[e] = std::max(1.0, chars / cost_n);
  }
  // An expert with prices but no recorded output lengths borrows the other experts' mean.
  const double fallback_tok = all_tok_n > 0 ? all_tok / all_tok_n : 0.0;
  for (double& t : m.mean_tokens_out_) {
    if (std::isnan(t)) t = fallback_tok;
  }
  return m;
}

void CostModel::Predict(const QueryView& q, std::span<float> out) const {
  const double chars = static_cast<double>(q.text.size());
  for (size_t e = 0; e < out.size() && e < experts_.size(); ++e) {
    double c = NAN;
    if (!std::isnan(usd_per_tok_in_[e])) {
      c = chars / 4.0 * usd_per_tok_in_[e] + mean_tokens_out_[e] * usd_per_tok_out_[e];
    } else if (!std::isnan(mean_cost_[e])) {
      c = mean_cost_[e] * std::max(chars, 1.0) / mean_chars_[e];
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
  const size_t n = m.experts_.size();
  r.Expect(m.usd_per_tok_in_, n, "cost model prices in");
  r.Expect(m.usd_per_tok_out_, n, "cost model prices out");
  r.Expect(m.mean_tokens_out_, n, "cost model tokens out");
  r.Expect(m.mean_cost_, n, "cost model mean cost");
  r.Expect(m.mean_chars_, n, "cost model mean chars");
  BATON_RETURN_IF_ERROR(r.Finish().WithContext("cost model"));
  return m;
}

}  // namespace baton
