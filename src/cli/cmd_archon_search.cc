// baton archon search: architecture search (ITAS) with random, greedy or Bayesian optimisation, on the recorded-answer
// replay objective or on a standard test function (Branin, Hartmann-6).
#include <algorithm>
#include <cmath>
#include <fstream>
#include <limits>
#include <memory>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "baton/archon_search.h"
#include "baton/bench.h"
#include "baton/dataset.h"
#include "baton/search.h"
#include "cli/command.h"
#include "cli/util.h"
#include "ingest/text_file.h"

namespace baton::cli {

namespace {

using archon_search::Config;
using archon_search::ReplayData;
using archon_search::ReplayModel;
using search::Point;

struct Opts {
  std::string space_file, algo, data, test, json, objective = "recorded";
  size_t budget = 0, seeds = 0;
  uint64_t seed = 0, split_seed = 0;
  int max_calls = 0;
  double lambda = 0, test_fraction = 0.5, tolerance = 0.01;
  std::vector<std::string> experts;
  bool quiet = false;
};

// The recorded objective's state: train and test replay data and the rankings learned on train.
struct Recorded {
  std::unique_ptr<ReplayData> train, test;
  std::unique_ptr<ReplayModel> model;
};

StatusOr<Recorded> LoadRecorded(const Opts& o) {
  Recorded r;
  BATON_ASSIGN_OR_RETURN(r.train, ReplayData::Load(o.data));
  if (!o.test.empty()) {
    BATON_ASSIGN_OR_RETURN(r.test, ReplayData::Load(o.test));
    // Align the test folder's experts and domains with the train folder's.
    BATON_RETURN_IF_ERROR(r.test->AlignTo(*r.train));
  } else {
    // The same seeded split as `baton bench DIR --test-fraction F --seed S` (queries in the dataset's load order);
    // queries the replay dropped (no letter answer space) are dropped from both halves after splitting.
    BATON_ASSIGN_OR_RETURN(Dataset all, LoadDatasetDir(o.data));
    BATON_ASSIGN_OR_RETURN(QuerySplit s, RandomSplit(all.num_queries(), o.test_fraction, o.split_seed));
    std::unordered_map<std::string, size_t> row;
    for (size_t i = 0; i < r.train->queries().size(); ++i) row[r.train->queries()[i].id] = i;
    std::vector<size_t> tr, te;
    for (size_t q : s.train) {
      if (auto it = row.find(all.query(q).external_id); it != row.end()) tr.push_back(it->second);
    }
    for (size_t q : s.test) {
      if (auto it = row.find(all.query(q).external_id); it != row.end()) te.push_back(it->second);
    }
    r.test = std::make_unique<ReplayData>(*r.train);
    r.train->Select(tr);
    r.test->Select(te);
  }
  if (!o.experts.empty()) {
    BATON_RETURN_IF_ERROR(r.train->SelectExperts(o.experts));
    BATON_RETURN_IF_ERROR(r.test->SelectExperts(o.experts));
  }
  r.model = std::make_unique<ReplayModel>(*r.train);
  return r;
}

nlohmann::json ConfigJson(const search::Space& space, const Point& p) {
  nlohmann::json j = nlohmann::json::object();
  for (size_t i = 0; i < space.size(); ++i) {
    const auto& d = space.dims()[i];
    switch (d.kind) {
      case search::DimKind::kInt:
        j[d.name] = static_cast<long long>(std::llround(p[i]));
        break;
      case search::DimKind::kReal:
        j[d.name] = p[i];
        break;
      case search::DimKind::kBool:
        j[d.name] = p[i] != 0;
        break;
      case search::DimKind::kCategorical:
        j[d.name] = d.Format(p[i]);
        break;
    }
  }
  return j;
}

struct Problem {
  search::Space space;
  std::string name;
  bool archon = false;  // points are Archon configurations
  std::vector<std::string> ranking;
  search::Objective objective;
  search::Feasible feasible;
  std::optional<double> target;  // score that counts as "found the optimum"
  std::string target_note;
};

StatusOr<Problem> MakeProblem(const Opts& o, Recorded* rec) {
  Problem p;
  if (o.objective == "branin" || o.objective == "hartmann6") {
    const bool branin = o.objective == "branin";
    p.space = branin ? search::BraninSpace() : search::Hartmann6Space();
    p.name = o.objective;
    p.objective = [branin](const Point& x) -> StatusOr<search::Evaluation> {
      return search::Evaluation{branin ? -search::Branin(x[0], x[1]) : -search::Hartmann6(x.data()), 0};
    };
    const double fmin = branin ? search::kBraninMin : search::kHartmann6Min;
    p.target = -(fmin + o.tolerance * std::abs(fmin));
    p.target_note = fmt::format("f <= {:.6g} (published minimum {} + {:g} x |minimum|)", -*p.target, fmin, o.tolerance);
    return p;
  }
  if (o.objective != "recorded") {
    return Status::InvalidArgument(
        fmt::format("unknown --objective '{}' (recorded, branin or hartmann6)", o.objective));
  }
  if (o.space_file.empty()) return Status::InvalidArgument("--objective recorded needs --space FILE");
  if (o.data.empty()) return Status::InvalidArgument("--objective recorded needs --data DIR (with responses.jsonl)");
  BATON_ASSIGN_OR_RETURN(std::string text, ingest::ReadFile(o.space_file));
  auto parsed = archon_search::ParseArchonSpace(text);
  if (!parsed.ok()) return Status::InvalidArgument(fmt::format("{}: {}", o.space_file, parsed.status().message()));
  p.space = parsed->space;
  p.name = parsed->name;
  p.archon = true;
  BATON_RETURN_IF_ERROR(archon_search::ReplayableSpace(p.space));
  BATON_ASSIGN_OR_RETURN(*rec, LoadRecorded(o));
  p.ranking = rec->model->TaskRankingNames(*rec->train);
  const ReplayModel* model = rec->model.get();
  const ReplayData* train = rec->train.get();
  const search::Space space = p.space;
  const double lambda = o.lambda;
  p.objective = [=](const Point& x) -> StatusOr<search::Evaluation> {
    const archon_search::ReplayOutcome r = model->Evaluate(archon_search::ConfigOf(space, x), *train);
    return search::Evaluation{r.accuracy - lambda * r.cost, r.cost};
  };
  return p;
}

// The best feasible score of a discrete space by enumeration, and how many points reach it.
struct Enumerated {
  double best = -std::numeric_limits<double>::infinity();
  size_t points = 0, feasible = 0, optimal = 0;
  std::string key;
};

StatusOr<Enumerated> Enumerate(const Problem& p) {
  Enumerated e;
  const uint64_t n = p.space.NumPoints();
  e.points = n;
  std::vector<double> scores;
  for (uint64_t i = 0; i < n; ++i) {
    const Point x = p.space.PointAt(i);
    if (p.feasible && !p.feasible(x)) continue;
    ++e.feasible;
    BATON_ASSIGN_OR_RETURN(search::Evaluation ev, p.objective(x));
    scores.push_back(ev.score);
    if (ev.score > e.best) e.best = ev.score, e.key = p.space.Key(x);
  }
  for (double s : scores) e.optimal += s >= e.best - 1e-12;
  return e;
}

Status RunSearchCommand(const Opts& o) {
  BATON_ASSIGN_OR_RETURN(search::Algorithm algo, search::ParseAlgorithm(o.algo));
  Recorded rec;
  BATON_ASSIGN_OR_RETURN(Problem p, MakeProblem(o, &rec));
  if (o.max_calls > 0) {
    if (!p.archon) return Status::InvalidArgument("--max-calls applies to Archon spaces only (--objective recorded)");
    const search::Space space = p.space;
    const int cap = o.max_calls;
    p.feasible = [space, cap](const Point& x) {
      return archon_search::CallCount(archon_search::ConfigOf(space, x)) <= cap;
    };
  }
  nlohmann::json out = {{"objective", o.objective},
                        {"algorithm", search::AlgorithmName(algo)},
                        {"budget_evals", o.budget},
                        {"space", {{"name", p.name}, {"dimensions", p.space.size()}}}};
  if (p.space.AllDiscrete()) out["space"]["points"] = p.space.NumPoints();
  if (p.archon) {
    out["data"] = {{"train", o.data},
                   {"test", o.test.empty() ? nlohmann::json(nullptr) : nlohmann::json(o.test)},
                   {"train_queries", rec.train->num_queries()},
                   {"test_queries", rec.test->num_queries()},
                   {"dropped_queries", rec.train->dropped()},
                   {"lambda", o.lambda},
                   {"max_calls", o.max_calls}};
    if (o.test.empty()) out["data"]["split"] = {{"test_fraction", o.test_fraction}, {"seed", o.split_seed}};
    out["ranking"] = p.ranking;
    if (p.space.AllDiscrete() && p.space.NumPoints() <= 1000000) {
      BATON_ASSIGN_OR_RETURN(Enumerated e, Enumerate(p));
      p.target = e.best;
      p.target_note = fmt::format("the global best score {:.6f} (enumerated {} points, {} feasible, {} optimal)",
                                  e.best, e.points, e.feasible, e.optimal);
      out["global_best"] = {{"score", e.best},
                            {"config", e.key},
                            {"points", e.points},
                            {"feasible", e.feasible},
                            {"optimal_points", e.optimal}};
    }
  }
  if (p.target) out["target"] = {{"score", *p.target}, {"meaning", p.target_note}};

  auto trial_json = [&](const search::Trial& t, size_t index) {
    nlohmann::json j = {
        {"index", index}, {"config", ConfigJson(p.space, t.point)}, {"score", t.eval.score}, {"cost", t.eval.cost}};
    if (p.archon) {
      const Config c = archon_search::ConfigOf(p.space, t.point);
      j["calls"] = archon_search::CallCount(c);
      j["architecture"] = archon_search::ToArchitecture(c, p.ranking, fmt::format("{}-{}", p.name, index));
    }
    return j;
  };

  if (o.seeds > 0) {
    // Study mode: one search per seed, evaluations to first reach the target.
    if (!p.target)
      return Status::InvalidArgument("--seeds needs a known optimum: a test function or a small replay space");
    nlohmann::json runs = nlohmann::json::array();
    std::vector<double> reached;
    size_t missed = 0;
    for (uint64_t s = o.seed; s < o.seed + o.seeds; ++s) {
      search::SearchOptions so;
      so.algorithm = algo;
      so.budget = o.budget;
      so.seed = s;
      so.stop_at = *p.target - 1e-12;
      BATON_ASSIGN_OR_RETURN(search::SearchResult r, search::RunSearch(p.space, p.objective, p.feasible, so));
      const size_t n = r.EvalsToReach(*p.target - 1e-12);
      if (n == 0) {
        ++missed;
      } else {
        reached.push_back(static_cast<double>(n));
      }
      runs.push_back({{"seed", s},
                      {"evals_to_target", n == 0 ? nlohmann::json(nullptr) : nlohmann::json(n)},
                      {"best_score", r.trials[r.best].eval.score},
                      {"evaluations", r.trials.size()},
                      {"rejected", r.rejected}});
      if (!o.quiet) {
        fmt::print(stderr, "seed {}: {} after {} evaluations (best {:.6g})\n", s,
                   n == 0 ? "target not reached" : fmt::format("target reached at evaluation {}", n), r.trials.size(),
                   r.trials[r.best].eval.score);
      }
    }
    std::vector<double> sorted = reached;
    std::sort(sorted.begin(), sorted.end());
    // Censored runs count as budget + 1 in the mean and median (a lower bound on what they would need).
    std::vector<double> censored = reached;
    for (size_t i = 0; i < missed; ++i) censored.push_back(static_cast<double>(o.budget + 1));
    std::sort(censored.begin(), censored.end());
    double mean = 0;
    for (double v : censored) mean += v;
    mean /= static_cast<double>(censored.size());
    const double median = censored.size() % 2 ? censored[censored.size() / 2]
                                              : (censored[censored.size() / 2 - 1] + censored[censored.size() / 2]) / 2;
    out["seeds"] = o.seeds;
    out["runs"] = runs;
    out["summary"] = {{"reached", reached.size()},
                      {"not_reached", missed},
                      {"mean_evals", mean},
                      {"median_evals", median},
                      {"censored_at", o.budget + 1}};
    fmt::print(
        "{} {} on {}: target reached in {}/{} seeds; evaluations to reach it: mean {:.1f}, median {:.1f}{} "
        "(target: {})\n",
        o.objective, search::AlgorithmName(algo), p.name, reached.size(), o.seeds, mean, median,
        missed ? fmt::format(" (misses counted as {})", o.budget + 1) : "", p.target_note);
    if (!o.json.empty()) BATON_RETURN_IF_ERROR(WriteFileAtomically(o.json, out.dump(2) + "\n"));
    return Status::Ok();
  }

  search::SearchOptions so;
  so.algorithm = algo;
  so.budget = o.budget;
  so.seed = o.seed;
  if (!o.quiet) {
    so.on_eval = [&](size_t i, const Point& x, const search::Evaluation& e, double best) {
      fmt::print(stderr, "eval {}/{}: {} score {:.6g} cost {:.6g} (best {:.6g})\n", i, o.budget, p.space.Key(x),
                 e.score, e.cost, best);
    };
  }
  BATON_ASSIGN_OR_RETURN(search::SearchResult r, search::RunSearch(p.space, p.objective, p.feasible, so));
  if (r.trials.empty()) return Status::InvalidArgument("no feasible configuration (every point exceeds --max-calls)");
  nlohmann::json evals = nlohmann::json::array();
  for (size_t i = 0; i < r.trials.size(); ++i) evals.push_back(trial_json(r.trials[i], i + 1));
  out["seed"] = o.seed;
  out["evaluations"] = evals;
  out["rejected"] = r.rejected;
  out["best"] = trial_json(r.trials[r.best], r.best + 1);
  out["first_found_at"] = r.first_found_at;
  if (p.target) {
    const size_t n = r.EvalsToReach(*p.target - 1e-12);
    out["evals_to_target"] = n == 0 ? nlohmann::json(nullptr) : nlohmann::json(n);
  }
  std::string summary =
      fmt::format("best {} score {:.6g} first found at evaluation {} of {}", p.space.Key(r.trials[r.best].point),
                  r.trials[r.best].eval.score, r.first_found_at, r.trials.size());
  if (p.archon) {
    // Test-split figures: the best architecture and the best single expert (by train accuracy), side by side.
    const Config best = archon_search::ConfigOf(p.space, r.trials[r.best].point);
    const archon_search::ReplayOutcome tr = rec.model->Evaluate(best, *rec.train);
    const archon_search::ReplayOutcome te = rec.model->Evaluate(best, *rec.test);
    Config single;
    single.generators = 1;  // the top expert of the task ranking
    const archon_search::ReplayOutcome str = rec.model->Evaluate(single, *rec.train);
    const archon_search::ReplayOutcome ste = rec.model->Evaluate(single, *rec.test);
    out["best"]["train"] = {{"accuracy", tr.accuracy}, {"cost", tr.cost}};
    out["best"]["test"] = {{"accuracy", te.accuracy}, {"cost", te.cost}};
    out["best_single_expert"] = {{"name", p.ranking.front()},
                                 {"train", {{"accuracy", str.accuracy}, {"cost", str.cost}}},
                                 {"test", {{"accuracy", ste.accuracy}, {"cost", ste.cost}}}};
    summary += fmt::format("; test accuracy {:.4f} at ${:.6f}/query vs best single expert {} {:.4f} at ${:.6f}/query",
                           te.accuracy, te.cost, p.ranking.front(), ste.accuracy, ste.cost);
  }
  fmt::print("{}\n", summary);
  if (!o.json.empty()) BATON_RETURN_IF_ERROR(WriteFileAtomically(o.json, out.dump(2) + "\n"));
  return Status::Ok();
}

}  // namespace

Command AddArchonSearchSubcommand(CLI::App& archon) {
  auto* app = archon.add_subcommand(
      "search",
      "Search Archon architectures (random, greedy or Bayesian optimisation) on recorded answers or a test function");
  auto o = std::make_shared<Opts>();
  app->add_option("--space", o->space_file, "JSON file of the search dimensions (see examples/archon/)")
      ->check(CLI::ExistingFile);
  app->add_option("--budget-evals", o->budget, "objective evaluations allowed (rejected configurations do not count)")
      ->required()
      ->check(PositiveInt());
  app->add_option("--algo", o->algo, "random, greedy or bayes")
      ->required()
      ->check(CLI::IsMember({"random", "greedy", "bayes"}));
  app->add_option("--seed", o->seed, "seed of the search (default 0); with --seeds, the first seed");
  app->add_option("--seeds", o->seeds, "study mode: run this many seeds and report evaluations to reach the optimum")
      ->check(PositiveInt());
  app->add_option("--objective", o->objective, "recorded (default), branin or hartmann6")
      ->check(CLI::IsMember({"recorded", "branin", "hartmann6"}));
  app->add_option("--data", o->data, "recorded objective: dataset folder with responses.jsonl (train, or split)")
      ->check(CLI::ExistingDirectory);
  app->add_option("--test", o->test, "recorded objective: a separate test folder (else --data is split at random)")
      ->check(CLI::ExistingDirectory);
  app->add_option("--test-fraction", o->test_fraction, "share of --data held out for test (default 0.5)")
      ->check(CLI::Range(0.0, 1.0));
  app->add_option("--split-seed", o->split_seed, "seed of the train/test split, as baton bench --seed (default 0)");
  app->add_option("--experts", o->experts, "restrict the recorded experts to these (comma-separated)")->delimiter(',');
  app->add_option("--max-calls", o->max_calls, "reject configurations needing more inference calls (0 = no cap)")
      ->check(NonNegativeInt());
  app->add_option("--lambda", o->lambda, "cost penalty: score = accuracy - lambda * mean cost per query in USD")
      ->check(NonNegative());
  app->add_option("--tolerance", o->tolerance,
                  "test functions: relative distance to the published optimum that "
                  "counts as reaching it (default 0.01)")
      ->check(NonNegative());
  app->add_option("--json", o->json, "write every evaluated configuration, the best and the summary to this file");
  app->add_flag("--quiet", o->quiet, "no progress line per evaluation on stderr");
  return {app, [o]() -> Status { return RunSearchCommand(*o); }};
}

}  // namespace baton::cli
