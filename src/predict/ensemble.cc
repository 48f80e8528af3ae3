// "ensemble": a stacked ensemble of other predictors. Per expert e,
//
//   score(q, e) = sum_k w_ek * p_k(q, e),   w_e >= 0, sum_k w_ek = 1
//
// where p_k are the components' predictions. The weights minimise the binary cross-entropy of observed cells
// (fractional scores as soft targets) of OUT-OF-FOLD predictions: each component is trained on two thirds of the
// training queries and predicts the remaining third, so a component that overfits its own training rows earns no extra
// weight. The components are then retrained on all of train. The components and the stacking weights are saved, so a
// loaded ensemble predicts bit-for-bit.
#include <fmt/format.h>

#include <Eigen/Dense>
#include <algorithm>

#include "predict/common.h"

namespace baton::predict {
namespace {

constexpr const char* kComponents[] = {"domain-prior", "factorized", "knn", "routerbench-mlp"};
constexpr size_t kFolds = 3;
constexpr int kIterations = 200;  // exponentiated-gradient steps
constexpr double kStep = 0.5;

// Thread-safety: immutable after Fit/LoadState; Predict is safe from many threads.
class EnsemblePredictor final : public PredictorBase {
 public:
  using PredictorBase::PredictorBase;
  std::string name() const override { return "ensemble"; }

  Status Fit(const Dataset& train) override {
    TrainData td;
    BATON_RETURN_IF_ERROR(Prepare(train, /*text=*/false, &td));
    const size_t n = td.n, ne = td.num_experts, nk = std::size(kComponents);
    // Out-of-fold predictions, n x ne x nk (NaN where a fold could not be trained).
    std::vector<float> oof(n * ne * nk, NAN);
    if (n >= 3 * kFolds) {
      for (const auto& [tr, va] : MakeFolds(n, kFolds, options_.seed ^ 0xe5e)) {
        const Dataset dtr = train.SelectQueries(tr);
        for (size_t k = 0; k < nk; ++k) {
          BATON_ASSIGN_OR_RETURN(std::unique_ptr<Predictor> p,
                                 MakePredictor(kComponents[k], {.seed = options_.seed, .cross_validate = false}));
          if (!p->Fit(dtr).ok()) continue;  // e.g. a fold without an observed cell: that component sits it out
          std::vector<float> out(ne);
          for (size_t q : va) {
            const QueryRecord& r = train.query(q);
            p->Predict({.text = r.text, .domain = r.domain, .subdomain = r.source}, out);
            for (size_t e = 0; e < ne; ++e) oof[(q * ne + e) * nk + k] = out[e];
          }
        }
      }
    }
    FitWeights(td, oof);
    components_.clear();
    for (size_t k = 0; k < nk; ++k) {
      BATON_ASSIGN_OR_RETURN(std::unique_ptr<Predictor> p, MakePredictor(kComponents[k], options_));
      BATON_RETURN_IF_ERROR(p->Fit(train).WithContext(std::string("ensemble component ") + kComponents[k]));
      components_.push_back(std::move(p));
    }
    return Status::Ok();
  }

  void Predict(const QueryView& q, std::span<float> out) const override {
    const size_t ne = out.size(), nk = components_.size();
    thread_local std::vector<float> parts;
    parts.assign(nk * ne, 0.0f);
    for (size_t k = 0; k < nk; ++k) components_[k]->Predict(q, std::span<float>(parts.data() + k * ne, ne));
    for (size_t e = 0; e < ne; ++e) {
      float s = 0;
      for (size_t k = 0; k < nk; ++k) s += weight_[e * nk + k] * parts[k * ne + e];
      out[e] = std::clamp(s, 0.0f, 1.0f);
    }
  }

