// Onboarding a new expert: informative draws, importance-weighted gains, bootstrap intervals. See baton/onboard.h.
#include "baton/onboard.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <numeric>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "baton/answer.h"

namespace baton {
namespace {

// SplitMix64: small, seedable, the same on every platform.
struct Rng {
  uint64_t s;
  // The seed is mixed first: seeds s and s + 1 must not give the same stream shifted by one step.
  explicit Rng(uint64_t seed) : s(Mix(seed ^ 0x6A09E667F3BCC909ULL)) {}
  static uint64_t Mix(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
  uint64_t Next() { return Mix(s += 0x9E3779B97F4A7C15ULL); }
  double Uniform() { return static_cast<double>(Next() >> 11) * (1.0 / 9007199254740992.0); }  // [0, 1)
};

constexpr double kFloorWeight = 0.05;

// The (1 - c) and c quantiles of `v` (sorted in place) around `estimate`.
OnboardInterval Interval(double estimate, std::vector<double>& v, double confidence) {
  std::sort(v.begin(), v.end());
  auto at = [&](double p) {
    const double pos = p * static_cast<double>(v.size() - 1);
    const size_t i = static_cast<size_t>(std::floor(pos));
    const size_t j = std::min(v.size() - 1, i + 1);
    return v[i] + (v[j] - v[i]) * (pos - static_cast<double>(i));
  };
  return {estimate, at(1 - confidence), at(confidence)};
}

}  // namespace

OnboardEvaluate EvaluateWithBackend(ExpertBackend& backend) {
  return [&backend](const QueryRecord& q) -> StatusOr<OnboardEvaluation> {
    ChatRequest req;
    req.messages.push_back({.role = "user", .content = q.text});
    const auto t0 = std::chrono::steady_clock::now();
    BATON_ASSIGN_OR_RETURN(ChatResult r, backend.Complete(req));
    OnboardEvaluation e;
    e.latency_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    e.cost_usd = std::isfinite(r.cost_usd) && r.cost_usd > 0 ? r.cost_usd : 0;
    e.tokens_in = r.usage.prompt_tokens;
    e.tokens_out = r.usage.completion_tokens;
    if (r.recorded_score) {
      e.score = std::clamp(*r.recorded_score, 0.0, 1.0);
    } else {
      e.score = ScoreAgainstReference(r.content, q.reference);
    }
    return e;
  };
}

StatusOr<OnboardReport> Onboard(const Dataset& pool, const std::string& expert, const OnboardEvaluate& evaluate,
                                const OnboardOptions& o, const std::vector<float>& member_predictions) {
  const size_t nq = pool.num_queries(), ne = pool.num_experts();
  if (nq == 0) return Status::InvalidArgument("onboard: the query pool is empty");
  if (ne == 0) return Status::InvalidArgument("onboard: the universe has no member");
  if (o.queries == 0) return Status::InvalidArgument("onboard: --queries must be at least 1");
  if (o.k && *o.k < ne) {
    return Status::InvalidArgument(fmt::format("onboard: k = {} is smaller than the universe's {} members", *o.k, ne));
  }
  if (!member_predictions.empty() && member_predictions.size() != nq * ne) {
    return Status::InvalidArgument("onboard: member predictions must be queries x members");
  }
  for (size_t e = 0; e < ne; ++e) {
    if (pool.expert(e).name == expert) {
      return Status::InvalidArgument(fmt::format("onboard: '{}' is already a member of the universe", expert));
    }
  }
  OnboardReport rep;
  rep.expert = expert;
  rep.options = o;
  rep.pool_queries = nq;
  for (size_t e = 0; e < ne; ++e) rep.members.push_back(pool.expert(e).name);

  // Member scores (recorded, else predicted, else 0) and costs (recorded, else the member's mean, else 0).
  std::vector<double> s(nq * ne), c(nq * ne);
  std::vector<double> mean_cost(ne);
  for (size_t e = 0; e < ne; ++e) {
    const double m = pool.MeanCost(e);
    mean_cost[e] = std::isfinite(m) ? m : 0;
  }
  for (size_t q = 0; q < nq; ++q) {
    for (size_t e = 0; e < ne; ++e) {
      double v = pool.score(q, e);
      if (std::isnan(v)) v = member_predictions.empty() ? 0 : member_predictions[q * ne + e];
      s[q * ne + e] = std::isfinite(v) ? std::clamp(v, 0.0, 1.0) : 0;
      const double k = pool.cost(q, e);
      c[q * ne + e] = std::isfinite(k) && k >= 0 ? k : mean_cost[e];
    }
  }
  // Per query: the universe's best (and its cost), and the best without each member.
  // (A best-expert router's pick; ties go to the cheaper, the router's rule.)
  std::vector<double> best(nq, 0), best_cost(nq, 0), without(nq * ne, 0), without_cost(nq * ne, 0);
  for (size_t q = 0; q < nq; ++q) {
    double b1 = -1, b2 = -1;  // best and second best
    size_t arg = 0, arg2 = 0;
    for (size_t e = 0; e < ne; ++e) {
      const double v = s[q * ne + e], ce = c[q * ne + e];
      if (v > b1 || (v == b1 && ce < c[q * ne + arg])) {
        b2 = b1, arg2 = arg, b1 = v, arg = e;
      } else if (v > b2 || (v == b2 && ce < c[q * ne + arg2])) {
        b2 = v, arg2 = e;
      }
    }
    best[q] = b1;
    best_cost[q] = c[q * ne + arg];
    for (size_t e = 0; e < ne; ++e) {
      without[q * ne + e] = e == arg ? std::max(0.0, b2) : b1;
      without_cost[q * ne + e] = e != arg ? best_cost[q] : b2 >= 0 ? c[q * ne + arg2] : 0.0;
    }
  }
  rep.s_universe = std::accumulate(best.begin(), best.end(), 0.0) / static_cast<double>(nq);
  std::vector<double> loss_without(ne, 0), cost_without(ne, 0);  // exact: S(U - X) - S(U) and its cost change
  for (size_t e = 0; e < ne; ++e) {
    double t = 0, u = 0;
    for (size_t q = 0; q < nq; ++q) {
      t += without[q * ne + e] - best[q];
      u += without_cost[q * ne + e] - best_cost[q];
    }
    loss_without[e] = t / static_cast<double>(nq);
    cost_without[e] = u / static_cast<double>(nq);
  }
  rep.cost_members = std::accumulate(mean_cost.begin(), mean_cost.end(), 0.0) / static_cast<double>(ne);

  // The informative weights and the draws.
  std::vector<double> w(nq), cdf(nq);
  double total = 0;
  for (size_t q = 0; q < nq; ++q) {
    double unique = 0;
    for (size_t e = 0; e < ne; ++e) unique = std::max(unique, best[q] - without[q * ne + e]);
    w[q] = kFloorWeight + (1 - best[q]) + unique;
    total += w[q];
    cdf[q] = total;
  }
  Rng rng(o.seed);
  std::vector<size_t> draw(o.queries);
  std::map<size_t, size_t> distinct;  // pool row -> index into rep.calls
  for (size_t d = 0; d < o.queries; ++d) {
    const double u = rng.Uniform() * total;
    draw[d] = std::min<size_t>(nq - 1, std::upper_bound(cdf.begin(), cdf.end(), u) - cdf.begin());
    auto [it, fresh] = distinct.emplace(draw[d], rep.calls.size());
    if (fresh) rep.calls.push_back({.query = draw[d], .probability = w[draw[d]] / total});
    ++rep.calls[it->second].draws;
  }
  rep.draws = o.queries;
  rep.called = rep.calls.size();
  // One call per distinct query, in pool order of first draw.
  for (OnboardCall& call : rep.calls) {
    StatusOr<OnboardEvaluation> r = evaluate(pool.query(call.query));
    if (!r.ok()) {
      call.error = r.status().ToString();
      ++rep.failed;
      continue;
    }
    rep.spent_usd += r->cost_usd;
    if (!r->score) {
      call.error = "the answer could not be scored (no reference, or no answer could be extracted)";
      ++rep.failed;
      continue;
    }
    call.result = *r;
    ++rep.answered;
  }
  if (rep.answered == 0) {
    return Status::FailedPrecondition(
        fmt::format("onboard: none of the {} calls to '{}' gave a scorable answer (first error: {})", rep.called,
                    expert, rep.calls.empty() ? "" : rep.calls.front().error));
  }

  // Per usable draw: the importance-weighted terms f(q) / (N p(q)).
  struct Term {
    double gain, extra_cost, cost_new;
    std::vector<double> swap_gain;   // per member: max(0, s_new - best_{U-X})
    std::vector<double> swap_extra;  // per member: the cost change where the newcomer beats U - X
  };
  std::vector<Term> terms;
  for (size_t d = 0; d < o.queries; ++d) {
    const OnboardCall& call = rep.calls[distinct[draw[d]]];
    if (!call.result) continue;
    const size_t q = call.query;
    const double iw = 1.0 / (static_cast<double>(nq) * call.probability);
    const double sn = *call.result->score, cn = call.result->cost_usd;
    Term t;
    t.gain = std::max(0.0, sn - best[q]) * iw;
    t.extra_cost = (sn > best[q] ? cn - best_cost[q] : 0.0) * iw;
    t.cost_new = cn * iw;
    t.swap_gain.resize(ne);
    t.swap_extra.resize(ne);
    for (size_t e = 0; e < ne; ++e) {
      t.swap_gain[e] = std::max(0.0, sn - without[q * ne + e]) * iw;
      t.swap_extra[e] = (sn > without[q * ne + e] ? cn - without_cost[q * ne + e] : 0.0) * iw;
    }
    terms.push_back(std::move(t));
  }
  const size_t m = terms.size();
  // Estimates from a multiset of terms (given as indices).
  struct Est {
    double gain = 0, extra = 0, cost = 0;
    std::vector<double> swap, swap_extra;
  };
  auto estimate = [&](const std::vector<size_t>& idx) {
    Est e;
    e.swap.assign(ne, 0);
    e.swap_extra.assign(ne, 0);
    for (size_t i : idx) {
      e.gain += terms[i].gain, e.extra += terms[i].extra_cost, e.cost += terms[i].cost_new;
      for (size_t x = 0; x < ne; ++x) e.swap[x] += terms[i].swap_gain[x], e.swap_extra[x] += terms[i].swap_extra[x];
    }
    const double n = static_cast<double>(idx.size());
    e.gain /= n, e.extra /= n, e.cost /= n;
    for (size_t x = 0; x < ne; ++x) e.swap[x] /= n, e.swap_extra[x] /= n;
    return e;
  };
  std::vector<size_t> all(m);
  std::iota(all.begin(), all.end(), 0);
  const Est point = estimate(all);
  const size_t B = std::max<size_t>(o.bootstrap, 10);
  std::vector<double> bg(B), bx(B), bn(B);
  std::vector<std::vector<double>> bs(ne, std::vector<double>(B)), bsn(ne, std::vector<double>(B));
  std::vector<size_t> idx(m);
  for (size_t b = 0; b < B; ++b) {
    for (size_t i = 0; i < m; ++i) idx[i] = rng.Next() % m;
    const Est e = estimate(idx);
    bg[b] = e.gain, bx[b] = e.extra, bn[b] = e.gain - o.lambda * e.extra;
    for (size_t x = 0; x < ne; ++x) {
      bs[x][b] = loss_without[x] + e.swap[x];
      bsn[x][b] = bs[x][b] - o.lambda * (cost_without[x] + e.swap_extra[x]);
    }
  }
  rep.gain = Interval(point.gain, bg, o.confidence);
  rep.extra_cost = Interval(point.extra, bx, o.confidence);
  rep.net_gain = Interval(point.gain - o.lambda * point.extra, bn, o.confidence);
  rep.cost_new = point.cost;
  for (size_t x = 0; x < ne; ++x) {
    OnboardSwap sw{.member = rep.members[x], .loss_without = loss_without[x], .cost_per_query = mean_cost[x]};
    const double delta = loss_without[x] + point.swap[x];
    sw.extra_cost = cost_without[x] + point.swap_extra[x];
    sw.delta = Interval(delta, bs[x], o.confidence);
    sw.net = Interval(delta - o.lambda * sw.extra_cost, bsn[x], o.confidence);
    rep.swaps.push_back(std::move(sw));
  }
  // Best swap first: by the cost-adjusted estimate.
  std::stable_sort(rep.swaps.begin(), rep.swaps.end(),
                   [](const OnboardSwap& a, const OnboardSwap& b) { return a.net.estimate > b.net.estimate; });

  const bool room = !o.k || *o.k > ne;
  const OnboardSwap& top = rep.swaps.front();
  const double top_lower = top.net.lower;
  const std::string conf = fmt::format("{:.0f}%", o.confidence * 100);
  if (room && rep.gain.lower > 0 && rep.net_gain.lower > 0) {
    rep.decision = "join";
    rep.reason = fmt::format(
        "it raises S(U) by {:+.4f} ({} lower bound {:+.4f}){}", rep.gain.estimate, conf, rep.gain.lower,
        o.lambda > 0 ? fmt::format(", still {:+.4f} after its extra cost at lambda {:g}", rep.net_gain.lower, o.lambda)
                     : std::string());
  } else if (top_lower > 0) {
    rep.decision = "replace";
    rep.replaces = top.member;
    rep.reason = fmt::format("{}swapping '{}' for it raises S(U) by {:+.4f} ({} lower bound {:+.4f}{})",
                             room ? "joining is not justified, but " : fmt::format("at fixed k = {}, ", *o.k),
                             top.member, top.delta.estimate, conf, top_lower,
                             o.lambda > 0 ? fmt::format(", after its cost at lambda {:g}", o.lambda) : "");
  } else {
    rep.decision = "reject";
    if (rep.gain.lower <= 0) {
      rep.reason = fmt::format(
          "its gain to S(U) is not distinguishable from 0 ({:+.4f}, {} lower bound {:+.4f}) and no swap helps",
          rep.gain.estimate, conf, rep.gain.lower);
    } else if (!room) {
      rep.reason =
          fmt::format("at fixed k = {} no member is worth swapping for it (best: '{}', {:+.4f}, lower {:+.4f})", *o.k,
                      top.member, top.delta.estimate, top_lower);
    } else {
      rep.reason = fmt::format("its gain ({:+.4f}) is not worth its extra cost ({:+.6f} USD/query at lambda {:g})",
                               rep.gain.estimate, rep.extra_cost.estimate, o.lambda);
    }
  }
  return rep;
}

std::string OnboardReportJson(const OnboardReport& r, const Dataset& pool) {
  using json = nlohmann::json;
  auto iv = [](const OnboardInterval& i) {
    return json{{"estimate", i.estimate}, {"lower", i.lower}, {"upper", i.upper}};
  };
  json swaps = json::array();
  for (const auto& s : r.swaps) {
    swaps.push_back({{"member", s.member},
                     {"loss_without", s.loss_without},
                     {"delta_s", iv(s.delta)},
                     {"extra_cost_usd_per_query", s.extra_cost},
                     {"net", iv(s.net)},
                     {"member_cost_per_query", s.cost_per_query}});
  }
  json calls = json::array();
  for (const auto& c : r.calls) {
    json j = {{"query", pool.query(c.query).external_id}, {"draws", c.draws}, {"probability", c.probability}};
    if (c.result) {
      j["score"] = *c.result->score;
      j["cost_usd"] = c.result->cost_usd;
    } else {
      j["error"] = c.error;
    }
    calls.push_back(std::move(j));
  }
  json j = {{"expert", r.expert},
            {"members", r.members},
            {"decision", r.decision},
            {"replaces", r.replaces.empty() ? json(nullptr) : json(r.replaces)},
            {"reason", r.reason},
            {"pool_queries", r.pool_queries},
            {"draws", r.draws},
            {"called", r.called},
            {"answered", r.answered},
            {"failed", r.failed},
            {"s_universe", r.s_universe},
            {"gain", iv(r.gain)},
            {"extra_cost_usd_per_query", iv(r.extra_cost)},
            {"net_gain", iv(r.net_gain)},
            {"cost_per_query_new", r.cost_new},
            {"cost_per_query_members", r.cost_members},
            {"spent_usd", r.spent_usd},
            {"swaps", swaps},
            {"options",
             {{"queries", r.options.queries},
              {"k", r.options.k ? json(*r.options.k) : json(nullptr)},
              {"lambda", r.options.lambda},
              {"bootstrap", r.options.bootstrap},
              {"confidence", r.options.confidence},
              {"seed", r.options.seed}}},
            {"calls", calls}};
  return j.dump(2, ' ', false, json::error_handler_t::replace);
}

}  // namespace baton
