// baton predict: each expert's predicted score and cost for new prompts, from a model file (no server, no database).
#include <cmath>
#include <fstream>
#include <memory>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "baton/predictor.h"
#include "cli/command.h"
#include "cli/util.h"

namespace baton::cli {
namespace {

struct NewQuery {
  std::string id, text, domain;
};

// Reads JSON Lines with "text" (required), "id" and "domain" (optional; the line number stands in for a missing id).
StatusOr<std::vector<NewQuery>> ReadQueries(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::NotFound(fmt::format("{}: cannot open", path));
  std::vector<NewQuery> out;
  std::string line;
  for (size_t n = 1; std::getline(in, line); ++n) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object() || !j.contains("text") || !j["text"].is_string()) {
      return Status::InvalidArgument(fmt::format("{}:{}: expected a JSON object with a \"text\" string", path, n));
    }
    NewQuery q{.id = std::to_string(n), .text = j["text"].get<std::string>()};
    if (j.contains("id")) q.id = j["id"].is_string() ? j["id"].get<std::string>() : j["id"].dump();
    if (j.contains("domain") && j["domain"].is_string()) q.domain = j["domain"].get<std::string>();
    out.push_back(std::move(q));
  }
  if (out.empty()) return Status::InvalidArgument(fmt::format("{}: no query", path));
  return out;
}

}  // namespace

Command AddPredictCommand(CLI::App& root) {
  auto* app = root.add_subcommand(
      "predict", "Print each expert's predicted score and cost for new prompts, from a model file (no server)");
  struct Opts {
    std::string model, prompt, domain, queries, out;
  };
  auto o = std::make_shared<Opts>();
  app->add_option("--model", o->model, "model file written by `baton fit`")->required()->check(CLI::ExistingFile);
  app->add_option("--prompt", o->prompt, "one prompt");
  app->add_option("--domain", o->domain, "the prompt's domain, when known (with --prompt)");
  app->add_option("--queries", o->queries, "JSON Lines file of {\"id\", \"text\", \"domain\"} objects")
      ->check(CLI::ExistingFile);
  app->add_option("--out", o->out, "write query_id,expert,predicted_score,predicted_cost_usd rows to this CSV file");
  return {app, [o, app]() -> Status {
            if ((app->count("--prompt") > 0) == !o->queries.empty()) {
              return Status::InvalidArgument("give either --prompt TEXT or --queries FILE.jsonl");
            }
            std::vector<NewQuery> queries;
            if (o->queries.empty()) {
              queries.push_back({.id = "prompt", .text = o->prompt, .domain = o->domain});
            } else {
              BATON_ASSIGN_OR_RETURN(queries, ReadQueries(o->queries));
            }
            BATON_ASSIGN_OR_RETURN(RouterModel model, LoadModel(o->model));
            const std::vector<std::string>& names = model.predictor->experts();
            const std::vector<std::string> cold = model.ColdExperts();
            std::vector<float> score(names.size()), cost(names.size());
            std::string csv = "query_id,expert,predicted_score,predicted_cost_usd\n";
            for (const NewQuery& q : queries) {
              const QueryView v{.text = q.text, .domain = q.domain};
              model.predictor->Predict(v, score);
              model.cost.Predict(v, cost);
              std::vector<std::vector<std::string>> rows;
              for (size_t e = 0; e < names.size(); ++e) {
                const bool is_cold = std::find(cold.begin(), cold.end(), names[e]) != cold.end();
                rows.push_back(
                    {names[e] + (is_cold ? " (cold start: prior)" : ""), FormatFraction(score[e]), FormatUsd(cost[e])});
                csv += fmt::format("{},{},{:.9g},{}\n", q.id, names[e], score[e],
                                   std::isnan(cost[e]) ? std::string() : fmt::format("{:.9g}", cost[e]));
              }
              if (o->out.empty()) {
                fmt::print("{}\n", q.id);
                PrintTable({"expert", "pred score", "pred cost ($)"}, rows);
              }
            }
            if (!o->out.empty()) {
              BATON_RETURN_IF_ERROR(WriteFileAtomically(o->out, csv));
              fmt::print("wrote {} ({} queries x {} experts)\n", o->out, queries.size(), names.size());
            }
            return Status::Ok();
          }};
}

}  // namespace baton::cli
