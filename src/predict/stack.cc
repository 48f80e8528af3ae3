// "stack": the default router. A weighted mean of other predictors' scores,
//
//   score(q, e) = sum_k w_k * p_k(q, e),   w_k = c_k / sum c,  c_k >= 0 integer counts,
//
// whose weights are chosen by a ROUTING measure on train only: every candidate (every registered predictor except
// those IsCandidate() leaves out, for the reasons it gives) is trained on two thirds of the training
// queries and predicts the remaining third (3 folds; with the stack's own cross_validate option, so each candidate
// picks its hyper-parameters inside the fold as it will on all of train), and a cost model fitted on
// the same two thirds predicts their costs. On these out-of-fold (OOF) predictions the routing measure is the AIQ of
// the lambda sweep (RealiseLambda over LambdaGrid, then Aiq over [0, C], C = the largest mean cost of a single expert
// or of a candidate's curve on train), computed exactly as `baton bench` computes it on test.
//
// Per-expert calibration: every candidate also enters the selection in a calibrated form, its score for expert e
// mapped through sigmoid(a_e * logit(p) + b_e) (Platt scaling, fitted by Newton's method on the observed OOF cells).
// The calibrated OOF predictions the selection sees are CROSS-FITTED (fold f's through a map fitted on the other
// folds' OOF cells), so calibration earns its place only where it pays on data it was not fitted on; a selected
// calibrated component uses the map fitted on all OOF cells.
//
// Weights: greedy ensemble selection with replacement (Caruana et al., ICML 2004). Start from the single entry
// with the best OOF AIQ (count 1); kSteps - 1 times add the entry (one more count, repeats allowed) whose addition
// gives the best OOF AIQ of the mean; keep the counts of the prefix of steps with the best OOF AIQ (a longer prefix
// must gain more than kMinGain). So on the OOF data the stack is never worse than any candidate. The selected
// components are then retrained on all of train (with the caller's cross_validate) and saved with their counts, so a
// loaded stack predicts bit-for-bit.
//
// Components trained on the same training set share one featurizer; Predict() sketches the prompt once and hands
// the sketch to every text component (PredictorBase::PredictSketch), so a decision costs one featurisation plus the
// components' own work.
//
// Thread-safety: immutable after Fit/LoadState; Predict is safe from many threads.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <thread>

#include "baton/bench.h"  // Aiq, LambdaGrid, RealiseLambda, EvaluateSingles: the routing measure bench reports
#include "predict/common.h"

namespace baton::predict {
namespace {

constexpr size_t kFolds = 3;
constexpr size_t kSteps = 24;      // greedy steps (the first is the best single entry)
constexpr double kMinGain = 1e-5;  // a longer prefix must raise OOF AIQ by more than this to be kept
constexpr size_t kLambdas = 60;    // log-spaced lambdas of the OOF sweep (besides 0)
constexpr uint64_t kFoldSalt = 0x5eed57acull;

// Not candidates: the stack itself; "ensemble" (itself a mixture of candidates); and the neighbour-search routers
// (knn, routellm-sw, routerbench-knn), whose every decision scans every training prompt's sketch (6,000 x 256
// floats on mmlu-pro: hundreds of microseconds), far over the pre-generation budget of the default router (median
// <= 20 us, p99 <= 100 us among 30 experts; bench/predict_bench.cc BM_RoutingDecision/<name> measures each).
bool IsCandidate(const std::string& name) {
  return name != "stack" && name != "ensemble" && name != "knn" && name != "routellm-sw" && name != "routerbench-knn";
}

// OOF AIQ of predicted scores `ps` with predicted costs `pc` on `train` (its recorded scores and costs).
double RoutingAiq(const Dataset& train, std::span<const float> ps, std::span<const float> pc, double c_max,
                  double* curve_max_cost = nullptr) {
  std::vector<CurvePoint> curve;
  for (double lambda : LambdaGrid(ps, pc, train.num_experts(), kLambdas)) {
    const Realised r = RealiseLambda(train, ps, pc, lambda);
    curve.push_back({.lambda = lambda, .accuracy = r.accuracy, .cost_per_query = r.cost_per_query});
    if (curve_max_cost && std::isfinite(r.cost_per_query))
      *curve_max_cost = std::max(*curve_max_cost, r.cost_per_query);
  }
  return Aiq(curve, c_max);
}

float Platt(float a, float b, float p) {
  return Sigmoid(a * Logit(p) + b);
}

// Per expert, (a, b) minimising the log-loss of sigmoid(a * logit(p) + b) against the observed scores on `rows`
// (Newton's method, a small ridge toward the identity map a = 1, b = 0). Returns a_0..a_ne-1 then b_0..b_ne-1.
std::vector<float> FitPlatt(const TrainData& td, const std::vector<float>& pred, const std::vector<size_t>& rows) {
  const size_t ne = td.num_experts;
  std::vector<float> ab(2 * ne);
  constexpr double kRidge = 1.0;
  for (size_t e = 0; e < ne; ++e) {
    double a = 1, b = 0;
    for (int it = 0; it < 20; ++it) {
      double ga = kRidge * (a - 1), gb = kRidge * b, haa = kRidge, hab = 0, hbb = kRidge;
      for (size_t q : rows) {
        const float y = td.Y(q, e);
        if (std::isnan(y)) continue;
        const double x = Logit(pred[q * td.num_experts + e]);
        const double s = 1.0 / (1.0 + std::exp(-(a * x + b))), d = s - y, w = std::max(s * (1 - s), 1e-9);
        ga += d * x, gb += d, haa += w * x * x, hab += w * x, hbb += w;
      }
      const double det = haa * hbb - hab * hab;
      if (!(det > 1e-12)) break;
      const double da = (hbb * ga - hab * gb) / det, db = (haa * gb - hab * ga) / det;
      a -= da, b -= db;
      if (std::abs(da) + std::abs(db) < 1e-7) break;
    }
    ab[e] = static_cast<float>(a);
    ab[ne + e] = static_cast<float>(b);
  }
  return ab;
}

class StackPredictor final : public PredictorBase {
 public:
  using PredictorBase::PredictorBase;
  std::string name() const override { return "stack"; }

