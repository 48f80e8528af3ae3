#include <filesystem>
#include <map>
#include <set>

#include <gtest/gtest.h>

#include "baton/predictor.h"
#include "baton/selfplay.h"
#include "test_util.h"

namespace baton {
namespace {

// An expert whose answers come from a function of the prompt and the call number.
class FakeExpert : public ExpertBackend {
 public:
  using Fn = std::function<StatusOr<ChatResult>(const std::string& prompt, int call)>;
  FakeExpert(std::string name, Fn fn) : name_(std::move(name)), fn_(std::move(fn)) {}
  const std::string& name() const override { return name_; }
  StatusOr<ChatResult> Complete(const ChatRequest& request, const StreamSink* sink) override {
    (void)sink;
    return fn_(request.messages.back().content, calls_++);
  }
  int calls() const { return calls_; }

 private:
  std::string name_;
  Fn fn_;
  int calls_ = 0;
};

ChatResult Answer(const std::string& text, double cost = 0.001) {
  ChatResult r;
  r.content = text;
  r.cost_usd = cost;
  r.usage = {.prompt_tokens = 10, .completion_tokens = 3};
  return r;
}

// "Q<i> ... " questions with reference letter A..D by i % 4.
std::string WritePool(const testing::TempDir& tmp, int n) {
  std::string s;
  for (int i = 0; i < n; ++i) {
    s += "{\"id\": \"q" + std::to_string(i) + "\", \"domain\": \"" + (i % 2 ? "math" : "law") + "\", \"text\": \"Q" +
         std::to_string(i) + " pick a letter\", \"reference\": \"" + std::string(1, static_cast<char>('A' + i % 4)) +
         "\"}\n";
  }
  return tmp.Write("pool/queries.jsonl", s);
}

char RefOf(const std::string& prompt) {
  return static_cast<char>('A' + std::stoi(prompt.substr(1)) % 4);
}

struct Counts {
  size_t outcomes = 0, selfplay = 0;
  std::set<std::pair<int64_t, int64_t>> pairs;
  bool duplicate = false;
};
Counts CountOutcomes(Store& s) {
  Counts c;
  EXPECT_TRUE(s.ForEachOutcome([&](const OutcomeRecord& r) {
                 ++c.outcomes;
                 c.selfplay += r.source == OutcomeSource::kSelfPlay;
                 c.duplicate |= !c.pairs.insert({r.query_id, r.expert_id}).second;
               }).ok());
  return c;
}

TEST(SelfPlayParseTest, GeneratedQuestionAndJudgeVerdict) {
  auto p = GeneratedQuestionSource::ParseReply("Sure!\nQUESTION: What is 17 * 3?\nANSWER: 51\n");
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->first, "What is 17 * 3?");
  EXPECT_EQ(p->second, "51");
  EXPECT_FALSE(GeneratedQuestionSource::ParseReply("What is 17 * 3? It is 51.").has_value());
  EXPECT_FALSE(GeneratedQuestionSource::ParseReply("QUESTION: x\nANSWER:").has_value());
  EXPECT_EQ(JudgeEvaluator::ParseVerdict("reasoning...\nVERDICT: CORRECT"), 1.0);
  EXPECT_EQ(JudgeEvaluator::ParseVerdict("Verdict: **incorrect**"), 0.0);
  EXPECT_EQ(JudgeEvaluator::ParseVerdict("VERDICT: CORRECT ... wait. VERDICT: INCORRECT"), 0.0);
  EXPECT_FALSE(JudgeEvaluator::ParseVerdict("I think it is right").has_value());
  EXPECT_FALSE(JudgeEvaluator::ParseVerdict("VERDICT: maybe").has_value());
}

TEST(SelfPlayPoolTest, SkipsStoredAndUnreferencedQuestions) {
  testing::TempDir tmp;
  const std::string path = tmp.Write("q.jsonl",
                                     "{\"id\": \"a\", \"text\": \"one?\", \"reference\": \"A\"}\n"
                                     "{\"id\": \"b\", \"text\": \"two?\"}\n"
                                     "{\"id\": \"c\", \"text\": \"three?\", \"reference\": \"12\"}\n");
  auto pool = PoolQuestionSource::Open(path, 0, false);
  ASSERT_TRUE(pool.ok()) << pool.status().ToString();
  EXPECT_EQ((*pool)->size(), 2u);
  auto got = (*pool)->Next(
      5, [](const std::string& id) { return id == "a"; }, nullptr);
  ASSERT_TRUE(got.ok());
  ASSERT_EQ(got->size(), 1u);
  EXPECT_EQ((*got)[0].external_id, "c");
  EXPECT_FALSE(PoolQuestionSource::Open(tmp.Write("bad.jsonl", "not json\n"), 0, false).ok());
}

TEST(SelfPlayGeneratedTest, WriterRepliesThatDoNotParseYieldNoQuestion) {
  FakeExpert writer("writer", [](const std::string&, int call) -> StatusOr<ChatResult> {
    if (call % 2) return Answer("I would rather not.");
    return Answer("QUESTION: What is " + std::to_string(call) + " + 1?\nANSWER: " + std::to_string(call + 1), 0.01);
  });
  GeneratedQuestionSource src(&writer, {"arithmetic"}, std::chrono::seconds(5));
  double spent = 0;
  auto qs = src.Next(
      3, [](const std::string&) { return false; }, &spent);
  ASSERT_TRUE(qs.ok());
  ASSERT_EQ(qs->size(), 3u);
  EXPECT_EQ((*qs)[1].text, "What is 2 + 1?");
  EXPECT_EQ((*qs)[1].reference, "3");
  EXPECT_EQ((*qs)[1].domain, "arithmetic");
  EXPECT_NEAR(spent, 0.03 + 0.002, 1e-12);  // three good replies at 0.01, two refusals at 0.001
}

class SelfPlayLoopTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pool_path_ = WritePool(tmp_, 60);
    good_ = std::make_unique<FakeExpert>("good", [](const std::string& p, int) -> StatusOr<ChatResult> {
      return Answer(std::string("The answer is (") + RefOf(p) + ").");
    });
    // Right on math (odd) questions only.
    half_ = std::make_unique<FakeExpert>("half", [](const std::string& p, int) -> StatusOr<ChatResult> {
      const int i = std::stoi(p.substr(1));
      return Answer(std::string("Answer: ") + (i % 2 ? RefOf(p) : static_cast<char>('A' + (i + 1) % 4)));
    });
    // Times out on every third call, answers garbage otherwise.
    flaky_ = std::make_unique<FakeExpert>("flaky", [](const std::string&, int call) -> StatusOr<ChatResult> {
      if (call % 3 == 0) return Status::DeadlineExceeded("upstream timed out");
      return Answer("lorem ipsum dolor sit amet");
    });
  }

  StatusOr<SelfPlayReport> Run(Store& store, SelfPlayOptions o) {
    auto pool = PoolQuestionSource::Open(pool_path_, 3, false);
    if (!pool.ok()) return pool.status();
    ReferenceEvaluator ev;
    return RunSelfPlay(store, {good_.get(), half_.get(), flaky_.get()}, {}, **pool, ev, o);
  }

  testing::TempDir tmp_;
  std::string pool_path_;
  std::unique_ptr<FakeExpert> good_, half_, flaky_;
};

