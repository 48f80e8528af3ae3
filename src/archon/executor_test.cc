// The executor and every component, driven through RunArchitecture with small fake experts (answers computed from
// the prompt, on the loop, after a short timer so that calls overlap).
#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "archon/components.h"
#include "baton/archon.h"

namespace baton::archon {
namespace {

using Responder = std::function<StatusOr<ChatResult>(const ChatRequest&)>;

class FakeExpert : public ExpertBackend {
 public:
  FakeExpert(std::string name, Responder fn) : name_(std::move(name)), fn_(std::move(fn)) {}
  const std::string& name() const override { return name_; }
  StatusOr<ChatResult> Complete(const ChatRequest& r, const StreamSink*) override { return fn_(r); }
  void CompleteAsync(ChatRequest r, StreamSink sink, const AsyncContext& ctx, CompletionHandler done) override {
    ++(*in_flight_);
    *max_in_flight_ = std::max(*max_in_flight_, *in_flight_);
    auto timer = std::make_shared<boost::asio::steady_timer>(*ctx.loop, std::chrono::milliseconds(2));
    timer->async_wait([this, timer, r = std::move(r), sink = std::move(sink), done = std::move(done)](auto) {
      --(*in_flight_);
      seen.push_back(r);
      StatusOr<ChatResult> res = fn_(r);
      if (res.ok() && sink) {
        std::string_view c = res->content;
        for (size_t i = 0; i < c.size(); i += 3) {
          if (!sink(c.substr(i, 3))) {
            done(Status::FailedPrecondition("cancelled"));
            return;
          }
        }
      }
      done(std::move(res));
    });
  }
  std::vector<ChatRequest> seen;
  std::shared_ptr<int> in_flight_ = std::make_shared<int>(0);
  std::shared_ptr<int> max_in_flight_ = std::make_shared<int>(0);

 private:
  std::string name_;
  Responder fn_;
};

ChatResult Answer(std::string text, double cost = 0.001) {
  ChatResult r;
  r.content = std::move(text);
  r.usage.prompt_tokens = 10;
  r.usage.completion_tokens = 5;
  r.cost_usd = cost;
  return r;
}

std::string LastUser(const ChatRequest& r) {
  for (auto it = r.messages.rbegin(); it != r.messages.rend(); ++it)
    if (it->role == "user") return it->content;
  return "";
}
bool Contains(const std::string& s, const std::string& what) {
  return s.find(what) != std::string::npos;
}

struct Fixture {
  std::map<std::string, std::unique_ptr<FakeExpert>> experts;
  std::map<std::string, ExpertConfig> configs;
  std::shared_ptr<int> in_flight = std::make_shared<int>(0);
  std::shared_ptr<int> max_in_flight = std::make_shared<int>(0);

