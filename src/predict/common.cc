#include "predict/common.h"

#include <algorithm>
#include <numeric>

namespace baton::predict {
namespace {

std::string SubKey(std::string_view domain, std::string_view source) {
  std::string k(domain);
  k += '\x1f';
  k += source;
  return k;
}

}  // namespace

Status PredictorBase::Prepare(const Dataset& train, bool text, TrainData* td) {
  if (train.num_experts() == 0) return Status::FailedPrecondition("training set has no experts");
  size_t observed = 0;
  for (float s : train.score_matrix()) observed += !std::isnan(s);
  if (observed == 0) {
    return Status::FailedPrecondition("training set has no observed (query, expert) outcome (" +
                                      std::to_string(train.num_queries()) + " queries, " +
                                      std::to_string(train.num_experts()) + " experts)");
  }
  experts_.clear();
  for (const auto& e : train.experts()) experts_.push_back(e.name);
  domains_ = train.domains();
  domain_index_.clear();
  for (uint32_t d = 0; d < domains_.size(); ++d) domain_index_.emplace(domains_[d], d);
  text_ = text;
  const size_t n = train.num_queries(), ne = train.num_experts();
  td->n = n;
  td->num_experts = ne;
  td->num_domains = domains_.size();
  td->dom.resize(n);
  for (size_t q = 0; q < n; ++q) td->dom[q] = train.domain_of(q);
  subs_.clear();
  sub_index_.clear();
  td->sub.assign(n, kNoDomain);
  td->sub_parent.clear();
  for (size_t q = 0; q < n; ++q) {
    const QueryRecord& r = train.query(q);
    if (r.domain.empty() || r.source.empty()) continue;
    auto [it, added] = sub_index_.emplace(SubKey(r.domain, r.source), static_cast<uint32_t>(subs_.size()));
    if (added) subs_.push_back(it->first), td->sub_parent.push_back(td->dom[q]);
    td->sub[q] = it->second;
  }
  td->num_subs = subs_.size();
  td->y = train.score_matrix();
  td->expert_mean.assign(ne, 0.5);
  double all_sum = 0;
  for (float s : td->y) all_sum += std::isnan(s) ? 0.0 : s;
  const double all_mean = all_sum / static_cast<double>(observed);
  for (size_t e = 0; e < ne; ++e) {
    const double m = train.MeanScore(e);
    td->expert_mean[e] = std::isnan(m) ? all_mean : m;
  }
  td->z.clear();
  if (text) {
    std::vector<std::string_view> texts;
    texts.reserve(n);
    for (const auto& q : train.queries()) texts.push_back(q.text);
    featurizer_.Fit(texts);
    td->z.assign(n * kEmbedDim, 0.0f);
    for (size_t q = 0; q < n; ++q) Embed(texts[q], td->z.data() + q * kEmbedDim);
  }
  return Status::Ok();
}

uint32_t PredictorBase::DomainId(std::string_view domain) const {
  if (domain_index_.empty()) return kNoDomain;
  auto it = domain_index_.find(std::string(domain));
  return it == domain_index_.end() ? kNoDomain : it->second;
}

uint32_t PredictorBase::SubId(std::string_view domain, std::string_view subdomain) const {
  if (sub_index_.empty() || domain.empty() || subdomain.empty()) return kNoDomain;
  auto it = sub_index_.find(SubKey(domain, subdomain));
  return it == sub_index_.end() ? kNoDomain : it->second;
}

bool PredictorBase::SameFeaturizer(const PredictorBase& other) const {
  if (text_ != other.text_) return false;
  std::string a, b;
  ByteWriter wa(&a), wb(&b);
  featurizer_.Save(&wa);
  other.featurizer_.Save(&wb);
  return a == b;
}

void PredictorBase::SaveBase(ByteWriter* w) const {
  w->Strs(experts_);
  w->Strs(domains_);
  w->Strs(subs_);
  w->U32(text_ ? 1 : 0);
  if (text_) featurizer_.Save(w);
}

void PredictorBase::LoadBase(ByteReader* r) {
  experts_ = r->Strs();
  domains_ = r->Strs();
  subs_ = r->Strs();
  text_ = r->U32() != 0;
  if (r->ok() && experts_.empty()) r->Fail("predictor has no experts");
  if (text_ && r->ok()) (void)featurizer_.Load(r);
  domain_index_.clear();
  for (uint32_t d = 0; d < domains_.size(); ++d) domain_index_.emplace(domains_[d], d);
  sub_index_.clear();
  for (uint32_t d = 0; d < subs_.size(); ++d) sub_index_.emplace(subs_[d], d);
}

void DomainPrior::Fit(const TrainData& td, const std::vector<size_t>& rows) {
  num_experts = td.num_experts;
  num_domains = td.num_domains;
  const size_t ne = num_experts, nd = num_domains;
  std::vector<double> sum(nd * ne, 0), sum2(nd * ne, 0), cnt(nd * ne, 0), gsum(ne, 0), gcnt(ne, 0);
  for (size_t q : rows) {
    for (size_t e = 0; e < ne; ++e) {
      const float s = td.Y(q, e);
      if (std::isnan(s)) continue;
      const size_t c = td.dom[q] * ne + e;
      sum[c] += s, sum2[c] += s * s, cnt[c] += 1, gsum[e] += s, gcnt[e] += 1;
    }
  }
  global.assign(ne, 0.5f);
  strength.assign(ne, 10.0f);
  table.assign(nd * ne, 0.5f);
  for (size_t e = 0; e < ne; ++e) {
    const double g = gcnt[e] > 0 ? gsum[e] / gcnt[e] : td.expert_mean[e];
    global[e] = static_cast<float>(g);
    // Method of moments: within-domain variance sigma^2 and between-domain variance tau^2 of the domain means.
    double within = 0, within_n = 0, between = 0, between_n = 0, noise = 0;
    for (size_t d = 0; d < nd; ++d) {
      const size_t c = d * ne + e;
      if (cnt[c] < 1) continue;
      const double m = sum[c] / cnt[c];
      within += sum2[c] - cnt[c] * m * m;
      within_n += cnt[c];
      between += cnt[c] * (m - g) * (m - g);
      between_n += cnt[c];
    }
    if (within_n > 1 && between_n > 0) {
      const double sigma2 = std::max(within / within_n, 1e-4);
      size_t domains_seen = 0;
      for (size_t d = 0; d < nd; ++d) domains_seen += cnt[d * ne + e] >= 1;
      noise = sigma2 * static_cast<double>(domains_seen) / between_n;  // mean of sigma^2 / n_d, weighted
      const double tau2 = std::max(between / between_n - noise, 1e-4);
      strength[e] = static_cast<float>(std::clamp(sigma2 / tau2, 0.5, 1000.0));
    }
    for (size_t d = 0; d < nd; ++d) {
      const size_t c = d * ne + e;
      table[c] = static_cast<float>((sum[c] + strength[e] * g) / (cnt[c] + strength[e]));
    }
  }
  FitSubs(td, rows);
}

void DomainPrior::FitSubs(const TrainData& td, const std::vector<size_t>& rows) {
  const size_t ne = num_experts, ns = td.sub.size() == td.n ? td.num_subs : 0;
  num_subs = ns;
  std::vector<double> sum(ns * ne, 0), sum2(ns * ne, 0), cnt(ns * ne, 0);
  for (size_t q : rows) {
    if (ns == 0 || td.sub[q] >= ns) continue;
    for (size_t e = 0; e < ne; ++e) {
      const float s = td.Y(q, e);
      if (std::isnan(s)) continue;
      const size_t c = td.sub[q] * ne + e;
      sum[c] += s, sum2[c] += s * s, cnt[c] += 1;
    }
  }
  // A domain with a single sub-domain has nothing to split: its sub-domain is the domain itself.
  std::vector<size_t> siblings(num_domains, 0);
  for (size_t s = 0; s < ns; ++s) ++siblings[td.sub_parent[s]];
  sub_strength.assign(ne, 1e4f);
  sub_table.assign(ns * ne, 0.5f);
  for (size_t e = 0; e < ne; ++e) {
    // The same method of moments one level down: sub-domain means around their (shrunk) domain value.
    double within = 0, within_n = 0, between = 0, between_n = 0;
    size_t seen = 0;
    for (size_t s = 0; s < ns; ++s) {
      const size_t c = s * ne + e;
      if (cnt[c] < 1 || siblings[td.sub_parent[s]] < 2) continue;
      const double m = sum[c] / cnt[c], parent = Get(td.sub_parent[s], e);
      within += sum2[c] - cnt[c] * m * m;
      within_n += cnt[c];
      between += cnt[c] * (m - parent) * (m - parent);
      between_n += cnt[c];
      ++seen;
    }
    if (within_n > 1 && between_n > 0) {
      const double sigma2 = std::max(within / within_n, 1e-4);
      const double noise = sigma2 * static_cast<double>(seen) / between_n;
      const double tau2 = std::max(between / between_n - noise, 1e-6);
      sub_strength[e] = static_cast<float>(std::clamp(sigma2 / tau2, 0.5, 1e4));
    }
    for (size_t s = 0; s < ns; ++s) {
      const size_t c = s * ne + e;
      const double parent = Get(td.sub_parent[s], e);
      sub_table[c] = siblings[td.sub_parent[s]] < 2
                         ? static_cast<float>(parent)
                         : static_cast<float>((sum[c] + sub_strength[e] * parent) / (cnt[c] + sub_strength[e]));
    }
  }
}

void DomainPrior::Save(ByteWriter* w) const {
  w->U64(num_experts);
  w->U64(num_domains);
  w->F32s(global);
  w->F32s(table);
  w->F32s(strength);
  w->U64(num_subs);
  w->F32s(sub_table);
  w->F32s(sub_strength);
}

void DomainPrior::Load(ByteReader* r) {
  num_experts = r->U64();
  num_domains = r->U64();
  global = r->F32s();
  table = r->F32s();
  strength = r->F32s();
  r->Expect(global, num_experts, "domain prior");
  r->Expect(table, num_experts * num_domains, "domain prior table");
  r->Expect(strength, num_experts, "domain prior strength");
  num_subs = r->U64();
  sub_table = r->F32s();
  sub_strength = r->F32s();
  r->Expect(sub_table, num_experts * num_subs, "sub-domain prior table");
  r->Expect(sub_strength, num_experts, "sub-domain prior strength");
  // Fit writes scores in [0, 1] and positive strengths; anything else would predict outside [0, 1].
  const auto scores = [](const std::vector<float>& v) {
    return std::all_of(v.begin(), v.end(), [](float x) { return x >= 0 && x <= 1; });
  };
  const auto strengths = [](const std::vector<float>& v) {
    return std::all_of(v.begin(), v.end(), [](float x) { return x > 0 && std::isfinite(x); });
  };
  if (r->ok() && !(scores(global) && scores(table) && scores(sub_table))) {
    r->Fail("a domain prior score is outside [0, 1]");
  }
  if (r->ok() && !(strengths(strength) && strengths(sub_strength))) {
    r->Fail("a domain prior strength is not a positive number");
  }
}

std::vector<size_t> AllRows(size_t n) {
  std::vector<size_t> rows(n);
  std::iota(rows.begin(), rows.end(), 0);
  return rows;
}

std::vector<std::pair<std::vector<size_t>, std::vector<size_t>>> MakeFolds(size_t n, size_t k, uint64_t seed) {
  std::vector<size_t> perm = AllRows(n);
  Rng rng(seed ^ 0xf01d);
  rng.Shuffle(perm);
  std::vector<std::pair<std::vector<size_t>, std::vector<size_t>>> folds(k);
  for (size_t i = 0; i < n; ++i) {
    for (size_t f = 0; f < k; ++f) (i % k == f ? folds[f].second : folds[f].first).push_back(perm[i]);
  }
  for (auto& f : folds) {
    std::sort(f.first.begin(), f.first.end());
    std::sort(f.second.begin(), f.second.end());
  }
  return folds;
}

size_t PickByCv(size_t num_configs, const TrainData& td, uint64_t seed,
                const std::function<double(size_t, const std::vector<size_t>&, const std::vector<size_t>&)>& loss) {
  if (num_configs <= 1 || td.n < 30) return 0;
  const auto folds = MakeFolds(td.n, 3, seed);
  size_t best = 0;
  double best_loss = INFINITY;
  for (size_t c = 0; c < num_configs; ++c) {
    double total = 0;
    for (const auto& [tr, va] : folds) total += loss(c, tr, va);
    if (total < best_loss) best_loss = total, best = c;
  }
  return best;
}

void Adam::Step(std::vector<float>& params, std::vector<float>& grad) {
  ++t;
  const float c1 = 1.0f - std::pow(b1, static_cast<float>(t)), c2 = 1.0f - std::pow(b2, static_cast<float>(t));
  const float step = lr * std::sqrt(c2) / c1;
  const size_t n = params.size();
  float* p = params.data();
  float* g = grad.data();
  float* mm = m.data();
  float* vv = v.data();
  for (size_t i = 0; i < n; ++i) {
    mm[i] = b1 * mm[i] + (1 - b1) * g[i];
    vv[i] = b2 * vv[i] + (1 - b2) * g[i] * g[i];
    p[i] -= step * mm[i] / (std::sqrt(vv[i]) + eps);
    g[i] = 0.0f;
  }
}

}  // namespace baton::predict
