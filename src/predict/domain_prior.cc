// "domain-prior": per (domain, expert) mean observed score, shrunk toward the expert's global mean with an
// empirical-Bayes prior strength, and per (sub-domain, expert) shrunk toward its domain. Ignores the prompt text.
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
    const uint32_t d = DomainId(q.domain), sub = SubId(q.domain, q.subdomain);
    for (size_t e = 0; e < out.size(); ++e) out[e] = prior_.Get(d, sub, e);
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
    if (r.ok() && (prior_.num_experts != experts_.size() || prior_.num_domains != domains_.size() ||
                   prior_.num_subs != subs_.size())) {
      r.Fail("domain prior shape does not match its experts/domains");
    }
    return r.Finish();
  }
  std::string Describe() const override {
    std::vector<float> s = prior_.strength;
    if (s.empty()) return "";
    std::nth_element(s.begin(), s.begin() + s.size() / 2, s.end());
    std::vector<float> t = prior_.sub_strength;
    std::nth_element(s.begin(), s.begin() + s.size() / 2, s.end());
    std::nth_element(t.begin(), t.begin() + t.size() / 2, t.end());
    return fmt::format(
        "empirical-Bayes prior strength (median over experts) = {:.1f} pseudo-observations; {} sub-domains at "
        "strength {:.1f}",
        s[s.size() / 2], prior_.num_subs, t.empty() ? 0.0f : t[t.size() / 2]);
  }

 private:
  DomainPrior prior_;
};

}  // namespace

std::unique_ptr<Predictor> NewDomainPriorPredictor(const PredictorOptions& o) {
  return std::make_unique<DomainPriorPredictor>(o);
}

}  // namespace baton::predict
