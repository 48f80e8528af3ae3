// Predictor: estimates eval(e_i(q)) — how well each expert would answer a query — from the query's text and domain,
// trained on recorded outcomes. CostModel: estimates what each expert would charge for it.
//
// Predictors never read an unobserved (query, expert) cell as a failure: they train on observed cells only.
// A trained predictor is immutable and thread-safe for Predict(); Fit() is single-threaded.
//
// Example:
//   BATON_ASSIGN_OR_RETURN(std::unique_ptr<Predictor> p, MakePredictor("knn"));
//   BATON_RETURN_IF_ERROR(p->Fit(train));
//   std::vector<float> scores(p->num_experts());
//   p->Predict({.text = "What is 2+2?", .domain = "math"}, scores);
//   BATON_RETURN_IF_ERROR(SaveModel(*p, "model.baton"));
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "baton/dataset.h"
#include "baton/status.h"

namespace baton {

// A query as predictors see it.
struct QueryView {
  std::string_view text;
  std::string_view domain;     // "" when unknown
  std::string_view subdomain;  // finer provenance within the domain (QueryRecord::source), "" when unknown; an
                               // unknown or unseen sub-domain falls back to the domain
};

struct PredictorOptions {
  uint64_t seed = 0;  // for any randomness in training. Default: 0
  bool cross_validate =
      true;  // pick hyper-parameters by k-fold cross-validation inside the training set. Default: true
};

class Predictor {
 public:
  virtual ~Predictor() = default;

  // Stable name used on the command line and in model files, e.g. "knn", "routellm-mf".
  virtual std::string name() const = 0;
  // Trains on the observed cells of `train`. FailedPrecondition when `train` has no observed cell.
  virtual Status Fit(const Dataset& train) = 0;
  // REQUIRES: fitted; out.size() == num_experts(). Writes a predicted score in [0, 1] per expert (training order).
  virtual void Predict(const QueryView& q, std::span<float> out) const = 0;

  // Expert names in the order Predict() writes them.
  virtual const std::vector<std::string>& experts() const = 0;
  size_t num_experts() const { return experts().size(); }

  // Serialisation used by model files. SaveState appends the trained state to `out` (floats as raw bits);
  // LoadState restores it into a predictor made by MakePredictor(name()), DataLoss when the bytes are malformed.
  // The defaults say the predictor cannot be saved.
  virtual void SaveState(std::string* out) const { (void)out; }
  virtual Status LoadState(std::string_view bytes) {
    (void)bytes;
    return Status::FailedPrecondition("predictor '" + name() + "' cannot be loaded from a model file");
  }
  // One line on the hyper-parameters training chose (by cross-validation or defaults), e.g. "k=20 shrink=5".
  virtual std::string Describe() const { return ""; }
  // A predictor that chooses among other predictors on train-only out-of-fold data ("stack") reports, after Fit(),
  // the routing measure it compared them by: (predictor name, out-of-fold AIQ) per candidate, its own blend last.
  // Empty for the others, and after LoadState (not saved).
  virtual std::vector<std::pair<std::string, double>> SelectionScores() const { return {}; }
  // A predictor that computed out-of-fold predictions of itself on its training data while fitting ("stack": its
  // selected blend applied to the candidates' out-of-fold predictions) returns them after Fit(): num_queries x
  // num_experts row-major, in the training Dataset's order. Empty for the others and after LoadState (not saved).
  // Used by routers built on top of a predictor (escalation) to learn from train without optimistic scores.
  virtual std::vector<float> OutOfFoldScores() const { return {}; }
};

// Names MakePredictor accepts, the default first: "stack", the default of `baton fit`, `baton serve` (a gateway
// that trains its router) and `baton bench`.
std::vector<std::string> PredictorNames();
// InvalidArgument (listing the known names) for an unknown name.
StatusOr<std::unique_ptr<Predictor>> MakePredictor(const std::string& name, const PredictorOptions& options = {});

// Predicts every query of `ds` into a num_queries x num_experts row-major matrix (multi-threaded when it helps).
// REQUIRES: p is fitted on the same experts (same order) as ds.
std::vector<float> PredictAll(const Predictor& p, const Dataset& ds);

// Estimated cost in USD of sending a query to each expert: list prices x estimated tokens (input: chars / 4, output:
// the expert's mean recorded tokens_out) when the expert has prices, otherwise the expert's mean recorded cost scaled
// by the query's length relative to its mean training query length; NaN when neither is known.
//
// Thread-safety: immutable after Fit/Deserialize; Predict is safe from many threads.
class CostModel {
 public:
  // Learns mean output tokens and mean costs per expert from `train`.
  static StatusOr<CostModel> Fit(const Dataset& train);
  // REQUIRES: out.size() == number of experts in training.
  void Predict(const QueryView& q, std::span<float> out) const;
  const std::vector<std::string>& experts() const { return experts_; }

  // Serialised form (used inside model files).
  std::string Serialize() const;
  static StatusOr<CostModel> Deserialize(std::string_view bytes);

 private:
  std::vector<std::string> experts_;
  std::vector<double> usd_per_tok_in_, usd_per_tok_out_, mean_tokens_out_, mean_cost_, mean_chars_;
  // Per (domain, expert), row-major domains_.size() x experts_.size(); NaN = too few observations, use the above.
  std::vector<std::string> domains_;
  std::vector<double> dom_tokens_out_, dom_cost_, dom_chars_;
  std::unordered_map<std::string, size_t> domain_index_;  // derived from domains_
};

// The cost model's estimate for every query of `ds`, a num_queries x num_experts row-major matrix (bench sweeps and
// the self-play simulation price their routing decisions with it).
std::vector<float> PredictAllCosts(const CostModel& cm, const Dataset& ds);

// Model files: a trained predictor plus its cost model, versioned and checksummed. Loading a file from another
// version or a corrupted one is DataLoss / FailedPrecondition with a message that says which; a loaded model
// predicts bit-for-bit what the saved one did.
// The model file format version this baton writes and reads.
inline constexpr uint32_t kModelFormatVersion = 4;  // 2: sub-domains; 3: per-domain cost model; 4: training counts

struct RouterModel {
  std::unique_ptr<Predictor> predictor;
  CostModel cost;
  // Per predictor expert (same order): how many observed outcomes it was trained on. 0 = a cold start, whose
  // predictions are the predictor's prior and must not be routed to silently. Empty = unknown (treated as trained).
  std::vector<uint64_t> train_outcomes;

  // Names of the experts trained on no outcome.
  std::vector<std::string> ColdExperts() const;
};
Status SaveModel(const RouterModel& model, const std::string& path);
StatusOr<RouterModel> LoadModel(const std::string& path);

}  // namespace baton
