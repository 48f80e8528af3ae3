// baton bench: train every router on a train split, sweep it on a test split, compare with baselines.
#include <chrono>
#include <cmath>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iterator>

#include <fmt/format.h>

#include "baton/bench.h"
#include "baton/dataset.h"
#include "baton/importer.h"
#include "cli/command.h"
#include "cli/util.h"

namespace baton::cli {
namespace {

std::string Join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
  return s;
}

std::string Basename(std::string dir) {
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  return std::filesystem::path(dir).filename().string();
}

// Refuses what would give figures that look valid but are not: an expert with no train outcome (routers would see
// only their prior for it) and an expert whose cost on the test split is unknown (cost curves, AIQ and $/query
// would be NaN or 0).
Status CheckBenchable(const Dataset& train, const Dataset& test, bool cold_start) {
  std::vector<std::string> untrained, no_cost;
  for (size_t e = 0; e < train.num_experts(); ++e) {
    if (train.ObservedCount(e) == 0) untrained.push_back(train.expert(e).name);
  }
  for (size_t e = 0; e < test.num_experts(); ++e) {
    if (std::isnan(test.MeanCost(e))) no_cost.push_back(test.expert(e).name);
  }
  if (!untrained.empty() && !cold_start) {
    return Status::FailedPrecondition(
        fmt::format("no outcome in the train split for {}; leave them out with --experts, or keep them on the "
                    "routers' priors with --cold-start",
                    Join(untrained)));
  }
  if (!no_cost.empty()) {
    return Status::FailedPrecondition(fmt::format(
        "bench compares accuracy against cost, and the cost of {} is unknown on every test query (no cost_usd in the "
        "outcomes); record costs (or compute them from prices before import), or leave them out with --experts",
        Join(no_cost)));
  }
  return Status::Ok();
}

// The command line as typed (Linux: /proc/self/cmdline), for the report's provenance line.
std::string CommandLine() {
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>()), out;
  for (char c : all) out += c == '\0' ? ' ' : c;
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out.empty() ? "baton bench" : out;
}

std::string UtcNow() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M UTC", &tm);
  return buf;
}

struct DbSplits {
  Dataset train, test;  // test is empty without a test dataset
  std::vector<std::string> train_names;
};

// Reads train (and test) datasets from a database; imported outcomes only (live ones may copy test labels). Without
// --experts, the pool is the experts with outcomes in the train data: the database may hold other datasets' experts.
StatusOr<DbSplits> LoadFromStore(Store& store_ref, const std::string& path, std::vector<std::string> datasets,
                                 const std::string& test_dataset, const std::vector<std::string>& experts) {
  Store* store = &store_ref;
  BATON_RETURN_IF_ERROR(CheckDatasetsExist(*store, datasets));
  if (!test_dataset.empty()) BATON_RETURN_IF_ERROR(CheckDatasetsExist(*store, {test_dataset}));
  BATON_ASSIGN_OR_RETURN(std::vector<std::string> stored, store->ListDatasets());
  if (stored.empty()) return Status::FailedPrecondition(fmt::format("{}: the database holds no dataset", path));
  if (datasets.empty()) {
    for (const std::string& d : stored) {
      if (d != test_dataset) datasets.push_back(d);
    }
    if (datasets.size() != 1) {
      return Status::InvalidArgument(
          fmt::format("{} holds datasets {}; say which to bench with --dataset NAME (and optionally --test-dataset "
                      "NAME)",
                      path, Join(stored)));
    }
  }
  DbSplits out;
  out.train_names = datasets;
  const std::vector<OutcomeSource> imported = {OutcomeSource::kImported};
  BATON_ASSIGN_OR_RETURN(out.train,
                         LoadDataset(*store, {.datasets = datasets, .experts = experts, .sources = imported}));
  if (experts.empty()) {
    std::vector<std::string> seen;
    for (size_t e = 0; e < out.train.num_experts(); ++e) {
      if (out.train.ObservedCount(e) > 0) seen.push_back(out.train.expert(e).name);
    }
    if (seen.empty()) return Status::FailedPrecondition(fmt::format("no outcome in dataset(s) {}", Join(datasets)));
    BATON_ASSIGN_OR_RETURN(out.train, out.train.SelectExperts(seen));
  }
  if (!test_dataset.empty()) {
    BATON_ASSIGN_OR_RETURN(out.test, LoadDataset(*store, {.datasets = {test_dataset}, .sources = imported}));
  }
  return out;
}

StatusOr<DbSplits> LoadFromDb(const std::string& path, const std::vector<std::string>& datasets,
                              const std::string& test_dataset, const std::vector<std::string>& experts) {
  BATON_ASSIGN_OR_RETURN(std::unique_ptr<Store> store, Store::Open(path, {.create = false}));
  return LoadFromStore(*store, path, datasets, test_dataset, experts);
}

