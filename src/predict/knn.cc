// Neighbour-based predictors over the (sketched) TF-IDF cosine similarity of prompts:
//   "knn":             mean observed score of the k nearest training queries that observed the expert, shrunk toward
//                      the domain prior with m pseudo-observations; k and m by 3-fold CV.
//   "routellm-sw":     RouteLLM's similarity-weighted router generalised to N experts. RouteLLM weights each training
//                      battle by gamma^(1 + 10 cos(q, q_i)) (gamma = 10) and fits Bradley-Terry on pairwise wins; with
//                      absolute per-expert scores the N-expert generalisation is the pointwise weighted mean of each
//                      expert's observed scores. For speed only the kSwTopK most similar training queries are used
//                      (weights fall by 10x per 0.1 of cosine, so farther ones contribute almost nothing).
//   "routerbench-knn": RouterBench's kNN router: unweighted mean score of the k nearest (k in 5..40 by CV).
// Training queries that did not observe an expert are skipped for that expert (unobserved is not a failure).
#include <fmt/format.h>

#include <Eigen/Dense>
#include <algorithm>

#include "predict/common.h"

namespace baton::predict {
namespace {

using RowMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

enum class Kind { kKnn, kSw, kRouterBench };
constexpr size_t kSwTopK = 100;
constexpr float kSwGamma = 10.0f;
constexpr size_t kKnnKs[] = {10, 20, 40};
constexpr float kKnnShrinks[] = {2.0f, 8.0f, 32.0f};
constexpr size_t kRbKs[] = {5, 10, 20, 40};

using Neighbors = std::vector<std::pair<float, uint32_t>>;  // (similarity, training row), most similar first

void TopK(const float* sims, size_t n, size_t k, Neighbors* out) {
  out->resize(n);
  for (uint32_t i = 0; i < n; ++i) (*out)[i] = {sims[i], i};
  k = std::min(k, n);
  std::partial_sort(
      out->begin(), out->begin() + static_cast<ptrdiff_t>(k), out->end(),
      [](const auto& a, const auto& b) { return a.first > b.first || (a.first == b.first && a.second < b.second); });
  out->resize(k);
}

struct Config {
  size_t k = 20;
  float shrink = 4.0f;
};

// Writes one prediction per expert from the neighbours (rows index into `y`, num_experts wide).
void Aggregate(Kind kind, const Config& c, const Neighbors& nb, const float* y, size_t ne, const DomainPrior& prior,
               uint32_t dom, uint32_t sub, std::span<float> out) {
  const size_t k = kind == Kind::kSw ? nb.size() : std::min(c.k, nb.size());
  const float top = nb.empty() ? 0.0f : nb[0].first;
  for (size_t e = 0; e < ne; ++e) {
    double sum = 0, wsum = 0;
    for (size_t i = 0; i < k; ++i) {
      const float s = y[nb[i].second * ne + e];
      if (std::isnan(s)) continue;
      // gamma^(1 + 10 sim) up to a common factor: gamma^(10 (sim - top)) keeps it in range.
      const double w = kind == Kind::kSw ? std::pow(kSwGamma, 10.0 * (nb[i].first - top)) : 1.0;
      sum += w * s, wsum += w;
    }
    if (kind == Kind::kKnn) {
      out[e] = static_cast<float>((sum + c.shrink * prior.Get(dom, sub, e)) / (wsum + c.shrink));
    } else {
      out[e] = wsum > 0 ? static_cast<float>(sum / wsum) : prior.global[e];
    }
  }
}

// Thread-safety: immutable after Fit/LoadState; Predict is safe from many threads.
class NeighborPredictor final : public PredictorBase {
 public:
  NeighborPredictor(const PredictorOptions& o, Kind kind) : PredictorBase(o), kind_(kind) {}
  std::string name() const override {
    return kind_ == Kind::kKnn ? "knn" : kind_ == Kind::kSw ? "routellm-sw" : "routerbench-knn";
  }

  Status Fit(const Dataset& train) override {
    TrainData td;
    BATON_RETURN_IF_ERROR(Prepare(train, /*text=*/true, &td));
    std::vector<Config> grid;
    if (kind_ == Kind::kKnn) {
      for (size_t k : kKnnKs) {
        for (float m : kKnnShrinks) grid.push_back({k, m});
      }
    } else if (kind_ == Kind::kRouterBench) {
      for (size_t k : kRbKs) grid.push_back({k, 0});
    } else {
      grid.push_back({kSwTopK, 0});
    }
    config_ = grid[std::min<size_t>(1, grid.size() - 1)];
    if (options_.cross_validate && grid.size() > 1) config_ = grid[CrossValidate(td, grid)];
    z_ = td.z;
    y_ = td.y;
    n_ = td.n;
    prior_.Fit(td, AllRows(td.n));
    return Status::Ok();
  }

  void Predict(const QueryView& q, std::span<float> out) const override {
    float z[kEmbedDim];
    Embed(q.text, z);
    PredictSketch(q, z, out);
  }
  void PredictSketch(const QueryView& q, const float* z, std::span<float> out) const override {
    thread_local std::vector<float> sims;
    thread_local Neighbors nb;
    sims.resize(n_);
    Eigen::Map<const RowMatrix> zm(z_.data(), static_cast<Eigen::Index>(n_), kEmbedDim);
    Eigen::Map<Eigen::VectorXf>(sims.data(), static_cast<Eigen::Index>(n_)).noalias() =
        zm * Eigen::Map<const Eigen::VectorXf>(z, kEmbedDim);
    TopK(sims.data(), n_, kind_ == Kind::kSw ? kSwTopK : config_.k, &nb);
    Aggregate(kind_, config_, nb, y_.data(), experts_.size(), prior_, DomainId(q.domain), SubId(q.domain, q.subdomain),
              out);
  }

