#include <fstream>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "baton/archon_search.h"
#include "test_util.h"

namespace baton::archon_search {
namespace {

TEST(ArchonSearchSpace, ParsesThePaperSpaceAndRejectsUnknownNames) {
  auto s = ParseArchonSpace(R"({"name": "paper", "experts": ["m1", "m2"], "dimensions": [
      {"name": "generators", "type": "int", "min": 1, "max": 10},
      {"name": "samples", "type": "int", "min": 1, "max": 5},
      {"name": "fusion_layers", "type": "int", "min": 1, "max": 4},
      {"name": "fusers", "type": "int", "min": 2, "max": 10, "step": 2},
      {"name": "critic", "type": "bool"}, {"name": "ranker", "type": "bool"},
      {"name": "verifier", "type": "bool"}, {"name": "unit_tests", "type": "bool"}]})");
  ASSERT_TRUE(s.ok()) << s.status().message();
  EXPECT_EQ(s->space.NumPoints(), 10u * 5 * 4 * 5 * 16);
  EXPECT_EQ(s->experts.size(), 2u);
  EXPECT_FALSE(ReplayableSpace(s->space).ok());
  EXPECT_NE(ReplayableSpace(s->space).message().find("'samples'"), std::string::npos);
  auto bad = ParseArchonSpace(R"({"dimensions": [{"name": "fuzers", "type": "int", "min": 1, "max": 2}]})");
  EXPECT_NE(bad.status().message().find("unknown dimension 'fuzers'"), std::string::npos);
  auto badval = ParseArchonSpace(R"({"dimensions": [{"name": "aggregation", "type": "categorical",
                                     "values": ["vote", "mean"]}]})");
  EXPECT_NE(badval.status().message().find("'mean'"), std::string::npos);
}

TEST(ArchonSearchSpace, CallCountsAndArchitecture) {
  Config c;
  c.generators = 3, c.samples = 2, c.fusion_layers = 2, c.fusers = 4, c.critic = true, c.ranker = true;
  // 6 generator calls; per fusion layer critic 1 + ranker 1 + fusers 4; no verifier.
  EXPECT_EQ(CallCount(c), 6 + 2 * 6);
  c.verifier = true;  // 2 calls per final candidate (4 fusers)
  EXPECT_EQ(CallCount(c), 18 + 8);
  c.unit_tests = true;  // 1 to write the tests, 1 per final candidate to evaluate
  EXPECT_EQ(CallCount(c), 26 + 1 + 4);
  Config v;
  v.generators = 5;
  v.aggregation = "vote";
  EXPECT_EQ(CallCount(v), 5);  // the vote costs no call

  const nlohmann::json a = ToArchitecture(c, {"best", "second", "third", "fourth"}, "x");
  EXPECT_EQ(a["name"], "x");
  const auto& layers = a["layers"];
  // unit_test_generator, generators, (critic, ranker, fusers) x 2, verifier, unit_test_evaluator
  ASSERT_EQ(layers.size(), 1u + 1 + 6 + 1 + 1);
  EXPECT_EQ(layers[0][0]["type"], "unit_test_generator");
  ASSERT_EQ(layers[1].size(), 3u);
  EXPECT_EQ(layers[1][2]["model"], "third");
  EXPECT_EQ(layers[1][0]["samples"], 2);
  EXPECT_EQ(layers[2][0]["type"], "critic");
  EXPECT_EQ(layers[3][0]["type"], "ranker");
  EXPECT_EQ(layers[4].size(), 4u);
  EXPECT_EQ(layers[4][3]["model"], "best");  // fuser 3 uses ranking[3 % 3]
  EXPECT_EQ(layers[8][0]["type"], "verifier");
  EXPECT_EQ(layers[9][0]["type"], "unit_test_evaluator");
  const nlohmann::json b = ToArchitecture(v, {"best", "second", "third", "fourth", "fifth"}, "y");
  ASSERT_EQ(b["layers"].size(), 2u);
  EXPECT_EQ(b["layers"][1][0]["type"], "vote");
}

