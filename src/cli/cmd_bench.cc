// baton bench: train every router on a train split, sweep it on a test split, compare with baselines.
#include <chrono>
#include <filesystem>

#include <fmt/format.h>

#include "baton/bench.h"
#include "baton/dataset.h"
#include "cli/command.h"
#include "cli/util.h"

namespace baton::cli {
namespace {

std::string Basename(std::string dir) {
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  return std::filesystem::path(dir).filename().string();
}

}  // namespace

Command AddBenchCommand(CLI::App& root) {
  auto* app = root.add_subcommand(
      "bench",
      "Benchmark every router against single experts, random, oracle and a cascade: train on a train split, sweep "
      "lambda on a test split, report realised accuracy vs cost (JSON, HTML)");
  struct Opts {
    std::string dir, train, test, json, report;
    double test_fraction = 0.5;
    uint64_t seed = 0;
    std::vector<std::string> experts, routers, candidates;
    size_t cv_folds = 3;
    size_t lambdas = 40;
    size_t breakpoint_lambdas = 1500;
    int64_t dev_split = -1;
    bool no_inner_cv = false;
  };
  auto o = std::make_shared<Opts>();
  app->add_option("DIR", o->dir, "dataset folder to split at random into train and test")
      ->check(CLI::ExistingDirectory);
  app->add_option("--train", o->train, "train dataset folder (with --test)")->check(CLI::ExistingDirectory);
  app->add_option("--test", o->test, "test dataset folder (with --train)")->check(CLI::ExistingDirectory);
  app->add_option("--test-fraction", o->test_fraction, "share of DIR's queries held out for test (default 0.5)")
      ->check(Fraction());
  app->add_option("--seed", o->seed, "seed of the split, the folds and the predictors (default 0)")
      ->check(NonNegativeInt());
  app->add_option("--experts", o->experts, "restrict the pool to these experts (comma-separated)")->delimiter(',');
  app->add_option("--routers", o->routers, "benchmark only these predictors (default: all)")->delimiter(',');
  app->add_option("--default-candidates", o->candidates,
                  "shortlist for choosing the default router by cross-validation on train (default: every router)")
      ->delimiter(',');
  app->add_option("--cv-folds", o->cv_folds, "folds for choosing the default router (default 3)")->check(PositiveInt());
  app->add_option("--lambdas", o->lambdas, "log-spaced lambdas per router besides 0 (default 40)")
      ->check(NonNegativeInt());
  app->add_option("--breakpoint-lambdas", o->breakpoint_lambdas,
                  "also sweep up to this many lambdas between the exact break-points of the assignment (default 1500, "
                  "0 = off)")
      ->check(NonNegativeInt());
  app->add_option("--dev-split", o->dev_split,
                  "development mode: ignore the test split; split the TRAIN split in halves with this seed and bench "
                  "on those (inner train / validation)")
      ->check(NonNegativeInt());
  app->add_flag("--no-inner-cv", o->no_inner_cv, "train routers without their own hyper-parameter cross-validation");
  app->add_option("--json", o->json, "write the results as JSON to this file");
  app->add_option("--report", o->report, "write an HTML report (index.html) into this folder");
  return {app, [o]() -> Status {
            const bool split = !o->dir.empty();
            if (split == (!o->train.empty() || !o->test.empty()) || (!split && (o->train.empty() || o->test.empty()))) {
              return Status::InvalidArgument("give either DIR or both --train and --test");
            }
            const auto t0 = std::chrono::steady_clock::now();
            DatasetFilter filter{.datasets = {}, .experts = o->experts};
            Dataset train, test;
            std::string title;
            if (split) {
              fmt::print(stderr, "loading {}\n", o->dir);
              BATON_ASSIGN_OR_RETURN(Dataset all, LoadDatasetDir(o->dir, filter));
              BATON_ASSIGN_OR_RETURN(QuerySplit s, RandomSplit(all.num_queries(), o->test_fraction, o->seed));
              train = all.SelectQueries(s.train);
              test = all.SelectQueries(s.test);
              title = fmt::format("baton bench: {} (random split, test fraction {}, seed {})", Basename(o->dir),
                                  o->test_fraction, o->seed);
            } else {
              fmt::print(stderr, "loading {} and {}\n", o->train, o->test);
              BATON_ASSIGN_OR_RETURN(train, LoadDatasetDir(o->train, filter));
              BATON_ASSIGN_OR_RETURN(test, LoadDatasetDir(o->test, filter));
              title = fmt::format("baton bench: train {}, test {}", Basename(o->train), Basename(o->test));
            }
            if (o->dev_split >= 0) {
              BATON_ASSIGN_OR_RETURN(QuerySplit s,
                                     RandomSplit(train.num_queries(), 0.5, static_cast<uint64_t>(o->dev_split)));
              test = train.SelectQueries(s.test);
              train = train.SelectQueries(s.train);
              title += fmt::format(" [dev: halves of train, seed {}]", o->dev_split);
              fmt::print(stderr, "dev mode: the test split is NOT used; inner split of train with seed {}\n",
                         o->dev_split);
            }
            BATON_RETURN_IF_ERROR(AlignExperts(train, test, o->experts));
            fmt::print(stderr, "loaded in {:.1f}s: {} train and {} test queries, {} experts\n", SecondsSince(t0),
                       train.num_queries(), test.num_queries(), train.num_experts());
            BenchOptions opts;
            opts.routers = o->routers;
            opts.default_candidates = o->candidates;
            opts.cv_folds = o->cv_folds;
            opts.num_lambdas = o->lambdas;
            opts.breakpoint_lambdas = o->breakpoint_lambdas;
            opts.seed = o->seed;
            opts.cross_validate = !o->no_inner_cv;
            opts.progress = [](const std::string& m) { fmt::print(stderr, "{}\n", m); };
            BATON_ASSIGN_OR_RETURN(BenchResult r, RunBench(train, test, opts));

            fmt::print("{} train / {} test queries, {} experts\n", r.train_queries, r.test_queries, r.experts.size());
            fmt::print("best single: {} (accuracy {:.3f}, ${:.3g}/query); oracle {:.3f} at ${:.3g}/query\n",
                       r.best_single.expert, r.best_single.accuracy, r.best_single.cost_per_query, r.oracle.accuracy,
                       r.oracle.cost_per_query);
            std::vector<std::vector<std::string>> rows;
            auto opt = [](const std::optional<double>& v) { return v ? fmt::format("{:.3f}", *v) : std::string("-"); };
            for (const RouterResult& x : r.routers) {
              rows.push_back({x.name + (x.is_default ? " *" : ""), fmt::format("{:.4f}", x.aiq), opt(x.cost_at_95),
                              opt(x.acc_at_best_single_cost), opt(x.apgr), fmt::format("{:.1f}", x.train_seconds)});
            }
            rows.push_back({"cascade", fmt::format("{:.4f}", r.cascade.aiq), opt(r.cascade.cost_at_95),
                            opt(r.cascade.acc_at_best_single_cost), "-", "-"});
            PrintTable({"router", "aiq", "cost_at_95", "acc@best-single-cost", "apgr", "train s"}, rows);
            fmt::print("* default router ({})\n", r.default_selection);
            if (!o->json.empty()) {
              BATON_RETURN_IF_ERROR(WriteFileAtomically(o->json, BenchResultToJson(r).dump(2) + "\n"));
              fmt::print("json: {}\n", o->json);
            }
            if (!o->report.empty()) {
              std::error_code ec;
              std::filesystem::create_directories(o->report, ec);
              if (ec) return Status::IoError(fmt::format("{}: cannot create folder: {}", o->report, ec.message()));
              const std::string path = o->report + "/index.html";
              BATON_RETURN_IF_ERROR(WriteFileAtomically(path, RenderBenchReport(r, title)));
              fmt::print("report: {}\n", path);
            }
            fmt::print(stderr, "bench finished in {:.1f}s\n", SecondsSince(t0));
            return Status::Ok();
          }};
}

}  // namespace baton::cli