TEST_F(SelfPlayLoopTest, StoresOutcomesRecordsFailedCallsAndResumesWithoutDuplicates) {
  auto store = Store::Open(tmp_.path() + "/sp.db");
  ASSERT_TRUE(store.ok());
  SelfPlayOptions o;
  o.rounds = 2;
  o.questions_per_round = 5;
  o.refit_every = 0;
  auto r = Run(**store, o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->rounds.size(), 2u);
  EXPECT_EQ(r->rounds[0].questions, 5u);
  EXPECT_EQ(r->rounds[1].round, 2u);
  Counts c = CountOutcomes(**store);
  const size_t failed = r->rounds[0].failed_calls + r->rounds[1].failed_calls;
  EXPECT_GT(failed, 0u);
  EXPECT_EQ(c.outcomes, 10u * 3 - failed);  // every answered call is an outcome (garbage scores 0)
  EXPECT_EQ(c.selfplay, c.outcomes);
  EXPECT_FALSE(c.duplicate);
  EXPECT_EQ(*(*store)->CountRows("requests"), static_cast<int64_t>(failed));  // failed calls are recorded
  // good and half differ on the even (law) questions, so some questions separated the experts.
  EXPECT_GT(r->rounds[0].separated + r->rounds[1].separated, 0u);

  // Resume: the next rounds ask new questions only and continue the round count.
  auto r2 = Run(**store, o);
  ASSERT_TRUE(r2.ok());
  EXPECT_EQ(r2->rounds[0].round, 3u);
  EXPECT_EQ(r2->outcomes_before, c.outcomes);
  auto qs = (*store)->ListQueries({"selfplay"});
  ASSERT_TRUE(qs.ok());
  EXPECT_EQ(qs->size(), 20u);
  EXPECT_FALSE(CountOutcomes(**store).duplicate);
}