// A tiny recorded dataset: 3 experts, 5 questions of 2 domains. e1 is best overall, e2 best on domain "b".
std::string WriteTinyData(testing::TempDir& tmp) {
  tmp.Write("d/models.csv",
            "model,params_b,usd_per_mtok_in,usd_per_mtok_out,price_source\ne1,,,,x\ne2,,,,x\ne3,,,,x\n");
  std::string q, o = "query_id,model,score,cost_usd,tokens_in,tokens_out\n", r;
  struct Row {
    const char* id;
    const char* domain;
    const char* ref;
    const char* ans[3];
  };
  const Row rows[] = {
      {"q1", "a", "A", {"A", "B", "B"}},                                     // e1 right, vote wrong (B, B)
      {"q2", "a", "C", {"C", "C", "D"}},                                     // all but e3
      {"q3", "a", "B", {"B", "A", "B"}}, {"q4", "b", "D", {"A", "D", "D"}},  // e1 wrong, vote right, e2 right
      {"q5", "b", "A", {"B", "A", "C"}},  // three-way tie: vote picks e1's B; vote_then_rank picks e2's A
  };
  for (const Row& x : rows) {
    q += fmt::format(R"({{"id": "{}", "domain": "{}", "text": "t", "reference": "{}"}})", x.id, x.domain, x.ref) + "\n";
    for (int e = 0; e < 3; ++e) {
      o += fmt::format("{},e{},{},{},10,1\n", x.id, e + 1, std::string(x.ans[e]) == x.ref ? 1 : 0, 0.001 * (e + 1));
      r += fmt::format(R"({{"query_id": "{}", "model": "e{}", "response": "['{}']"}})", x.id, e + 1, x.ans[e]) + "\n";
    }
  }
  tmp.Write("d/queries.jsonl", q);
  tmp.Write("d/outcomes.csv", o);
  tmp.Write("d/responses.jsonl", r);
  return tmp.path() + "/d";
}

TEST(ArchonSearchReplay, VoteRankAndTiesAreExact) {
  testing::TempDir tmp;
  auto data = ReplayData::Load(WriteTinyData(tmp));
  ASSERT_TRUE(data.ok()) << data.status().message();
  const ReplayData& d = **data;
  ASSERT_EQ(d.num_queries(), 5u);
  ReplayModel m(d);
  // Accuracies: e1 3/5 (q1,q2,q3), e2 3/5 (q2,q4,q5), e3 2/5 (q3,q4). Ties keep file order: e1, e2, e3.
  EXPECT_EQ(m.TaskRankingNames(d), (std::vector<std::string>{"e1", "e2", "e3"}));
  Config single;
  EXPECT_DOUBLE_EQ(m.Evaluate(single, d).accuracy, 3.0 / 5);
  EXPECT_NEAR(m.Evaluate(single, d).cost, 0.001, 1e-9);
  Config vote;
  vote.generators = 3;
  vote.aggregation = "vote";
  // q1 B wrong, q2 C right, q3 B right, q4 D right, q5 tie -> e1's B wrong.
  EXPECT_DOUBLE_EQ(m.Evaluate(vote, d).accuracy, 3.0 / 5);
  EXPECT_NEAR(m.Evaluate(vote, d).cost, 0.006, 1e-9);
  Config vtr = vote;
  vtr.aggregation = "vote_then_rank";  // q5: e2 has domain-b accuracy 1 -> A, right
  EXPECT_DOUBLE_EQ(m.Evaluate(vtr, d).accuracy, 4.0 / 5);
  Config rank = vote;
  rank.aggregation = "rank";  // domain a: e1 (1.0) -> q1..q3 right; domain b: e2 (1.0) -> q4, q5 right
  EXPECT_DOUBLE_EQ(m.Evaluate(rank, d).accuracy, 1.0);
  Config dom;
  dom.ranking = "domain";  // top-1 per domain = the same choice as rank
  EXPECT_DOUBLE_EQ(m.Evaluate(dom, d).accuracy, 1.0);
  EXPECT_NEAR(m.Evaluate(dom, d).cost, (3 * 0.001 + 2 * 0.002) / 5, 1e-9);
}