  Status Fit(const Dataset& train) override {
    TrainData td;
    BATON_RETURN_IF_ERROR(Prepare(train, /*text=*/false, &td));
    const size_t n = td.n, ne = td.num_experts;
    std::vector<std::string> names;
    for (const std::string& c : PredictorNames())
      if (IsCandidate(c)) names.push_back(c);
    scores_.clear();
    oof_blend_.clear();
    // Selection entries: candidate k raw (2k) and calibrated (2k + 1).
    std::vector<size_t> counts(2 * names.size(), 0);
    std::vector<std::vector<float>> calib(names.size());  // per candidate: a_e then b_e (2 x ne) on all OOF cells
    if (n >= 3 * kFolds) {
      // Out-of-fold predictions per candidate (n x ne), and out-of-fold predicted costs.
      std::vector<std::vector<float>> oof(names.size(), std::vector<float>(n * ne, NAN));
      std::vector<float> oof_cost(n * ne, NAN);
      std::vector<bool> usable(names.size(), true);
      const auto folds = MakeFolds(n, kFolds, options_.seed ^ kFoldSalt);
      for (const auto& [tr, va] : folds) {
        const Dataset dtr = train.SelectQueries(tr);
        StatusOr<CostModel> cm = CostModel::Fit(dtr);
        if (!cm.ok()) return cm.status().WithContext("stack: cost model on a training fold");
        std::vector<float> out(ne);
        for (size_t q : va) {
          const QueryRecord& r = train.query(q);
          cm->Predict({.text = r.text, .domain = r.domain, .subdomain = r.source}, out);
          std::copy(out.begin(), out.end(), oof_cost.begin() + static_cast<std::ptrdiff_t>(q * ne));
        }
        for (size_t k = 0; k < names.size(); ++k) {
          if (!usable[k]) continue;
          // The candidates choose their hyper-parameters inside the fold as they will on all of train (the OOF
          // figures of the neural routers depend on them more than on anything else).
          BATON_ASSIGN_OR_RETURN(std::unique_ptr<Predictor> p, MakePredictor(names[k], options_));
          if (!p->Fit(dtr).ok() || p->experts() != experts_) {
            usable[k] = false;  // e.g. a fold without an observed cell: that candidate sits out
            continue;
          }
          for (size_t q : va) {
            const QueryRecord& r = train.query(q);
            p->Predict({.text = r.text, .domain = r.domain, .subdomain = r.source}, out);
            std::copy(out.begin(), out.end(), oof[k].begin() + static_cast<std::ptrdiff_t>(q * ne));
          }
        }
      }
      // NaN costs (an expert without prices or recorded costs) would poison the objective: the expert's mean.
      for (size_t e = 0; e < ne; ++e) {
        const double m = train.MeanCost(e);
        for (size_t q = 0; q < n; ++q)
          if (std::isnan(oof_cost[q * ne + e])) oof_cost[q * ne + e] = std::isnan(m) ? 0.0f : static_cast<float>(m);
      }
      // Entries: raw OOF predictions, and cross-fitted calibrated ones.
      std::vector<std::vector<float>> entry(2 * names.size());
      std::vector<std::string> entry_names(2 * names.size());
      std::vector<bool> entry_ok(2 * names.size(), false);
      for (size_t k = 0; k < names.size(); ++k) {
        entry_names[2 * k] = names[k];
        entry_names[2 * k + 1] = names[k] + "+calibrated";
        if (!usable[k] || std::any_of(oof[k].begin(), oof[k].end(), [](float v) { return std::isnan(v); })) continue;
        entry_ok[2 * k] = entry_ok[2 * k + 1] = true;
        std::vector<float> cal(n * ne);
        for (size_t f = 0; f < folds.size(); ++f) {
          const std::vector<float> ab = FitPlatt(td, oof[k], folds[f].first);
          for (size_t q : folds[f].second)
            for (size_t e = 0; e < ne; ++e) cal[q * ne + e] = Platt(ab[e], ab[ne + e], oof[k][q * ne + e]);
        }
        calib[k] = FitPlatt(td, oof[k], AllRows(n));
        entry[2 * k] = std::move(oof[k]);
        entry[2 * k + 1] = std::move(cal);
      }
      counts = Select(train, entry_names, entry, oof_cost, entry_ok);
      // The selected blend on the out-of-fold entries: the stack's own out-of-fold predictions (OutOfFoldScores).
      size_t total = 0;
      for (size_t c : counts) total += c;
      if (total > 0) {
        std::vector<double> sum(n * ne, 0.0);
        for (size_t i = 0; i < counts.size(); ++i) {
          if (counts[i] == 0) continue;
          for (size_t j = 0; j < n * ne; ++j) sum[j] += static_cast<double>(counts[i]) * entry[i][j];
        }
        oof_blend_.resize(n * ne);
        for (size_t j = 0; j < n * ne; ++j)
          oof_blend_[j] = std::clamp(static_cast<float>(sum[j] / static_cast<double>(total)), 0.0f, 1.0f);
      }
    }
    if (std::all_of(counts.begin(), counts.end(), [](size_t c) { return c == 0; })) {
      // Too few queries for out-of-fold data: the domain prior alone.
      counts.assign(2 * names.size(), 0);
      counts[2 * static_cast<size_t>(std::find(names.begin(), names.end(), "domain-prior") - names.begin())] = 1;
    }
    models_.clear();
    term_model_.clear();
    count_.clear();
    calib_.clear();
    for (size_t i = 0; i < counts.size(); ++i) {
      if (counts[i] == 0) continue;
      const std::string& name = names[i / 2];
      if (models_.empty() || models_.back()->name() != name) {  // a raw and a calibrated term share one model
        BATON_ASSIGN_OR_RETURN(std::unique_ptr<Predictor> p, MakePredictor(name, options_));
        BATON_RETURN_IF_ERROR(p->Fit(train).WithContext("stack component " + name));
        if (p->experts() != experts_) return Status::Internal("stack component " + name + " has other experts");
        models_.push_back(std::move(p));
      }
      term_model_.push_back(models_.size() - 1);
      count_.push_back(static_cast<uint32_t>(counts[i]));
      calib_.push_back(i % 2 ? calib[i / 2] : std::vector<float>{});
    }
    return Finalize();
  }

