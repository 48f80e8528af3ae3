// baton datasets [rm NAME]: list the stored datasets, or delete one.
#include <fmt/format.h>

#include "cli/command.h"
#include "cli/util.h"

namespace baton::cli {

Command AddDatasetsCommand(CLI::App& root) {
  auto* app = root.add_subcommand("datasets",
                                  "List the datasets stored in the database with their query and outcome counts; "
                                  "`datasets rm NAME` deletes one");
  auto* rm = app->add_subcommand("rm",
                                 "Delete a dataset: its queries, outcomes and recorded responses (experts stay), "
                                 "all or nothing");
  app->require_subcommand(0, 1);
  rm->fallthrough();  // `baton datasets rm NAME --db F` reads --db as the parent's option
  struct Opts {
    std::string db, name;
  };
  auto o = std::make_shared<Opts>();
  app->add_option("--db", o->db, "database: an SQLite file or a postgresql:// URL")->required()->check(ExistingDb());
  rm->add_option("NAME", o->name, "dataset name as listed by `baton datasets`")->required();
  return {app, [o, rm]() -> Status {
            BATON_ASSIGN_OR_RETURN(std::unique_ptr<Store> store, Store::Open(o->db, {.create = false}));
            if (rm->parsed()) {
              BATON_RETURN_IF_ERROR(CheckDatasetsExist(*store, {o->name}));
              BATON_ASSIGN_OR_RETURN(Store::Transaction tx, store->Begin());
              BATON_ASSIGN_OR_RETURN(int64_t gone, store->DeleteDataset(o->name));
              BATON_RETURN_IF_ERROR(tx.Commit());
              fmt::print("deleted dataset '{}' from {}: {} queries with their outcomes\n", o->name, DatabaseDisplayName(o->db), gone);
              return Status::Ok();
            }
            BATON_ASSIGN_OR_RETURN(std::vector<DatasetInfo> all, store->DescribeDatasets());
            if (all.empty()) {
              fmt::print("{} holds no datasets (add one with `baton import`)\n", DatabaseDisplayName(o->db));
              return Status::Ok();
            }
            std::vector<std::vector<std::string>> rows;
            for (const DatasetInfo& d : all) {
              rows.push_back({d.name, std::to_string(d.queries), std::to_string(d.outcomes)});
            }
            PrintTable({"dataset", "queries", "outcomes"}, rows);
            return Status::Ok();
          }};
}

}  // namespace baton::cli