TEST(ArchonSearchReplay, InfersAcceptedLettersWithoutReferences) {
  // RouterBench has no references: the letters of experts scoring 1 are the accepted ones.
  testing::TempDir tmp;
  tmp.Write("d/models.csv", "model,params_b,usd_per_mtok_in,usd_per_mtok_out,price_source\ne1,,,,x\ne2,,,,x\n");
  tmp.Write("d/queries.jsonl", R"({"id": "q1", "domain": "a", "text": "t", "reference": ""})"
                               "\n"
                               R"({"id": "q2", "domain": "code", "text": "t", "reference": ""})"
                               "\n");
  tmp.Write("d/outcomes.csv",
            "query_id,model,score,cost_usd,tokens_in,tokens_out\nq1,e1,1,0,1,1\nq1,e2,0,0,1,1\n"
            "q2,e1,0,0,1,1\nq2,e2,0,0,1,1\n");
  tmp.Write("d/responses.jsonl", R"({"query_id": "q1", "model": "e1", "response": "['C\n']"})"
                                 "\n"
                                 R"({"query_id": "q1", "model": "e2", "response": "['D']"})"
                                 "\n"
                                 R"({"query_id": "q2", "model": "e1", "response": "def f(): pass"})"
                                 "\n");
  auto data = ReplayData::Load(tmp.path() + "/d");
  ASSERT_TRUE(data.ok()) << data.status().message();
  ASSERT_EQ((*data)->num_queries(), 1u);  // q2's domain has no letter answer (code): dropped
  EXPECT_EQ((*data)->dropped(), 1u);
  EXPECT_EQ((*data)->queries()[0].correct, 1u << ('C' - 'A'));
}

TEST(ArchonSearchCli, RecordedSearchWritesEveryEvaluation) {
  testing::TempDir tmp;
  const std::string dir = WriteTinyData(tmp);
  tmp.Write("space.json", R"({"name": "tiny", "dimensions": [
      {"name": "generators", "type": "int", "min": 1, "max": 3},
      {"name": "aggregation", "type": "categorical", "values": ["vote", "rank", "vote_then_rank"]}]})");
  const std::string json = tmp.path() + "/out.json";
  auto r = testing::RunBaton("archon search --space " + tmp.path() + "/space.json --data " + dir + " --test " + dir +
                             " --budget-evals 20 --algo bayes --max-calls 2 --json " + json);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::ifstream in(json);
  const nlohmann::json j = nlohmann::json::parse(in);
  // generators 3 needs 3 calls > 2: its 3 configurations are rejected; 6 remain and all are evaluated.
  EXPECT_EQ(j["evaluations"].size(), 6u);
  EXPECT_EQ(j["rejected"], 3);
  EXPECT_DOUBLE_EQ(j["best"]["score"].get<double>(), 1.0);  // rank over the top 2
  EXPECT_EQ(j["best"]["config"]["aggregation"], "rank");
  EXPECT_EQ(j["global_best"]["score"].get<double>(), 1.0);
  EXPECT_GE(j["first_found_at"].get<int>(), 1);
  EXPECT_EQ(j["best"]["architecture"]["layers"][0][0]["type"], "generator");
  EXPECT_EQ(j["best_single_expert"]["name"], "e1");

  auto usage = testing::RunBaton("archon search --budget-evals 5 --algo simulated --objective branin");
  EXPECT_EQ(usage.exit_code, 2) << usage.output;
  auto bad = testing::RunBaton("archon search --budget-evals 5 --algo random --space " + tmp.path() + "/space.json");
  EXPECT_EQ(bad.exit_code, 1) << bad.output;
  EXPECT_NE(bad.output.find("--data"), std::string::npos) << bad.output;
  auto fn = testing::RunBaton("archon search --objective branin --budget-evals 40 --algo random --seeds 3 --quiet");
  EXPECT_EQ(fn.exit_code, 0) << fn.output;
  EXPECT_NE(fn.output.find("target reached in"), std::string::npos) << fn.output;
}

}  // namespace
}  // namespace baton::archon_search