  FakeExpert& Add(const std::string& name, Responder fn) {
    auto e = std::make_unique<FakeExpert>(name, std::move(fn));
    e->in_flight_ = in_flight;
    e->max_in_flight_ = max_in_flight;
    configs[name].name = name;
    return *(experts[name] = std::move(e));
  }
  ExpertLookup Lookup() {
    return [this](std::string_view m) -> std::optional<ExpertHandle> {
      auto it = experts.find(std::string(m));
      if (it == experts.end()) return std::nullopt;
      return ExpertHandle{it->second.get(), &configs[std::string(m)]};
    };
  }
  StatusOr<ArchonResult> Run(const std::string& json, ArchonRunOptions opt = {}, std::string prompt = "Q?") {
    ParseResult p = ParseArchitecture(json, "t.json");
    EXPECT_TRUE(p.errors.empty()) << (p.errors.empty() ? "" : p.errors[0].message);
    ChatRequest req;
    req.messages = {{.role = "user", .content = std::move(prompt)}};
    return RunArchitecture(p.architecture, Lookup(), req, std::move(opt));
  }
};

// A generator expert: answers "<name>#<n>" for its n-th call.
Responder Counter(const std::string& name) {
  auto n = std::make_shared<int>(0);
  return [name, n](const ChatRequest&) { return Answer(name + "#" + std::to_string(++*n)); };
}

std::vector<std::string> Texts(const ArchonResult& r) {
  std::vector<std::string> out;
  for (const Candidate& c : r.final_state.candidates) out.push_back(c.text);
  return out;
}

TEST(ArchonExecutor, GeneratorsConcatenateInComponentOrder) {
  Fixture f;
  f.Add("a", Counter("a"));
  f.Add("b", Counter("b"));
  auto r =
      f.Run(R"({"layers": [[{"type": "generator", "model": "a", "samples": 2, "temperature": 0.3, "max_tokens": 77},
                                 {"type": "generator", "model": "b"}]]})");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(Texts(*r), (std::vector<std::string>{"a#1", "a#2", "b#1"}));
  EXPECT_EQ(r->answer, "a#1");  // the first candidate
  EXPECT_EQ(r->answer_expert, "a");
  EXPECT_EQ(r->calls, 3);
  EXPECT_NEAR(r->cost_usd, 0.003, 1e-12);
  ASSERT_EQ(r->trace.size(), 3u);
  for (const auto& t : r->trace) {
    EXPECT_EQ(t.architecture, "t");
    EXPECT_EQ(t.component, "generator");
    EXPECT_EQ(t.status, "ok");
    EXPECT_EQ(t.prompt_tokens, 10);
  }
  // The first layer sends the user's conversation as it is, with the component's sampling options.
  const ChatRequest& sent = f.experts["a"]->seen[0];
  ASSERT_EQ(sent.messages.size(), 1u);
  EXPECT_EQ(sent.messages[0].content, "Q?");
  EXPECT_EQ(sent.temperature, 0.3);
  EXPECT_EQ(sent.max_tokens, 77);
}

TEST(ArchonExecutor, LaterGeneratorSeesPreviousCandidates) {
  Fixture f;
  f.Add("a", Counter("a"));
  f.Add("b", Counter("b"));
  auto r = f.Run(R"({"layers": [[{"type": "generator", "model": "a"}, {"type": "generator", "model": "b"}],
                                 [{"type": "generator", "model": "b"}]]})");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(Texts(*r), (std::vector<std::string>{"b#2"}));  // replaced by the later layer's candidates
  const ChatRequest& moa = f.experts["b"]->seen.back();
  ASSERT_EQ(moa.messages.size(), 2u);
  EXPECT_EQ(moa.messages[0].role, "system");
  EXPECT_TRUE(Contains(moa.messages[0].content, "[1]\na#1"));
  EXPECT_TRUE(Contains(moa.messages[0].content, "[2]\nb#1"));
  EXPECT_EQ(moa.messages[1].content, "Q?");  // the user's message unchanged (replay experts still find it)
}

TEST(ArchonExecutor, MixedLayerKeepsGeneratorThenFuserOutputs) {
  Fixture f;
  f.Add("a", Counter("a"));
  f.Add("f", Counter("f"));
  auto r = f.Run(R"({"layers": [[{"type": "generator", "model": "a"}],
                                 [{"type": "generator", "model": "a"}, {"type": "fuser", "model": "f"}]]})");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(Texts(*r), (std::vector<std::string>{"a#2", "f#1"}));
}

TEST(ArchonExecutor, FuserWithoutCandidatesAnswersLikeAGenerator) {
  Fixture f;
  f.Add("f", Counter("f"));
  auto r = f.Run(R"({"layers": [[{"type": "fuser", "model": "f", "samples": 2}]]})");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(Texts(*r), (std::vector<std::string>{"f#1", "f#2"}));
  EXPECT_EQ(f.experts["f"]->seen[0].messages.size(), 1u);
}

