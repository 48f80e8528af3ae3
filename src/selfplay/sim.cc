// RunSelfPlaySim: paid evaluations against the default router's test AIQ for the self-play loop, random evaluations
// and evaluating everything (see baton/selfplay_sim.h).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <memory>

#include <fmt/format.h>

#include "baton/bench.h"
#include "baton/predictor.h"
#include "baton/selfplay_sim.h"

namespace baton {
namespace {

using Clock = std::chrono::steady_clock;

double Since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

uint64_t Next(uint64_t& s) {
  uint64_t z = (s += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

template <typename T>
void Shuffle(std::vector<T>& v, uint64_t& s) {
  for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[Next(s) % i]);
}

struct Fitted {
  std::unique_ptr<Predictor> predictor;
  CostModel cost;
  double aiq = 0;
};

class Sim {
 public:
  Sim(const Dataset& pool, const Dataset& test, const SimOptions& o, std::string router, double max_cost)
      : pool_(pool), test_(test), o_(o), router_(std::move(router)), max_cost_(max_cost) {}

  // Fits the router and cost model on the paid cells of the pool and measures its AIQ on test.
  StatusOr<Fitted> FitAndMeasure(const std::vector<bool>& paid) const {
    const size_t ne = pool_.num_experts();
    std::vector<size_t> rows;
    for (size_t q = 0; q < pool_.num_queries(); ++q) {
      for (size_t e = 0; e < ne; ++e) {
        if (paid[q * ne + e]) {
          rows.push_back(q);
          break;
        }
      }
    }
    Dataset train = pool_.SelectQueries(rows);
    for (size_t i = 0; i < rows.size(); ++i) {
      for (size_t e = 0; e < ne; ++e) {
        if (!paid[rows[i] * ne + e]) train.Set(i, e, NAN, NAN);
      }
    }
    Fitted f;
    BATON_ASSIGN_OR_RETURN(f.predictor, MakePredictor(router_, {.seed = o_.seed, .cross_validate = false}));
    BATON_RETURN_IF_ERROR(f.predictor->Fit(train).WithContext("training " + router_ + " on the paid outcomes"));
    BATON_ASSIGN_OR_RETURN(f.cost, CostModel::Fit(train));
    const std::vector<float> ps = PredictAll(*f.predictor, test_), pc = PredictAllCosts(f.cost, test_);
    std::vector<double> grid = LambdaGrid(ps, pc, ne, 40);
    if (o_.breakpoint_lambdas > 0) {
      const std::vector<double> b = BreakpointLambdas(ps, pc, ne, o_.breakpoint_lambdas);
      grid.insert(grid.end(), b.begin(), b.end());
      std::sort(grid.begin(), grid.end());
      grid.erase(std::unique(grid.begin(), grid.end()), grid.end());
    }
    std::vector<CurvePoint> curve;
    for (double lambda : grid) {
      const Realised r = RealiseLambda(test_, ps, pc, lambda);
      curve.push_back({.lambda = lambda, .accuracy = r.accuracy, .cost_per_query = r.cost_per_query});
    }
    f.aiq = Aiq(curve, max_cost_);
    return f;
  }

  // The current router's predictions on the pool (what the loop may look at: never the test split).
  void PredictPool(const Fitted& f, std::vector<float>& ps, std::vector<float>& pc) const {
    ps = PredictAll(*f.predictor, pool_);
    pc = PredictAllCosts(f.cost, pool_);
  }

 private:
  const Dataset& pool_;
  const Dataset& test_;
  const SimOptions& o_;
  std::string router_;
  double max_cost_;
};

size_t Count(const std::vector<bool>& v) {
  return static_cast<size_t>(std::count(v.begin(), v.end(), true));
}

}  // namespace

std::optional<double> FractionToMatch(const std::vector<SimPoint>& curve, double target, size_t total) {
  for (const SimPoint& p : curve) {
    if (p.evaluations >= total) break;
    if (p.aiq >= target) return static_cast<double>(p.evaluations) / static_cast<double>(total);
  }
  return std::nullopt;
}

StatusOr<SimResult> RunSelfPlaySim(const Dataset& pool, const Dataset& test, const SimOptions& options) {
  const auto t0 = Clock::now();
  auto log = [&](const std::string& m) {
    if (options.progress) options.progress(fmt::format("[selfplay-sim {:6.1f}s] {}", Since(t0), m));
  };
  if (pool.num_queries() == 0 || test.num_queries() == 0) {
    return Status::FailedPrecondition("selfplay-sim needs a non-empty train pool and test split");
  }
  const size_t ne = pool.num_experts(), nq = pool.num_queries();
  if (ne == 0 || test.num_experts() != ne) return Status::InvalidArgument("train and test have different experts");
  for (size_t e = 0; e < ne; ++e) {
    if (pool.expert(e).name != test.expert(e).name) {
      return Status::InvalidArgument(
          fmt::format("expert {} is '{}' in train but '{}' in test", e, pool.expert(e).name, test.expert(e).name));
    }
  }
  if (options.rounds == 0) return Status::InvalidArgument("--rounds must be at least 1");
  if (!(options.warm_start > 0 && options.warm_start < 1)) {
    return Status::InvalidArgument(fmt::format("warm start fraction {} is outside (0, 1)", options.warm_start));
  }
  SimResult r;
  r.router = options.router.empty() ? PredictorNames().front() : options.router;
  BATON_ASSIGN_OR_RETURN(std::unique_ptr<Predictor> probe, MakePredictor(r.router));
  (void)probe;
  r.pool_queries = nq;
  r.test_queries = test.num_queries();
  r.experts = ne;
  for (const ExpertPoint& s : EvaluateSingles(test))
    if (std::isfinite(s.cost_per_query)) r.max_cost = std::max(r.max_cost, s.cost_per_query);

  std::vector<bool> recorded(nq * ne);
  for (size_t q = 0; q < nq; ++q)
    for (size_t e = 0; e < ne; ++e) recorded[q * ne + e] = pool.observed(q, e);
  r.total_evaluations = Count(recorded);

  // The warm start, shared by the three strategies: every expert on a random share of the questions.
  uint64_t rng = options.seed * 0x2545F4914F6CDD1DULL + 0x1234567ULL;
  std::vector<size_t> order(nq);
  for (size_t q = 0; q < nq; ++q) order[q] = q;
  Shuffle(order, rng);
  const size_t warm_q =
      std::clamp<size_t>(static_cast<size_t>(std::ceil(options.warm_start * static_cast<double>(nq))), 1, nq);
  std::vector<bool> warm(nq * ne, false);
  for (size_t i = 0; i < warm_q; ++i)
    for (size_t e = 0; e < ne; ++e) warm[order[i] * ne + e] = recorded[order[i] * ne + e];
  const size_t warm_n = Count(warm);
  std::vector<size_t> budgets;
  for (size_t k = 1; k <= options.rounds; ++k) {
    budgets.push_back(warm_n + (r.total_evaluations - warm_n) * k / options.rounds);
  }

  Sim sim(pool, test, options, r.router, r.max_cost);
  BATON_ASSIGN_OR_RETURN(Fitted warm_fit, sim.FitAndMeasure(warm));
  log(
      fmt::format("{} pool queries x {} experts ({} recorded cells), {} test queries; router {}; warm start {} "
                  "evaluations: AIQ {:.4f}",
                  nq, ne, r.total_evaluations, test.num_queries(), r.router, warm_n, warm_fit.aiq));
  for (auto* curve : {&r.selfplay, &r.random, &r.all}) curve->push_back({.evaluations = warm_n, .aiq = warm_fit.aiq});

  // Evaluate everything: whole questions in random order (after the warm ones).
  {
    std::vector<bool> paid = warm;
    size_t next = warm_q, have = warm_n;
    for (size_t b : budgets) {
      while (have < b && next < nq) {
        for (size_t e = 0; e < ne; ++e) {
          paid[order[next] * ne + e] = recorded[order[next] * ne + e];
          have += recorded[order[next] * ne + e];
        }
        ++next;
      }
      BATON_ASSIGN_OR_RETURN(Fitted f, sim.FitAndMeasure(paid));
      r.all.push_back({.evaluations = have, .aiq = f.aiq});
      log(fmt::format("all: {} evaluations, AIQ {:.4f}", r.all.back().evaluations, f.aiq));
    }
  }
  // Random: uniformly random unpaid cells.
  {
    std::vector<bool> paid = warm;
    std::vector<size_t> cells;
    for (size_t i = 0; i < nq * ne; ++i)
      if (recorded[i] && !warm[i]) cells.push_back(i);
    uint64_t rs = rng ^ 0x5151;
    Shuffle(cells, rs);
    size_t next = 0, have = warm_n;
    for (size_t b : budgets) {
      while (have < b && next < cells.size()) paid[cells[next++]] = true, ++have;
      BATON_ASSIGN_OR_RETURN(Fitted f, sim.FitAndMeasure(paid));
      r.random.push_back({.evaluations = have, .aiq = f.aiq});
      log(fmt::format("random: {} evaluations, AIQ {:.4f}", have, f.aiq));
    }
  }
  // Self-play: steered by the router refitted on its own paid outcomes after every round.
  {
    std::vector<bool> paid = warm;
    Fitted current = std::move(warm_fit);
    uint64_t rs = rng ^ 0xA11CE;
    size_t have = warm_n;
    std::vector<float> ps, pc;
    for (size_t b : budgets) {
      sim.PredictPool(current, ps, pc);
      while (have < b) {
        std::vector<bool> payable(nq * ne);
        for (size_t i = 0; i < nq * ne; ++i) payable[i] = recorded[i] && !paid[i];
        const std::vector<Evaluation> chosen =
            ChooseEvaluations(ps, pc, payable, ne, b - have, options.exploration, rs);
        if (chosen.empty()) break;
        for (const Evaluation& ev : chosen) paid[ev.query * ne + ev.expert] = true;
        have += chosen.size();
      }
      BATON_ASSIGN_OR_RETURN(current, sim.FitAndMeasure(paid));
      r.selfplay.push_back({.evaluations = have, .aiq = current.aiq});
      log(fmt::format("selfplay: {} evaluations, AIQ {:.4f}", have, current.aiq));
    }
  }
  r.fraction_to_match_all = FractionToMatch(r.selfplay, r.all.back().aiq, r.total_evaluations);
  r.random_fraction_to_match_all = FractionToMatch(r.random, r.all.back().aiq, r.total_evaluations);
  r.seconds = Since(t0);
  return r;
}

nlohmann::json SimResultToJson(const SimResult& r) {
  nlohmann::json j;
  auto curve = [](const std::vector<SimPoint>& c) {
    nlohmann::json a = nlohmann::json::array();
    for (const SimPoint& p : c) a.push_back({{"evaluations", p.evaluations}, {"aiq", p.aiq}});
    return a;
  };
  j["curves"] = {{"selfplay", curve(r.selfplay)}, {"random", curve(r.random)}, {"all", curve(r.all)}};
  j["fraction_to_match_all"] = r.fraction_to_match_all ? nlohmann::json(*r.fraction_to_match_all) : nlohmann::json();
  j["random_fraction_to_match_all"] =
      r.random_fraction_to_match_all ? nlohmann::json(*r.random_fraction_to_match_all) : nlohmann::json();
  j["all_final_aiq"] = r.all.empty() ? nlohmann::json() : nlohmann::json(r.all.back().aiq);
  j["router"] = r.router;
  j["pool_queries"] = r.pool_queries;
  j["test_queries"] = r.test_queries;
  j["experts"] = r.experts;
  j["total_evaluations"] = r.total_evaluations;
  j["max_cost"] = r.max_cost;
  j["seconds"] = r.seconds;
  return j;
}

}  // namespace baton
