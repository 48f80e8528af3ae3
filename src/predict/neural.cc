// Learned-embedding routers re-implemented for N experts with absolute scores:
//   "routellm-mf":     RouteLLM's matrix-factorisation router. RouteLLM scores a pair of models a, b by
//                      w2^T ((v_a - v_b) * (W x)) and trains on pairwise win labels. With N experts and absolute
//                      per-expert scores we train pointwise instead: score(q, e) = sigmoid(w2^T (v_e * (W x)) + b_e),
//                      binary cross-entropy on observed cells. x is the dense TF-IDF sketch (RouteLLM uses OpenAI
//                      embeddings; none are downloaded here).
//   "routerbench-mlp": RouterBench's MLP router: one hidden ReLU layer over the dense sketch, one sigmoid output per
//                      expert, masked binary cross-entropy (unobserved cells carry no gradient), Adam.
// Both choose their L2 strength by 3-fold CV inside the training set.
#include <fmt/format.h>

#include "predict/common.h"

namespace baton::predict {
namespace {

constexpr size_t kBatch = 32;
constexpr float kLambdas[] = {1e-5f, 1e-4f};

// score = sigmoid(w2 . (v_e * (W z)) + b_e). Params: W (kDim x kEmbedDim) | v (ne x kDim) | w2 (kDim) | b (ne).
struct MfNet {
  static constexpr size_t kDim = 64;
  static constexpr int kEpochs = 10;
  static constexpr float kLr = 0.003f;
  size_t ne = 0;
  std::vector<float> p;
  size_t off_v() const { return kDim * kEmbedDim; }
  size_t off_w2() const { return off_v() + ne * kDim; }
  size_t off_b() const { return off_w2() + kDim; }
  size_t size() const { return off_b() + ne; }
  void Init(const TrainData& td, Rng& rng) {
    ne = td.num_experts;
    p.assign(size(), 0.0f);
    for (size_t i = 0; i < off_v(); ++i) p[i] = rng.Normal() / std::sqrt(static_cast<float>(kEmbedDim)) * 4.0f;
    for (size_t i = off_v(); i < off_w2(); ++i) p[i] = 0.1f * rng.Normal();
    for (size_t i = off_w2(); i < off_b(); ++i) p[i] = 1.0f;
    for (size_t e = 0; e < ne; ++e) p[off_b() + e] = Logit(td.expert_mean[e]);
  }
  void Hidden(const float* z, float* t) const {
    for (size_t k = 0; k < kDim; ++k) {
      t[k] = Dot(p.data() + k * kEmbedDim, z, kEmbedDim);
    }
  }
  float LogitOf(const float* t, size_t e) const {
    float s = p[off_b() + e];
    const float* v = p.data() + off_v() + e * kDim;
    const float* w2 = p.data() + off_w2();
    for (size_t k = 0; k < kDim; ++k) s += w2[k] * v[k] * t[k];
    return s;
  }
  void Forward(const float* z, std::span<float> out) const {
    float t[kDim];
    Hidden(z, t);
    for (size_t e = 0; e < ne; ++e) out[e] = Sigmoid(LogitOf(t, e));
  }
  void Backward(const float* z, const float* y, float inv, float* g) const {
    float t[kDim], gt[kDim] = {};
    Hidden(z, t);
    const float* w2 = p.data() + off_w2();
    for (size_t e = 0; e < ne; ++e) {
      if (std::isnan(y[e])) continue;
      const float d = (Sigmoid(LogitOf(t, e)) - y[e]) * inv;
      const float* v = p.data() + off_v() + e * kDim;
      float* gv = g + off_v() + e * kDim;
      float* gw2 = g + off_w2();
      for (size_t k = 0; k < kDim; ++k) {
        gv[k] += d * w2[k] * t[k];
        gw2[k] += d * v[k] * t[k];
        gt[k] += d * w2[k] * v[k];
      }
      g[off_b() + e] += d;
    }
    for (size_t k = 0; k < kDim; ++k) {
      if (gt[k] == 0.0f) continue;
      for (size_t j = 0; j < kEmbedDim; ++j) g[k * kEmbedDim + j] += gt[k] * z[j];
    }
  }
};

// logits = W2 relu(W1 z + b1) + b2. Params: W1 (kHidden x kEmbedDim) | b1 (kHidden) | W2 (ne x kHidden) | b2 (ne).
struct MlpNet {
  static constexpr size_t kHidden = 64;
  static constexpr int kEpochs = 10;
  static constexpr float kLr = 0.003f;
  size_t ne = 0;
  std::vector<float> p;
  size_t off_b1() const { return kHidden * kEmbedDim; }
  size_t off_w2() const { return off_b1() + kHidden; }
  size_t off_b2() const { return off_w2() + ne * kHidden; }
  size_t size() const { return off_b2() + ne; }
  void Init(const TrainData& td, Rng& rng) {
    ne = td.num_experts;
    p.assign(size(), 0.0f);
    const float s1 = std::sqrt(2.0f / kEmbedDim) * 4.0f, s2 = std::sqrt(1.0f / kHidden);
    for (size_t i = 0; i < off_b1(); ++i) p[i] = s1 * rng.Normal();
    for (size_t i = off_w2(); i < off_b2(); ++i) p[i] = 0.1f * s2 * rng.Normal();
    for (size_t e = 0; e < ne; ++e) p[off_b2() + e] = Logit(td.expert_mean[e]);
  }
  void Hidden(const float* z, float* h) const {
    for (size_t k = 0; k < kHidden; ++k) {
      const float s = p[off_b1() + k] + Dot(p.data() + k * kEmbedDim, z, kEmbedDim);
      h[k] = s > 0 ? s : 0.0f;
    }
  }
  float LogitOf(const float* h, size_t e) const {
    float s = p[off_b2() + e];
    return s + Dot(p.data() + off_w2() + e * kHidden, h, kHidden);
  }
  void Forward(const float* z, std::span<float> out) const {
    float h[kHidden];
    Hidden(z, h);
    for (size_t e = 0; e < ne; ++e) out[e] = Sigmoid(LogitOf(h, e));
  }
  void Backward(const float* z, const float* y, float inv, float* g) const {
    float h[kHidden], gh[kHidden] = {};
    Hidden(z, h);
    for (size_t e = 0; e < ne; ++e) {
      if (std::isnan(y[e])) continue;
      const float d = (Sigmoid(LogitOf(h, e)) - y[e]) * inv;
      const float* w = p.data() + off_w2() + e * kHidden;
      float* gw = g + off_w2() + e * kHidden;
      for (size_t k = 0; k < kHidden; ++k) gw[k] += d * h[k], gh[k] += d * w[k];
      g[off_b2() + e] += d;
    }
    for (size_t k = 0; k < kHidden; ++k) {
      if (h[k] <= 0.0f || gh[k] == 0.0f) continue;
      g[off_b1() + k] += gh[k];
      for (size_t j = 0; j < kEmbedDim; ++j) g[k * kEmbedDim + j] += gh[k] * z[j];
    }
  }
};

template <typename Net>
void Train(Net& net, const TrainData& td, const std::vector<size_t>& rows, float lambda, uint64_t seed) {
  Rng rng(seed);
  net.Init(td, rng);
  std::vector<float> g(net.size(), 0.0f);
  Adam adam;
  adam.Init(net.size(), Net::kLr);
  const size_t ne = td.num_experts;
  ForEachMiniBatch(td, rows, Net::kEpochs, kBatch, rng, [&](std::span<const size_t> batch, float inv) {
    for (size_t q : batch) net.Backward(td.Z(q), td.y.data() + q * ne, inv, g.data());
    for (size_t i = 0; i < g.size(); ++i) g[i] += lambda * net.p[i];
    adam.Step(net.p, g);
  });
}

template <typename Net>
double Loss(const Net& net, const TrainData& td, const std::vector<size_t>& rows) {
  std::vector<float> pred(td.num_experts);
  double total = 0;
  size_t cells = 0;
  for (size_t q : rows) {
    net.Forward(td.Z(q), pred);
    for (size_t e = 0; e < td.num_experts; ++e) {
      if (!std::isnan(td.Y(q, e))) total += LogLoss(pred[e], td.Y(q, e)), ++cells;
    }
  }
  return cells ? total / static_cast<double>(cells) : 0.0;
}

// Thread-safety: immutable after Fit/LoadState; Predict is safe from many threads.
template <typename Net>
class NetPredictor final : public PredictorBase {
 public:
  NetPredictor(const PredictorOptions& o, std::string name) : PredictorBase(o), name_(std::move(name)) {}
  std::string name() const override { return name_; }

