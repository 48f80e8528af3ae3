// baton selfplay-sim: the offline evidence that the self-play loop is worth its cost (baton/selfplay_sim.h).
#include <fmt/format.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "baton/bench.h"
#include "baton/dataset.h"
#include "baton/predictor.h"
#include "baton/selfplay_sim.h"
#include "cli/command.h"
#include "cli/util.h"

namespace baton::cli {
namespace {

// The command line as typed (Linux: /proc/self/cmdline), recorded in the JSON so a figure can be re-run.
std::string CommandLine() {
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>()), out;
  for (char c : all) out += c == '\0' ? ' ' : c;
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out.empty() ? "baton selfplay-sim" : out;
}

}  // namespace

Command AddSelfPlaySimCommand(CLI::App& root) {
  auto* app = root.add_subcommand(
      "selfplay-sim",
      "Simulate the self-play loop on recorded outcomes: the default router's test AIQ against paid evaluations for "
      "self-play, random evaluations and evaluating everything");
  struct Opts {
    std::string dir, train, test, json, svg, router;
    std::vector<std::string> experts;
    std::vector<uint64_t> seeds = {0};
    uint64_t split_seed = 0;
    int64_t dev_split = -1;
    double test_fraction = 0.5, warm_start = 0.01, epsilon = 0.3;
    size_t rounds = 20, small_pool = 4, breakpoint_lambdas = 300;
  };
  auto o = std::make_shared<Opts>();
  app->add_option("DIR", o->dir, "dataset folder to split at random into a train pool and a test split")
      ->check(CLI::ExistingDirectory);
  app->add_option("--train", o->train, "train pool dataset folder (with --test)")->check(CLI::ExistingDirectory);
  app->add_option("--test", o->test, "test dataset folder (with --train); only measured, never steers the loop")
      ->check(CLI::ExistingDirectory);
  app->add_option("--experts", o->experts, "restrict the pool to these experts (comma-separated)")->delimiter(',');
  app->add_option("--seed", o->seeds,
                  "seed of the loop, the random baselines and the predictor (default 0); several (0,1,2) run once "
                  "each")
      ->delimiter(',')
      ->check(NonNegativeInt());
  app->add_option("--split-seed", o->split_seed, "with DIR: seed of the train/test split (default 0, as baton bench)")
      ->check(NonNegativeInt());
  app->add_option("--test-fraction", o->test_fraction, "with DIR: share of queries held out for test (default 0.5)")
      ->check(Fraction());
  app->add_option("--rounds", o->rounds, "equal budget steps after the warm start (default 20)")->check(PositiveInt());
  app->add_option("--warm-start", o->warm_start,
                  "share of pool questions evaluated on every expert before the strategies differ (default 0.01)")
      ->check(Fraction());
  app->add_option("--epsilon", o->epsilon, "exploration rate of the self-play loop (default 0.3)")->check(Fraction());
  app->add_option("--small-pool", o->small_pool,
                  "with at most this many experts the loop evaluates every expert on a question (default 4)")
      ->check(NonNegativeInt());
  app->add_option("--router", o->router,
                  "predictor to fit and measure (default: " + PredictorNames().front() + ", as baton fit)");
  app->add_option("--breakpoint-lambdas", o->breakpoint_lambdas,
                  "lambdas between exact break-points per sweep (default 300)")
      ->check(NonNegativeInt());
  app->add_option("--dev-split", o->dev_split,
                  "development mode: ignore the test split; split the train pool in halves (this seed) into pool and "
                  "test, for choosing the loop's settings without looking at test")
      ->check(NonNegativeInt());
  app->add_option("--json", o->json, "write the curves and fraction_to_match_all as JSON to this file")->required();
  app->add_option("--svg", o->svg, "write the plot here (default: the JSON path with .svg)");
  return {app, [o]() -> Status {
            const bool split = !o->dir.empty();
            if (split == (!o->train.empty() || !o->test.empty()) || (!split && (o->train.empty() || o->test.empty()))) {
              return Status::InvalidArgument("give one of: DIR; --train DIR and --test DIR");
            }
            if (!(o->test_fraction > 0 && o->test_fraction < 1)) {
              return Status::InvalidArgument(fmt::format("--test-fraction {} is outside (0, 1)", o->test_fraction));
            }
            if (!(o->warm_start > 0 && o->warm_start < 1)) {
              return Status::InvalidArgument(fmt::format("--warm-start {} is outside (0, 1)", o->warm_start));
            }
            const auto t0 = std::chrono::steady_clock::now();
            DatasetFilter filter{.datasets = {}, .experts = o->experts};
            Dataset pool, test;
            std::string title;
            if (split) {
              fmt::print(stderr, "loading {}\n", o->dir);
              BATON_ASSIGN_OR_RETURN(Dataset all, LoadDatasetDir(o->dir, filter));
              BATON_ASSIGN_OR_RETURN(QuerySplit s, RandomSplit(all.num_queries(), o->test_fraction, o->split_seed));
              pool = all.SelectQueries(s.train);
              test = all.SelectQueries(s.test);
              title = fmt::format("{} (split seed {}, test fraction {})",
                                  std::filesystem::path(o->dir).filename().string(), o->split_seed, o->test_fraction);
            } else {
              fmt::print(stderr, "loading {} and {}\n", o->train, o->test);
              BATON_ASSIGN_OR_RETURN(pool, LoadDatasetDir(o->train, filter));
              BATON_ASSIGN_OR_RETURN(test, LoadDatasetDir(o->test, filter));
              title = fmt::format("{} -> {}", std::filesystem::path(o->train).filename().string(),
                                  std::filesystem::path(o->test).filename().string());
            }
            if (o->dev_split >= 0) {
              BATON_ASSIGN_OR_RETURN(QuerySplit s,
                                     RandomSplit(pool.num_queries(), 0.5, static_cast<uint64_t>(o->dev_split)));
              test = pool.SelectQueries(s.test);
              pool = pool.SelectQueries(s.train);
              title += fmt::format(" [dev: halves of the train pool, seed {}]", o->dev_split);
              fmt::print(stderr, "dev mode: the test split is NOT used; inner split of the pool with seed {}\n",
                         o->dev_split);
            }
            BATON_RETURN_IF_ERROR(AlignExperts(pool, test, o->experts));
            std::vector<SimResult> runs;
            for (uint64_t seed : o->seeds) {
              SimOptions opts;
              opts.router = o->router;
              opts.seed = seed;
              opts.rounds = o->rounds;
              opts.warm_start = o->warm_start;
              opts.exploration = {.epsilon = o->epsilon, .small_pool = o->small_pool};
              opts.breakpoint_lambdas = o->breakpoint_lambdas;
              opts.progress = [](const std::string& m) { fmt::print(stderr, "{}\n", m); };
              BATON_ASSIGN_OR_RETURN(SimResult r, RunSelfPlaySim(pool, test, opts));
              auto fr = [](const std::optional<double>& v) {
                return v ? fmt::format("{:.3f}", *v) : std::string("never");
              };
              fmt::print(
                  "seed {}: all-final AIQ {:.4f} at {} evaluations; fraction_to_match_all {} (random {}) "
                  "[{:.0f}s]\n",
                  seed, r.all.back().aiq, r.total_evaluations, fr(r.fraction_to_match_all),
                  fr(r.random_fraction_to_match_all), r.seconds);
              runs.push_back(std::move(r));
            }
            nlohmann::json j;
            if (runs.size() == 1) {
              j = SimResultToJson(runs[0]);
              j["seed"] = o->seeds[0];
            } else {
              j["seeds"] = o->seeds;
              j["runs"] = nlohmann::json::array();
              for (size_t i = 0; i < runs.size(); ++i) {
                nlohmann::json r = SimResultToJson(runs[i]);
                r["seed"] = o->seeds[i];
                j["runs"].push_back(std::move(r));
              }
            }
            j["dataset"] = title;
            j["command"] = CommandLine();
            BATON_RETURN_IF_ERROR(WriteFileAtomically(o->json, j.dump(2) + "\n"));
            std::string svg = o->svg;
            if (svg.empty()) svg = std::filesystem::path(o->json).replace_extension(".svg").string();
            BATON_RETURN_IF_ERROR(WriteFileAtomically(
                svg, RenderSimSvg(runs, "baton selfplay-sim: " + title + ", router " + runs[0].router)));
            fmt::print("json: {}\nsvg: {}\n", o->json, svg);
            fmt::print(stderr, "selfplay-sim finished in {:.1f}s\n", SecondsSince(t0));
            return Status::Ok();
          }};
}

}  // namespace baton::cli