  void Predict(const QueryView& q, std::span<float> out) const override {
    const size_t ne = out.size();
    thread_local std::vector<float> part;
    part.resize(ne);
    float z[kEmbedDim];
    bool sketched = false;
    std::fill(out.begin(), out.end(), 0.0f);
    size_t last = models_.size();
    for (size_t k = 0; k < term_model_.size(); ++k) {
      const size_t m = term_model_[k];
      if (m != last) {
        if (shared_sketch_ && base_[m] && base_[m]->uses_text()) {
          if (!sketched) base_[m]->Embed(q.text, z), sketched = true;
          base_[m]->PredictSketch(q, z, part);
        } else {
          models_[m]->Predict(q, part);
        }
        last = m;
      }
      const float w = weight_[k];
      const std::vector<float>& ab = calib_[k];
      if (ab.empty()) {
        for (size_t e = 0; e < ne; ++e) out[e] += w * part[e];
      } else {
        for (size_t e = 0; e < ne; ++e) out[e] += w * Platt(ab[e], ab[ne + e], part[e]);
      }
    }
    for (float& s : out) s = std::clamp(s, 0.0f, 1.0f);
  }

  void SaveState(std::string* out) const override {
    ByteWriter w(out);
    SaveBase(&w);
    // Per term: name, count, calibration (empty = raw), the model's state (empty = the previous term's model).
    w.U64(term_model_.size());
    for (size_t k = 0; k < term_model_.size(); ++k) {
      const Predictor& m = *models_[term_model_[k]];
      std::string bytes;
      if (k == 0 || term_model_[k] != term_model_[k - 1]) m.SaveState(&bytes);
      w.Str(m.name());
      w.U32(count_[k]);
      w.F32s(calib_[k]);
      w.Str(bytes);
    }
  }
  Status LoadState(std::string_view bytes) override {
    ByteReader r(bytes);
    LoadBase(&r);
    const uint64_t nk = r.U64();
    if (r.ok() && (nk == 0 || nk > 64)) r.Fail(fmt::format("stack has {} components", nk));
    models_.clear();
    term_model_.clear();
    count_.clear();
    calib_.clear();
    for (uint64_t k = 0; k < nk && r.ok(); ++k) {
      const std::string name = r.Str();
      const uint32_t count = r.U32();
      std::vector<float> ab = r.F32s();
      const std::string state = r.Str();
      if (r.ok() && !ab.empty()) r.Expect(ab, 2 * experts_.size(), "stack calibration");
      if (!r.ok()) break;
      if (!IsCandidate(name) || count == 0) {
        r.Fail(fmt::format("stack component {} is '{}' with count {}", k, name, count));
        break;
      }
      if (state.empty()) {  // shares the previous term's model
        if (models_.empty() || models_.back()->name() != name) {
          r.Fail(fmt::format("stack component {} ('{}') has no state", k, name));
          break;
        }
        term_model_.push_back(models_.size() - 1);
        count_.push_back(count);
        calib_.push_back(std::move(ab));
        continue;
      }
      StatusOr<std::unique_ptr<Predictor>> p = MakePredictor(name, options_);
      if (!p.ok()) {
        r.Fail(fmt::format("stack component {}: {}", k, p.status().message()));
        break;
      }
      BATON_RETURN_IF_ERROR((*p)->LoadState(state).WithContext("stack component " + name));
      if ((*p)->experts() != experts_) r.Fail("stack component " + name + " has other experts");
      models_.push_back(std::move(*p));
      term_model_.push_back(models_.size() - 1);
      count_.push_back(count);
      calib_.push_back(std::move(ab));
    }
    BATON_RETURN_IF_ERROR(r.Finish());
    return Finalize();
  }