// critic -> ranker -> fuser: the critiques reach the ranker and the fuser; the ranker keeps its top_k in its order.
TEST(ArchonExecutor, CriticRankerFuser) {
  Fixture f;
  f.Add("a", Counter("a"));
  f.Add("b", Counter("b"));
  f.Add("c", Counter("c"));
  f.Add("judge", [](const ChatRequest& r) {
    const std::string p = LastUser(r);
    if (Contains(p, "strengths and its weaknesses"))
      return Answer("[1]\nStrengths: s1\nWeaknesses: w1\n[2]\nStrengths: s2\nWeaknesses: w2\n[3]\nStrengths: s3");
    if (Contains(p, "Rank the 3 responses")) return Answer("[3] > [1] > [2]");
    return Answer("fused");
  });
  auto r = f.Run(R"({"layers": [
      [{"type": "generator", "model": "a"}, {"type": "generator", "model": "b"}, {"type": "generator", "model": "c"}],
      [{"type": "critic", "model": "judge"}],
      [{"type": "ranker", "model": "judge", "top_k": 2}],
      [{"type": "fuser", "model": "judge"}]]})");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->answer, "fused");
  EXPECT_EQ(r->calls, 6);
  std::vector<int> per_layer(4, 0);
  for (const auto& t : r->trace) ++per_layer[t.layer];
  EXPECT_EQ(per_layer, (std::vector<int>{3, 1, 1, 1}));
  EXPECT_EQ(r->trace[3].component, "critic");
  EXPECT_EQ(r->trace[3].parse, "ok");
  EXPECT_EQ(r->trace[4].component, "ranker");
  EXPECT_EQ(r->trace[4].parse, "ok");
  const auto& seen = f.experts["judge"]->seen;
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_TRUE(Contains(LastUser(seen[1]), "Critique of [1]:\nStrengths: s1"));  // the ranker reads critiques
  const std::string fuser_system = seen[2].messages[0].content;
  EXPECT_TRUE(Contains(fuser_system, "[1]\nc#1\nCritique of [1]:\nStrengths: s3"));  // ranked first, with its critique
  EXPECT_TRUE(Contains(fuser_system, "[2]\na#1\nCritique of [2]:\nStrengths: s1"));
  EXPECT_FALSE(Contains(fuser_system, "b#1"));  // cut by top_k
}

TEST(ArchonExecutor, RankerParseFailureKeepsCandidates) {
  Fixture f;
  f.Add("a", Counter("a"));
  f.Add("judge", [](const ChatRequest&) { return Answer("They are all lovely."); });
  auto r = f.Run(R"({"layers": [[{"type": "generator", "model": "a", "samples": 3}],
                                 [{"type": "ranker", "model": "judge", "top_k": 1}]]})");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(Texts(*r), (std::vector<std::string>{"a#1", "a#2", "a#3"}));
  EXPECT_EQ(r->trace.back().parse, "failed: no candidate number in the ranking");
}

TEST(ArchonExecutor, RankerCallFailureKeepsCandidates) {
  Fixture f;
  f.Add("a", Counter("a"));
  f.Add("judge", [](const ChatRequest&) -> StatusOr<ChatResult> { return Status::Unavailable("down"); });
  auto r = f.Run(R"({"layers": [[{"type": "generator", "model": "a", "samples": 2}],
                                 [{"type": "ranker", "model": "judge", "top_k": 1}]]})");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(Texts(*r), (std::vector<std::string>{"a#1", "a#2"}));
  EXPECT_NE(r->trace.back().status.find("down"), std::string::npos);
}

TEST(ArchonExecutor, VerifierDropsIncorrectInTwoStages) {
  Fixture f;
  f.Add("a", [](const ChatRequest&) { return Answer("x"); });
  f.Add("g", Counter("g"));
  f.Add("v", [](const ChatRequest& r) {
    if (r.messages.size() == 1) return Answer("reasoning about " + LastUser(r).substr(LastUser(r).find("Response:")));
    // the verdict stage: the conversation holds the reasoning
    EXPECT_EQ(r.messages[1].role, "assistant");
    EXPECT_EQ(r.max_tokens, 32);
    return Answer(Contains(r.messages[1].content, "g#2") ? "Incorrect" : "Correct.");
  });
  auto r = f.Run(R"({"layers": [[{"type": "generator", "model": "g", "samples": 3}],
                                 [{"type": "verifier", "model": "v"}]]})");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(Texts(*r), (std::vector<std::string>{"g#1", "g#3"}));
  EXPECT_EQ(r->calls, 3 + 6);
  int reasoning = 0, verdict = 0;
  for (const auto& t : r->trace) {
    reasoning += t.component == "verifier:reasoning";
    verdict += t.component == "verifier:verdict";
  }
  EXPECT_EQ(reasoning, 3);
  EXPECT_EQ(verdict, 3);
  EXPECT_FALSE(r->final_state.candidates[0].verification.empty());
}

