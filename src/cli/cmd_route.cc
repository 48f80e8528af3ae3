// baton route: assigns every query of the store to an expert under a total budget (Leeroo equation 1, solved over
// the whole set by AssignBatch) from a trained model's predicted scores and costs, and reports what the recorded
// outcomes say the assignment would really have scored and cost. --out writes the per-query decisions.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <memory>
#include <optional>
#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "baton/dataset.h"
#include "baton/policy.h"
#include "baton/predictor.h"
#include "cli/command.h"
#include "cli/util.h"

namespace baton::cli {
namespace {

std::string Join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
  return s;
}

// One row of --out.
struct Decision {
  std::string query_id, expert;  // expert "" when no candidate fits the query
  double pred_score = NAN, pred_cost = NAN, real_score = NAN, real_cost = NAN;
};

// Writes the decisions as CSV (a header row, empty cells for unknown values) or JSON Lines (null for unknown values),
// chosen by the file's extension.
Status WriteDecisions(const std::string& path, const std::vector<Decision>& rows) {
  const bool jsonl = path.ends_with(".jsonl") || path.ends_with(".json");
  if (!jsonl && !path.ends_with(".csv")) {
    return Status::InvalidArgument(fmt::format("--out {}: the file must end in .csv or .jsonl", path));
  }
  std::string text;
  auto num = [](double v) { return std::isnan(v) ? std::string() : fmt::format("{:.9g}", v); };
  auto csv_field = [](const std::string& s) {
    if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
    std::string q = "\"";
    for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
    return q + "\"";
  };
  if (!jsonl) text = "query_id,expert,predicted_score,predicted_cost_usd,realised_score,realised_cost_usd\n";
  for (const Decision& d : rows) {
    if (jsonl) {
      nlohmann::json j;
      auto put = [&j](const char* k, double v) { j[k] = std::isnan(v) ? nlohmann::json() : nlohmann::json(v); };
      j["query_id"] = d.query_id;
      j["expert"] = d.expert.empty() ? nlohmann::json() : nlohmann::json(d.expert);
      put("predicted_score", d.pred_score);
      put("predicted_cost_usd", d.pred_cost);
      put("realised_score", d.real_score);
      put("realised_cost_usd", d.real_cost);
      text += j.dump() + "\n";
    } else {
      text += fmt::format("{},{},{},{},{},{}\n", csv_field(d.query_id), csv_field(d.expert), num(d.pred_score),
                          num(d.pred_cost), num(d.real_score), num(d.real_cost));
    }
  }
  return WriteFileAtomically(path, text);
}

}  // namespace

