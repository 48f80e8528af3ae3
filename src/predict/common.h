// Shared pieces of the predictors: the training matrix in the form they learn from, the vocabulary (experts,
// domains, featurizer) every predictor saves, the empirical-Bayes domain prior, cross-validation folds and Adam.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <Eigen/Core>

#include "baton/predictor.h"
#include "predict/featurizer.h"
#include "predict/serial.h"

namespace baton::predict {

inline constexpr size_t kEmbedDim = 256;            // dense sketch size the learned predictors work on
inline constexpr uint32_t kNoDomain = 0xffffffffu;  // a domain not seen in training

// a . b over n floats, vectorised (a plain loop's float reduction is not, and it is the hot path of Predict).
inline float Dot(const float* a, const float* b, size_t n) {
  const auto m = static_cast<Eigen::Index>(n);
  return Eigen::Map<const Eigen::VectorXf>(a, m).dot(Eigen::Map<const Eigen::VectorXf>(b, m));
}

inline float Sigmoid(float x) {
  return 1.0f / (1.0f + std::exp(-x));
}
inline float Logit(double p) {
  p = std::clamp(p, 1e-4, 1 - 1e-4);
  return static_cast<float>(std::log(p / (1 - p)));
}
// Binary cross-entropy of prediction p for a (possibly fractional) target y.
inline double LogLoss(double p, double y) {
  p = std::clamp(p, 1e-6, 1 - 1e-6);
  return -(y * std::log(p) + (1 - y) * std::log(1 - p));
}

// The observed cells of a training set plus the dense sketches of its prompts.
struct TrainData {
  size_t n = 0, num_experts = 0, num_domains = 0, num_subs = 0;
  std::vector<float> z;              // n x kEmbedDim
  std::vector<uint32_t> dom;         // n
  std::vector<uint32_t> sub;         // n, sub-domain (domain, source) ids
  std::vector<uint32_t> sub_parent;  // num_subs: the domain of each sub-domain
  std::vector<float> y;              // n x num_experts, NaN = unobserved
  std::vector<double> expert_mean;   // mean observed score per expert (0.5 overall fallback)
  const float* Z(size_t q) const { return z.data() + q * kEmbedDim; }
  float Y(size_t q, size_t e) const { return y[q * num_experts + e]; }
};

// Per (domain, expert) mean observed score shrunk toward the expert's global mean with an empirical-Bayes prior
// strength per expert (method of moments: within-domain variance / between-domain variance); below it, per
// (sub-domain, expert) means shrunk the same way toward their domain's shrunk value (hierarchical empirical Bayes).
struct DomainPrior {
  size_t num_experts = 0, num_domains = 0, num_subs = 0;
  std::vector<float> global;        // num_experts
  std::vector<float> table;         // num_domains x num_experts, already shrunk
  std::vector<float> strength;      // num_experts
  std::vector<float> sub_table;     // num_subs x num_experts, already shrunk toward the parent domain
  std::vector<float> sub_strength;  // num_experts
  void Fit(const TrainData& td, const std::vector<size_t>& rows);
  void FitSubs(const TrainData& td, const std::vector<size_t>& rows);  // the sub-domain level (Fit calls it)
  float Get(uint32_t dom, size_t e) const {
    return dom == kNoDomain || dom >= num_domains ? global[e] : table[dom * num_experts + e];
  }
  // The sub-domain's value when known, else the domain's.
  float Get(uint32_t dom, uint32_t sub, size_t e) const {
    return sub == kNoDomain || sub >= num_subs ? Get(dom, e) : sub_table[sub * num_experts + e];
  }
  void Save(ByteWriter* w) const;
  void Load(ByteReader* r);
};

// Base of every predictor: experts, domains and (for text predictors) the featurizer, fitted and saved the same way.
class PredictorBase : public Predictor {
 public:
  explicit PredictorBase(const PredictorOptions& options) : options_(options) {}
  const std::vector<std::string>& experts() const override { return experts_; }

  // Prompt-sketch sharing (the stack featurises once for all its components). A text predictor's Predict() is
  // Embed + PredictSketch; the others ignore the sketch. REQUIRES for PredictSketch: z = this->Embed(q.text).
  bool uses_text() const { return text_; }
  void Embed(std::string_view text, float* z) const { featurizer_.Embed(text, std::span<float>(z, kEmbedDim)); }
  virtual void PredictSketch(const QueryView& q, const float* z, std::span<float> out) const {
    (void)z;
    Predict(q, out);
  }
  // Whether `other`'s featurizer maps every prompt to the same sketch as this one's (same learned state).
  bool SameFeaturizer(const PredictorBase& other) const;