TEST(ArchonExecutor, VerifierKeepsAllWhenAllIncorrectAndUnreadableVerdicts) {
  Fixture f;
  f.Add("g", Counter("g"));
  f.Add("no", [](const ChatRequest& r) { return Answer(r.messages.size() == 1 ? "hmm" : "wrong"); });
  auto r = f.Run(
      R"({"layers": [[{"type": "generator", "model": "g", "samples": 2}], [{"type": "verifier", "model": "no"}]]})");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(Texts(*r), (std::vector<std::string>{"g#1", "g#2"}));
  EXPECT_EQ(r->trace.back().parse, "partial: every candidate judged incorrect; all kept");
  Fixture f2;
  f2.Add("g", Counter("g"));
  f2.Add("mute", [](const ChatRequest& r) { return Answer(r.messages.size() == 1 ? "hmm" : "I am unsure"); });
  r = f2.Run(
      R"({"layers": [[{"type": "generator", "model": "g", "samples": 2}], [{"type": "verifier", "model": "mute"}]]})");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(Texts(*r), (std::vector<std::string>{"g#1", "g#2"}));
  EXPECT_EQ(r->trace.back().parse, "failed: no verdict word");
}

TEST(ArchonExecutor, UnitTestsWrittenFirstAreEvaluatedLater) {
  Fixture f;
  f.Add("t", [](const ChatRequest& r) {
    const std::string p = LastUser(r);
    if (Contains(p, "Do not answer the instruction")) {
      EXPECT_TRUE(Contains(p, "Instruction:\nQ?"));
      return Answer("1. mentions apples\n2. mentions pears\n3. is short");
    }
    // evaluator: pass the tests whose fruit the response names
    EXPECT_TRUE(Contains(p, "1. mentions apples\n2. mentions pears\n3. is short"));
    const std::string resp = p.substr(p.find("Response:"), p.find("Unit tests:") - p.find("Response:"));
    return Answer(std::string("1: ") + (Contains(resp, "apples") ? "PASS" : "FAIL") +
                  "\n2: " + (Contains(resp, "pears") ? "PASS" : "FAIL") + "\n3: PASS");
  });
  auto n = std::make_shared<int>(0);
  f.Add("g", [n](const ChatRequest&) {
    const char* texts[] = {"nothing", "apples", "apples and pears"};
    return Answer(texts[(*n)++ % 3]);
  });
  auto r = f.Run(R"({"layers": [[{"type": "unit_test_generator", "model": "t"}],
                                 [{"type": "generator", "model": "g", "samples": 3}],
                                 [{"type": "unit_test_evaluator", "model": "t"}]]})");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(Texts(*r), (std::vector<std::string>{"apples and pears", "apples", "nothing"}));
  EXPECT_EQ(r->final_state.candidates[0].tests_passed, 3);
  EXPECT_EQ(r->final_state.unit_tests.size(), 3u);
}

TEST(ArchonExecutor, EvaluatorUnparseableKeepsOrder) {
  Fixture f;
  f.Add("t",
        [](const ChatRequest& r) { return Answer(Contains(LastUser(r), "Do not answer") ? "1. a\n2. b" : "no idea"); });
  f.Add("g", Counter("g"));
  auto r = f.Run(R"({"layers": [[{"type": "unit_test_generator", "model": "t"}],
                                 [{"type": "generator", "model": "g", "samples": 2}],
                                 [{"type": "unit_test_evaluator", "model": "t"}]]})");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(Texts(*r), (std::vector<std::string>{"g#1", "g#2"}));
  EXPECT_EQ(r->trace.back().parse, "failed: no test verdict found");
}

