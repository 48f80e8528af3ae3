// RunBench: trains every router on train, sweeps it over lambda on test, and computes baselines and metrics.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <map>
#include <random>

#include <fmt/format.h>

#include "baton/bench.h"
#include "baton/universe.h"
#include "bench/escalate.h"

namespace baton {
namespace {

using Clock = std::chrono::steady_clock;
constexpr const char* kStackRouter = "stack";

double Since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

struct Sweep {
  std::vector<CurvePoint> curve;
};

// The log-spaced grid plus (when breakpoint_lambdas > 0) one lambda per distinct assignment, sorted.
std::vector<double> SweepGrid(const std::vector<float>& ps, const std::vector<float>& pc, size_t ne, size_t num_lambdas,
                              size_t breakpoint_lambdas) {
  std::vector<double> grid = LambdaGrid(ps, pc, ne, num_lambdas);
  if (breakpoint_lambdas > 0) {
    const std::vector<double> b = BreakpointLambdas(ps, pc, ne, breakpoint_lambdas);
    grid.insert(grid.end(), b.begin(), b.end());
    std::sort(grid.begin(), grid.end());
    grid.erase(std::unique(grid.begin(), grid.end()), grid.end());
  }
  return grid;
}

// strong >= 0: record the share of queries answered by that expert (two-expert runs). on_choice (when set) sees each
// point's per-query choices, in curve order, so callers need not realise every lambda a second time.
Sweep SweepLambdas(const Dataset& test, const std::vector<float>& ps, const std::vector<float>& pc, int strong,
                   size_t num_lambdas, size_t breakpoint_lambdas,
                   const std::function<void(const std::vector<int>&)>& on_choice = {}) {
  Sweep s;
  for (double lambda : SweepGrid(ps, pc, test.num_experts(), num_lambdas, breakpoint_lambdas)) {
    Realised r = RealiseLambda(test, ps, pc, lambda);
    CurvePoint p{.lambda = lambda, .accuracy = r.accuracy, .cost_per_query = r.cost_per_query};
    if (strong >= 0) {
      const double n = static_cast<double>(std::max<size_t>(r.choice.size(), 1));
      p.strong_share = static_cast<double>(std::count(r.choice.begin(), r.choice.end(), strong)) / n;
    }
    s.curve.push_back(p);
    if (on_choice) on_choice(r.choice);
  }
  return s;
}

double MaxCost(const std::vector<CurvePoint>& curve) {
  double m = 0;
  for (const CurvePoint& p : curve)
    if (std::isfinite(p.cost_per_query)) m = std::max(m, p.cost_per_query);
  return m;
}

size_t BestSingle(const std::vector<ExpertPoint>& singles) {
  size_t best = 0;
  for (size_t e = 1; e < singles.size(); ++e) {
    const ExpertPoint &a = singles[e], &b = singles[best];
    if (std::isnan(b.accuracy) || a.accuracy > b.accuracy ||
        (a.accuracy == b.accuracy && a.cost_per_query < b.cost_per_query)) {
      best = e;
    }
  }
  return best;
}

// Mean AIQ per candidate over k folds of train (predictors trained without inner cross-validation).
std::map<std::string, double> CrossValidate(const Dataset& train, const std::vector<std::string>& candidates,
                                            const BenchOptions& o, const PredictorFactory& make,
                                            const std::function<void(const std::string&)>& log) {
  const size_t n = train.num_queries(), k = o.cv_folds;
  std::vector<size_t> perm(n);
  for (size_t i = 0; i < n; ++i) perm[i] = i;
  std::mt19937_64 rng(o.seed ^ 0x9e3779b97f4a7c15ULL);
  for (size_t i = n - 1; i > 0; --i) std::swap(perm[i], perm[rng() % (i + 1)]);
  std::map<std::string, double> sum;
  std::map<std::string, size_t> ok;
  for (size_t f = 0; f < k; ++f) {
    std::vector<size_t> tr, ho;
    for (size_t i = 0; i < n; ++i) (i % k == f ? ho : tr).push_back(perm[i]);
    std::sort(tr.begin(), tr.end());
    std::sort(ho.begin(), ho.end());
    const Dataset dtr = train.SelectQueries(tr), dho = train.SelectQueries(ho);
    StatusOr<CostModel> cm = CostModel::Fit(dtr);
    if (!cm.ok()) continue;
    const std::vector<float> pc = PredictAllCosts(*cm, dho);
    std::map<std::string, std::vector<CurvePoint>> curves;
    double c_max = 0;
    for (const ExpertPoint& s : EvaluateSingles(dho))
      if (std::isfinite(s.cost_per_query)) c_max = std::max(c_max, s.cost_per_query);
    for (const std::string& name : candidates) {
      log(fmt::format("default selection: fold {}/{}: training {} on {} queries", f + 1, k, name, tr.size()));
      StatusOr<std::unique_ptr<Predictor>> p = make(name, {.seed = o.seed, .cross_validate = false});
      if (!p.ok()) continue;
      if (Status st = (*p)->Fit(dtr); !st.ok()) {
        log(fmt::format("default selection: {} failed on fold {}: {}", name, f + 1, st.ToString()));
        continue;
      }
      Sweep s = SweepLambdas(dho, PredictAll(**p, dho), pc, -1, o.num_lambdas, o.breakpoint_lambdas);
      c_max = std::max(c_max, MaxCost(s.curve));
      curves[name] = std::move(s.curve);
    }
    for (const auto& [name, curve] : curves) {
      sum[name] += Aiq(curve, c_max);
      ++ok[name];
    }
  }
  std::map<std::string, double> mean;
  for (const auto& [name, s] : sum)
    if (ok[name] == k) mean[name] = s / static_cast<double>(k);
  return mean;
}

// Out-of-fold predicted scores of router `name` on train (k folds, trained without inner cross-validation); empty
// when a fold fails.
std::vector<float> OutOfFoldScores(const Dataset& train, const std::string& name, const BenchOptions& o,
                                   const PredictorFactory& make) {
  const size_t n = train.num_queries(), ne = train.num_experts(), k = std::max<size_t>(2, o.cv_folds);
  if (n < 2 * k) return {};
  std::vector<size_t> perm(n);
  for (size_t i = 0; i < n; ++i) perm[i] = i;
  std::mt19937_64 rng(o.seed ^ 0x5eed0f0f5eed0f0fULL);
  for (size_t i = n - 1; i > 0; --i) std::swap(perm[i], perm[rng() % (i + 1)]);
  std::vector<float> out(n * ne, NAN);
  for (size_t f = 0; f < k; ++f) {
    std::vector<size_t> tr, ho;
    for (size_t i = 0; i < n; ++i) (i % k == f ? ho : tr).push_back(perm[i]);
    std::sort(tr.begin(), tr.end());
    std::sort(ho.begin(), ho.end());
    StatusOr<std::unique_ptr<Predictor>> p = make(name, {.seed = o.seed, .cross_validate = false});
    if (!p.ok() || !(*p)->Fit(train.SelectQueries(tr)).ok()) return {};
    const std::vector<float> ps = PredictAll(**p, train.SelectQueries(ho));
    for (size_t i = 0; i < ho.size(); ++i)
      std::copy(ps.begin() + static_cast<std::ptrdiff_t>(i * ne), ps.begin() + static_cast<std::ptrdiff_t>((i + 1) * ne),
                out.begin() + static_cast<std::ptrdiff_t>(ho[i] * ne));
  }
  return out;
}

// choice_at(i): the per-query choices at curve point i (empty function: no per-point metrics).
void FillMetrics(RouterResult& r, const BenchResult& b, const Dataset& test,
                 const std::function<std::vector<int>(size_t)>& choice_at, const std::vector<double>& tier_budgets,
                 int weak, int strong) {
  r.aiq = Aiq(r.curve, b.max_cost);
  const double bs_cost = b.best_single.cost_per_query, bs_acc = b.best_single.accuracy;
  if (std::optional<double> c = MinCostReaching(r.curve, 0.95 * bs_acc); c && bs_cost > 0) r.cost_at_95 = *c / bs_cost;
  r.acc_at_best_single_cost = MaxAccuracyWithin(r.curve, bs_cost);
  if (weak >= 0 && strong >= 0) {
    const double aw = b.singles[weak].accuracy, as = b.singles[strong].accuracy;
    const bool has_share =
        std::all_of(r.curve.begin(), r.curve.end(), [](const CurvePoint& p) { return !std::isnan(p.strong_share); });
    if (as > aw && has_share && !r.curve.empty()) {
      PgrMetrics m = ComputePgr(r.curve, aw, as);
      r.apgr = m.apgr;
      r.cpt50 = m.cpt50;
      r.cpt80 = m.cpt80;
    }
  }
  if (!choice_at) return;
  // The most accurate point within `budget` (any point when budget is infinite).
  auto best_within = [&](double budget) -> int {
    int best = -1;
    for (size_t i = 0; i < r.curve.size(); ++i) {
      if (r.curve[i].cost_per_query > budget * (1 + 1e-9) + 1e-15) continue;
      if (best < 0 || r.curve[i].accuracy > r.curve[best].accuracy) best = static_cast<int>(i);
    }
    return best;
  };
  int op = best_within(bs_cost);
  if (op < 0) op = best_within(std::numeric_limits<double>::infinity());
  if (op >= 0) {
    r.choice = choice_at(op);
    r.domain_accuracy = DomainAccuracy(test, r.choice);
    r.choice_lambda = r.curve[op].lambda;
    r.choice_accuracy = r.curve[op].accuracy;
    r.choice_cost_per_query = r.curve[op].cost_per_query;
  }
  for (double f : tier_budgets) {
    TierShare t{.budget_fraction = f};
    const int i = best_within(f * bs_cost);
    if (i >= 0) {
      t.accuracy = r.curve[i].accuracy;
      t.cost_per_query = r.curve[i].cost_per_query;
      double cnt[3] = {0, 0, 0};
      const std::vector<int> ch = choice_at(i);
      for (int e : ch)
        if (e >= 0) cnt[b.expert_tier[e]] += 1;
      const double n = static_cast<double>(std::max<size_t>(ch.size(), 1));
      for (int k = 0; k < 3; ++k) t.share[k] = cnt[k] / n;
    }
    r.tiers.push_back(t);
  }
}

// Per expert, observed test cells binned by predicted score (clamped into [0, 1]).
std::vector<std::vector<CalibrationBin>> Calibration(const Dataset& test, const std::vector<float>& ps) {
  const size_t ne = test.num_experts(), nb = BenchResult::kCalibrationBins;
  std::vector<std::vector<CalibrationBin>> out(ne, std::vector<CalibrationBin>(nb));
  if (ps.size() != test.num_queries() * ne) return out;
  std::vector<std::vector<double>> sp(ne, std::vector<double>(nb)), sr(ne, std::vector<double>(nb));
  for (size_t q = 0; q < test.num_queries(); ++q) {
    for (size_t e = 0; e < ne; ++e) {
      const float p = ps[q * ne + e];
      if (!test.observed(q, e) || std::isnan(p)) continue;
      const size_t k = std::min(nb - 1, static_cast<size_t>(std::clamp(static_cast<double>(p), 0.0, 1.0) * nb));
      sp[e][k] += p;
      sr[e][k] += test.score(q, e);
      ++out[e][k].count;
    }
  }
  for (size_t e = 0; e < ne; ++e) {
    for (size_t k = 0; k < nb; ++k) {
      if (out[e][k].count == 0) continue;
      out[e][k].predicted = sp[e][k] / static_cast<double>(out[e][k].count);
      out[e][k].realised = sr[e][k] / static_cast<double>(out[e][k].count);
    }
  }
  return out;
}

// Per domain, the share of its test queries each expert answered under `choice`.
std::vector<std::vector<double>> DomainShare(const Dataset& test, const std::vector<int>& choice) {
  const size_t nd = test.domains().size(), ne = test.num_experts();
  std::vector<std::vector<double>> share(nd, std::vector<double>(ne, 0.0));
  std::vector<double> n(nd, 0.0);
  for (size_t q = 0; q < test.num_queries() && q < choice.size(); ++q) {
    const uint32_t d = test.domain_of(q);
    if (d >= nd) continue;
    n[d] += 1;
    if (choice[q] >= 0) share[d][choice[q]] += 1;
  }
  for (size_t d = 0; d < nd; ++d)
    for (double& s : share[d]) s = n[d] > 0 ? s / n[d] : NAN;
  return share;
}

}  // namespace

StatusOr<BenchResult> RunBench(const Dataset& train, const Dataset& test, const BenchOptions& options) {
  const auto t0 = Clock::now();
  auto log = [&](const std::string& m) {
    if (options.progress) options.progress(fmt::format("[bench {:6.1f}s] {}", Since(t0), m));
  };
  if (train.num_queries() == 0 || test.num_queries() == 0) {
    return Status::FailedPrecondition("bench needs a non-empty train and test split");
  }
  const size_t ne = train.num_experts();
  if (ne == 0 || test.num_experts() != ne) return Status::InvalidArgument("train and test have different experts");
  for (size_t e = 0; e < ne; ++e) {
    if (train.expert(e).name != test.expert(e).name) {
      return Status::InvalidArgument(
          fmt::format("expert {} is '{}' in train but '{}' in test", e, train.expert(e).name, test.expert(e).name));
    }
  }
  const PredictorFactory make = options.make_predictor ? options.make_predictor : PredictorFactory(MakePredictor);
  std::vector<std::string> routers = options.routers.empty() ? PredictorNames() : options.routers;
  for (const std::string& name : routers) {
    BATON_ASSIGN_OR_RETURN(std::unique_ptr<Predictor> probe, make(name, {.seed = options.seed}));
    (void)probe;
  }

  BenchResult b;
  b.train_queries = train.num_queries();
  b.test_queries = test.num_queries();
  for (const QueryRecord& q : test.queries()) b.test_query_ids.push_back(q.external_id);
  for (const ExpertRecord& e : train.experts()) b.experts.push_back(e.name);
  b.domains = test.domains();
  b.singles = EvaluateSingles(test);
  const size_t best = BestSingle(b.singles);
  b.best_single = b.singles[best];
  b.best_single_domain_accuracy = DomainAccuracy(test, std::vector<int>(test.num_queries(), static_cast<int>(best)));
  b.oracle = EvaluateOracle(test);
  b.random = EvaluateRandom(test);
  std::vector<double> train_cost(ne);
  for (size_t e = 0; e < ne; ++e) train_cost[e] = train.MeanCost(e);
  b.expert_tier = PriceTiers(train_cost);
  {
    std::vector<double> known;
    for (double c : train_cost)
      if (std::isfinite(c)) known.push_back(c);
    const auto [lo, hi] = std::minmax_element(known.begin(), known.end());
    b.prices_degenerate = known.size() < 2 || *hi - *lo <= 1e-9 * std::max(1e-12, std::abs(*hi));
  }
  const int strong = ne == 2 ? static_cast<int>(best) : -1, weak = ne == 2 ? 1 - static_cast<int>(best) : -1;

  // Default router: the stack (which chooses its own weights on out-of-fold AIQ inside train) when it is benchmarked
  // and no shortlist is given; otherwise cross-validation inside train among the shortlist.
  const bool stack_default =
      options.default_candidates.empty() && std::find(routers.begin(), routers.end(), kStackRouter) != routers.end();
  std::vector<std::string> candidates = options.default_candidates;
  if (candidates.empty()) candidates = stack_default ? std::vector<std::string>{kStackRouter} : routers;
  for (const std::string& n : candidates) {
    if (std::find(routers.begin(), routers.end(), n) == routers.end()) {
      return Status::InvalidArgument(fmt::format("default candidate '{}' is not among the routers benchmarked", n));
    }
  }
  std::map<std::string, double> cv;
  if (candidates.size() > 1 && options.cv_folds > 1 && train.num_queries() >= 2 * options.cv_folds) {
    cv = CrossValidate(train, candidates, options, make, log);
  }
  b.default_router = candidates.front();
  if (!cv.empty()) {
    double top = -1;
    for (const std::string& n : candidates)
      if (cv.count(n) && cv[n] > top) top = cv[n], b.default_router = n;
    std::string scores;
    for (const std::string& n : candidates)
      scores +=
          fmt::format("{}{} {}", scores.empty() ? "" : ", ", n, cv.count(n) ? fmt::format("{:.4f}", cv[n]) : "failed");
    b.default_selection = fmt::format("best mean AIQ over {} folds of train among: {}", options.cv_folds, scores);
  } else if (stack_default) {
    b.default_selection = "stack (weights by greedy selection on out-of-fold AIQ over 3 folds of train)";
  } else {
    b.default_selection = "first candidate (no cross-validation)";
  }
  log(fmt::format("default router: {} ({})", b.default_router, b.default_selection));

  BATON_ASSIGN_OR_RETURN(CostModel cost_model, CostModel::Fit(train));
  const std::vector<float> pc = PredictAllCosts(cost_model, test);
  std::vector<std::vector<float>> preds;  // per router, for the per-point metrics
  std::vector<float> default_pred, default_oof;
  std::map<std::string, double> stack_cv;  // the stack's out-of-fold AIQ per router (stack_default)
  std::unique_ptr<CurveBootstrap> boot;
  std::vector<CurveBootstrap::Curve> boot_curves;  // per router
  if (options.bootstrap > 0) {
    boot = std::make_unique<CurveBootstrap>(test, options.bootstrap, options.seed);
    b.bootstrap = options.bootstrap;
  }
  for (const std::string& name : routers) {
    const auto t1 = Clock::now();
    log(fmt::format("training {} on {} queries x {} experts", name, train.num_queries(), ne));
    BATON_ASSIGN_OR_RETURN(std::unique_ptr<Predictor> p,
                           make(name, {.seed = options.seed, .cross_validate = options.cross_validate}));
    BATON_RETURN_IF_ERROR(p->Fit(train).WithContext("training " + name));
    if (p->experts() != b.experts) return Status::Internal(name + " was trained on other experts than the dataset");
    RouterResult r;
    r.name = name;
    r.is_default = name == b.default_router;
    r.train_seconds = Since(t1);
    std::vector<float> ps = PredictAll(*p, test);
    std::function<void(const std::vector<int>&)> on_choice;
    if (boot) {
      boot_curves.push_back(boot->NewCurve());
      on_choice = [&](const std::vector<int>& ch) { boot->AddPoint(boot_curves.back(), ch); };
    }
    Sweep s = SweepLambdas(test, ps, pc, strong, options.num_lambdas, options.breakpoint_lambdas, on_choice);
    r.curve = std::move(s.curve);
    if (cv.count(name)) r.cv_aiq = cv[name];
    if (stack_default && name == kStackRouter) {
      // The stack's out-of-fold AIQ per candidate: the cross-validation figures of this run (train only).
      std::string scores;
      for (const auto& [n, a] : p->SelectionScores()) {
        stack_cv[n] = a;
        scores += fmt::format("{}{} {:.4f}", scores.empty() ? "" : ", ", n, a);
      }
      b.default_selection = fmt::format("stack: {}; out-of-fold AIQ on train (3 folds): {}", p->Describe(),
                                        scores.empty() ? "none (too few queries)" : scores);
      log("default router: " + b.default_selection);
    }
    if (r.is_default) {
      default_pred = ps;
      default_oof = p->OutOfFoldScores();
    }
    preds.push_back(std::move(ps));
    b.routers.push_back(std::move(r));
    log(fmt::format("{}: trained in {:.1f}s, swept {} lambdas", name, b.routers.back().train_seconds,
                    b.routers.back().curve.size()));
  }

  for (RouterResult& r : b.routers)
    if (std::isnan(r.cv_aiq) && stack_cv.count(r.name)) r.cv_aiq = stack_cv[r.name];

  // The escalation router: needs recorded answers of both splits.
  std::vector<std::function<std::vector<int>(size_t)>> escalate_choice;  // per escalation router, after `preds`
  if (options.train_answers && options.test_answers && options.train_answers->recorded > 0 &&
      options.test_answers->recorded > 0) {
    if (default_oof.size() != train.num_queries() * ne) {
      log(fmt::format("escalate: out-of-fold scores of {} on train ({} folds)", b.default_router, options.cv_folds));
      default_oof = OutOfFoldScores(train, b.default_router, options, make);
    }
    if (default_oof.size() != train.num_queries() * ne) {
      b.escalation.note = "not run: no out-of-fold scores of the default router on train";
    } else {
      log("escalate: choosing the cheap experts and the acceptance model on train");
      const std::vector<float> train_pc = PredictAllCosts(cost_model, train);
      for (bool routed_first : {false, true}) {
        CurveBootstrap::Curve bc;
        if (boot) bc = boot->NewCurve();
        EscalationRun run = RunEscalation(train, test, *options.train_answers, *options.test_answers, default_oof,
                                          train_pc, default_pred, pc, options.num_lambdas, boot.get(),
                                          boot ? &bc : nullptr, strong, routed_first);
        if (!routed_first) {
          b.escalation = std::move(run.summary);
        } else if (run.summary.ran) {
          b.escalation.note += "; route-escalate (cheap call only where the default router chooses it): " +
                               run.summary.note;
        }
        if (run.summary.ran) {
          b.routers.push_back(std::move(run.router));
          if (boot) boot_curves.push_back(std::move(bc));
          escalate_choice.push_back(std::move(run.choice_at));
        }
      }
    }
  } else {
    b.escalation.note = "not run: no recorded answers (responses.jsonl) for both the train and the test split";
  }
  log("escalate: " + b.escalation.note);

  // The cascade, driven by the default router's predicted scores; experts cheap -> expensive by train cost.
  std::vector<size_t> order(ne);
  for (size_t e = 0; e < ne; ++e) order[e] = e;
  auto key = [&](size_t e) { return std::isnan(train_cost[e]) ? -1.0 : train_cost[e]; };
  std::stable_sort(order.begin(), order.end(), [&](size_t x, size_t y) { return key(x) < key(y); });
  std::vector<double> thresholds;
  for (int i = 0; i <= 40; ++i) thresholds.push_back(i / 40.0);
  thresholds.push_back(2.0);  // never confident: every observed expert is called
  b.cascade.name = "cascade";
  b.cascade.curve = CascadeCurve(test, default_pred, order, thresholds);

  for (const ExpertPoint& s : b.singles)
    if (std::isfinite(s.cost_per_query)) b.max_cost = std::max(b.max_cost, s.cost_per_query);
  for (const RouterResult& r : b.routers) b.max_cost = std::max(b.max_cost, MaxCost(r.curve));
  b.max_cost = std::max(b.max_cost, MaxCost(b.cascade.curve));
  for (size_t i = 0; i < b.routers.size(); ++i) {
    const RouterResult& r = b.routers[i];
    std::function<std::vector<int>(size_t)> choice_at;
    if (i >= preds.size()) choice_at = escalate_choice[i - preds.size()];
    if (i < preds.size())
      choice_at = [&, i](size_t k) { return RealiseLambda(test, preds[i], pc, r.curve[k].lambda).choice; };
    FillMetrics(b.routers[i], b, test, choice_at, options.tier_budgets, weak, strong);
    if (boot) {
      b.routers[i].ci = boot->Intervals(boot_curves[i], b.max_cost);
      boot_curves[i] = {};  // release its memory as soon as it is used
    }
    if (b.routers[i].is_default) b.domain_share = DomainShare(test, b.routers[i].choice);
  }
  if (boot) log(fmt::format("bootstrap: {} resamples of the test queries", options.bootstrap));
  b.calibration = Calibration(test, default_pred);
  FillMetrics(b.cascade, b, test, {}, {}, -1, -1);

  log("universe constructor on train");
  StatusOr<UniverseResult> u = BuildUniverse(train, {.k = ne, .max_cost_per_query = std::nullopt});
  if (u.ok()) {
    for (const UniversePick& p : u->picks)
      b.universe.push_back({.expert = p.name, .s = p.s, .cost_per_query = p.cost_per_query});
  } else {
    log("universe constructor failed: " + u.status().ToString());
  }
  b.seconds = Since(t0);
  log(fmt::format("done in {:.1f}s", b.seconds));
  return b;
}

}  // namespace baton
