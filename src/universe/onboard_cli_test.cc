// End-to-end: `baton onboard` on replay experts of the bundled routerbench-train data, one of its models playing the
// newcomer; the decision, its evidence and the newcomer's outcomes land in the store.
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "baton/store.h"
#include "test_util.h"

namespace baton {
namespace {

using testing::RunBaton;

std::string Config(const std::string& dir, const std::vector<std::string>& experts) {
  const std::string data = testing::DataPath("routerbench-train");
  std::string yaml = "store: " + dir + "/onboard.db\nrouter: {train_dir: " + data +
                     ", lambda: 0}\n"
                     "keys: [{name: demo, key: sk-demo, budget_usd: 1}]\nexperts:\n";
  for (const auto& e : experts) yaml += "  - {name: " + e + ", kind: replay, replay_dir: " + data + "}\n";
  const std::string path = dir + "/serve.yaml";
  std::ofstream(path) << yaml;
  return path;
}

TEST(OnboardCliTest, DecidesStoresAndPrintsJson) {
  testing::TempDir dir;
  const std::string config = Config(
      dir.path(), {"mistralai/mistral-7b-chat", "meta/llama-2-70b-chat", "claude-instant-v1", "gpt-4-1106-preview"});
  auto r = RunBaton("onboard gpt-4-1106-preview --config " + config + " --queries 40 --json");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto j = nlohmann::json::parse(r.output.substr(r.output.find('{')));
  EXPECT_EQ(j["expert"], "gpt-4-1106-preview");
  EXPECT_EQ(j["members"].size(), 3u);
  const std::string decision = j["decision"];
  EXPECT_TRUE(decision == "join" || decision == "replace" || decision == "reject") << decision;
  EXPECT_EQ(j["draws"], 40);
  EXPECT_GT(j["answered"].get<int>(), 0);
  EXPECT_LE(j["gain"]["lower"].get<double>(), j["gain"]["estimate"].get<double>());
  EXPECT_GE(j["gain"]["upper"].get<double>(), j["gain"]["estimate"].get<double>());
  auto store = Store::Open(dir.path() + "/onboard.db", {.create = false});
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  auto rows = (*store)->ListOnboarding();
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->size(), 1u);
  EXPECT_EQ((*rows)[0].decision, decision);
  EXPECT_EQ(nlohmann::json::parse((*rows)[0].evidence_json)["gain"], j["gain"]);
  int64_t selfplay = 0;
  ASSERT_TRUE(
      (*store)->ForEachOutcome([&](const OutcomeRecord& o) { selfplay += o.source == OutcomeSource::kSelfPlay; }).ok());
  EXPECT_EQ(selfplay, j["answered"].get<int64_t>());

  // The readable form at a fixed k, and the same seed gives the same draws.
  auto t = RunBaton("onboard gpt-4-1106-preview --config " + config + " --queries 40 --k 3");
  ASSERT_EQ(t.exit_code, 0) << t.output;
  EXPECT_NE(t.output.find("decision: "), std::string::npos) << t.output;
  EXPECT_NE(t.output.find("S(U) now"), std::string::npos) << t.output;
  EXPECT_NE(t.output.find(std::to_string(j["called"].get<int>()) + " distinct queries called"), std::string::npos)
      << t.output;
}

TEST(OnboardCliTest, ClearErrors) {
  testing::TempDir dir;
  const std::string config = Config(dir.path(), {"claude-v1", "claude-v2"});
  auto unknown = RunBaton("onboard gpt-5 --config " + config);
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_NE(unknown.output.find("no expert named 'gpt-5'"), std::string::npos) << unknown.output;
  auto usage = RunBaton("onboard claude-v2");
  EXPECT_EQ(usage.exit_code, 2) << usage.output;
  auto bad_k = RunBaton("onboard claude-v2 --config " + config + " --k 0");
  EXPECT_EQ(bad_k.exit_code, 2) << bad_k.output;
}

}  // namespace
}  // namespace baton