TEST(ArchonExecutor, VoteMajorityAndTies) {
  Fixture f;
  f.Add("a", [](const ChatRequest&) { return Answer("The answer is (B)."); });
  f.Add("b", [](const ChatRequest&) { return Answer("Answer: C"); });
  f.Add("c", [](const ChatRequest&) { return Answer("I think it is (C)"); });
  auto r = f.Run(R"({"layers": [[{"type": "generator", "model": "a"}, {"type": "generator", "model": "b"},
                                  {"type": "generator", "model": "c"}], [{"type": "vote"}]]})");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->answer, "Answer: C");  // the majority's earliest candidate
  EXPECT_EQ(r->calls, 3);
  EXPECT_EQ(r->trace.back().component, "vote");
  EXPECT_EQ(r->trace.back().expert, "");
  EXPECT_EQ(r->trace.back().parse, "ok: choice 'C' with 2 of 3 votes (0 candidates had no answer)");
  // a tie goes to the generator that came first
  r = f.Run(
      R"({"layers": [[{"type": "generator", "model": "b"}, {"type": "generator", "model": "a"}], [{"type": "vote"}]]})");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->answer, "Answer: C");
  r = f.Run(
      R"({"layers": [[{"type": "generator", "model": "a"}, {"type": "generator", "model": "b"}], [{"type": "vote"}]]})");
  EXPECT_EQ(r->answer, "The answer is (B).");
}

TEST(ArchonExecutor, VoteWithoutExtractableAnswersUsesTextThenKeeps) {
  Fixture f;
  f.Add("a", [](const ChatRequest&) { return Answer("Paris"); });
  f.Add("b", [](const ChatRequest&) { return Answer("  paris "); });
  f.Add("c", [](const ChatRequest&) { return Answer("Lyon"); });
  f.Add("e", [](const ChatRequest&) { return Answer(""); });
  auto r = f.Run(R"({"layers": [[{"type": "generator", "model": "c"}, {"type": "generator", "model": "a"},
                                  {"type": "generator", "model": "b"}], [{"type": "vote"}]]})");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->answer, "Paris");
  r = f.Run(R"({"layers": [[{"type": "generator", "model": "e", "samples": 2}], [{"type": "vote"}]]})");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->final_state.candidates.size(), 2u);
  EXPECT_EQ(r->trace.back().parse, "failed: no answer could be extracted; kept all");
}

TEST(ArchonExecutor, PredictedRanker) {
  Fixture f;
  f.Add("a", Counter("a"));
  f.Add("b", Counter("b"));
  f.Add("c", Counter("c"));
  const char* arch = R"({"layers": [[{"type": "generator", "model": "a"}, {"type": "generator", "model": "b"},
                                      {"type": "generator", "model": "c"}], [{"type": "predicted_ranker", "top_k": 2}]]})";
  ArchonRunOptions opt;
  std::string asked;
  opt.scorer = [&asked](std::string_view q, const std::vector<std::string>& experts) {
    asked = std::string(q);
    std::vector<double> s;
    for (const auto& e : experts) s.push_back(e == "b" ? 0.9 : e == "c" ? 0.5 : std::nan(""));
    return s;
  };
  auto r = f.Run(arch, opt);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(Texts(*r), (std::vector<std::string>{"b#1", "c#1"}));
  EXPECT_EQ(asked, "Q?");
  EXPECT_EQ(r->trace.back().parse, "partial: 1 candidates' experts unknown to the predictor");
  r = f.Run(arch);  // no scorer: order kept
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(Texts(*r), (std::vector<std::string>{"a#2", "b#2", "c#2"}));
  EXPECT_EQ(r->trace.back().parse, "failed: no scorer (no router model); order kept");
}

