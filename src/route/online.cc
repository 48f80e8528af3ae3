// OnlineRouter: per-query choice with a paced Lagrange multiplier. The rule is documented in baton/policy.h.
#include <algorithm>
#include <cmath>
#include <memory>
#include <vector>

#include <fmt/format.h>

#include "baton/policy.h"

namespace baton {

StatusOr<OnlineRouter> OnlineRouter::Create(const OnlineOptions& options) {
  if (!(options.budget_usd > 0) || std::isinf(options.budget_usd)) {
    return Status::InvalidArgument(fmt::format("budget {} must be a positive amount", options.budget_usd));
  }
  if (options.expected_queries == 0) return Status::InvalidArgument("expected query count must be positive");
  if (!(options.pacing_gain >= 0)) return Status::InvalidArgument("pacing gain must be non-negative");
  return OnlineRouter(options);
}

StatusOr<size_t> OnlineRouter::Choose(std::span<const float> predicted_score, std::span<const float> predicted_cost) {
  const size_t n = std::min(predicted_score.size(), predicted_cost.size());
  std::vector<bool> fits(n);
  bool any = false;
  float cheapest = NAN;
  for (size_t e = 0; e < n; ++e) {
    const float s = predicted_score[e], c = predicted_cost[e];
    if (std::isnan(s) || std::isnan(c)) continue;
    if (std::isnan(cheapest) || c < cheapest) cheapest = c;
    fits[e] = c <= remaining_;
    any |= fits[e];
  }
  if (!any) {
    return Status::ResourceExhausted(fmt::format("remaining budget ${:.6g} is below the cheapest expert (${:.6g})",
                                                 remaining_, std::isnan(cheapest) ? 0.f : cheapest));
  }
  if (scale_ <= 0) {  // first query: the starting price of cost
    double smin = INFINITY, smax = -INFINITY, cmin = INFINITY, cmax = -INFINITY, csum = 0;
    size_t count = 0;
    for (size_t e = 0; e < n; ++e) {
      const float s = predicted_score[e], c = predicted_cost[e];
      if (std::isnan(s) || std::isnan(c)) continue;
      smin = std::min<double>(smin, s), smax = std::max<double>(smax, s);
      cmin = std::min<double>(cmin, c), cmax = std::max<double>(cmax, c);
      csum += c, ++count;
    }
    scale_ = cmax > cmin && smax > smin ? (smax - smin) / (cmax - cmin) : 1.0 / std::max(csum / count, 1e-12);
    lambda_ = options_.initial_lambda >= 0 ? options_.initial_lambda : scale_;
  }
  cheap_sum_ += cheapest, ++seen_;
  cheap_max_ = std::max<double>(cheap_max_, cheapest);
  const double left_after = options_.expected_queries > served_ + 1 ? options_.expected_queries - served_ - 1 : 0;
  const double spendable = remaining_ - left_after * (cheap_sum_ / seen_) - (left_after > 0 ? cheap_max_ : 0);
  std::unique_ptr<bool[]> allowed(new bool[n]);
  bool any_spendable = false;
  for (size_t e = 0; e < n; ++e) {
    allowed[e] = fits[e] && predicted_cost[e] <= spendable;
    any_spendable |= allowed[e];
  }
  // Within the reserve: the paced choice. Otherwise the cheapest expert that fits (lambda = infinity).
  const double lambda = any_spendable ? lambda_ : 1e300;
  if (!any_spendable) {
    for (size_t e = 0; e < n; ++e) allowed[e] = fits[e];
  }
  const int e =
      ChooseExpert(predicted_score.first(n), predicted_cost.first(n), lambda, std::span<const bool>(allowed.get(), n));
  if (e < 0) return Status::Internal("no expert chosen although one fits");
  return static_cast<size_t>(e);
}

void OnlineRouter::Settle(double realised_cost_usd) {
  if (std::isnan(realised_cost_usd) || realised_cost_usd < 0) realised_cost_usd = 0;
  spent_ += realised_cost_usd;
  remaining_ -= realised_cost_usd;
  ++served_;
  if (scale_ <= 0) return;  // Settle before any Choose: nothing to pace yet
  const double target = options_.budget_usd * static_cast<double>(std::min(served_, options_.expected_queries)) /
                        static_cast<double>(options_.expected_queries);
  const double ratio = spent_ / target;
  const double factor = std::clamp(std::pow(std::max(ratio, 1e-9), options_.pacing_gain), 0.5, 2.0);
  lambda_ = std::max(lambda_ * factor, scale_ * 1e-6);
}

}  // namespace baton
