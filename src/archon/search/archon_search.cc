// The Archon search space, architectures of its points, and the recorded-answer replay objective.
#include "baton/archon_search.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <set>
#include <unordered_map>

#include <fmt/format.h>

#include "baton/answer.h"
#include "baton/dataset.h"
#include "baton/responses.h"

namespace baton::archon_search {

using search::Dimension;
using search::DimKind;

namespace {

const std::set<std::string>& KnownNames() {
  static const std::set<std::string> k = {"generators", "samples",  "fusion_layers", "fusers",      "critic",
                                          "ranker",     "verifier", "unit_tests",    "aggregation", "ranking"};
  return k;
}

}  // namespace

StatusOr<ArchonSpace> ParseArchonSpace(const std::string& json_text) {
  ArchonSpace out;
  BATON_ASSIGN_OR_RETURN(out.space, search::ParseSpace(json_text));
  const nlohmann::json j = nlohmann::json::parse(json_text);  // valid: ParseSpace parsed it
  out.name = j.value("name", std::string("archon-search"));
  if (j.contains("experts")) {
    if (!j["experts"].is_array())
      return Status::InvalidArgument("the space file's \"experts\" must be an array of names");
    for (const auto& e : j["experts"]) {
      if (!e.is_string()) return Status::InvalidArgument("the space file's \"experts\" must be an array of names");
      out.experts.push_back(e.get<std::string>());
    }
  }
  for (const Dimension& d : out.space.dims()) {
    if (!KnownNames().count(d.name)) {
      return Status::InvalidArgument(fmt::format(
          "unknown dimension '{}' (generators, samples, fusion_layers, fusers, critic, ranker, verifier, unit_tests, "
          "aggregation, ranking)",
          d.name));
    }
    const bool is_bool = d.name == "critic" || d.name == "ranker" || d.name == "verifier" || d.name == "unit_tests";
    const bool is_cat = d.name == "aggregation" || d.name == "ranking";
    if (is_bool && d.kind != DimKind::kBool) {
      return Status::InvalidArgument(fmt::format("dimension '{}' must be of type bool", d.name));
    }
    if (is_cat) {
      if (d.kind != DimKind::kCategorical) {
        return Status::InvalidArgument(fmt::format("dimension '{}' must be categorical", d.name));
      }
      const std::set<std::string> ok = d.name == "aggregation" ? std::set<std::string>{"vote", "rank", "vote_then_rank"}
                                                               : std::set<std::string>{"task", "domain"};
      for (const std::string& v : d.values) {
        if (!ok.count(v)) return Status::InvalidArgument(fmt::format("dimension '{}': unknown value '{}'", d.name, v));
      }
    }
    if (!is_bool && !is_cat) {
      if (d.kind != DimKind::kInt)
        return Status::InvalidArgument(fmt::format("dimension '{}' must be of type int", d.name));
      const double lo = d.name == "fusion_layers" ? 0 : 1;
      if (d.min < lo) return Status::InvalidArgument(fmt::format("dimension '{}' must be at least {}", d.name, lo));
    }
  }
  return out;
}

Config ConfigOf(const search::Space& space, const search::Point& p) {
  Config c;
  for (size_t i = 0; i < space.size(); ++i) {
    const Dimension& d = space.dims()[i];
    const int v = static_cast<int>(std::llround(p[i]));
    if (d.name == "generators") c.generators = v;
    if (d.name == "samples") c.samples = v;
    if (d.name == "fusion_layers") c.fusion_layers = v;
    if (d.name == "fusers") c.fusers = v;
    if (d.name == "critic") c.critic = v != 0;
    if (d.name == "ranker") c.ranker = v != 0;
    if (d.name == "verifier") c.verifier = v != 0;
    if (d.name == "unit_tests") c.unit_tests = v != 0;
    if (d.name == "aggregation") c.aggregation = d.Format(p[i]);
    if (d.name == "ranking") c.ranking = d.Format(p[i]);
  }
  return c;
}

int CallCount(const Config& c) {
  int calls = c.unit_tests ? 1 : 0;
  int cands = c.generators * c.samples;
  calls += cands;
  if (!c.aggregation.empty()) cands = 1;
  for (int l = 0; l < c.fusion_layers; ++l) {
    if (c.critic) calls += 1;
    if (c.ranker) {
      calls += 1;
      cands = std::min(cands, 5);
    }
    calls += c.fusers;
    cands = c.fusers;
  }
  if (c.verifier) calls += 2 * cands;
  if (c.unit_tests) calls += cands;
  return calls;
}

nlohmann::json ToArchitecture(const Config& c, const std::vector<std::string>& ranking, const std::string& name) {
  using nlohmann::json;
  auto model = [&](size_t i) { return ranking.empty() ? std::string("?") : ranking[i % ranking.size()]; };
  const size_t k = static_cast<size_t>(std::max(1, c.generators));
  json layers = json::array();
  if (c.unit_tests) layers.push_back(json::array({{{"type", "unit_test_generator"}, {"model", model(0)}}}));
  json gens = json::array();
  for (size_t i = 0; i < k; ++i) {
    gens.push_back({{"type", "generator"},
                    {"model", model(i)},
                    {"samples", c.samples},
                    {"temperature", c.samples > 1 ? 0.7 : 0.0}});
  }
  layers.push_back(gens);
  if (c.aggregation == "vote") layers.push_back(json::array({{{"type", "vote"}}}));
  if (c.aggregation == "rank") layers.push_back(json::array({{{"type", "predicted_score_ranker"}, {"top_k", 1}}}));
  if (c.aggregation == "vote_then_rank") {
    layers.push_back(json::array({{{"type", "vote"}, {"tie_break", "predicted_score"}}}));
  }
  for (int l = 0; l < c.fusion_layers; ++l) {
    if (c.critic) layers.push_back(json::array({{{"type", "critic"}, {"model", model(0)}}}));
    if (c.ranker) layers.push_back(json::array({{{"type", "ranker"}, {"model", model(0)}, {"top_k", 5}}}));
    json fusers = json::array();
    for (int j = 0; j < c.fusers; ++j) {
      fusers.push_back({{"type", "fuser"}, {"model", model(static_cast<size_t>(j) % k)}, {"samples", 1}});
    }
    layers.push_back(fusers);
  }
  if (c.verifier) layers.push_back(json::array({{{"type", "verifier"}, {"model", model(0)}}}));
  if (c.unit_tests) layers.push_back(json::array({{{"type", "unit_test_evaluator"}, {"model", model(0)}}}));
  return {{"name", name}, {"layers", layers}};
}

// --- Replay data ---

StatusOr<std::unique_ptr<ReplayData>> ReplayData::Load(const std::string& dir) {
  BATON_ASSIGN_OR_RETURN(Dataset ds, LoadDatasetDir(dir));
  auto out = std::make_unique<ReplayData>();
  for (const auto& e : ds.experts()) out->experts_.push_back(e.name);
  const size_t ne = ds.num_experts();
  std::unordered_map<std::string, size_t> expert_index, query_index;
  for (size_t e = 0; e < ne; ++e) expert_index[out->experts_[e]] = e;
  std::vector<Query> all(ds.num_queries());
  for (size_t q = 0; q < ds.num_queries(); ++q) {
    const QueryRecord& r = ds.query(q);
    query_index[r.external_id] = q;
    Query& Q = all[q];
    Q.id = r.external_id;
    Q.domain = out->DomainIndex(r.domain);
    Q.letter.assign(ne, 0);
    Q.observed.assign(ne, 0);
    Q.cost.assign(ne, 0.f);
    for (size_t e = 0; e < ne; ++e) {
      Q.observed[e] = ds.observed(q, e) ? 1 : 0;
      const float c = ds.cost(q, e);
      Q.cost[e] = std::isnan(c) ? 0.f : c;
    }
  }
  const std::string path = dir + "/responses.jsonl";
  Status read = ForEachRecordedResponse(
      path, [&](const std::string& query_id, const std::string& model, const std::string& response) {
        auto qi = query_index.find(query_id);
        auto ei = expert_index.find(model);
        if (qi == query_index.end() || ei == expert_index.end()) return;  // not in outcomes: nothing to score
        const std::optional<char> letter = ExtractChoice(response, 'Z');
        if (letter) all[qi->second].letter[ei->second] = static_cast<uint8_t>(*letter);
      });
  if (read.code() == StatusCode::kNotFound) {
    return Status::NotFound(read.message() + " (the replay objective needs recorded responses)");
  }
  BATON_RETURN_IF_ERROR(read);
  // Accepted letters: the reference when it is a letter, else the letters of the experts that scored 1.
  std::vector<size_t> keep;
  std::vector<size_t> domain_letters(out->domains_.size(), 0), domain_rows(out->domains_.size(), 0);
  for (size_t q = 0; q < all.size(); ++q) {
    Query& Q = all[q];
    const std::string& ref = ds.query(q).reference;
    if (std::optional<char> r = ref.empty() ? std::nullopt : ExtractChoice(ref, 'Z')) {
      Q.correct = 1u << (*r - 'A');
    } else {
      for (size_t e = 0; e < ne; ++e) {
        if (Q.observed[e] && ds.score(q, e) >= 0.5f && Q.letter[e] != 0) Q.correct |= 1u << (Q.letter[e] - 'A');
      }
    }
    for (size_t e = 0; e < ne; ++e) {
      domain_letters[Q.domain] += Q.letter[e] != 0;
      domain_rows[Q.domain] += Q.observed[e];
    }
  }
  // A letter task: a reference letter, or most of the domain's recorded responses commit to a letter. Domains whose
  // responses are mostly not letters (MBPP's code, where a stray "A." could read as one) are dropped whole.
  for (size_t q = 0; q < all.size(); ++q) {
    const std::string& ref = ds.query(q).reference;
    const bool has_ref = !ref.empty() && ExtractChoice(ref, 'Z').has_value();
    const uint32_t d = all[q].domain;
    if (has_ref || 2 * domain_letters[d] > domain_rows[d]) keep.push_back(q);
  }
  out->dropped_ = all.size() - keep.size();
  for (size_t q : keep) out->queries_.push_back(std::move(all[q]));
  if (out->queries_.empty())
    return Status::InvalidArgument(fmt::format("{}: no query has a letter answer to replay", dir));
  return out;
}

uint32_t ReplayData::DomainIndex(const std::string& name) {
  auto it = std::find(domains_.begin(), domains_.end(), name);
  if (it != domains_.end()) return static_cast<uint32_t>(it - domains_.begin());
  domains_.push_back(name);
  return static_cast<uint32_t>(domains_.size() - 1);
}

void ReplayData::Select(const std::vector<size_t>& rows) {
  std::vector<Query> out;
  out.reserve(rows.size());
  for (size_t r : rows) out.push_back(queries_[r]);
  queries_ = std::move(out);
}

Status ReplayData::SelectExperts(const std::vector<std::string>& names) {
  std::vector<size_t> idx;
  for (const std::string& n : names) {
    auto it = std::find(experts_.begin(), experts_.end(), n);
    if (it == experts_.end()) return Status::NotFound(fmt::format("expert '{}' is not in the recorded data", n));
    idx.push_back(static_cast<size_t>(it - experts_.begin()));
  }
  for (Query& q : queries_) {
    Query n = q;
    for (size_t i = 0; i < idx.size(); ++i) {
      n.letter[i] = q.letter[idx[i]];
      n.observed[i] = q.observed[idx[i]];
      n.cost[i] = q.cost[idx[i]];
    }
    n.letter.resize(idx.size());
    n.observed.resize(idx.size());
    n.cost.resize(idx.size());
    q = std::move(n);
  }
  experts_ = names;
  return Status::Ok();
}

Status ReplayData::AlignTo(ReplayData& train) {
  BATON_RETURN_IF_ERROR(SelectExperts(train.experts()));
  for (Query& q : queries_) q.domain = train.DomainIndex(domains_[q.domain]);
  domains_ = train.domains();
  return Status::Ok();
}

// --- Replay model ---

namespace {

bool Correct(const ReplayData::Query& q, uint8_t letter) {
  return letter != 0 && (q.correct & (1u << (letter - 'A'))) != 0;
}

std::vector<size_t> RankBy(const std::vector<double>& acc) {
  std::vector<size_t> r(acc.size());
  std::iota(r.begin(), r.end(), 0);
  std::stable_sort(r.begin(), r.end(), [&](size_t a, size_t b) { return acc[a] > acc[b]; });
  return r;
}

}  // namespace

ReplayModel::ReplayModel(const ReplayData& train) {
  const size_t ne = train.experts().size();
  const size_t nd = std::max<size_t>(1, train.domains().size());
  std::vector<double> hit(ne, 0), seen(ne, 0);
  std::vector<std::vector<double>> dhit(nd, std::vector<double>(ne, 0)), dseen = dhit;
  for (const auto& q : train.queries()) {
    for (size_t e = 0; e < ne; ++e) {
      if (!q.observed[e]) continue;
      const double c = Correct(q, q.letter[e]) ? 1 : 0;
      hit[e] += c, seen[e] += 1;
      dhit[q.domain][e] += c, dseen[q.domain][e] += 1;
    }
  }
  task_acc_.resize(ne);
  for (size_t e = 0; e < ne; ++e) task_acc_[e] = seen[e] > 0 ? hit[e] / seen[e] : 0;
  task_ = RankBy(task_acc_);
  domain_acc_.assign(nd, std::vector<double>(ne, 0));
  domain_rank_.resize(nd);
  for (size_t d = 0; d < nd; ++d) {
    for (size_t e = 0; e < ne; ++e) {
      // An expert never seen in a domain falls back to its task accuracy.
      domain_acc_[d][e] = dseen[d][e] > 0 ? dhit[d][e] / dseen[d][e] : task_acc_[e];
    }
    domain_rank_[d] = RankBy(domain_acc_[d]);
  }
}

const std::vector<size_t>& ReplayModel::domain_ranking(uint32_t domain) const {
  return domain < domain_rank_.size() ? domain_rank_[domain] : task_;
}

double ReplayModel::domain_accuracy(uint32_t domain, size_t expert) const {
  return domain < domain_acc_.size() ? domain_acc_[domain][expert] : task_acc_[expert];
}

std::vector<std::string> ReplayModel::TaskRankingNames(const ReplayData& data) const {
  std::vector<std::string> out;
  for (size_t e : task_) out.push_back(data.experts()[e]);
  return out;
}

ReplayOutcome ReplayModel::Evaluate(const Config& c, const ReplayData& data) const {
  ReplayOutcome out;
  const size_t k = std::min<size_t>(static_cast<size_t>(std::max(1, c.generators)), data.experts().size());
  double hits = 0, cost = 0;
  std::vector<size_t> gens;
  for (const auto& q : data.queries()) {
    const std::vector<size_t>& rank = c.ranking == "domain" ? domain_ranking(q.domain) : task_;
    gens.clear();
    for (size_t i = 0; i < k; ++i) {
      const size_t e = rank[i];
      if (!q.observed[e]) continue;  // no recorded call: the generator contributes nothing and costs nothing
      gens.push_back(e);
      cost += q.cost[e];
    }
    uint8_t answer = 0;
    if (c.aggregation == "rank" || (c.aggregation.empty() && !gens.empty())) {
      // Predicted-score ranker: the generator with the highest train accuracy in this query's domain. (No
      // aggregation = the first generator's answer, as the executor returns the first candidate.)
      size_t best = gens.empty() ? 0 : gens.front();
      if (c.aggregation == "rank") {
        for (size_t e : gens) {
          if (domain_accuracy(q.domain, e) > domain_accuracy(q.domain, best)) best = e;
        }
      }
      if (!gens.empty()) answer = q.letter[best];
    } else {
      // Majority over extracted letters; ties by generator order (vote) or by the predicted score of the best
      // supporter (vote_then_rank). Generators with no letter abstain.
      int count[27] = {0};
      for (size_t e : gens) count[q.letter[e] == 0 ? 0 : q.letter[e] - 'A' + 1] += q.letter[e] != 0;
      int top = 0;
      for (int l = 1; l <= 26; ++l) top = std::max(top, count[l]);
      if (top > 0) {
        double best_score = -1;
        for (size_t e : gens) {  // in generator order
          const uint8_t l = q.letter[e];
          if (l == 0 || count[l - 'A' + 1] != top) continue;
          if (c.aggregation != "vote_then_rank") {
            answer = l;
            break;
          }
          const double s = domain_accuracy(q.domain, e);
          if (s > best_score) best_score = s, answer = l;
        }
      }
    }
    hits += Correct(q, answer) ? 1 : 0;
  }
  out.queries = data.queries().size();
  if (out.queries > 0) {
    out.accuracy = hits / static_cast<double>(out.queries);
    out.cost = cost / static_cast<double>(out.queries);
  }
  return out;
}

Status ReplayableSpace(const search::Space& space) {
  for (const Dimension& d : space.dims()) {
    if (d.name == "generators" || d.name == "aggregation" || d.name == "ranking") continue;
    if (d.name == "samples" && d.Cardinality() == 1 && d.min == 1) continue;
    return Status::InvalidArgument(fmt::format(
        "dimension '{}' cannot be replayed from recorded answers (one recorded answer per expert and query, no fuser, "
        "critic, ranker, verifier or unit-test outputs); the recorded objective searches generators, aggregation and "
        "ranking only (see examples/archon/replay-space.json)",
        d.name));
  }
  return Status::Ok();
}

}  // namespace baton::archon_search
