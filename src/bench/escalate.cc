// The escalation router in the bench: cheap call(s), an acceptance check on their answers, escalation to the router.
#include "bench/escalate.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <map>
#include <numeric>

#include <fmt/format.h>

namespace baton {
namespace {

// Realised cost per cell: recorded, else the expert's mean known cost on `ds`, else 0.
std::vector<double> RealisedCosts(const Dataset& ds) {
  const size_t nq = ds.num_queries(), ne = ds.num_experts();
  std::vector<double> mean(ne), rc(nq * ne);
  for (size_t e = 0; e < ne; ++e) mean[e] = ds.MeanCost(e);
  for (size_t q = 0; q < nq; ++q) {
    for (size_t e = 0; e < ne; ++e) {
      const float c = ds.cost(q, e);
      rc[q * ne + e] = !std::isnan(c) ? c : (std::isnan(mean[e]) ? 0.0 : mean[e]);
    }
  }
  return rc;
}

bool Contains(std::span<const size_t> v, size_t x) { return std::find(v.begin(), v.end(), x) != v.end(); }

// Per query, argmax(ps - lambda * pc) over the observed experts (excluding `exclude`); -1 when none.
std::vector<int> Targets(const Dataset& ds, std::span<const float> ps, std::span<const float> pc, double lambda,
                         std::span<const size_t> exclude) {
  const size_t nq = ds.num_queries(), ne = ds.num_experts();
  std::vector<int> t(nq, -1);
  for (size_t q = 0; q < nq; ++q) {
    double best = -std::numeric_limits<double>::infinity();
    for (size_t e = 0; e < ne; ++e) {
      if (!ds.observed(q, e) || Contains(exclude, e)) continue;
      const double v = static_cast<double>(ps[q * ne + e]) - lambda * static_cast<double>(pc[q * ne + e]);
      if (v > best) best = v, t[q] = static_cast<int>(e);
    }
  }
  return t;
}

EscalationOutcome RealiseWith(const Dataset& ds, std::span<const size_t> cheap, std::span<const double> prob,
                              double threshold, const std::vector<int>& target_rest, const std::vector<int>& target_all,
                              const std::vector<double>& rc, bool routed_first = false) {
  const size_t nq = ds.num_queries(), ne = ds.num_experts();
  EscalationOutcome o;
  o.score.assign(nq, 0.0f);
  o.cost.assign(nq, 0.0f);
  o.choice.assign(nq, -1);
  o.escalated.assign(nq, 0);
  double sa = 0, sc = 0;
  for (size_t q = 0; q < nq; ++q) {
    const size_t first = cheap[0];
    double score = 0, cost = 0;
    int choice = -1;
    // routed_first: the cheap call is made only where the router itself would call the first cheap expert.
    if (!ds.observed(q, first) || (routed_first && target_all[q] != static_cast<int>(first))) {
      choice = target_all[q];
      if (choice >= 0) score = ds.score(q, choice), cost = rc[q * ne + choice];
    } else {
      for (size_t c : cheap)
        if (ds.observed(q, c)) cost += rc[q * ne + c];
      choice = static_cast<int>(first);
      score = ds.score(q, first);
      if (prob[q] < threshold && target_rest[q] >= 0) {
        choice = target_rest[q];
        score = ds.score(q, choice);
        cost += rc[q * ne + choice];
        o.escalated[q] = 1;
      }
    }
    o.score[q] = static_cast<float>(score);
    o.cost[q] = static_cast<float>(cost);
    o.choice[q] = choice;
    sa += score;
    sc += cost;
  }
  const double n = static_cast<double>(std::max<size_t>(nq, 1));
  o.accuracy = sa / n;
  o.cost_per_query = sc / n;
  return o;
}

std::vector<AnswerForm> QueryForms(const Dataset& ds, const std::map<std::string, AnswerForm>& by_domain) {
  std::vector<AnswerForm> f(ds.num_queries(), AnswerForm::kText);
  for (size_t q = 0; q < ds.num_queries(); ++q) {
    auto it = by_domain.find(ds.query(q).domain);
    if (it != by_domain.end()) f[q] = it->second;
  }
  return f;
}

struct Fitted {
  AcceptanceModel model;
  std::vector<double> thresholds;
};

// The acceptance model on `ds` (labels: the first cheap expert's recorded score where observed) and thresholds at
// quantiles of its probabilities there, plus 0 (always accept) and past 1 (never accept).
Fitted FitAcceptance(const Dataset& ds, const std::vector<AcceptanceFeatures>& x, size_t first,
                     std::vector<double>* prob) {
  std::vector<AcceptanceFeatures> xs;
  std::vector<float> y;
  for (size_t q = 0; q < ds.num_queries(); ++q) {
    if (!ds.observed(q, first)) continue;
    xs.push_back(x[q]);
    y.push_back(ds.score(q, first));
  }
  Fitted f;
  f.model = AcceptanceModel::Fit(xs, y);
  prob->resize(ds.num_queries());
  std::vector<double> seen;
  for (size_t q = 0; q < ds.num_queries(); ++q) {
    (*prob)[q] = f.model.Probability(x[q]);
    if (ds.observed(q, first)) seen.push_back((*prob)[q]);
  }
  std::sort(seen.begin(), seen.end());
  f.thresholds.push_back(0.0);
  for (int i = 1; i < 40 && !seen.empty(); ++i) f.thresholds.push_back(seen[seen.size() * i / 40]);
  f.thresholds.push_back(1.01);
  std::sort(f.thresholds.begin(), f.thresholds.end());
  f.thresholds.erase(std::unique(f.thresholds.begin(), f.thresholds.end()), f.thresholds.end());
  return f;
}

struct Params {
  double threshold, lambda;
};

}  // namespace

std::vector<AcceptanceFeatures> EscalationFeatures(const Dataset& ds, const AnswerTable& answers,
                                                   std::span<const AnswerForm> form, std::span<const size_t> cheap,
                                                   std::span<const float> pred_score) {
  const size_t nq = ds.num_queries(), ne = ds.num_experts();
  std::vector<AcceptanceFeatures> x(nq);
  const bool two = cheap.size() >= 2;
  for (size_t q = 0; q < nq; ++q) {
    auto norm = [&](size_t e) -> std::optional<std::string> {
      const std::optional<std::string>& t = answers.at(q, e);
      if (!t) return std::nullopt;
      return NormalizedAnswer(*t, form[q]);
    };
    const std::optional<std::string> a = norm(cheap[0]);
    std::optional<std::string> b;
    if (two) b = norm(cheap[1]);
    x[q] = AcceptanceFeaturesOf(&a, two ? &b : nullptr, pred_score[q * ne + cheap[0]],
                                two ? pred_score[q * ne + cheap[1]] : 0.0f, answers.at(q, cheap[0]).has_value());
  }
  return x;
}

EscalationOutcome RealiseEscalation(const Dataset& ds, std::span<const size_t> cheap, std::span<const double> accept_prob,
                                    double threshold, std::span<const float> pred_score,
                                    std::span<const float> pred_cost, double lambda) {
  const std::vector<int> rest = Targets(ds, pred_score, pred_cost, lambda, cheap);
  const std::vector<int> all = Targets(ds, pred_score, pred_cost, lambda, {});
  return RealiseWith(ds, cheap, accept_prob, threshold, rest, all, RealisedCosts(ds));
}

EscalationRun RunEscalation(const Dataset& train, const Dataset& test, const AnswerTable& train_answers,
                            const AnswerTable& test_answers, std::span<const float> train_oof,
                            std::span<const float> train_pc, std::span<const float> test_ps,
                            std::span<const float> test_pc, size_t num_lambdas, const CurveBootstrap* boot,
                            CurveBootstrap::Curve* boot_curve, int strong, bool routed_first) {
  const auto t0 = std::chrono::steady_clock::now();
  EscalationRun run;
  EscalationSummary& s = run.summary;
  const size_t ne = train.num_experts();
  // The cheap pool: the accuracy-cost frontier on train, cheapest first, without the most accurate expert.
  std::vector<size_t> by_cost;
  size_t best = 0;
  for (size_t e = 0; e < ne; ++e) {
    if (!std::isnan(train.MeanCost(e)) && !std::isnan(train.MeanScore(e))) by_cost.push_back(e);
    if (train.MeanScore(e) > train.MeanScore(best)) best = e;
  }
  std::stable_sort(by_cost.begin(), by_cost.end(),
                   [&](size_t a, size_t b) { return train.MeanCost(a) < train.MeanCost(b); });
  std::vector<size_t> pool;
  double top = -1;
  for (size_t e : by_cost) {
    if (train.MeanScore(e) <= top) continue;
    top = train.MeanScore(e);
    if (e != best && pool.size() < 5) pool.push_back(e);
  }
  if (pool.empty()) {
    s.note = "not run: no expert on train's accuracy-cost frontier is cheaper than the most accurate one";
    return run;
  }
  // Answer forms per domain, judged on train's answers only.
  const std::vector<AnswerForm> dforms = DomainForms(train, train_answers);
  std::map<std::string, AnswerForm> by_domain;
  for (size_t d = 0; d < dforms.size(); ++d) by_domain[train.domains()[d]] = dforms[d];
  const std::vector<AnswerForm> train_form = QueryForms(train, by_domain), test_form = QueryForms(test, by_domain);

  // Candidates on train, with the default router's out-of-fold scores.
  double c_train = 0;
  for (size_t e = 0; e < ne; ++e)
    if (std::isfinite(train.MeanCost(e))) c_train = std::max(c_train, train.MeanCost(e));
  const std::vector<double> rc_train = RealisedCosts(train);
  const std::vector<double> lam_train = LambdaGrid(train_oof, train_pc, ne, num_lambdas);
  std::vector<std::vector<int>> all_train;
  {
    std::vector<CurvePoint> curve;
    for (double l : lam_train) {
      all_train.push_back(Targets(train, train_oof, train_pc, l, {}));
      const Realised r = RealiseLambda(train, train_oof, train_pc, l);
      curve.push_back({.lambda = l, .accuracy = r.accuracy, .cost_per_query = r.cost_per_query});
    }
    s.default_train_aiq = Aiq(curve, c_train);
  }
  std::vector<std::vector<size_t>> cands;
  for (size_t i = 0; i < pool.size(); ++i) {
    cands.push_back({pool[i]});
    for (size_t j = 0; j < i; ++j) cands.push_back({pool[i], pool[j]});  // pool[j] is cheaper
  }
  std::vector<size_t> chosen;
  Fitted chosen_fit;
  for (const std::vector<size_t>& c : cands) {
    const std::vector<AcceptanceFeatures> x = EscalationFeatures(train, train_answers, train_form, c, train_oof);
    std::vector<double> prob;
    Fitted f = FitAcceptance(train, x, c[0], &prob);
    std::vector<CurvePoint> curve;
    for (size_t li = 0; li < lam_train.size(); ++li) {
      const std::vector<int> rest = Targets(train, train_oof, train_pc, lam_train[li], c);
      for (double t : f.thresholds) {
        const EscalationOutcome o = RealiseWith(train, c, prob, t, rest, all_train[li], rc_train, routed_first);
        curve.push_back({.lambda = lam_train[li], .accuracy = o.accuracy, .cost_per_query = o.cost_per_query});
      }
    }
    const double aiq = Aiq(curve, c_train);
    std::string name = train.expert(c[0]).name;
    if (c.size() > 1) name += "+" + train.expert(c[1]).name;
    s.candidates.emplace_back(name, aiq);
    if (chosen.empty() || aiq > s.train_aiq) {
      chosen = c;
      chosen_fit = std::move(f);
      s.train_aiq = aiq;
    }
  }
  for (size_t e : chosen) s.cheap.push_back(train.expert(e).name);
  s.model = chosen_fit.model;
  s.thresholds = chosen_fit.thresholds;

  // Test: the chosen cheap set, model and thresholds; lambdas from the test predictions as for every router.
  const std::vector<AcceptanceFeatures> xt = EscalationFeatures(test, test_answers, test_form, chosen, test_ps);
  auto prob = std::make_shared<std::vector<double>>(test.num_queries());
  for (size_t q = 0; q < test.num_queries(); ++q) (*prob)[q] = s.model.Probability(xt[q]);
  size_t cells = 0, with_text = 0;
  for (size_t q = 0; q < test.num_queries(); ++q) {
    for (size_t e : chosen) {
      if (!test.observed(q, e)) continue;
      ++cells;
      with_text += test_answers.at(q, e).has_value();
    }
  }
  s.answers_recorded_share = cells ? static_cast<double>(with_text) / static_cast<double>(cells) : NAN;
  const std::vector<double> lam = LambdaGrid(test_ps, test_pc, ne, num_lambdas);
  auto rc = std::make_shared<std::vector<double>>(RealisedCosts(test));
  std::vector<CurvePoint> pts;
  auto params = std::make_shared<std::vector<Params>>();
  for (double l : lam) {
    const std::vector<int> rest = Targets(test, test_ps, test_pc, l, chosen);
    const std::vector<int> all = Targets(test, test_ps, test_pc, l, {});
    for (double t : s.thresholds) {
      const EscalationOutcome o = RealiseWith(test, chosen, *prob, t, rest, all, *rc, routed_first);
      CurvePoint p{.lambda = l, .accuracy = o.accuracy, .cost_per_query = o.cost_per_query};
      if (strong >= 0) {
        p.strong_share = static_cast<double>(std::count(o.choice.begin(), o.choice.end(), strong)) /
                         static_cast<double>(std::max<size_t>(o.choice.size(), 1));
      }
      pts.push_back(p);
      params->push_back({t, l});
      if (boot && boot_curve) boot->AddPointValues(*boot_curve, o.score, o.cost);
    }
  }
  std::vector<size_t> order(pts.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return pts[a].cost_per_query < pts[b].cost_per_query; });
  auto sorted_params = std::make_shared<std::vector<Params>>();
  for (size_t i : order) {
    run.router.curve.push_back(pts[i]);
    sorted_params->push_back((*params)[i]);
  }
  run.router.name = routed_first ? "route-escalate" : "escalate";
  const std::vector<size_t> cheap = chosen;
  const Dataset* tp = &test;
  run.choice_at = [tp, cheap, prob, rc, sorted_params, test_ps, test_pc, routed_first](size_t i) {
    const Params& p = (*sorted_params)[i];
    const std::vector<int> rest = Targets(*tp, test_ps, test_pc, p.lambda, cheap);
    const std::vector<int> all = Targets(*tp, test_ps, test_pc, p.lambda, {});
    return RealiseWith(*tp, cheap, *prob, p.threshold, rest, all, *rc, routed_first).choice;
  };
  std::string cand;
  for (const auto& [n, a] : s.candidates) cand += fmt::format("{}{} {:.4f}", cand.empty() ? "" : ", ", n, a);
  s.note = fmt::format(
      "cheap call(s) {} chosen on train (train AIQ with the default's out-of-fold scores {:.4f}; the default's {:.4f}; "
      "candidates: {}); acceptance model: {}; {} thresholds x {} lambdas; answer texts for {:.0f}% of the cheap "
      "experts' test cells",
      fmt::join(s.cheap, " then "), s.train_aiq, s.default_train_aiq, cand, s.model.Describe(), s.thresholds.size(),
      lam.size(), 100.0 * s.answers_recorded_share);
  s.ran = true;
  run.router.train_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return run;
}

}  // namespace baton
