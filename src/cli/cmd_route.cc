// baton route: assigns every query of the store to an expert under a total budget (Leeroo equation 1, solved over
// the whole set by AssignBatch) from a trained model's predicted scores and costs, and reports what the recorded
// outcomes say the assignment would really have scored and cost.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <memory>

#include <fmt/format.h>

#include "baton/dataset.h"
#include "baton/policy.h"
#include "baton/predictor.h"
#include "cli/command.h"
#include "cli/util.h"

namespace baton::cli {

Command AddRouteCommand(CLI::App& root) {
  auto* app = root.add_subcommand(
      "route",
      "Route every query to an expert within a total budget (predicted score per dollar, Lagrangian batch "
      "assignment); prints predicted and realised score and cost, and each expert's share");
  struct Opts {
    std::string db, model;
    double budget = 0;
    std::vector<std::string> datasets, experts;
  };
  auto o = std::make_shared<Opts>();
  app->add_option("--db", o->db, "SQLite database file")->required()->check(CLI::ExistingFile);
  app->add_option("--model", o->model, "model file written by `baton fit`")->required()->check(CLI::ExistingFile);
  app->add_option("--budget", o->budget, "total budget in USD for all the queries")->required()->check(NonNegative());
  app->add_option("--dataset", o->datasets, "only these datasets (default: all)")->delimiter(',');
  app->add_option("--experts", o->experts, "route only to these experts (default: all the model knows)")
      ->delimiter(',');
  return {
      app, [o]() -> Status {
        if (!(o->budget >= 0) || std::isinf(o->budget)) {
          return Status::InvalidArgument(fmt::format("budget {} must be a non-negative amount", o->budget));
        }
        BATON_ASSIGN_OR_RETURN(RouterModel model, LoadModel(o->model));
        const std::vector<std::string>& names = model.predictor->experts();
        BATON_ASSIGN_OR_RETURN(std::unique_ptr<Store> store, Store::Open(o->db, {.create = false}));
        DatasetFilter filter;
        filter.datasets = o->datasets;
        filter.drop_unobserved_queries = false;  // route every query; realised figures only where recorded
        BATON_ASSIGN_OR_RETURN(Dataset all, LoadDataset(*store, filter));
        BATON_ASSIGN_OR_RETURN(Dataset ds, all.SelectExperts(names));  // the model's column order
        const size_t nq = ds.num_queries(), ne = ds.num_experts();
        if (nq == 0) return Status::FailedPrecondition("no queries to route");

        // Default candidates: the model's experts with a recorded outcome on these queries (a model fitted on a
        // store with other datasets may know experts these queries never saw, with nothing to back a prediction).
        std::vector<bool> allowed(ne, false);
        if (o->experts.empty()) {
          for (size_t e = 0; e < ne; ++e) allowed[e] = ds.ObservedCount(e) > 0;
          if (std::find(allowed.begin(), allowed.end(), true) == allowed.end()) allowed.assign(ne, true);
        }
        for (const std::string& name : o->experts) {
          const auto it = std::find(names.begin(), names.end(), name);
          if (it == names.end()) {
            std::string known;
            for (const auto& n : names) known += (known.empty() ? "" : ", ") + n;
            return Status::NotFound(fmt::format("the model does not know expert '{}' (known: {})", name, known));
          }
          allowed[static_cast<size_t>(it - names.begin())] = true;
        }

        const auto t0 = std::chrono::steady_clock::now();
        std::vector<float> score = PredictAll(*model.predictor, ds);
        // The cost model may list the experts in another order: map by name.
        std::vector<int> cost_col(ne, -1);
        const auto& cost_names = model.cost.experts();
        for (size_t e = 0; e < ne; ++e) {
          const auto it = std::find(cost_names.begin(), cost_names.end(), names[e]);
          if (it == cost_names.end()) {
            return Status::DataLoss(fmt::format("model file: the cost model has no entry for '{}'", names[e]));
          }
          cost_col[e] = static_cast<int>(it - cost_names.begin());
        }
        std::vector<float> cost(nq * ne), row(cost_names.size());
        for (size_t q = 0; q < nq; ++q) {
          model.cost.Predict({.text = ds.query(q).text, .domain = ds.query(q).domain}, row);
          for (size_t e = 0; e < ne; ++e) {
            cost[q * ne + e] = row[cost_col[e]];
            if (!allowed[e]) score[q * ne + e] = NAN;  // not allowed = not a candidate
          }
        }
        const double predict_s = SecondsSince(t0);
        const auto t1 = std::chrono::steady_clock::now();
        BATON_ASSIGN_OR_RETURN(BatchAssignment a, AssignBatch(score, cost, ne, o->budget));
        const double assign_s = SecondsSince(t1);

        struct PerExpert {
          size_t routed = 0, realised = 0;
          double pred_score = 0, pred_cost = 0, real_score = 0, real_cost = 0;
        };
        std::vector<PerExpert> per(ne);
        PerExpert total;
        size_t cost_known = 0;
        for (size_t q = 0; q < nq; ++q) {
          const int e = a.expert[q];
          if (e < 0) continue;
          PerExpert& p = per[e];
          const size_t i = q * ne + e;
          ++p.routed, ++total.routed;
          p.pred_score += score[i], p.pred_cost += cost[i];
          if (ds.observed(q, e)) {
            ++p.realised, ++total.realised;
            p.real_score += ds.score(q, e), total.real_score += ds.score(q, e);
            if (!std::isnan(ds.cost(q, e)))
              p.real_cost += ds.cost(q, e), total.real_cost += ds.cost(q, e), ++cost_known;
          }
        }
        const size_t candidates = static_cast<size_t>(std::count(allowed.begin(), allowed.end(), true));
        fmt::print(
            "{} queries, {} candidate experts, budget ${:.6g}, lambda {:.6g} (predict {:.2f} s, assign {:.3f} s)\n\n",
            nq, candidates, o->budget, a.lambda, predict_s, assign_s);
        std::vector<std::vector<std::string>> rows;
        for (size_t e = 0; e < ne; ++e) {
          const PerExpert& p = per[e];
          if (!allowed[e]) continue;
          rows.push_back({names[e], std::to_string(p.routed), fmt::format("{:.1f}%", 100.0 * p.routed / nq),
                          p.routed ? FormatFraction(p.pred_score / p.routed) : "-", FormatUsd(p.pred_cost),
                          p.realised ? FormatFraction(p.real_score / p.realised) : "-",
                          p.realised ? FormatUsd(p.real_cost) : "-"});
        }
        PrintTable({"expert", "queries", "share", "pred score", "pred cost ($)", "real score", "real cost ($)"}, rows);
        fmt::print("\npredicted: mean score {} over {} queries, total cost ${:.6g} ({:.1f}% of the budget)\n",
                   FormatFraction(a.predicted_score / std::max<size_t>(total.routed, 1)), total.routed,
                   a.predicted_cost, o->budget > 0 ? 100.0 * a.predicted_cost / o->budget : 0.0);
        if (total.realised > 0) {
          fmt::print(
              "realised:  mean score {} over the {} queries with a recorded outcome for the chosen expert, "
              "recorded cost ${:.6g} ({} with a known cost)\n",
              FormatFraction(total.real_score / total.realised), total.realised, total.real_cost, cost_known);
        } else {
          fmt::print("realised:  no recorded outcome for any chosen (query, expert) pair\n");
        }
        return Status::Ok();
      }};
}

}  // namespace baton::cli