TEST(ArchonExecutor, FailedGeneratorDegradesAndAllFailedErrors) {
  Fixture f;
  f.Add("a", Counter("a"));
  f.Add("down", [](const ChatRequest&) -> StatusOr<ChatResult> { return Status::Unavailable("connection refused"); });
  auto r = f.Run(R"({"layers": [[{"type": "generator", "model": "down"}, {"type": "generator", "model": "a"}],
                                 [{"type": "generator", "model": "down"}]]})");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(Texts(*r), (std::vector<std::string>{"a#1"}));  // layer 2 failed entirely: layer 1's candidates pass on
  EXPECT_EQ(r->calls, 3);
  r = f.Run(R"({"layers": [[{"type": "generator", "model": "down", "samples": 2}]]})");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(r.status().message().find("connection refused"), std::string::npos);
}

TEST(ArchonExecutor, UnknownModelDegradesWithoutACall) {
  Fixture f;
  f.Add("a", Counter("a"));
  auto r = f.Run(R"({"layers": [[{"type": "generator", "model": "a"}, {"type": "generator", "model": "ghost"}]]})");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->calls, 1);
  ASSERT_EQ(r->trace.size(), 2u);
  const auto ghost = std::find_if(r->trace.begin(), r->trace.end(), [](const auto& t) { return t.expert == "ghost"; });
  ASSERT_NE(ghost, r->trace.end());
  EXPECT_NE(ghost->status.find("maps to no configured expert"), std::string::npos);
}

TEST(ArchonExecutor, ConcurrencyIsBounded) {
  Fixture f;
  f.Add("a", Counter("a"));
  ArchonRunOptions opt;
  opt.limits.max_concurrency = 3;
  auto r = f.Run(R"({"layers": [[{"type": "generator", "model": "a", "samples": 10}]]})", opt);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->calls, 10);
  EXPECT_EQ(*f.max_in_flight, 3);
  opt.limits.max_concurrency = 1;
  *f.max_in_flight = 0;
  r = f.Run(R"({"layers": [[{"type": "generator", "model": "a", "samples": 4}]]})", opt);
  EXPECT_EQ(*f.max_in_flight, 1);
}

TEST(ArchonExecutor, CallCapRefusesBeforeTheFirstCall) {
  Fixture f;
  f.Add("a", Counter("a"));
  ArchonRunOptions opt;
  opt.limits.max_calls = 4;
  auto r = f.Run(
      R"({"layers": [[{"type": "generator", "model": "a", "samples": 3}], [{"type": "verifier", "model": "a"}]]})",
      opt);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(r.status().message().find("up to 9 inference calls, over the cap of 4"), std::string::npos);
  EXPECT_TRUE(f.experts["a"]->seen.empty());
  opt.limits.max_calls = 9;
  EXPECT_TRUE(
      f.Run(
           R"({"layers": [[{"type": "generator", "model": "a", "samples": 3}], [{"type": "verifier", "model": "a"}]]})",
           opt)
          .ok());
}

TEST(ArchonExecutor, CostCapStopsCleanlyBeforeALayer) {
  Fixture f;
  f.Add("a", Counter("a"));
  f.configs["a"].usd_per_mtok_in = 1;
  f.configs["a"].usd_per_mtok_out = 1;
  ArchonRunOptions opt;
  // layer 1: 2 calls of (prompt bound ~ 100 tokens + 10 out) ~ $0.0002 each; layer 2 (a fuser reading both) more.
  opt.limits.max_cost_usd = 0.0025;  // the fake charges $0.001 per call, so layer 2 would pass the cap
  auto r = f.Run(R"({"layers": [[{"type": "generator", "model": "a", "samples": 2, "max_tokens": 10}],
                                 [{"type": "fuser", "model": "a", "max_tokens": 10}]]})",
                 opt);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->calls, 2);
  EXPECT_EQ(r->answer, "a#1");
  EXPECT_EQ(r->stop_reason.rfind("cost cap: layer 2 may cost up to $", 0), 0u) << r->stop_reason;
  opt.limits.max_cost_usd = 1e-9;  // not even layer 1 fits: nothing to answer with
  r = f.Run(R"({"layers": [[{"type": "generator", "model": "a", "max_tokens": 10}]]})", opt);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kResourceExhausted);
}