  std::string Describe() const override {
    std::string s = "greedy selection on out-of-fold AIQ (train only); weights:";
    uint32_t total = 0;
    for (uint32_t c : count_) total += c;
    for (size_t k = 0; k < term_model_.size(); ++k)
      s += fmt::format(" {}{}={}/{}", models_[term_model_[k]]->name(), calib_[k].empty() ? "" : "+calibrated",
                       count_[k], total);
    return s;
  }

  std::vector<std::pair<std::string, double>> SelectionScores() const override { return scores_; }
  std::vector<float> OutOfFoldScores() const override { return oof_blend_; }

 private:
  // Greedy selection with replacement; returns the count per candidate and fills scores_.
  std::vector<size_t> Select(const Dataset& train, const std::vector<std::string>& names,
                             const std::vector<std::vector<float>>& oof, const std::vector<float>& oof_cost,
                             const std::vector<bool>& usable) {
    const size_t nk = names.size(), n = train.num_queries(), ne = train.num_experts();
    std::vector<size_t> counts(nk, 0);
    // C: the largest mean cost of a single expert or of a candidate's curve (fixed for every blend compared).
    double c_max = 0;
    for (const ExpertPoint& s : EvaluateSingles(train))
      if (std::isfinite(s.cost_per_query)) c_max = std::max(c_max, s.cost_per_query);
    auto complete = [&](size_t k) {
      return usable[k] && std::none_of(oof[k].begin(), oof[k].end(), [](float v) { return std::isnan(v); });
    };
    for (size_t k = 0; k < nk; ++k) {
      if (complete(k)) RoutingAiq(train, oof[k], oof_cost, 1.0, &c_max);
    }
    if (c_max <= 0) return counts;
    std::vector<double> single(nk, -1);
    size_t best = nk;
    for (size_t k = 0; k < nk; ++k) {
      if (!complete(k)) continue;
      single[k] = RoutingAiq(train, oof[k], oof_cost, c_max);
      scores_.emplace_back(names[k], single[k]);
      if (best == nk || single[k] > single[best]) best = k;
    }
    if (best == nk) return counts;
    // Each step adds the entry whose addition gives the best OOF AIQ (repeats allowed, so an entry can also be
    // re-added to sharpen its weight); the counts kept are those of the best prefix of steps.
    std::vector<size_t> step_pick = {best};
    std::vector<double> sum(oof[best].begin(), oof[best].end());
    double current = single[best];
    size_t best_prefix = 1;
    const size_t threads = std::clamp<size_t>(std::thread::hardware_concurrency(), 1, 2);
    std::vector<std::vector<float>> blend(threads, std::vector<float>(n * ne));
    for (size_t step = 1; step < kSteps; ++step) {
      std::vector<double> aiq(nk, -1);
      auto work = [&](size_t t) {
        const double inv = 1.0 / static_cast<double>(step + 1);
        for (size_t k = t; k < nk; k += threads) {
          if (single[k] < 0) continue;
          std::vector<float>& b = blend[t];
          for (size_t i = 0; i < n * ne; ++i) b[i] = static_cast<float>((sum[i] + oof[k][i]) * inv);
          aiq[k] = RoutingAiq(train, b, oof_cost, c_max);
        }
      };
      std::vector<std::thread> pool;
      for (size_t t = 1; t < threads; ++t) pool.emplace_back(work, t);
      work(0);
      for (auto& th : pool) th.join();
      const size_t pick = static_cast<size_t>(std::max_element(aiq.begin(), aiq.end()) - aiq.begin());
      step_pick.push_back(pick);
      for (size_t i = 0; i < n * ne; ++i) sum[i] += oof[pick][i];
      if (aiq[pick] > current + kMinGain) current = aiq[pick], best_prefix = step_pick.size();
    }
    for (size_t i = 0; i < best_prefix; ++i) ++counts[step_pick[i]];
    scores_.emplace_back("stack", current);
    return counts;
  }