 protected:
  // Copies the vocabulary of `train`, fits the featurizer when `text`, and fills `td`. FailedPrecondition when there
  // is no observed cell.
  Status Prepare(const Dataset& train, bool text, TrainData* td);
  uint32_t DomainId(std::string_view domain) const;
  // The (domain, sub-domain) pair's id; kNoDomain when either is empty or unseen in training.
  uint32_t SubId(std::string_view domain, std::string_view subdomain) const;
  void SaveBase(ByteWriter* w) const;
  void LoadBase(ByteReader* r);
  bool fitted() const { return !experts_.empty(); }

  PredictorOptions options_;
  std::vector<std::string> experts_;
  std::vector<std::string> domains_;
  std::unordered_map<std::string, uint32_t> domain_index_;
  std::vector<std::string> subs_;  // "domain\x1fsource" keys
  std::unordered_map<std::string, uint32_t> sub_index_;
  bool text_ = false;
  Featurizer featurizer_;
};

// Assigns each of `n` rows to one of `k` folds at random (seeded). Returns, per fold, (train rows, validation rows).
std::vector<std::pair<std::vector<size_t>, std::vector<size_t>>> MakeFolds(size_t n, size_t k, uint64_t seed);
std::vector<size_t> AllRows(size_t n);

// Runs `loss(config, train_rows, val_rows)` for each config over 3 folds and returns the config with the lowest mean.
size_t PickByCv(size_t num_configs, const TrainData& td, uint64_t seed,
                const std::function<double(size_t, const std::vector<size_t>&, const std::vector<size_t>&)>& loss);

// Adam over a flat parameter vector.
struct Adam {
  std::vector<float> m, v;
  float lr = 0.01f, b1 = 0.9f, b2 = 0.999f, eps = 1e-8f;
  int64_t t = 0;
  void Init(size_t n, float learning_rate) {
    m.assign(n, 0.0f);
    v.assign(n, 0.0f);
    lr = learning_rate;
    t = 0;
  }
  // One step of params -= lr * mhat / (sqrt(vhat) + eps); grad is consumed (zeroed).
  void Step(std::vector<float>& params, std::vector<float>& grad);
};

// Deterministic 64-bit generator (splitmix64) for initialisation and shuffling.
struct Rng {
  uint64_t s;
  explicit Rng(uint64_t seed) : s(seed * 0x9E3779B97F4A7C15ULL + 12345) {}
  uint64_t Next() { return Mix64(s += 0x9E3779B97F4A7C15ULL); }
  float Uniform() { return static_cast<float>((Next() >> 40) * (1.0 / 16777216.0)); }  // [0, 1)
  float Normal() {
    const float u1 = std::max(Uniform(), 1e-7f), u2 = Uniform();
    return std::sqrt(-2.0f * std::log(u1)) * std::cos(6.2831853f * u2);
  }
  template <typename T>
  void Shuffle(std::vector<T>& v) {
    for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[Next() % i]);
  }
};

// Masked mini-batch training: `epochs` passes over `rows` in a fresh shuffled order each, in batches of `batch`
// queries. Calls step(batch_rows, inv) for every batch holding at least one observed cell, where inv = 1 / (observed
// cells in the batch) weights each cell's gradient so the batch loss is a mean over what was observed.
template <typename Step>
void ForEachMiniBatch(const TrainData& td, std::vector<size_t> rows, int epochs, size_t batch, Rng& rng, Step&& step) {
  for (int epoch = 0; epoch < epochs; ++epoch) {
    rng.Shuffle(rows);
    for (size_t start = 0; start < rows.size(); start += batch) {
      const size_t end = std::min(rows.size(), start + batch);
      size_t cells = 0;
      for (size_t i = start; i < end; ++i) {
        for (size_t e = 0; e < td.num_experts; ++e) cells += !std::isnan(td.Y(rows[i], e));
      }
      if (cells == 0) continue;
      step(std::span<const size_t>(rows.data() + start, end - start), 1.0f / static_cast<float>(cells));
    }
  }
}

// Factories, one per predictor family file.
std::unique_ptr<Predictor> NewDomainPriorPredictor(const PredictorOptions& o);
std::unique_ptr<Predictor> NewFactorizedPredictor(const PredictorOptions& o);
std::unique_ptr<Predictor> NewKnnPredictor(const PredictorOptions& o);
std::unique_ptr<Predictor> NewRouteLlmSwPredictor(const PredictorOptions& o);
std::unique_ptr<Predictor> NewRouterBenchKnnPredictor(const PredictorOptions& o);
std::unique_ptr<Predictor> NewRouteLlmMfPredictor(const PredictorOptions& o);
std::unique_ptr<Predictor> NewRouterBenchMlpPredictor(const PredictorOptions& o);
std::unique_ptr<Predictor> NewEnsemblePredictor(const PredictorOptions& o);
std::unique_ptr<Predictor> NewStackPredictor(const PredictorOptions& o);

}  // namespace baton::predict
