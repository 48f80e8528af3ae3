// `baton archon validate | run | eval` end to end, on the binary, with replay experts of data/routerbench-train.
#include <fstream>
#include <sstream>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "baton/store.h"
#include "test_util.h"

namespace baton {
namespace {

using testing::DataPath;
using testing::RunBaton;
using testing::TempDir;

std::string Src(const std::string& rel) {
  return std::string(BATON_SOURCE_DIR) + "/" + rel;
}

std::string Experts(const TempDir& tmp) {
  const std::string dir = DataPath("routerbench-train");
  return tmp.Write("experts.yaml",
                   "experts:\n"
                   "  - {name: gpt4, kind: replay, replay_dir: " +
                       dir +
                       ", replay_model: gpt-4-1106-preview}\n"
                       "  - {name: claude, kind: replay, replay_dir: " +
                       dir +
                       ", replay_model: claude-v2}\n"
                       "  - {name: mixtral, kind: replay, replay_dir: " +
                       dir + ", replay_model: mistralai/mixtral-8x7b-chat}\n");
}

TEST(ArchonCli, HelpOnEverySubcommand) {
  for (const char* cmd : {"archon", "archon validate", "archon run", "archon eval"}) {
    auto r = RunBaton(std::string(cmd) + " --help");
    EXPECT_EQ(r.exit_code, 0) << cmd << ": " << r.output;
  }
}

TEST(ArchonCli, ValidateExitCodesAndDiagnostics) {
  TempDir tmp;
  const std::string experts = Experts(tmp);
  auto ok = RunBaton(Src("tests/archon/critic_ranker_fuser.json") + " --structure-only");
  EXPECT_EQ(ok.exit_code, 2) << ok.output;  // no subcommand: a usage error
  ok = RunBaton("archon validate " + Src("tests/archon/critic_ranker_fuser.json") + " --structure-only");
  EXPECT_EQ(ok.exit_code, 0) << ok.output;
  EXPECT_NE(ok.output.find("ok: architecture 'critic-ranker-fuser', 4 layers, 6 components, 0 warning(s)"),
            std::string::npos)
      << ok.output;
  // Without --structure-only the models must map to experts: a, b, c are not among gpt4, claude, mixtral.
  auto bad = RunBaton("archon validate " + Src("tests/archon/critic_ranker_fuser.json") + " --experts " + experts);
  EXPECT_EQ(bad.exit_code, 1) << bad.output;
  EXPECT_NE(
      bad.output.find("critic_ranker_fuser.json:4:6: layer 1 component 1: model 'a' maps to no configured expert"),
      std::string::npos)
      << bad.output;
  bad = RunBaton("archon validate " + Src("tests/archon/err_invalid_json.json") + " --structure-only");
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.output.find("err_invalid_json.json:4:41: invalid JSON"), std::string::npos) << bad.output;
  auto usage = RunBaton("archon validate");
  EXPECT_EQ(usage.exit_code, 2) << usage.output;
}

TEST(ArchonCli, EvalAndRunOnReplayExperts) {
  TempDir tmp;
  const std::string experts = Experts(tmp);
  const std::string arch =
      tmp.Write("vote.json", R"({"name": "vote3", "layers": [[{"type": "generator", "model": "gpt4"},
        {"type": "generator", "model": "claude"}, {"type": "generator", "model": "mixtral"}], [{"type": "vote"}]]})");
  const std::string out = tmp.path() + "/eval.json";
  const std::string db = tmp.path() + "/traces.db";
  auto r = RunBaton("archon eval " + arch + " --config " + experts + " --data " + DataPath("routerbench-train") +
                    " --limit 20 --json " + out + " --db " + db);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("queries       20"), std::string::npos) << r.output;
  std::ifstream in(out);
  nlohmann::json j = nlohmann::json::parse(in);
  EXPECT_EQ(j["queries"], 20);
  EXPECT_EQ(j["results"].size(), 20u);
  // Every answer is one of the three recorded answers, and the accuracy is the mean of the per-query scores.
  double sum = 0;
  int scored = 0;
  for (const auto& row : j["results"]) {
    if (row.contains("score")) {
      sum += row["score"].get<double>();
      ++scored;
    }
  }
  ASSERT_GT(scored, 0);
  EXPECT_NEAR(j["accuracy"].get<double>(), sum / scored, 1e-12);
  auto store = Store::Open(db);
  ASSERT_TRUE(store.ok());
  auto calls = (*store)->ListArchonCalls();
  ASSERT_TRUE(calls.ok());
  int generators = 0, votes = 0;
  for (const auto& c : *calls) {
    generators += c.component == "generator";
    votes += c.component == "vote";
    EXPECT_EQ(c.architecture, "vote3");
  }
  EXPECT_EQ(generators, 60);
  EXPECT_EQ(votes, 20);

  // run: a prompt no expert recorded fails every call, so the run fails (exit 1) and says why.
  auto miss = RunBaton("archon run " + arch + " --config " + experts + " --prompt 'not a recorded prompt'");
  EXPECT_EQ(miss.exit_code, 1) << miss.output;
  EXPECT_NE(miss.output.find("no recorded answer"), std::string::npos) << miss.output;
  // --max-calls under the bound refuses before the first call.
  auto capped = RunBaton("archon run " + arch + " --config " + experts + " --prompt x --max-calls 2");
  EXPECT_EQ(capped.exit_code, 1);
  EXPECT_NE(capped.output.find("may make up to 3 inference calls, over the cap of 2"), std::string::npos)
      << capped.output;
}

}  // namespace
}  // namespace baton
