// RunSelfPlay: ask, score, store (one transaction per question), refit.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <unordered_map>
#include <unordered_set>

#include <fmt/format.h>

#include "baton/fit.h"
#include "baton/predictor.h"
#include "baton/selfplay.h"

namespace baton {
namespace {

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

struct Answer {
  size_t expert = 0;
  StatusOr<ChatResult> result = Status::Internal("not called");
  std::optional<double> score;
  double latency_ms = 0;
};

}  // namespace

StatusOr<SelfPlayReport> RunSelfPlay(Store& store, const std::vector<ExpertBackend*>& experts,
                                     const std::vector<ExpertConfig>& configs, QuestionSource& source,
                                     Evaluator& evaluator, const SelfPlayOptions& o) {
  auto log = [&](const std::string& m) {
    if (o.progress) o.progress(m);
  };
  const size_t ne = experts.size();
  if (ne == 0) return Status::InvalidArgument("self-play needs at least one expert");
  if (o.questions_per_round == 0) return Status::InvalidArgument("questions_per_round must be at least 1");
  SelfPlayReport rep;

  // The experts in the store (prices from their configuration).
  std::vector<int64_t> expert_id(ne);
  {
    BATON_ASSIGN_OR_RETURN(Store::Transaction tx, store.Begin());
    for (size_t e = 0; e < ne; ++e) {
      ExpertRecord rec{.name = experts[e]->name()};
      if (e < configs.size()) {
        rec.usd_per_mtok_in = configs[e].usd_per_mtok_in;
        rec.usd_per_mtok_out = configs[e].usd_per_mtok_out;
        if (rec.usd_per_mtok_in || rec.usd_per_mtok_out) rec.price_source = "selfplay configuration";
      }
      BATON_ASSIGN_OR_RETURN(expert_id[e], store.UpsertExpert(rec));
    }
    BATON_RETURN_IF_ERROR(tx.Commit());
  }

  // What is already stored: the dataset's questions, its self-play outcomes and their recorded cost.
  std::unordered_set<std::string> stored;
  std::unordered_set<int64_t> stored_ids;
  {
    BATON_ASSIGN_OR_RETURN(std::vector<QueryRecord> qs, store.ListQueries({o.dataset}));
    for (const QueryRecord& q : qs) stored.insert(q.external_id), stored_ids.insert(q.id);
  }
  size_t outcomes = 0;
  double recorded_cost = 0;
  BATON_RETURN_IF_ERROR(store.ForEachOutcome([&](const OutcomeRecord& r) {
    if (r.source == OutcomeSource::kSelfPlay && stored_ids.count(r.query_id)) {
      ++outcomes;
      recorded_cost += r.cost_usd.value_or(0);
    }
  }));
  rep.outcomes_before = outcomes;
  const size_t rounds_before = (stored.size() + o.questions_per_round - 1) / o.questions_per_round;
  size_t refit_mark = o.refit_every > 0 ? outcomes / o.refit_every : 0;

  // The current router, when there is one.
  std::optional<RouterModel> model;
  std::vector<int> model_index(ne, -1);  // per expert, its column in the model (-1: unknown to the model)
  auto load_model = [&]() {
    model.reset();
    std::fill(model_index.begin(), model_index.end(), -1);
    if (o.model_path.empty() || !std::filesystem::exists(o.model_path)) return;
    StatusOr<RouterModel> m = LoadModel(o.model_path);
    if (!m.ok()) {
      log("cannot use the router model, evaluating every expert: " + m.status().ToString());
      return;
    }
    const std::vector<std::string>& names = m->predictor->experts();
    for (size_t e = 0; e < ne; ++e) {
      auto it = std::find(names.begin(), names.end(), experts[e]->name());
      if (it != names.end()) model_index[e] = static_cast<int>(it - names.begin());
    }
    model = std::move(*m);
  };
  auto refit = [&]() -> Status {
    if (o.model_path.empty()) return Status::Ok();
    FitOptions fit;
    fit.predictor = o.predictor;
    fit.datasets = o.refit_datasets.empty() ? std::vector<std::string>{o.dataset} : o.refit_datasets;
    fit.sources = o.refit_sources;
    fit.seed = o.seed;
    fit.holdout = false;
    fit.info = [&](const std::string& m) { log("refit: " + m); };
    fit.warn = fit.info;
    BATON_ASSIGN_OR_RETURN(FitSummary s, FitModelFromStore(store, fit, o.model_path));
    (void)s;
    ++rep.refits;
    load_model();
    return Status::Ok();
  };
  load_model();
  if (o.refit_every > 0 && !model && outcomes >= o.refit_every) BATON_RETURN_IF_ERROR(refit());

  uint64_t rng = o.seed * 0x9E3779B97F4A7C15ULL + rounds_before + 1;
  double run_spent = 0;
  // The mean cost of a call, for the spend cap's look-ahead: from what is stored, then updated with every call.
  double mean_call_cost = outcomes > 0 ? recorded_cost / static_cast<double>(outcomes) : NAN;
  size_t paid_calls = outcomes;
  auto is_stored = [&](const std::string& id) { return stored.count(id) > 0; };
  for (size_t round = 0; round < o.rounds; ++round) {
    RoundSummary sum;
    sum.round = rounds_before + round + 1;
    if (o.spend_cap_usd && recorded_cost + run_spent >= *o.spend_cap_usd) {
      rep.stopped_by_cap = true;
      log(fmt::format("spend cap ${:.6g} reached (spent ${:.6g}): stopping", *o.spend_cap_usd,
                      recorded_cost + run_spent));
      break;
    }
    double gen_spent = 0;
    BATON_ASSIGN_OR_RETURN(
        std::vector<SelfPlayQuestion> cands,
        source.Next(o.questions_per_round * std::max<size_t>(1, o.candidates_per_question), is_stored, &gen_spent));
    sum.spent_usd += gen_spent;
    if (cands.empty()) {
      rep.source_exhausted = true;
      log("the question source has no new question: stopping");
      break;
    }
    // Orchestration: which questions, which experts.
    std::vector<std::vector<size_t>> plan;  // per chosen candidate (in `chosen` order), experts to ask
    std::vector<size_t> chosen;
    if (!model || ne <= o.exploration.small_pool) {
      for (size_t i = 0; i < cands.size() && chosen.size() < o.questions_per_round; ++i) {
        chosen.push_back(i);
        plan.emplace_back();
        for (size_t e = 0; e < ne; ++e) plan.back().push_back(e);
      }
    } else {
      const size_t nm = model->predictor->num_experts();
      std::vector<float> ps(cands.size() * ne, 0.5f), pc(cands.size() * ne, NAN), row(nm), crow(nm);
      for (size_t i = 0; i < cands.size(); ++i) {
        const QueryView v{.text = cands[i].text, .domain = cands[i].domain};
        model->predictor->Predict(v, row);
        model->cost.Predict(v, crow);
        for (size_t e = 0; e < ne; ++e) {
          if (model_index[e] >= 0) ps[i * ne + e] = row[model_index[e]], pc[i * ne + e] = crow[model_index[e]];
        }
      }
      std::vector<bool> payable(cands.size() * ne, true);
      const std::vector<Evaluation> ev = ChooseEvaluations(ps, pc, payable, ne, cands.size() * ne, o.exploration, rng);
      std::unordered_map<size_t, size_t> slot;
      for (const Evaluation& x : ev) {
        auto it = slot.find(x.query);
        if (it == slot.end()) {
          if (chosen.size() >= o.questions_per_round) continue;
          it = slot.emplace(x.query, chosen.size()).first;
          chosen.push_back(x.query);
          plan.emplace_back();
        }
        plan[it->second].push_back(x.expert);
      }
      // An expert the model does not know yet is always asked: that is how it gets known.
      for (auto& p : plan) {
        for (size_t e = 0; e < ne; ++e)
          if (model_index[e] < 0 && std::find(p.begin(), p.end(), e) == p.end()) p.push_back(e);
      }
    }
    for (size_t k = 0; k < chosen.size(); ++k) {
      const SelfPlayQuestion& q = cands[chosen[k]];
      // The spend cap: stop before a question whose expected cost (calls x mean cost per call so far) would pass it.
      if (o.spend_cap_usd) {
        const double now = recorded_cost + run_spent + sum.spent_usd;
        const double planned = std::isnan(mean_call_cost) ? 0 : mean_call_cost * static_cast<double>(plan[k].size());
        if (now + planned > *o.spend_cap_usd) {
          rep.stopped_by_cap = true;
          log(fmt::format("spend cap ${:.6g} reached (spent ${:.6g}, next question ~${:.6g}): stopping",
                          *o.spend_cap_usd, now, planned));
          break;
        }
      }
      std::vector<Answer> answers;
      for (size_t e : plan[k]) {
        // Within a question too: with the cap in sight, the question is stored with the answers it has.
        if (o.spend_cap_usd && !answers.empty() &&
            recorded_cost + run_spent + sum.spent_usd + (std::isnan(mean_call_cost) ? 0 : mean_call_cost) >
                *o.spend_cap_usd) {
          rep.stopped_by_cap = true;
          break;
        }
        Answer a;
        a.expert = e;
        ChatRequest req;
        req.messages = {{.role = "user", .content = q.text}};
        req.timeout = o.timeout;
        req.max_tokens = o.max_tokens;
        const auto t0 = std::chrono::steady_clock::now();
        a.result = experts[e]->Complete(req);
        a.latency_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
        if (a.result.ok()) {
          double judge_spent = 0;
          a.score = evaluator.Score(q, *a.result, &judge_spent);
          sum.spent_usd += a.result->cost_usd + judge_spent;
          ++paid_calls;
          const double c = a.result->cost_usd;
          mean_call_cost = std::isnan(mean_call_cost) ? c : mean_call_cost + (c - mean_call_cost) / paid_calls;
        }
        answers.push_back(std::move(a));
      }
      // One transaction: the question, its outcomes, its failed calls.
      BATON_ASSIGN_OR_RETURN(Store::Transaction tx, store.Begin());
      BATON_ASSIGN_OR_RETURN(int64_t qid, store.InsertQuery({.external_id = q.external_id,
                                                             .dataset = o.dataset,
                                                             .domain = q.domain,
                                                             .text = q.text,
                                                             .reference = q.reference,
                                                             .source = q.source}));
      size_t stored_here = 0;
      double lo = 2, hi = -1;
      for (const Answer& a : answers) {
        if (!a.result.ok() || !a.score) {
          const bool failed = !a.result.ok();
          failed ? ++sum.failed_calls : ++sum.unscored;
          BATON_RETURN_IF_ERROR(
              store.LogRequest({.time_unix_ms = NowMs(),
                                .client_key_hash = "selfplay",
                                .requested_model = experts[a.expert]->name(),
                                .expert = experts[a.expert]->name(),
                                .http_status = failed ? 502 : 200,
                                .latency_ms = a.latency_ms,
                                .request_id = "selfplay:" + o.dataset + ":" + q.external_id,
                                .note = failed ? "selfplay failed call: " + a.result.status().ToString()
                                               : "selfplay: answer could not be scored by " + evaluator.name()}));
          if (failed)
            log(fmt::format("{} failed on {}: {}", experts[a.expert]->name(), q.external_id,
                            a.result.status().ToString()));
          continue;
        }
        const ChatResult& r = *a.result;
        BATON_RETURN_IF_ERROR(store.InsertOutcome({.query_id = qid,
                                                   .expert_id = expert_id[a.expert],
                                                   .score = std::clamp(*a.score, 0.0, 1.0),
                                                   .cost_usd = r.cost_usd,
                                                   .tokens_in = r.usage.prompt_tokens,
                                                   .tokens_out = r.usage.completion_tokens,
                                                   .latency_ms = a.latency_ms,
                                                   .source = OutcomeSource::kSelfPlay}));
        if (!r.content.empty()) BATON_RETURN_IF_ERROR(store.PutResponse(qid, expert_id[a.expert], r.content));
        ++stored_here;
        lo = std::min(lo, *a.score), hi = std::max(hi, *a.score);
      }
      BATON_RETURN_IF_ERROR(tx.Commit());
      stored.insert(q.external_id);
      ++sum.questions;
      sum.outcomes += stored_here;
      if (stored_here >= 2 && hi > lo) ++sum.separated;
      outcomes += stored_here;
      if (o.tick) o.tick(sum.round, k + 1, chosen.size());
      if (rep.stopped_by_cap) break;
      if (o.refit_every > 0 && outcomes / o.refit_every > refit_mark) {
        refit_mark = outcomes / o.refit_every;
        BATON_RETURN_IF_ERROR(refit());
        ++sum.refits;
      }
    }
    run_spent += sum.spent_usd;
    // Overheads (generation, judging) are not in the outcomes' recorded cost; keep them in the cap's total.
    log(
        fmt::format("round {}: {} question(s) asked, {} separated the experts ({:.0f}%), {} outcome(s), {} failed "
                    "call(s), {} unscored, spent ${:.6g}, {} refit(s)",
                    sum.round, sum.questions, sum.separated,
                    sum.questions ? 100.0 * static_cast<double>(sum.separated) / static_cast<double>(sum.questions) : 0,
                    sum.outcomes, sum.failed_calls, sum.unscored, sum.spent_usd, sum.refits));
    rep.rounds.push_back(sum);
    if (rep.stopped_by_cap) {
      log(fmt::format("spend cap ${:.6g} reached (spent ${:.6g}): stopped", *o.spend_cap_usd,
                      recorded_cost + run_spent));
      break;
    }
  }
  rep.outcomes_after = outcomes;
  rep.spent_usd = run_spent;
  rep.spent_total_usd = recorded_cost + run_spent;
  return rep;
}

}  // namespace baton