// The bound counts exactly the calls a run makes when nothing is dropped, and bounds the priced cost.
TEST(ArchonExecutor, ArchitectureBoundCoversTheRun) {
  Fixture f;
  for (const char* n : {"a", "b"}) {
    f.Add(n, [](const ChatRequest& r) {
      ChatResult res = Answer(std::string(static_cast<size_t>(*r.max_tokens), 'z'));  // the longest allowed answer
      res.usage.prompt_tokens = PromptTokenBound(r);
      res.usage.completion_tokens = *r.max_tokens;
      res.cost_usd = (res.usage.prompt_tokens * 3.0 + res.usage.completion_tokens * 15.0) / 1e6;
      return res;
    });
    f.configs[n].usd_per_mtok_in = 3;
    f.configs[n].usd_per_mtok_out = 15;
  }
  const char* arch = R"({"layers": [[{"type": "unit_test_generator", "model": "a", "max_tokens": 50}],
      [{"type": "generator", "model": "a", "samples": 2, "max_tokens": 40}, {"type": "generator", "model": "b", "max_tokens": 40}],
      [{"type": "critic", "model": "b", "max_tokens": 60}], [{"type": "verifier", "model": "a", "max_tokens": 30}],
      [{"type": "ranker", "model": "b", "top_k": 2, "max_tokens": 20}], [{"type": "unit_test_evaluator", "model": "a", "max_tokens": 20}],
      [{"type": "fuser", "model": "b", "samples": 2, "max_tokens": 40}]]})";
  ParseResult p = ParseArchitecture(arch, "t.json");
  ASSERT_TRUE(p.errors.empty());
  ChatRequest req;
  req.messages = {{.role = "user", .content = "What is the capital of France?"}};
  ArchitectureCost b = ArchitectureBound(p.architecture, f.Lookup(), req);
  // 1 + 3 + 1 + 2x3 + 1 + 3 (ranker parse fails on 'zzz', so all 3 reach the evaluator) + 2
  EXPECT_EQ(b.calls, 17);
  auto r = RunArchitecture(p.architecture, f.Lookup(), req, {});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->calls, b.calls);
  EXPECT_GT(r->cost_usd, 0);
  EXPECT_LE(r->cost_usd, b.cost_usd);
}

TEST(ArchonExecutor, FinalSingleCallStreams) {
  Fixture f;
  f.Add("a", Counter("a"));
  f.Add("f", [](const ChatRequest&) { return Answer("the fused answer"); });
  ArchonRunOptions opt;
  std::string streamed;
  opt.final_sink = [&streamed](const StreamDelta& d) {
    streamed += d.content;
    return true;
  };
  auto r = f.Run(
      R"({"layers": [[{"type": "generator", "model": "a", "samples": 2}], [{"type": "fuser", "model": "f"}]]})", opt);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->streamed);
  EXPECT_EQ(streamed, "the fused answer");
  EXPECT_EQ(r->answer, streamed);
  streamed.clear();
  r = f.Run(R"({"layers": [[{"type": "generator", "model": "a", "samples": 2}], [{"type": "vote"}]]})", opt);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->streamed);  // the last layer is not one call: the answer comes whole, in `done`
  EXPECT_EQ(streamed, "");
}

TEST(ArchonExecutor, DoneRunsOnTheLoopNotInline) {
  Fixture f;
  f.Add("a", Counter("a"));
  ParseResult p = ParseArchitecture(R"({"layers": [[{"type": "generator", "model": "a"}]]})", "t.json");
  boost::asio::io_context loop;
  bool done = false;
  ChatRequest req;
  req.messages = {{.role = "user", .content = "Q?"}};
  RunArchitectureAsync(p.architecture, f.Lookup(), req, AsyncContext{&loop, nullptr}, {},
                       [&done](StatusOr<ArchonResult> r) {
                         EXPECT_TRUE(r.ok());
                         done = true;
                       });
  EXPECT_FALSE(done);
  loop.run();
  EXPECT_TRUE(done);
}

}  // namespace
}  // namespace baton::archon