  void SaveState(std::string* out) const override {
    ByteWriter w(out);
    SaveBase(&w);
    w.F32s(weight_);
    w.U64(components_.size());
    for (const auto& c : components_) {
      std::string bytes;
      c->SaveState(&bytes);
      w.Str(c->name());
      w.Str(bytes);
    }
  }
  Status LoadState(std::string_view bytes) override {
    ByteReader r(bytes);
    LoadBase(&r);
    weight_ = r.F32s();
    const uint64_t nk = r.U64();
    if (r.ok() && nk != std::size(kComponents))
      r.Fail(fmt::format("ensemble has {} components, expected {}", nk, std::size(kComponents)));
    r.Expect(weight_, experts_.size() * std::size(kComponents), "ensemble weights");
    components_.clear();
    for (uint64_t k = 0; k < nk && r.ok(); ++k) {
      const std::string name = r.Str(), state = r.Str();
      if (!r.ok()) break;
      if (name != kComponents[k]) {
        r.Fail(fmt::format("ensemble component {} is '{}', expected '{}'", k, name, kComponents[k]));
        break;
      }
      BATON_ASSIGN_OR_RETURN(std::unique_ptr<Predictor> p, MakePredictor(name, options_));
      BATON_RETURN_IF_ERROR(p->LoadState(state).WithContext("ensemble component " + name));
      if (p->experts() != experts_) r.Fail("ensemble component " + name + " has other experts");
      components_.push_back(std::move(p));
    }
    return r.Finish();
  }

  std::string Describe() const override {
    const size_t nk = std::size(kComponents), ne = experts_.size();
    std::string s = "stacked (out-of-fold convex mixture) mean weights:";
    for (size_t k = 0; k < nk && ne > 0; ++k) {
      double m = 0;
      for (size_t e = 0; e < ne; ++e) m += weight_[e * nk + k];
      s += fmt::format(" {}={:.2f}", kComponents[k], m / static_cast<double>(ne));
    }
    return s;
  }

 private:
  // Per expert, convex weights (w >= 0, sum 1) minimising the log-loss of the mixture on the out-of-fold predictions,
  // by exponentiated gradient from uniform weights. A convex mixture of probabilities cannot be more confident than
  // its most confident component, so components whose confidence differs between fold and full training (smaller
  // training sets give softer predictions) cannot blow it up; its log-loss is at most the weighted mean of theirs.
  void FitWeights(const TrainData& td, const std::vector<float>& oof) {
    const size_t n = td.n, ne = td.num_experts, nk = std::size(kComponents);
    weight_.assign(ne * nk, 0.0f);
    for (size_t e = 0; e < ne; ++e) weight_[e * nk] = 1.0f;  // without out-of-fold data: the domain prior alone
    for (size_t e = 0; e < ne; ++e) {
      std::vector<size_t> rows;
      for (size_t q = 0; q < n; ++q) {
        bool all = !std::isnan(td.Y(q, e));
        for (size_t k = 0; k < nk && all; ++k) all = !std::isnan(oof[(q * ne + e) * nk + k]);
        if (all) rows.push_back(q);
      }
      if (rows.empty()) continue;
      std::vector<double> w(nk, 1.0 / static_cast<double>(nk)), g(nk);
      for (int it = 0; it < kIterations; ++it) {
        std::fill(g.begin(), g.end(), 0.0);
        for (size_t q : rows) {
          const float* o = &oof[(q * ne + e) * nk];
          double p = 0;
          for (size_t k = 0; k < nk; ++k) p += w[k] * o[k];
          p = std::clamp(p, 1e-6, 1 - 1e-6);
          const double d = (p - td.Y(q, e)) / (p * (1 - p));
          for (size_t k = 0; k < nk; ++k) g[k] += d * o[k];
        }
        double z = 0;
        for (size_t k = 0; k < nk; ++k) {
          w[k] *= std::exp(-kStep * std::clamp(g[k] / static_cast<double>(rows.size()), -5.0, 5.0));
          z += w[k];
        }
        for (size_t k = 0; k < nk; ++k) w[k] /= z;
      }
      for (size_t k = 0; k < nk; ++k) weight_[e * nk + k] = static_cast<float>(w[k]);
    }
  }

  std::vector<float> weight_;  // ne x nk, each row on the simplex
  std::vector<std::unique_ptr<Predictor>> components_;
};

}  // namespace

std::unique_ptr<Predictor> NewEnsemblePredictor(const PredictorOptions& o) {
  return std::make_unique<EnsemblePredictor>(o);
}

}  // namespace baton::predict