  // Derived state: normalised weights, and whether the text components can share one sketch.
  Status Finalize() {
    uint32_t total = 0;
    for (uint32_t c : count_) total += c;
    weight_.clear();
    for (uint32_t c : count_) weight_.push_back(static_cast<float>(c) / static_cast<float>(total));
    base_.clear();
    for (const auto& c : models_) base_.push_back(dynamic_cast<const PredictorBase*>(c.get()));
    // Sharing is exact only when every text component's featurizer is the same (same training texts and seed).
    shared_sketch_ = true;
    const PredictorBase* first = nullptr;
    for (const PredictorBase* b : base_) {
      if (!b || !b->uses_text()) continue;
      if (!first) {
        first = b;
      } else if (!b->SameFeaturizer(*first)) {
        shared_sketch_ = false;
      }
    }
    return Status::Ok();
  }

  // The blend is a list of terms; a term is a model's prediction, raw or calibrated, with a weight. The raw and the
  // calibrated term of one candidate share its model (predicted once per decision).
  std::vector<std::unique_ptr<Predictor>> models_;
  std::vector<size_t> term_model_;         // per term, its model in models_
  std::vector<uint32_t> count_;            // per term, its selection count (saved)
  std::vector<std::vector<float>> calib_;  // per term: empty (raw) or a_e then b_e, 2 x ne (saved)
  std::vector<float> weight_;              // per term, count / total (derived)
  std::vector<const PredictorBase*> base_;
  bool shared_sketch_ = false;
  std::vector<std::pair<std::string, double>> scores_;  // OOF AIQ per candidate, then "stack" (not saved)
  std::vector<float> oof_blend_;                        // the blend on the OOF entries (not saved)
};

}  // namespace

std::unique_ptr<Predictor> NewStackPredictor(const PredictorOptions& o) {
  return std::make_unique<StackPredictor>(o);
}

}  // namespace baton::predict