  Status Fit(const Dataset& train) override {
    TrainData td;
    BATON_RETURN_IF_ERROR(Prepare(train, /*text=*/true, &td));
    lambda_ = kLambdas[0];
    if (options_.cross_validate) {
      lambda_ =
          kLambdas[PickByCv(std::size(kLambdas), td, options_.seed, [&](size_t c, const auto& tr, const auto& va) {
            Net net;
            Train(net, td, tr, kLambdas[c], options_.seed);
            return Loss(net, td, va);
          })];
    }
    Train(net_, td, AllRows(td.n), lambda_, options_.seed);
    return Status::Ok();
  }
  void Predict(const QueryView& q, std::span<float> out) const override {
    float z[kEmbedDim];
    Embed(q.text, z);
    PredictSketch(q, z, out);
  }
  void PredictSketch(const QueryView& q, const float* z, std::span<float> out) const override {
    (void)q;
    net_.Forward(z, out);
  }
  void SaveState(std::string* out) const override {
    ByteWriter w(out);
    SaveBase(&w);
    w.F32(lambda_);
    w.F32s(net_.p);
  }
  Status LoadState(std::string_view bytes) override {
    ByteReader r(bytes);
    LoadBase(&r);
    lambda_ = r.F32();
    net_.ne = experts_.size();
    net_.p = r.F32s();
    r.Expect(net_.p, net_.size(), "network parameters");
    return r.Finish();
  }
  std::string Describe() const override {
    return fmt::format("epochs={} l2={:g}{}", Net::kEpochs, lambda_, options_.cross_validate ? " (3-fold CV)" : "");
  }

 private:
  std::string name_;
  float lambda_ = kLambdas[0];
  Net net_;
};

}  // namespace

std::unique_ptr<Predictor> NewRouteLlmMfPredictor(const PredictorOptions& o) {
  return std::make_unique<NetPredictor<MfNet>>(o, "routellm-mf");
}
std::unique_ptr<Predictor> NewRouterBenchMlpPredictor(const PredictorOptions& o) {
  return std::make_unique<NetPredictor<MlpNet>>(o, "routerbench-mlp");
}

}  // namespace baton::predict