  void SaveState(std::string* out) const override {
    ByteWriter w(out);
    SaveBase(&w);
    w.U64(config_.k);
    w.F32(config_.shrink);
    w.U64(n_);
    w.F32s(z_);
    w.F32s(y_);
    prior_.Save(&w);
  }
  Status LoadState(std::string_view bytes) override {
    ByteReader r(bytes);
    LoadBase(&r);
    config_.k = r.U64();
    config_.shrink = r.F32();
    n_ = r.U64();
    z_ = r.F32s();
    y_ = r.F32s();
    prior_.Load(&r);
    if (r.ok() && (n_ > z_.size() || config_.k == 0)) r.Fail("neighbour index header is inconsistent");
    r.Expect(z_, n_ * kEmbedDim, "neighbour sketches");
    r.Expect(y_, n_ * experts_.size(), "neighbour scores");
    // Predictions average these: a score outside [0, 1] (NaN = not observed) would leave the [0, 1] promise.
    if (r.ok() && !std::all_of(y_.begin(), y_.end(), [](float v) { return std::isnan(v) || (v >= 0 && v <= 1); })) {
      r.Fail("a neighbour score is outside [0, 1]");
    }
    if (r.ok() && !(config_.shrink >= 0 && std::isfinite(config_.shrink))) r.Fail("negative or non-finite shrink");
    if (r.ok() && (prior_.num_experts != experts_.size() || prior_.num_domains != domains_.size())) {
      r.Fail("domain prior shape does not match its experts/domains");
    }
    return r.Finish();
  }
  std::string Describe() const override {
    const char* cv = options_.cross_validate ? " (3-fold CV)" : "";
    if (kind_ == Kind::kKnn) return fmt::format("k={} shrink={:g}{}", config_.k, config_.shrink, cv);
    if (kind_ == Kind::kRouterBench) return fmt::format("k={}{}", config_.k, cv);
    return fmt::format("gamma={:g} top-{} neighbours", kSwGamma, kSwTopK);
  }

 private:
  size_t CrossValidate(const TrainData& td, const std::vector<Config>& grid) {
    size_t kmax = 0;
    for (const auto& c : grid) kmax = std::max(kmax, c.k);
    std::vector<double> loss(grid.size(), 0.0);
    if (td.n < 30) return 0;
    const size_t ne = td.num_experts;
    std::vector<float> pred(ne);
    for (const auto& [tr, va] : MakeFolds(td.n, 3, options_.seed)) {
      TrainData sub;  // the fold's training rows, renumbered
      sub.n = tr.size(), sub.num_experts = ne, sub.num_domains = td.num_domains, sub.expert_mean = td.expert_mean;
      sub.num_subs = td.num_subs, sub.sub_parent = td.sub_parent;
      sub.sub.resize(tr.size());
      RowMatrix ztr(static_cast<Eigen::Index>(tr.size()), kEmbedDim);
      sub.y.resize(tr.size() * ne);
      sub.dom.resize(tr.size());
      for (size_t i = 0; i < tr.size(); ++i) {
        std::copy_n(td.Z(tr[i]), kEmbedDim, ztr.row(static_cast<Eigen::Index>(i)).data());
        std::copy_n(td.y.data() + tr[i] * ne, ne, sub.y.data() + i * ne);
        sub.dom[i] = td.dom[tr[i]];
        sub.sub[i] = td.sub[tr[i]];
      }
      DomainPrior prior;
      prior.Fit(sub, AllRows(sub.n));
      constexpr size_t kBlock = 256;
      Neighbors nb;
      for (size_t b = 0; b < va.size(); b += kBlock) {
        const size_t m = std::min(kBlock, va.size() - b);
        RowMatrix zva(static_cast<Eigen::Index>(m), kEmbedDim);
        for (size_t i = 0; i < m; ++i)
          std::copy_n(td.Z(va[b + i]), kEmbedDim, zva.row(static_cast<Eigen::Index>(i)).data());
        const RowMatrix sims = zva * ztr.transpose();
        for (size_t i = 0; i < m; ++i) {
          const size_t q = va[b + i];
          TopK(sims.row(static_cast<Eigen::Index>(i)).data(), tr.size(), kmax, &nb);
          for (size_t c = 0; c < grid.size(); ++c) {
            Aggregate(kind_, grid[c], nb, sub.y.data(), ne, prior, td.dom[q], td.sub[q], pred);
            for (size_t e = 0; e < ne; ++e) {
              if (!std::isnan(td.Y(q, e))) loss[c] += LogLoss(pred[e], td.Y(q, e));
            }
          }
        }
      }
    }
    return static_cast<size_t>(std::min_element(loss.begin(), loss.end()) - loss.begin());
  }

  Kind kind_;
  Config config_;
  size_t n_ = 0;
  std::vector<float> z_;  // n x kEmbedDim training sketches
  std::vector<float> y_;  // n x experts observed scores, NaN = unobserved
  DomainPrior prior_;
};

}  // namespace

std::unique_ptr<Predictor> NewKnnPredictor(const PredictorOptions& o) {
  return std::make_unique<NeighborPredictor>(o, Kind::kKnn);
}
std::unique_ptr<Predictor> NewRouteLlmSwPredictor(const PredictorOptions& o) {
  return std::make_unique<NeighborPredictor>(o, Kind::kSw);
}
std::unique_ptr<Predictor> NewRouterBenchKnnPredictor(const PredictorOptions& o) {
  return std::make_unique<NeighborPredictor>(o, Kind::kRouterBench);
}

}  // namespace baton::predict