TEST_F(SelfPlayLoopTest, SpendCapStopsCleanly) {
  auto store = Store::Open(":memory:");
  ASSERT_TRUE(store.ok());
  SelfPlayOptions o;
  o.rounds = 50;
  o.questions_per_round = 4;
  o.refit_every = 0;
  o.spend_cap_usd = 0.02;  // each answered call costs 0.001: about 20 calls
  auto r = Run(**store, o);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->stopped_by_cap);
  EXPECT_LE(r->spent_total_usd, 0.02 + 1e-12);
  EXPECT_GE(r->spent_total_usd, 0.02 - 0.003 - 1e-12);  // stopped within one question of the cap
  // A second run with the same cap stops at once: the cap counts what is already stored.
  auto r2 = Run(**store, o);
  ASSERT_TRUE(r2.ok());
  EXPECT_TRUE(r2->stopped_by_cap);
  EXPECT_EQ(r2->outcomes_after, r2->outcomes_before);
}

TEST_F(SelfPlayLoopTest, RefitsTheRouterAndThenLetsItChoose) {
  auto store = Store::Open(":memory:");
  ASSERT_TRUE(store.ok());
  SelfPlayOptions o;
  o.rounds = 4;
  o.questions_per_round = 6;
  o.refit_every = 12;
  o.model_path = tmp_.path() + "/router.baton";
  o.exploration = {.epsilon = 0, .small_pool = 1};  // let the router choose once it exists
  auto r = Run(**store, o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_GE(r->refits, 2u);
  EXPECT_TRUE(std::filesystem::exists(o.model_path));
  auto m = LoadModel(o.model_path);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->predictor->num_experts(), 3u);
  // Once the router chooses, some questions are not put to every expert.
  EXPECT_LT(r->rounds.back().outcomes + r->rounds.back().failed_calls, 6u * 3);
}

TEST_F(SelfPlayLoopTest, UnparsableJudgeVerdictIsNoOutcome) {
  auto store = Store::Open(":memory:");
  ASSERT_TRUE(store.ok());
  FakeExpert judge("judge", [](const std::string&, int call) -> StatusOr<ChatResult> {
    return Answer(call % 2 ? "VERDICT: CORRECT" : "hmm, hard to say");
  });
  JudgeEvaluator ev(&judge, std::chrono::seconds(5));
  auto pool = PoolQuestionSource::Open(pool_path_, 3, false);
  ASSERT_TRUE(pool.ok());
  SelfPlayOptions o;
  o.rounds = 1;
  o.questions_per_round = 4;
  o.refit_every = 0;
  auto r = RunSelfPlay(**store, {good_.get()}, {}, **pool, ev, o);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->rounds[0].outcomes, 2u);
  EXPECT_EQ(r->rounds[0].unscored, 2u);
  Counts c = CountOutcomes(**store);
  EXPECT_EQ(c.outcomes, 2u);
}

}  // namespace
}  // namespace baton