// A wide CSV (one score column per model, as `baton import-wide` reads it), imported into memory: nothing is written.
StatusOr<DbSplits> LoadFromWide(const std::string& csv, const WideImportOptions& options,
                                const std::vector<std::string>& experts) {
  BATON_ASSIGN_OR_RETURN(std::unique_ptr<Store> store, Store::Open(":memory:"));
  BATON_ASSIGN_OR_RETURN(ImportSummary imported, ImportWide(*store, csv, options));
  return LoadFromStore(*store, csv, {imported.dataset}, "", experts);
}

}  // namespace

Command AddBenchCommand(CLI::App& root) {
  auto* app = root.add_subcommand(
      "bench",
      "Benchmark every router against single experts, random, oracle and a cascade: train on a train split, sweep "
      "lambda on a test split, report realised accuracy vs cost (JSON, HTML)");
  struct Opts {
    std::string dir, train, test, json, report, db, test_dataset, wide;
    WideImportOptions wide_options;
    std::vector<std::string> datasets;
    double test_fraction = 0.5;
    uint64_t seed = 0;
    std::vector<std::string> experts, routers, candidates;
    size_t cv_folds = 3;
    size_t lambdas = 40;
    size_t breakpoint_lambdas = 1500;
    size_t bootstrap = 200;
    std::vector<std::string> responses;
    bool no_responses = false;
    int64_t dev_split = -1;
    bool no_inner_cv = false, cold_start = false;
  };
  auto o = std::make_shared<Opts>();
  app->add_option("DIR", o->dir, "dataset folder to split at random into train and test")
      ->check(CLI::ExistingDirectory);
  app->add_option("--train", o->train, "train dataset folder (with --test)")->check(CLI::ExistingDirectory);
  app->add_option("--test", o->test, "test dataset folder (with --train)")->check(CLI::ExistingDirectory);
  app->add_option("--db", o->db, "read the data from this database instead of folders (with --dataset)")
      ->check(ExistingDb());
  app->add_option("--dataset", o->datasets,
                  "with --db: the dataset(s) to split at random (or to train on, with --test-dataset)")
      ->delimiter(',');
  app->add_option("--test-dataset", o->test_dataset, "with --db: test on this dataset, train on --dataset");
  app->add_option("--wide", o->wide, "read a wide CSV (one score column per model), split at random; see import-wide")
      ->check(CLI::ExistingFile);
  app->add_option("--query-col", o->wide_options.query_col, "with --wide: the query id column");
  app->add_option("--text-col", o->wide_options.text_col, "with --wide: the prompt column");
  app->add_option("--domain-col", o->wide_options.domain_col, "with --wide: the domain column (optional)");
  app->add_option("--ignore-col", o->wide_options.ignore_cols, "with --wide: columns that are not models")
      ->delimiter(',');
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
  app->add_option("--bootstrap", o->bootstrap,
                  "resamples of the test queries for confidence intervals (default 200, 0 = off)")
      ->check(NonNegativeInt());
  app->add_option("--dev-split", o->dev_split,
                  "development mode: ignore the test split; split the TRAIN split in halves with this seed and bench "
                  "on those (inner train / validation)")
      ->check(NonNegativeInt());
  app->add_option("--responses", o->responses,
                  "recorded answer texts (responses.jsonl) for the escalation router (default: responses.jsonl in the "
                  "dataset folder(s) when present)");
  app->add_flag("--no-responses", o->no_responses, "do not read recorded answers (no escalation router)");
  app->add_flag("--no-inner-cv", o->no_inner_cv, "train routers without their own hyper-parameter cross-validation");
  app->add_flag("--cold-start", o->cold_start, "keep experts with no outcome in the train split (routed on priors)");
  app->add_option("--json", o->json, "write the results as JSON to this file");
  app->add_option("--report", o->report, "write an HTML report (index.html) into this folder");
  return {
      app, [o]() -> Status {
        const bool from_wide = !o->wide.empty();
        const bool from_db = !o->db.empty() || from_wide;
        const bool split = !o->dir.empty() || (from_db && o->test_dataset.empty());
        const int sources = !o->dir.empty() + (!o->train.empty() || !o->test.empty()) + !o->db.empty() + from_wide;
        if (sources != 1 || (!o->dir.empty() || from_db ? false : (o->train.empty() || o->test.empty()))) {
          return Status::InvalidArgument(
              "give one of: DIR; --train DIR and --test DIR; --db FILE [--dataset NAME] [--test-dataset NAME]; "
              "--wide FILE.csv --query-col C --text-col T");
        }
        if (o->db.empty() && (!o->datasets.empty() || !o->test_dataset.empty())) {
          return Status::InvalidArgument("--dataset and --test-dataset go with --db");
        }
        if (!from_wide && (!o->wide_options.query_col.empty() || !o->wide_options.text_col.empty() ||
                           !o->wide_options.domain_col.empty() || !o->wide_options.ignore_cols.empty())) {
          return Status::InvalidArgument("--query-col, --text-col, --domain-col and --ignore-col go with --wide");
        }
        if (from_wide && (o->wide_options.query_col.empty() || o->wide_options.text_col.empty())) {
          return Status::InvalidArgument("--wide needs --query-col and --text-col (as import-wide does)");
        }
        const auto t0 = std::chrono::steady_clock::now();
        DatasetFilter filter{.datasets = {}, .experts = o->experts};
        Dataset train, test;
        std::string title;
        if (from_db) {
          BATON_ASSIGN_OR_RETURN(DbSplits d, from_wide ? LoadFromWide(o->wide, o->wide_options, o->experts)
                                                       : LoadFromDb(o->db, o->datasets, o->test_dataset, o->experts));
          title = fmt::format("baton bench: {} ", from_wide ? Basename(o->wide) : DatabaseDisplayName(o->db));
          if (o->test_dataset.empty()) {
            BATON_ASSIGN_OR_RETURN(QuerySplit s, RandomSplit(d.train.num_queries(), o->test_fraction, o->seed));
            train = d.train.SelectQueries(s.train);
            test = d.train.SelectQueries(s.test);
            title += fmt::format("dataset {} (random split, test fraction {}, seed {})", Join(d.train_names),
                                 o->test_fraction, o->seed);
          } else {
            train = std::move(d.train);
            test = std::move(d.test);
            title += fmt::format("train {}, test {}", Join(d.train_names), o->test_dataset);
          }
        } else if (split) {
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
          fmt::print(stderr, "dev mode: the test split is NOT used; inner split of train with seed {}\n", o->dev_split);
        }
        BATON_RETURN_IF_ERROR(AlignExperts(train, test, o->experts));
        BATON_RETURN_IF_ERROR(CheckBenchable(train, test, o->cold_start));
        fmt::print(stderr, "loaded in {:.1f}s: {} train and {} test queries, {} experts\n", SecondsSince(t0),
                   train.num_queries(), test.num_queries(), train.num_experts());
        // Recorded answers for the escalation router: --responses, else the folders' responses.jsonl when present.
        std::vector<std::string> response_files = o->responses;
        if (response_files.empty() && !o->no_responses) {
          for (const std::string& d : {o->dir, o->train, o->test}) {
            if (!d.empty() && std::filesystem::exists(d + "/responses.jsonl")) response_files.push_back(d + "/responses.jsonl");
          }
        }
        AnswerTable train_answers, test_answers;
        if (!o->no_responses && !response_files.empty()) {
          RecordedResponses all;
          for (const std::string& f : response_files) {
            fmt::print(stderr, "reading recorded answers {}\n", f);
            BATON_ASSIGN_OR_RETURN(RecordedResponses r, ReadResponses(f));
            all.merge(r);
          }
          train_answers = AnswersFor(all, train);
          test_answers = AnswersFor(all, test);
          fmt::print(stderr, "recorded answers: {} train cells, {} test cells\n", train_answers.recorded,
                     test_answers.recorded);
        } else {
          fmt::print(stderr, "no recorded answers (responses.jsonl): the escalation router is not benchmarked\n");
        }
        BenchOptions opts;
        opts.train_answers = &train_answers;
        opts.test_answers = &test_answers;
        opts.routers = o->routers;
        opts.default_candidates = o->candidates;
        opts.cv_folds = o->cv_folds;
        opts.num_lambdas = o->lambdas;
        opts.breakpoint_lambdas = o->breakpoint_lambdas;
        opts.seed = o->seed;
        opts.bootstrap = o->bootstrap;
        opts.cross_validate = !o->no_inner_cv;
        opts.progress = [](const std::string& m) { fmt::print(stderr, "{}\n", m); };
        BATON_ASSIGN_OR_RETURN(BenchResult r, RunBench(train, test, opts));
        r.provenance = fmt::format("{}; seed {}; {}; {}", CommandLine(), o->seed, kBatonVersion, UtcNow());
        if (r.prices_degenerate) {
          fmt::print(stderr,
                     "warning: the experts' mean costs are equal (or unknown): every router collapses to one "
                     "cost; the cost figures and price tiers say nothing\n");
        }

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
        fmt::print("escalate: {}\n", r.escalation.note);
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
