// Acceptance features, the logistic acceptance model and recorded answers (see baton/escalation.h).
#include "baton/escalation.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "baton/responses.h"

namespace baton {
namespace {

double Sigmoid(double z) {
  return z >= 0 ? 1.0 / (1.0 + std::exp(-z)) : std::exp(z) / (1.0 + std::exp(z));
}

// Solves a x = b in place (Gaussian elimination with partial pivoting); false when singular.
template <size_t N>
bool Solve(std::array<std::array<double, N>, N>& a, std::array<double, N>& b) {
  for (size_t c = 0; c < N; ++c) {
    size_t p = c;
    for (size_t r = c + 1; r < N; ++r)
      if (std::abs(a[r][c]) > std::abs(a[p][c])) p = r;
    if (std::abs(a[p][c]) < 1e-12) return false;
    std::swap(a[p], a[c]);
    std::swap(b[p], b[c]);
    for (size_t r = c + 1; r < N; ++r) {
      const double f = a[r][c] / a[c][c];
      for (size_t k = c; k < N; ++k) a[r][k] -= f * a[c][k];
      b[r] -= f * b[c];
    }
  }
  for (size_t c = N; c-- > 0;) {
    for (size_t k = c + 1; k < N; ++k) b[c] -= a[c][k] * b[k];
    b[c] /= a[c][c];
  }
  return true;
}

}  // namespace

AcceptanceFeatures AcceptanceFeaturesOf(const std::optional<std::string>* first, const std::optional<std::string>* second,
                                        float score_first, float score_second, bool has_text) {
  AcceptanceFeatures f{};
  f[0] = 1.0f;
  f[1] = score_first;
  f[2] = second ? score_second : 0.0f;
  f[3] = first && first->has_value() ? 1.0f : 0.0f;
  f[4] = second && second->has_value() ? 1.0f : 0.0f;
  f[5] = (first && second && first->has_value() && second->has_value() && **first == **second) ? 1.0f : 0.0f;
  f[6] = has_text ? 1.0f : 0.0f;
  return f;
}

AcceptanceFeatures ExtractAcceptanceFeatures(std::span<const CheapAnswer> answers, AnswerForm form) {
  if (answers.empty()) return AcceptanceFeaturesOf(nullptr, nullptr, 0, 0, false);
  std::optional<std::string> a, b;
  if (answers[0].text) a = NormalizedAnswer(*answers[0].text, form);
  const bool two = answers.size() >= 2;
  if (two && answers[1].text) b = NormalizedAnswer(*answers[1].text, form);
  return AcceptanceFeaturesOf(&a, two ? &b : nullptr, answers[0].predicted_score,
                              two ? answers[1].predicted_score : 0.0f, answers[0].text.has_value());
}

AcceptanceModel AcceptanceModel::Fit(std::span<const AcceptanceFeatures> x, std::span<const float> label, double l2) {
  constexpr size_t K = kAcceptanceFeatures;
  std::array<double, K> w{};
  const size_t n = std::min(x.size(), label.size());
  if (n < 2) return AcceptanceModel(w);
  for (int it = 0; it < 50; ++it) {
    std::array<std::array<double, K>, K> h{};
    std::array<double, K> g{};
    for (size_t i = 0; i < n; ++i) {
      double z = 0;
      for (size_t k = 0; k < K; ++k) z += w[k] * x[i][k];
      const double p = Sigmoid(z), r = p - static_cast<double>(label[i]), v = std::max(p * (1 - p), 1e-9);
      for (size_t j = 0; j < K; ++j) {
        if (x[i][j] == 0.0f) continue;
        g[j] += r * x[i][j];
        for (size_t k = 0; k < K; ++k) h[j][k] += v * x[i][j] * x[i][k];
      }
    }
    for (size_t k = 1; k < K; ++k) {
      g[k] += l2 * w[k];
      h[k][k] += l2;
    }
    h[0][0] += 1e-9;
    // A feature that is 0 on every row (e.g. the second answer's with one cheap expert) keeps weight 0.
    for (size_t k = 0; k < K; ++k)
      if (h[k][k] == 0) h[k][k] = 1;
    if (!Solve(h, g)) break;
    double step = 0;
    for (size_t k = 0; k < K; ++k) w[k] -= g[k], step = std::max(step, std::abs(g[k]));
    if (step < 1e-8) break;
  }
  return AcceptanceModel(w);
}

double AcceptanceModel::Probability(const AcceptanceFeatures& f) const {
  double z = 0;
  for (size_t k = 0; k < kAcceptanceFeatures; ++k) z += w_[k] * f[k];
  return Sigmoid(z);
}

std::string AcceptanceModel::Describe() const {
  static const char* kNames[kAcceptanceFeatures] = {"bias",         "score_first", "score_second", "commit_first",
                                                    "commit_second", "agree",       "has_text"};
  std::string s;
  for (size_t k = 0; k < kAcceptanceFeatures; ++k) s += fmt::format("{}{}={:.3f}", k ? " " : "", kNames[k], w_[k]);
  return s;
}

std::string ResponseKey(std::string_view query_id, std::string_view model) {
  std::string k(query_id);
  k.push_back('\x1f');
  k.append(model);
  return k;
}

StatusOr<RecordedResponses> ReadResponses(const std::string& path) {
  RecordedResponses out;
  BATON_RETURN_IF_ERROR(ForEachRecordedResponse(
      path, [&out](const std::string& query_id, const std::string& model, const std::string& response) {
        out[ResponseKey(query_id, model)] = response;
      }));
  return out;
}

AnswerTable AnswersFor(const RecordedResponses& responses, const Dataset& ds) {
  AnswerTable t;
  t.num_experts = ds.num_experts();
  t.text.assign(ds.num_queries() * ds.num_experts(), std::nullopt);
  if (responses.empty()) return t;
  for (size_t q = 0; q < ds.num_queries(); ++q) {
    for (size_t e = 0; e < ds.num_experts(); ++e) {
      auto it = responses.find(ResponseKey(ds.query(q).external_id, ds.expert(e).name));
      if (it == responses.end()) continue;
      t.text[q * t.num_experts + e] = it->second;
      ++t.recorded;
    }
  }
  return t;
}

std::vector<AnswerForm> DomainForms(const Dataset& ds, const AnswerTable& answers) {
  const size_t nd = ds.domains().size();
  std::vector<size_t> n(nd, 0), letters(nd, 0), numbers(nd, 0);
  for (size_t q = 0; q < ds.num_queries(); ++q) {
    const uint32_t d = ds.domain_of(q);
    for (size_t e = 0; e < ds.num_experts(); ++e) {
      const std::optional<std::string>& t = answers.at(q, e);
      if (!t) continue;
      ++n[d];
      if (ExtractChoice(*t)) ++letters[d];
      else if (ExtractNumber(*t)) ++numbers[d];
    }
  }
  std::vector<AnswerForm> form(nd, AnswerForm::kText);
  for (size_t d = 0; d < nd; ++d) {
    if (n[d] == 0) continue;
    if (2 * letters[d] >= n[d]) form[d] = AnswerForm::kChoice;
    else if (2 * numbers[d] >= n[d]) form[d] = AnswerForm::kNumber;
  }
  return form;
}

}  // namespace baton