Command AddRouteCommand(CLI::App& root) {
  auto* app = root.add_subcommand(
      "route",
      "Route every query to an expert within a total budget (predicted score per dollar, Lagrangian batch "
      "assignment); prints predicted and realised score and cost, and each expert's share");
  struct Opts {
    std::string db, model, out;
    double budget = -1, max_cost_per_query = -1;
    std::vector<std::string> datasets, experts;
    bool score_only = false, cold_start = false;
  };
  auto o = std::make_shared<Opts>();
  app->add_option("--db", o->db, "database: an SQLite file or a postgresql:// URL")->required()->check(ExistingDb());
  app->add_option("--model", o->model, "model file written by `baton fit`")->required()->check(CLI::ExistingFile);
  app->add_option("--budget", o->budget, "total budget in USD for all the queries (required unless --score-only)")
      ->check(NonNegative());
  app->add_option("--dataset", o->datasets, "only these datasets (default: all)")->delimiter(',');
  app->add_option("--experts", o->experts, "route only to these experts (default: all the model knows)")
      ->delimiter(',');
  app->add_option("--max-cost-per-query", o->max_cost_per_query,
                  "never choose an expert whose predicted cost for the query exceeds this (USD)");
  app->add_option("--out", o->out,
                  "write the per-query decisions to FILE.csv or FILE.jsonl (query id, expert, predicted and "
                  "realised score and cost)");
  app->add_flag("--score-only", o->score_only,
                "ignore costs: send each query to the expert with the best predicted score (no budget)");
  app->add_flag("--cold-start", o->cold_start,
                "also route to experts the model has no training outcome for (on the predictor's prior)");
  return {
      app, [o, app]() -> Status {
        const bool has_budget = app->count("--budget") > 0;
        if (!o->score_only && !has_budget) return Status::InvalidArgument("give --budget USD, or --score-only");
        if (o->score_only && has_budget) return Status::InvalidArgument("--budget and --score-only exclude each other");
        if (has_budget && (!(o->budget >= 0) || std::isinf(o->budget))) {
          return Status::InvalidArgument(fmt::format("budget {} must be a non-negative amount", o->budget));
        }
        const bool capped = app->count("--max-cost-per-query") > 0;
        if (capped && (!(o->max_cost_per_query > 0) || std::isinf(o->max_cost_per_query))) {
          return Status::InvalidArgument(
              fmt::format("--max-cost-per-query {} must be a positive amount", o->max_cost_per_query));
        }
        BATON_ASSIGN_OR_RETURN(RouterModel model, LoadModel(o->model));
        const std::vector<std::string>& names = model.predictor->experts();
        const size_t ne = names.size();
        BATON_ASSIGN_OR_RETURN(std::unique_ptr<Store> store, Store::Open(o->db, {.create = false}));
        BATON_RETURN_IF_ERROR(CheckDatasetsExist(*store, o->datasets));
        DatasetFilter filter;
        filter.datasets = o->datasets;
        filter.drop_unobserved_queries = false;  // route every query; realised figures only where recorded
        BATON_ASSIGN_OR_RETURN(Dataset ds, LoadDataset(*store, filter));
        const size_t nq = ds.num_queries();
        if (nq == 0) return Status::FailedPrecondition("no queries to route");
        // Realised figures come from the store's column of the same name (-1: the store does not know the expert).
        std::vector<int> col(ne, -1);
        for (size_t e = 0; e < ne; ++e) {
          for (size_t k = 0; k < ds.num_experts(); ++k) {
            if (ds.expert(k).name == names[e]) col[e] = static_cast<int>(k);
          }
        }
        std::vector<std::string> seen;  // experts with a recorded outcome on these queries
        for (size_t k = 0; k < ds.num_experts(); ++k) {
          if (ds.ObservedCount(k) > 0) seen.push_back(ds.expert(k).name);
        }
        const std::vector<std::string> cold = model.ColdExperts();
        auto is_cold = [&](size_t e) { return std::find(cold.begin(), cold.end(), names[e]) != cold.end(); };

        // Candidates. By default: the model's trained experts that have a recorded outcome on these queries (when
        // the queries have any outcome at all). A model that shares no expert with the recorded outcomes was fitted
        // on other data: routing would be on priors only, so it is an error naming both lists.
        std::vector<bool> allowed(ne, false);
        if (o->experts.empty()) {
          std::vector<std::string> unknown_to_model;
          for (const std::string& s : seen) {
            if (std::find(names.begin(), names.end(), s) == names.end()) unknown_to_model.push_back(s);
          }
          size_t overlap = 0;
          for (size_t e = 0; e < ne; ++e) {
            const bool recorded = seen.empty() || (col[e] >= 0 && ds.ObservedCount(col[e]) > 0);
            overlap += recorded && !is_cold(e);
            allowed[e] = recorded && (!is_cold(e) || o->cold_start);
          }
          if (overlap == 0) {
            return Status::FailedPrecondition(fmt::format(
                "the model knows none of the experts with outcomes on these queries: model experts {} (trained); "
                "experts in the data {}. Fit a model on this dataset (baton fit --dataset ...)",
                Join(names), Join(seen)));
          }
          if (!unknown_to_model.empty()) {
            fmt::print(stderr, "note: not routing to {}: the model has no data for them (fit on their dataset)\n",
                       Join(unknown_to_model));
          }
        }
        for (const std::string& name : o->experts) {
          const auto it = std::find(names.begin(), names.end(), name);
          if (it == names.end()) {
            return Status::NotFound(fmt::format("the model does not know expert '{}' (known: {})", name, Join(names)));
          }
          const size_t e = static_cast<size_t>(it - names.begin());
          if (is_cold(e) && !o->cold_start) {
            return Status::FailedPrecondition(fmt::format(
                "the model has no training outcome for '{}'; pass --cold-start to route to it on the prior", name));
          }
          allowed[e] = true;
        }
        std::vector<std::string> cold_left_out;
        for (size_t e = 0; e < ne; ++e) {
          if (is_cold(e) && !allowed[e] && o->experts.empty()) cold_left_out.push_back(names[e]);
        }
        if (!cold_left_out.empty()) {
          fmt::print(stderr,
                     "note: not routing to {}: no training outcome in the model (cold start); pass "
                     "--cold-start to route to them on the predictor's prior\n",
                     Join(cold_left_out));
        }

        const auto t0 = std::chrono::steady_clock::now();
        std::vector<float> score = PredictAll(*model.predictor, ds);  // reads the queries only
        for (size_t e = 0; e < ne; ++e) {
          if (!is_cold(e) || !allowed[e]) continue;
          double mean = 0;
          for (size_t q = 0; q < nq; ++q) mean += score[q * ne + e];
          fmt::print(stderr,
                     "warning: cold start: '{}' has no training outcome; it is routed on the predictor's prior "
                     "(mean predicted score {:.3f})\n",
                     names[e], mean / static_cast<double>(nq));
        }
        // The cost model lists the experts in the predictor's order (LoadModel checks).
        std::vector<float> cost(nq * ne);
        for (size_t q = 0; q < nq; ++q) {
          model.cost.Predict({.text = ds.query(q).text, .domain = ds.query(q).domain},
                             std::span<float>(cost).subspan(q * ne, ne));
        }
        // Costs that cannot be known would make the budget meaningless (NaN = not a candidate, so nothing fits).
        std::vector<std::string> no_cost;
        for (size_t e = 0; e < ne; ++e) {
          bool any = false;
          for (size_t q = 0; q < nq && !any; ++q) any = !std::isnan(cost[q * ne + e]);
          if (allowed[e] && !any) no_cost.push_back(names[e]);
        }
        if (!o->score_only && !no_cost.empty()) {
          return Status::FailedPrecondition(fmt::format(
              "cannot know the cost of {}: no prices (usd_per_mtok_in/out in models.csv) and no cost_usd in the "
              "outcomes the model was fitted on; add prices, leave them out with --experts, or route with "
              "--score-only",
              Join(no_cost)));
        }
        size_t over_cap = 0;
        for (size_t q = 0; q < nq; ++q) {
          for (size_t e = 0; e < ne; ++e) {
            float& s = score[q * ne + e];
            if (!allowed[e]) s = NAN;  // not allowed = not a candidate
            if (capped && !std::isnan(s) && !(cost[q * ne + e] <= o->max_cost_per_query)) s = NAN, ++over_cap;
          }
        }
        const double predict_s = SecondsSince(t0);
        const auto t1 = std::chrono::steady_clock::now();
        BatchAssignment a;
        if (o->score_only) {
          a.expert.assign(nq, -1);
          for (size_t q = 0; q < nq; ++q) {
            for (size_t e = 0; e < ne; ++e) {
              const float s = score[q * ne + e];
              if (!std::isnan(s) && (a.expert[q] < 0 || s > score[q * ne + a.expert[q]])) a.expert[q] = e;
            }
            if (a.expert[q] >= 0) a.predicted_score += score[q * ne + a.expert[q]];
          }
          a.predicted_cost = NAN;
        } else {
          BATON_ASSIGN_OR_RETURN(a, AssignBatch(score, cost, ne, o->budget));
        }
        const double assign_s = SecondsSince(t1);

        struct PerExpert {
          size_t routed = 0, realised = 0;
          double pred_score = 0, pred_cost = 0, real_score = 0, real_cost = 0;
        };
        std::vector<PerExpert> per(ne);
        PerExpert total;
        size_t cost_known = 0, unassigned = 0;
        std::vector<Decision> decisions;
        for (size_t q = 0; q < nq; ++q) {
          const int e = a.expert[q];
          Decision d{.query_id = ds.query(q).external_id};
          if (e < 0) {
            ++unassigned;
            if (!o->out.empty()) decisions.push_back(d);
            continue;
          }
          PerExpert& p = per[e];
          const size_t i = q * ne + e;
          ++p.routed, ++total.routed;
          d.expert = names[e], d.pred_score = score[i], d.pred_cost = o->score_only ? NAN : cost[i];
          p.pred_score += score[i], p.pred_cost += cost[i];
          if (col[e] >= 0 && ds.observed(q, col[e])) {
            const double rs = ds.score(q, col[e]), rc = ds.cost(q, col[e]);
            d.real_score = rs, d.real_cost = rc;
            ++p.realised, ++total.realised;
            p.real_score += rs, total.real_score += rs;
            if (!std::isnan(rc)) p.real_cost += rc, total.real_cost += rc, ++cost_known;
          }
          if (!o->out.empty()) decisions.push_back(d);
        }
        const size_t candidates = static_cast<size_t>(std::count(allowed.begin(), allowed.end(), true));
        if (o->score_only) {
          fmt::print("{} queries, {} candidate experts, score only (costs ignored) (predict {:.2f} s)\n\n", nq,
                     candidates, predict_s);
        } else {
          fmt::print(
              "{} queries, {} candidate experts, budget ${:.6g}, lambda {:.6g} (predict {:.2f} s, assign {:.3f} "
              "s)\n\n",
              nq, candidates, o->budget, a.lambda, predict_s, assign_s);
        }
        std::vector<std::vector<std::string>> rows;
        for (size_t e = 0; e < ne; ++e) {
          const PerExpert& p = per[e];
          if (!allowed[e]) continue;
          const bool costs = !o->score_only;
          rows.push_back({names[e], std::to_string(p.routed), fmt::format("{:.1f}%", 100.0 * p.routed / nq),
                          p.routed ? FormatFraction(p.pred_score / p.routed) : "-",
                          costs ? FormatUsd(p.pred_cost) : "-",
                          p.realised ? FormatFraction(p.real_score / p.realised) : "-",
                          p.realised && costs ? FormatUsd(p.real_cost) : "-"});
        }
        PrintTable({"expert", "queries", "share", "pred score", "pred cost ($)", "real score", "real cost ($)"}, rows);
        if (o->score_only) {
          fmt::print("\npredicted: mean score {} over {} queries\n",
                     FormatFraction(a.predicted_score / std::max<size_t>(total.routed, 1)), total.routed);
        } else {
          fmt::print("\npredicted: mean score {} over {} queries, total cost ${:.6g} ({:.1f}% of the budget)\n",
                     FormatFraction(a.predicted_score / std::max<size_t>(total.routed, 1)), total.routed,
                     a.predicted_cost, o->budget > 0 ? 100.0 * a.predicted_cost / o->budget : 0.0);
        }
        if (capped) {
          fmt::print("per-query cap ${:.6g}: {} (query, expert) candidates over it were excluded\n",
                     o->max_cost_per_query, over_cap);
        }
        if (unassigned > 0) fmt::print("{} queries have no candidate expert and were not routed\n", unassigned);
        if (total.realised > 0) {
          fmt::print("realised:  mean score {} over the {} queries with a recorded outcome for the chosen expert",
                     FormatFraction(total.real_score / total.realised), total.realised);
          if (o->score_only) {
            fmt::print("\n");
          } else {
            fmt::print(", recorded cost ${:.6g} ({} with a known cost)\n", total.real_cost, cost_known);
          }
        } else {
          fmt::print("realised:  no recorded outcome for any chosen (query, expert) pair\n");
        }
        if (!o->out.empty()) {
          BATON_RETURN_IF_ERROR(WriteDecisions(o->out, decisions));
          fmt::print("decisions: {} ({} queries)\n", o->out, decisions.size());
        }
        return Status::Ok();
      }};
}

}  // namespace baton::cli
