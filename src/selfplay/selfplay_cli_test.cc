// End to end: `baton selfplay` with replay experts on data/routerbench-train through the real binary, including a
// kill -9 in the middle of the loop and a resume.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <map>
#include <set>
#include <thread>

#include <gtest/gtest.h>

#include "baton/store.h"
#include "test_util.h"

namespace baton {
namespace {

using testing::RunBaton;

std::string Config(const testing::TempDir& tmp, int per_round, int refit_every, const std::string& extra = "") {
  const std::string data = testing::DataPath("routerbench-train");
  std::string y = "experts:\n";
  for (const char* e : {"claude-instant-v1", "gpt-4-1106-preview", "mistralai/mistral-7b-chat"}) {
    y += std::string("  - {name: ") + e + ", kind: replay, replay_dir: " + data + "}\n";
  }
  y += "selfplay:\n  questions: {pool: " + data +
       "}\n  evaluate: recorded\n  questions_per_round: " + std::to_string(per_round) +
       "\n  refit_every: " + std::to_string(refit_every) + "\n  model: " + tmp.path() + "/router.baton\n" + extra;
  return tmp.Write("selfplay.yaml", y);
}

struct Snapshot {
  std::set<std::string> questions;
  std::multiset<std::pair<std::string, int64_t>> outcomes;  // (question, expert)
  size_t selfplay = 0;
  size_t failed = 0;  // failed calls (request-log rows)
};
Snapshot Read(const std::string& db) {
  Snapshot s;
  auto store = Store::Open(db, {.create = false});
  EXPECT_TRUE(store.ok()) << store.status().ToString();
  if (!store.ok()) return s;
  auto qs = (*store)->ListQueries({"selfplay"});
  EXPECT_TRUE(qs.ok());
  std::map<int64_t, std::string> id;
  for (const QueryRecord& q : *qs) id[q.id] = q.external_id, s.questions.insert(q.external_id);
  EXPECT_TRUE((*store)
                  ->ForEachOutcome([&](const OutcomeRecord& o) {
                    s.outcomes.insert({id[o.query_id], o.expert_id});
                    s.selfplay += o.source == OutcomeSource::kSelfPlay;
                  })
                  .ok());
  auto failed = (*store)->CountRows("requests");
  EXPECT_TRUE(failed.ok());
  if (failed.ok()) s.failed = static_cast<size_t>(*failed);
  return s;
}

TEST(SelfPlayCliTest, RunsRoundsStoresSelfPlayOutcomesAndRefits) {
  testing::TempDir tmp;
  const std::string cfg = Config(tmp, 4, 20), db = tmp.path() + "/sp.db";
  auto r = RunBaton("selfplay --config " + cfg + " --rounds 3 --db " + db);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("round 3: 4 question(s) asked"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("refit"), std::string::npos) << r.output;
  EXPECT_TRUE(std::filesystem::exists(tmp.path() + "/router.baton"));
  const Snapshot s = Read(db);
  EXPECT_EQ(s.questions.size(), 12u);
  // Three experts, a small pool: every expert on every question (a prompt without a recorded answer is a failed call).
  EXPECT_EQ(s.outcomes.size() + s.failed, 36u);
  EXPECT_EQ(s.selfplay, s.outcomes.size());
  // Usage errors exit 2, runtime errors 1.
  EXPECT_EQ(RunBaton("selfplay --config " + cfg).exit_code, 2);
  EXPECT_EQ(
      RunBaton("selfplay --config " + tmp.Write("bad.yaml", "experts: []\nselfplay: {}\n") + " --rounds 1 --db " + db)
          .exit_code,
      1);
}

TEST(SelfPlayCliTest, SpendCapHolds) {
  testing::TempDir tmp;
  const std::string cfg = Config(tmp, 2, 0, "  spend_cap_usd: 0.02\n"), db = tmp.path() + "/sp.db";
  auto r = RunBaton("selfplay --config " + cfg + " --rounds 200 --db " + db);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("stopped at the spend cap"), std::string::npos) << r.output;
  auto store = Store::Open(db, {.create = false});
  ASSERT_TRUE(store.ok());
  double cost = 0, dearest = 0;
  ASSERT_TRUE((*store)
                  ->ForEachOutcome([&](const OutcomeRecord& o) {
                    cost += o.cost_usd.value_or(0);
                    dearest = std::max(dearest, o.cost_usd.value_or(0));
                  })
                  .ok());
  EXPECT_GT(cost, 0);
  EXPECT_LE(cost, 0.02 + dearest);  // passed by at most one call (the first call has no cost estimate)
  // Run again: the cap counts what is stored, so nothing more is spent.
  auto again = RunBaton("selfplay --config " + cfg + " --rounds 5 --db " + db);
  ASSERT_EQ(again.exit_code, 0) << again.output;
  EXPECT_NE(again.output.find("stopped at the spend cap"), std::string::npos) << again.output;
  double cost2 = 0;
  ASSERT_TRUE((*store)->ForEachOutcome([&](const OutcomeRecord& o) { cost2 += o.cost_usd.value_or(0); }).ok());
  EXPECT_DOUBLE_EQ(cost2, cost);
}

TEST(SelfPlayCliTest, ResumesAfterKillNineWithoutLostOrDuplicatedOutcomes) {
  testing::TempDir tmp;
  const std::string cfg = Config(tmp, 1, 15), db = tmp.path() + "/sp.db";
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    const int devnull = ::open("/dev/null", O_WRONLY);
    dup2(devnull, 1), dup2(devnull, 2);
    execl(BATON_BINARY, BATON_BINARY, "selfplay", "--config", cfg.c_str(), "--rounds", "100000", "--db", db.c_str(),
          static_cast<char*>(nullptr));
    _exit(127);
  }
  // Wait until the loop has committed a few questions, then kill it mid-flight.
  size_t seen = 0;
  for (int i = 0; i < 600 && seen < 8; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    if (!std::filesystem::exists(db)) continue;
    auto store = Store::Open(db, {.create = false, .read_only = true});
    if (!store.ok()) continue;
    auto qs = (*store)->ListQueries({"selfplay"});
    if (qs.ok()) seen = qs->size();
  }
  kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status)) << "the loop ended before it was killed";
  ASSERT_GE(seen, 8u) << "the loop stored too few questions before the deadline";
  const Snapshot before = Read(db);
  // Every stored question has all its outcomes (one transaction per question).
  EXPECT_EQ(before.outcomes.size() + before.failed, 3 * before.questions.size());

  auto r = RunBaton("selfplay --config " + cfg + " --rounds 5 --db " + db);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const Snapshot after = Read(db);
  EXPECT_EQ(after.questions.size(), before.questions.size() + 5);
  for (const auto& o : before.outcomes) EXPECT_TRUE(after.outcomes.count(o)) << "lost " << o.first;
  std::set<std::pair<std::string, int64_t>> unique(after.outcomes.begin(), after.outcomes.end());
  EXPECT_EQ(unique.size(), after.outcomes.size()) << "duplicated outcome";
  EXPECT_EQ(after.outcomes.size() + after.failed, 3 * after.questions.size());
}

}  // namespace
}  // namespace baton
