// "factorized": a logistic model in which experts share what they learn about a query:
//
//   score(q, e) = sigmoid(prior_{domain(q), e} + b_e + a_{domain(q), e} + w_e . z(q) + u_e . (V z(q)))
//
// prior is the logit of the empirical-Bayes domain prior (fitted on the same rows), so the learned terms model the
// residual and strong L2 falls back to the domain prior rather than to a constant.
// z(q) is the dense TF-IDF sketch of the prompt. V (rank x dim) is a projection shared by all experts, so a query
// feature that makes the prompt hard for some experts moves every expert's estimate; w_e is each expert's own linear
// term, a the per-domain effects. Trained with Adam on the binary cross-entropy of observed cells only (fractional
// scores are soft targets) plus L2; the L2 strength is chosen by 3-fold cross-validation inside the training set.
#include <fmt/format.h>

#include "predict/common.h"

namespace baton::predict {
namespace {

constexpr size_t kRank = 16;
constexpr size_t kBatch = 32;
constexpr int kEpochs = 10;
constexpr float kLearningRate = 0.005f;
constexpr float kLambdas[] = {1e-4f, 1e-3f, 1e-2f};
constexpr float kDefaultLambda = 1e-4f;
constexpr float kDomainDropout = 0.25f;

struct FactorModel {
  size_t ne = 0, nd = 0, ns = 0;
  std::vector<float> base;  // (nd + 1 + ns) x ne prior logits: domains, unknown domain, sub-domains
  std::vector<float> p;     // b (ne) | a (nd x ne) | w (ne x dim) | u (ne x rank) | v (rank x dim)
  size_t off_a() const { return ne; }
  size_t off_w() const { return off_a() + nd * ne; }
  size_t off_u() const { return off_w() + ne * kEmbedDim; }
  size_t off_v() const { return off_u() + ne * kRank; }
  size_t size() const { return off_v() + kRank * kEmbedDim; }

  void Project(const float* z, float* h) const {
    const float* v = p.data() + off_v();
    for (size_t r = 0; r < kRank; ++r) {
      h[r] = Dot(v + r * kEmbedDim, z, kEmbedDim);
    }
  }
  size_t BaseRow(uint32_t dom, uint32_t sub) const { return sub < ns ? nd + 1 + sub : (dom < nd ? dom : nd); }
  float LogitOf(const float* z, const float* h, uint32_t dom, uint32_t sub, size_t e) const {
    float s = p[e] + base[BaseRow(dom, sub) * ne + e];
    if (dom < nd) s += p[off_a() + dom * ne + e];
    const float* w = p.data() + off_w() + e * kEmbedDim;
    return s + Dot(w, z, kEmbedDim) + Dot(p.data() + off_u() + e * kRank, h, kRank);
  }

  void Train(const TrainData& td, const std::vector<size_t>& rows, float lambda, uint64_t seed) {
    ne = td.num_experts;
    nd = td.num_domains;
    ns = td.num_subs;
    p.assign(size(), 0.0f);
    DomainPrior prior;
    prior.Fit(td, rows);
    base.assign((nd + 1 + ns) * ne, 0.0f);
    for (size_t d = 0; d <= nd; ++d) {
      for (size_t e = 0; e < ne; ++e)
        base[d * ne + e] = Logit(prior.Get(d < nd ? static_cast<uint32_t>(d) : kNoDomain, e));
    }
    for (size_t s = 0; s < ns; ++s) {
      for (size_t e = 0; e < ne; ++e) base[(nd + 1 + s) * ne + e] = Logit(prior.sub_table[s * ne + e]);
    }
    Rng rng(seed);
    const float init = 0.1f / std::sqrt(static_cast<float>(kEmbedDim));
    for (size_t i = off_u(); i < size(); ++i) p[i] = init * rng.Normal();
    std::vector<float> g(size(), 0.0f);
    Adam adam;
    adam.Init(size(), kLearningRate);
    float h[kRank], gh[kRank];
    ForEachMiniBatch(td, rows, kEpochs, kBatch, rng, [&](std::span<const size_t> batch, float inv) {
      for (const size_t q : batch) {
        const float* z = td.Z(q);
        // Domain dropout: a quarter of the time train as if the domain were unknown, so the text terms also learn
        // what the domain would have told them (live queries often come without one).
        const bool drop = rng.Uniform() < kDomainDropout;
        const uint32_t dom = drop ? kNoDomain : td.dom[q], sub = drop ? kNoDomain : td.sub[q];
        Project(z, h);
        std::fill(gh, gh + kRank, 0.0f);
        bool any = false;
        for (size_t e = 0; e < ne; ++e) {
          const float y = td.Y(q, e);
          if (std::isnan(y)) continue;  // unobserved: no signal, not a failure
          any = true;
          const float d = (Sigmoid(LogitOf(z, h, dom, sub, e)) - y) * inv;
          g[e] += d;
          if (dom < nd) g[off_a() + dom * ne + e] += d;
          float* gw = g.data() + off_w() + e * kEmbedDim;
          for (size_t j = 0; j < kEmbedDim; ++j) gw[j] += d * z[j];
          float* gu = g.data() + off_u() + e * kRank;
          const float* u = p.data() + off_u() + e * kRank;
          for (size_t r = 0; r < kRank; ++r) gu[r] += d * h[r], gh[r] += d * u[r];
        }
        if (!any) continue;
        float* gv = g.data() + off_v();
        for (size_t r = 0; r < kRank; ++r) {
          for (size_t j = 0; j < kEmbedDim; ++j) gv[r * kEmbedDim + j] += gh[r] * z[j];
        }
      }
      for (size_t i = off_a(); i < size(); ++i) g[i] += lambda * p[i];
      adam.Step(p, g);
    });
  }

