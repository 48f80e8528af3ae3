// "domain-prior": per (domain, expert) mean observed score, shrunk toward the expert's global mean with an
// empirical-Bayes prior strength. Ignores the prompt text.
#include <fmt/format.h>

#include <algorithm>

#include "predict/common.h"

namespace baton::predict {
namespace {

// Thread-safety: immutable after Fit/LoadState; Predict is safe from many threads.
class DomainPriorPredictor final : public PredictorBase {
 public:
  using PredictorBase::PredictorBase;
  std::string name() const override { return "domain-prior"; }

  Status Fit(const Dataset& train) override {
    TrainData td;
    BATON_RETURN_IF_ERROR(Prepare(train, /*text=*/false, &td));
    prior_.Fit(td, AllRows(td.n));
    return Status::Ok();
  }

  void Predict(const QueryView& q, std::span<float> out) const override {
    const uint32_t d = DomainId(q.domain);
    for (size_t e = 0; e < out.size(); ++e) out[e] = prior_.Get(d, e);
  }

  void SaveState(std::string* out) const override {
    ByteWriter w(out);
    SaveBase(&w);
    prior_.Save(&w);
  }
  Status LoadState(std::string_view bytes) override {
    ByteReader r(bytes);
    LoadBase(&r);
    prior_.Load(&r);
    if (r.ok() && (prior_.num_experts != experts_.size() || prior_.num_domains != domains_.size())) {
      r.Fail("domain prior shape does not match its experts/domains");
    }
    return r.Finish();
  }
  std::string Describe() const override {
    std::vector<float> s = prior_.strength;
    if (s.empty()) return "";
    std::nth_element(s.begin(), s.begin() + s.size() / 2, s.end());
    return fmt::format("empirical-Bayes prior strength (median over experts) = {:.1f} pseudo-observations",
                       s[s.size() / 2]);
  }

 private:
  DomainPrior prior_;
};

}  // namespace

std::unique_ptr<Predictor> NewDomainPriorPredictor(const PredictorOptions& o) {
  return std::make_unique<DomainPriorPredictor>(o);
}

}  // namespace baton::predict
