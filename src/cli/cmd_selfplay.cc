// baton selfplay: the self-play loop (baton/selfplay.h) from a YAML configuration.
#include <fmt/format.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>

#include "baton/fit.h"
#include "baton/selfplay.h"
#include "cli/command.h"
#include "cli/util.h"
#include "selfplay/config.h"

namespace baton::cli {

Command AddSelfPlayCommand(CLI::App& root) {
  auto* app = root.add_subcommand(
      "selfplay",
      "Self-play: ask the experts questions, score their answers, store the outcomes (source selfplay) and refit the "
      "router; resumable");
  struct Opts {
    std::string config, db;
    size_t rounds = 1;
  };
  auto o = std::make_shared<Opts>();
  app->add_option("--config", o->config, "YAML file: an experts section as for baton serve, and a selfplay section")
      ->required()
      ->check(CLI::ExistingFile);
  app->add_option("--rounds", o->rounds, "rounds to run (each asks selfplay.questions_per_round questions)")
      ->required()
      ->check(PositiveInt());
  app->add_option("--db", o->db,
                  "the database to store questions and outcomes in (default: selfplay.db of the config)");
  return {app, [o]() -> Status {
            BATON_ASSIGN_OR_RETURN(selfplay::LoopConfig lc, selfplay::LoadSelfPlayConfig(o->config));
            const std::vector<ExpertConfig>& experts = lc.all_experts;
            if (!o->db.empty()) lc.db = o->db;
            if (lc.db.empty()) return Status::InvalidArgument("no database: give --db FILE or selfplay.db");

            std::vector<std::unique_ptr<ExpertBackend>> backends;
            auto find = [&](const std::string& name) -> ExpertBackend* {
              for (auto& b : backends)
                if (b->name() == name) return b.get();
              return nullptr;
            };
            for (const ExpertConfig& ec : experts) {
              BATON_ASSIGN_OR_RETURN(std::unique_ptr<ExpertBackend> b, MakeExpert(ec));
              backends.push_back(std::move(b));
            }
            std::vector<ExpertBackend*> evaluated;
            std::vector<ExpertConfig> configs;
            for (const ExpertConfig& ec : experts) {
              const bool named = std::find(lc.experts.begin(), lc.experts.end(), ec.name) != lc.experts.end();
              if (lc.experts.empty() ? (ec.name != lc.writer && ec.name != lc.judge) : named) {
                evaluated.push_back(find(ec.name));
                configs.push_back(ec);
              }
            }
            for (const std::string& n : lc.experts) {
              if (!find(n))
                return Status::InvalidArgument(fmt::format("{}: selfplay.experts: unknown expert '{}'", o->config, n));
            }
            if (evaluated.empty()) return Status::InvalidArgument(o->config + ": selfplay: no expert to evaluate");

            std::unique_ptr<QuestionSource> source;
            if (!lc.pool.empty()) {
              BATON_ASSIGN_OR_RETURN(
                  std::unique_ptr<PoolQuestionSource> pool,
                  PoolQuestionSource::Open(lc.pool, lc.loop.seed, lc.keep_unreferenced || lc.evaluate != "reference"));
              source = std::move(pool);
            } else {
              ExpertBackend* w = find(lc.writer);
              if (!w)
                return Status::InvalidArgument(
                    fmt::format("{}: selfplay.questions.writer: unknown expert '{}'", o->config, lc.writer));
              source = std::make_unique<GeneratedQuestionSource>(w, lc.domains, lc.loop.timeout, lc.writer_extra);
            }
            std::unique_ptr<Evaluator> evaluator;
            if (lc.evaluate == "reference") {
              evaluator = std::make_unique<ReferenceEvaluator>();
            } else if (lc.evaluate == "recorded") {
              evaluator = std::make_unique<RecordedEvaluator>();
            } else {
              ExpertBackend* j = find(lc.judge);
              if (!j)
                return Status::InvalidArgument(
                    fmt::format("{}: selfplay.evaluate.judge: unknown expert '{}'", o->config, lc.judge));
              evaluator = std::make_unique<JudgeEvaluator>(j, lc.loop.timeout, lc.judge_extra);
            }

            BATON_ASSIGN_OR_RETURN(std::unique_ptr<Store> store, Store::Open(lc.db));
            const bool tty = isatty(fileno(stderr)) != 0;
            lc.loop.rounds = o->rounds;
            lc.loop.progress = [tty](const std::string& m) {
              if (tty) fmt::print(stderr, "\r\033[K");
              fmt::print(stderr, "{}\n", m);
            };
            if (tty) {
              const size_t total = o->rounds;
              auto first = std::make_shared<size_t>(0);
              lc.loop.tick = [total, first](size_t round, size_t k, size_t n) {
                if (*first == 0) *first = round;
                const size_t done = round - *first;
                const double frac = (static_cast<double>(done) + static_cast<double>(k) / static_cast<double>(n)) /
                                    static_cast<double>(total);
                const int width = 30, fill = static_cast<int>(frac * width + 0.5);
                fmt::print(stderr, "\r\033[K[{}{}] round {}/{} question {}/{}", std::string(fill, '#'),
                           std::string(width - fill, '.'), done + 1, total, k, n);
                std::fflush(stderr);
              };
            }
            fmt::print(stderr, "self-play: {} expert(s), questions from {}, scored by {}, dataset '{}' in {}\n",
                       evaluated.size(), source->name(), evaluator->name(), lc.loop.dataset, lc.db);
            BATON_ASSIGN_OR_RETURN(SelfPlayReport r,
                                   RunSelfPlay(*store, evaluated, configs, *source, *evaluator, lc.loop));
            if (tty) fmt::print(stderr, "\r\033[K");
            size_t asked = 0, separated = 0;
            for (const RoundSummary& s : r.rounds) asked += s.questions, separated += s.separated;
            fmt::print(
                "{} round(s), {} question(s), {} separated the experts; outcomes {} -> {}; spent ${:.6g} this run "
                "(${:.6g} in total); {} refit(s){}\n",
                r.rounds.size(), asked, separated, r.outcomes_before, r.outcomes_after, r.spent_usd, r.spent_total_usd,
                r.refits,
                r.stopped_by_cap ? "; stopped at the spend cap"
                                 : (r.source_exhausted ? "; the question source ran dry" : ""));
            if (r.refits > 0) {
              fmt::print("model: {} (a running baton serve reloads it on SIGHUP)\n", lc.loop.model_path);
            }
            return Status::Ok();
          }};
}

}  // namespace baton::cli