  double Loss(const TrainData& td, const std::vector<size_t>& rows) const {
    double total = 0;
    size_t cells = 0;
    float h[kRank];
    for (size_t q : rows) {
      Project(td.Z(q), h);
      for (size_t e = 0; e < ne; ++e) {
        const float y = td.Y(q, e);
        if (std::isnan(y)) continue;
        total += LogLoss(Sigmoid(LogitOf(td.Z(q), h, td.dom[q], td.sub[q], e)), y), ++cells;
      }
    }
    return cells ? total / static_cast<double>(cells) : 0.0;
  }
};

// Thread-safety: immutable after Fit/LoadState; Predict is safe from many threads.
class FactorizedPredictor final : public PredictorBase {
 public:
  using PredictorBase::PredictorBase;
  std::string name() const override { return "factorized"; }

  Status Fit(const Dataset& train) override {
    TrainData td;
    BATON_RETURN_IF_ERROR(Prepare(train, /*text=*/true, &td));
    lambda_ = kDefaultLambda;
    if (options_.cross_validate) {
      const size_t c = PickByCv(std::size(kLambdas), td, options_.seed, [&](size_t c, const auto& tr, const auto& va) {
        FactorModel m;
        m.Train(td, tr, kLambdas[c], options_.seed);
        return m.Loss(td, va);
      });
      lambda_ = kLambdas[c];
    }
    model_.Train(td, AllRows(td.n), lambda_, options_.seed);
    return Status::Ok();
  }

  void Predict(const QueryView& q, std::span<float> out) const override {
    float z[kEmbedDim];
    Embed(q.text, z);
    PredictSketch(q, z, out);
  }
  void PredictSketch(const QueryView& q, const float* z, std::span<float> out) const override {
    float h[kRank];
    model_.Project(z, h);
    const uint32_t dom = DomainId(q.domain), sub = SubId(q.domain, q.subdomain);
    for (size_t e = 0; e < out.size(); ++e) out[e] = Sigmoid(model_.LogitOf(z, h, dom, sub, e));
  }

  void SaveState(std::string* out) const override {
    ByteWriter w(out);
    SaveBase(&w);
    w.F32(lambda_);
    w.F32s(model_.base);
    w.F32s(model_.p);
  }
  Status LoadState(std::string_view bytes) override {
    ByteReader r(bytes);
    LoadBase(&r);
    lambda_ = r.F32();
    model_.ne = experts_.size();
    model_.nd = domains_.size();
    model_.ns = subs_.size();
    model_.base = r.F32s();
    model_.p = r.F32s();
    r.Expect(model_.base, (model_.nd + 1 + model_.ns) * model_.ne, "factorized prior");
    r.Expect(model_.p, model_.size(), "factorized parameters");
    return r.Finish();
  }
  std::string Describe() const override {
    return fmt::format("rank={} epochs={} l2={:g}{}", kRank, kEpochs, lambda_,
                       options_.cross_validate ? " (3-fold CV over 1e-4,1e-3,1e-2)" : "");
  }

 private:
  float lambda_ = kDefaultLambda;
  FactorModel model_;
};

}  // namespace

std::unique_ptr<Predictor> NewFactorizedPredictor(const PredictorOptions& o) {
  return std::make_unique<FactorizedPredictor>(o);
}

}  // namespace baton::predict
