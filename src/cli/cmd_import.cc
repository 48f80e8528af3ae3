// baton import / import-wide / export-wide
#include <chrono>
#include <filesystem>
#include <functional>

#include <fmt/format.h>

#include "baton/importer.h"
#include "cli/command.h"
#include "cli/util.h"

namespace baton::cli {

namespace {
void PrintSummary(const ImportSummary& s, const std::string& db, double seconds) {
  for (const std::string& note : s.notes) fmt::print(stderr, "note: {}\n", note);
  fmt::print("imported dataset '{}' into {}: {} experts, {} queries, {} outcomes, {} responses in {:.2f} s{}\n",
             s.dataset, DatabaseDisplayName(db), s.experts, s.queries, s.outcomes, s.responses, seconds,
             s.replaced_queries ? fmt::format(" (replaced {} stored queries)", s.replaced_queries) : "");
}

// Opens (or creates) `db` and runs `import` on it. When the file did not exist before and the import fails, the file
// is removed with its WAL and shared-memory files: a failed first import leaves nothing behind.
Status ImportInto(const std::string& db, const std::function<Status(Store&)>& import) {
  std::error_code ec;
  const bool existed = db == ":memory:" || IsDatabaseUrl(db) || std::filesystem::exists(db, ec);
  Status st = [&]() -> Status {
    BATON_ASSIGN_OR_RETURN(std::unique_ptr<Store> store, Store::Open(db));
    return import(*store);
  }();  // the store is closed here, before any removal
  if (!st.ok() && !existed) {
    for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(db + suffix, ec);
  }
  return st;
}
}  // namespace

Command AddImportCommand(CLI::App& root) {
  auto* app = root.add_subcommand("import",
                                  "Import a dataset folder (models.csv, queries.jsonl, outcomes.csv, "
                                  "optional responses.jsonl) into the database, all or nothing");
  struct Opts {
    std::string dir, db, dataset;
    bool no_responses = false, replace = false;
  };
  auto o = std::make_shared<Opts>();
  app->add_option("DIR", o->dir, "dataset folder, e.g. data/mmlu-pro")->required();
  app->add_option("--db", o->db, "database: an SQLite file (created when missing) or a postgresql:// URL")->required();
  app->add_option("--dataset", o->dataset, "name stored with each query (default: the folder's name)");
  app->add_flag("--no-responses", o->no_responses, "skip responses.jsonl (recorded answer texts)");
  app->add_flag("--replace", o->replace,
                "replace the stored dataset of that name (its queries, outcomes, responses) in the same transaction");
  return {app, [o]() -> Status {
            return ImportInto(o->db, [&](Store& store) -> Status {
              const auto t0 = std::chrono::steady_clock::now();
              BATON_ASSIGN_OR_RETURN(
                  ImportSummary s,
                  ImportDir(store, o->dir,
                            {.dataset = o->dataset, .with_responses = !o->no_responses, .replace = o->replace}));
              PrintSummary(s, o->db, SecondsSince(t0));
              return Status::Ok();
            });
          }};
}

Command AddImportWideCommand(CLI::App& root) {
  auto* app = root.add_subcommand(
      "import-wide",
      "Import a 'one column per model' CSV (RouterBench / RouteLLM layout): one row a query, a score "
      "column per model, optional '<model>|total_cost' and '<model>|model_response' columns");
  struct Opts {
    std::string file, db, query_col, text_col, domain_col, dataset;
    std::vector<std::string> models, ignore;
    bool replace = false;
  };
  auto o = std::make_shared<Opts>();
  app->add_option("FILE", o->file, "CSV file")->required();
  app->add_option("--db", o->db, "database: an SQLite file (created when missing) or a postgresql:// URL")->required();
  app->add_option("--query-col", o->query_col, "column holding the query id")->required();
  app->add_option("--text-col", o->text_col, "column holding the prompt text")->required();
  app->add_option("--domain-col", o->domain_col, "column holding the domain / task name");
  app->add_option("--dataset", o->dataset, "name stored with each query (default: the file's name)");
  app->add_option("--models", o->models, "score columns (default: every other column without a '|')")->delimiter(',');
  app->add_option("--ignore-col", o->ignore, "columns that are neither models nor named above")->delimiter(',');
  app->add_flag("--replace", o->replace,
                "replace the stored dataset of that name (its queries, outcomes, responses) in the same transaction");
  return {app, [o]() -> Status {
            return ImportInto(o->db, [&](Store& store) -> Status {
              const auto t0 = std::chrono::steady_clock::now();
              WideImportOptions w{o->query_col, o->text_col, o->domain_col, o->dataset,
                                  o->models,    o->ignore,   o->replace};
              BATON_ASSIGN_OR_RETURN(ImportSummary s, ImportWide(store, o->file, w));
              PrintSummary(s, o->db, SecondsSince(t0));
              return Status::Ok();
            });
          }};
}

Command AddExportWideCommand(CLI::App& root) {
  auto* app = root.add_subcommand("export-wide",
                                  "Write one stored dataset as a 'one column per model' CSV "
                                  "(the layout import-wide reads)");
  struct Opts {
    std::string db, dataset, out;
  };
  auto o = std::make_shared<Opts>();
  app->add_option("--db", o->db, "database: an SQLite file or a postgresql:// URL")->required()->check(ExistingDb());
  app->add_option("--dataset", o->dataset, "dataset name as stored (see `baton stats`)")->required();
  app->add_option("--out", o->out, "output CSV file (written atomically)")->required();
  return {app, [o]() -> Status {
            BATON_ASSIGN_OR_RETURN(std::unique_ptr<Store> store, Store::Open(o->db, {.create = false}));
            BATON_RETURN_IF_ERROR(CheckDatasetsExist(*store, {o->dataset}));
            BATON_ASSIGN_OR_RETURN(std::string csv, ExportWide(*store, o->dataset));
            BATON_RETURN_IF_ERROR(WriteFileAtomically(o->out, csv));
            fmt::print("wrote {} ({} bytes)\n", o->out, csv.size());
            return Status::Ok();
          }};
}

}  // namespace baton::cli
