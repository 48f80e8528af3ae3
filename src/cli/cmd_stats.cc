// baton stats
#include <fmt/format.h>

#include "baton/dataset.h"
#include "baton/stats.h"
#include "cli/command.h"
#include "cli/util.h"

namespace baton::cli {

Command AddStatsCommand(CLI::App& root) {
  auto* app = root.add_subcommand("stats",
                                  "Per expert: observed queries, mean score, mean cost per query; "
                                  "per domain: query and outcome counts");
  struct Opts {
    std::string db;
    std::vector<std::string> datasets;
    bool json = false;
  };
  auto o = std::make_shared<Opts>();
  app->add_option("--db", o->db, "database: an SQLite file or a postgresql:// URL")->required()->check(ExistingDb());
  app->add_option("--dataset", o->datasets, "only these datasets (default: all)")->delimiter(',');
  app->add_flag("--json", o->json, "print JSON instead of tables");
  return {
      app, [o]() -> Status {
        BATON_ASSIGN_OR_RETURN(std::unique_ptr<Store> store, Store::Open(o->db, {.create = false}));
        BATON_RETURN_IF_ERROR(CheckDatasetsExist(*store, o->datasets));
        BATON_ASSIGN_OR_RETURN(Dataset ds, LoadDataset(*store, {.datasets = o->datasets}));
        DatasetStats s = ComputeStats(ds);
        if (!o->datasets.empty()) {
          // The database's other experts have no outcome in these datasets: rows of nothing, left out.
          std::erase_if(s.experts, [](const auto& e) { return e.observed == 0; });
        }
        if (o->json) {
          fmt::print("{}\n", StatsToJson(s).dump(2));
          return Status::Ok();
        }
        fmt::print("{} queries, {} experts, {} outcomes\n\n", s.queries, s.experts.size(), s.outcomes);
        std::vector<std::vector<std::string>> rows;
        for (const auto& e : s.experts) {
          rows.push_back({e.name, std::to_string(e.observed), FormatFraction(e.mean_score), FormatUsd(e.mean_cost)});
        }
        PrintTable({"expert", "observed", "mean score", "mean cost/query ($)"}, rows);
        rows.clear();
        for (const auto& d : s.domains) {
          rows.push_back(
              {d.domain.empty() ? "(none)" : d.domain, std::to_string(d.queries), std::to_string(d.outcomes)});
        }
        fmt::print("\n");
        PrintTable({"domain", "queries", "outcomes"}, rows);
        return Status::Ok();
      }};
}

}  // namespace baton::cli
