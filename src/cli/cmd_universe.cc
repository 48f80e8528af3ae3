// baton universe: picks the k experts that together cover the queries best (Leeroo equation 2, Algorithm 1).
#include <cmath>
#include <memory>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "baton/dataset.h"
#include "baton/universe.h"
#include "cli/command.h"
#include "cli/util.h"

namespace baton::cli {

Command AddUniverseCommand(CLI::App& root) {
  auto* app = root.add_subcommand(
      "universe",
      "Greedy universe construction: the k experts maximising S(U) = mean over queries of the best score among them; "
      "with --max-cost, cost-benefit greedy under a serving budget per query");
  struct Opts {
    std::string db;
    size_t k = 0;
    double max_cost = -1;
    std::vector<std::string> datasets, experts;
    std::string json;
  };
  auto o = std::make_shared<Opts>();
  app->add_option("--db", o->db, "database: an SQLite file or a postgresql:// URL")->required()->check(ExistingDb());
  app->add_option("--k", o->k, "at most this many experts")->required()->check(PositiveInt());
  app->add_option("--max-cost", o->max_cost,
                  "serving budget in USD per query: the picked experts' mean costs per query must sum within it")
      ->check(NonNegative());
  app->add_option("--dataset", o->datasets, "only these datasets (default: all)")->delimiter(',');
  app->add_option("--experts", o->experts, "the candidate pool (default: every expert)")->delimiter(',');
  app->add_option("--json", o->json, "also write the picks to this JSON file");
  return {app, [o, app]() -> Status {
            BATON_ASSIGN_OR_RETURN(std::unique_ptr<Store> store, Store::Open(o->db, {.create = false}));
            BATON_RETURN_IF_ERROR(CheckDatasetsExist(*store, o->datasets));
            DatasetFilter filter;
            filter.datasets = o->datasets;
            filter.experts = o->experts;
            BATON_ASSIGN_OR_RETURN(Dataset ds, LoadDataset(*store, filter));
            if (o->experts.empty()) {  // the pool: experts with at least one recorded outcome on these queries
              std::vector<std::string> observed;
              for (size_t e = 0; e < ds.num_experts(); ++e) {
                if (ds.ObservedCount(e) > 0) observed.push_back(ds.expert(e).name);
              }
              if (observed.empty()) return Status::FailedPrecondition("no expert has a recorded outcome");
              if (observed.size() < ds.num_experts()) {
                BATON_ASSIGN_OR_RETURN(ds, ds.SelectExperts(observed));
              }
            }
            if (ds.num_experts() == 0) return Status::FailedPrecondition("no experts in the store");
            if (ds.num_queries() == 0) return Status::FailedPrecondition("no query has a recorded outcome");
            if (app->count("--max-cost") > 0) {
              // A NaN mean cost would pass any budget check silently (cost 0 in the table).
              std::vector<std::string> unknown;
              for (size_t e = 0; e < ds.num_experts(); ++e) {
                if (std::isnan(ds.MeanCost(e))) unknown.push_back(ds.expert(e).name);
              }
              if (!unknown.empty()) {
                std::string list;
                for (const auto& n : unknown) list += (list.empty() ? "" : ", ") + n;
                return Status::FailedPrecondition(fmt::format(
                    "--max-cost needs recorded costs, and {} expert(s) have no cost_usd in the outcomes: {}; leave "
                    "them out with --experts, or drop --max-cost",
                    unknown.size(), list));
              }
            }
            UniverseOptions options;
            options.k = o->k;
            if (app->count("--max-cost") > 0) options.max_cost_per_query = o->max_cost;
            const auto t0 = std::chrono::steady_clock::now();
            BATON_ASSIGN_OR_RETURN(UniverseResult r, BuildUniverse(ds, options));
            const double seconds = SecondsSince(t0);

            fmt::print("{} queries, {} candidate experts, k = {}{}\n\n", ds.num_queries(), ds.num_experts(), o->k,
                       options.max_cost_per_query ? fmt::format(", max cost ${:.6g}/query", o->max_cost) : "");
            std::vector<std::vector<std::string>> rows;
            double prev = 0, total_cost = 0;
            for (size_t i = 0; i < r.picks.size(); ++i) {
              const UniversePick& p = r.picks[i];
              total_cost += p.cost_per_query;
              rows.push_back({std::to_string(i + 1), p.name, fmt::format("{:.4f}", p.s),
                              fmt::format("{:+.4f}", p.s - prev), FormatUsd(p.cost_per_query)});
              prev = p.s;
            }
            PrintTable({"pick", "expert", "S(U)", "gain", "cost/query ($)"}, rows);
            fmt::print("\nS(U) = {:.4f} with {} experts, serving cost {} $/query; {} gain evaluations in {:.3f} s\n",
                       r.s, r.picks.size(), FormatUsd(total_cost), r.evaluations, seconds);
            if (r.picks.size() < o->k) {
              fmt::print("stopped early: no further expert {}\n",
                         options.max_cost_per_query ? "improves S(U) within the budget" : "improves S(U)");
            }

            if (!o->json.empty()) {
              nlohmann::json j;
              j["picks"] = nlohmann::json::array();
              for (const UniversePick& p : r.picks) {
                j["picks"].push_back({{"expert", p.name}, {"s", p.s}, {"cost_per_query", p.cost_per_query}});
              }
              j["s"] = r.s;
              j["queries"] = ds.num_queries();
              j["candidates"] = ds.num_experts();
              j["evaluations"] = r.evaluations;
              if (options.max_cost_per_query) j["max_cost_per_query"] = *options.max_cost_per_query;
              BATON_RETURN_IF_ERROR(WriteFileAtomically(o->json, j.dump(2) + "\n"));
            }
            return Status::Ok();
          }};
}

}  // namespace baton::cli
