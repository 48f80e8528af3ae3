// Integration tests against real llama-server processes serving a tiny random-weight GGUF generated at test time, and
// the in-process llamacpp backend on the same file. The output is gibberish: these test structure and accounting.
// Tests build configs with designated initializers that leave most fields at their defaults.
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "baton/expert.h"
#include "experts/backends.h"
#include "experts/llama_server_process.h"
#include "experts/loop_thread.h"

namespace baton {
namespace {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

using testing::StartLlamaServer;
using Server = testing::LlamaServerProcess;

ChatRequest Ask(int64_t max_tokens, milliseconds timeout = milliseconds(30'000)) {
  ChatRequest r;
  r.messages = {{"system", "You are terse."}, {"user", "Say something about the sea."}};
  r.max_tokens = max_tokens;
  r.temperature = 0.0;
  r.timeout = timeout;
  return r;
}

ExpertConfig OpenAiConfig(const Server& s, const std::string& name) {
  return ExpertConfig{.name = name,
                      .kind = "openai",
                      .usd_per_mtok_in = 1.5,
                      .usd_per_mtok_out = 6.0,
                      .base_url = s.url(),
                      .model = "tiny",
                      .max_retries = 2,
                      .max_concurrency = 0};
}

class LlamaServerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!HaveLlamaCpp()) return;
    char tmpl[] = "/tmp/baton-llama-test.XXXXXX";
    dir_ = new std::string(mkdtemp(tmpl));
    gguf_ = new std::string(*dir_ + "/tiny.gguf");
    const Status s = experts::WriteTinyGguf(LlamaCppPrefix() + "/share/baton/ggml-vocab-llama-spm.gguf", *gguf_, 7);
    ASSERT_TRUE(s.ok()) << s.ToString();
    servers_ = new std::vector<std::unique_ptr<Server>>();
    for (int i = 0; i < 2; ++i)
      servers_->push_back(StartLlamaServer(*gguf_, *dir_ + "/server" + std::to_string(i) + ".log"));
  }
  static void TearDownTestSuite() {
    delete servers_;  // kills every server
    servers_ = nullptr;
    if (dir_ != nullptr) std::filesystem::remove_all(*dir_);
    delete dir_;
    delete gguf_;
    dir_ = gguf_ = nullptr;
  }
  void SetUp() override {
    if (!HaveLlamaCpp()) {
      GTEST_SKIP() << "baton was built without llama.cpp (run scripts/build_llama.sh and configure with "
                      "-DBATON_LLAMA_PREFIX=<its prefix>)";
    }
    for (const auto& s : *servers_) ASSERT_NE(s, nullptr) << "a llama-server did not start";
  }
  static std::unique_ptr<ExpertBackend> OpenAi(const Server& s, const std::string& name = "tiny") {
    auto e = MakeExpert(OpenAiConfig(s, name));
    EXPECT_TRUE(e.ok()) << e.status().ToString();
    return std::move(e).value();
  }
  static std::string* dir_;
  static std::string* gguf_;
  static std::vector<std::unique_ptr<Server>>* servers_;
};
std::string* LlamaServerTest::dir_ = nullptr;
std::string* LlamaServerTest::gguf_ = nullptr;
std::vector<std::unique_ptr<Server>>* LlamaServerTest::servers_ = nullptr;

// The openai backend itself (MakeOpenAiExpert, no wrappers), each test run twice: through Complete() (/Blocking) and
// through CompleteAsync() on one testing::LoopThread (/Async). The suite starts servers of its own.
class LlamaServerCallPathTest : public LlamaServerTest, public ::testing::WithParamInterface<testing::CallPath> {
 protected:
  static std::unique_ptr<ExpertBackend> BareOpenAi(const Server& s) {
    auto e = experts::MakeOpenAiExpert(OpenAiConfig(s, "tiny"));
    EXPECT_TRUE(e.ok()) << e.status().ToString();
    return std::move(e).value();
  }
  testing::Caller caller_{GetParam()};
};
INSTANTIATE_TEST_SUITE_P(BlockingAndAsync, LlamaServerCallPathTest, testing::BothCallPaths(), testing::CallPathName);

TEST_P(LlamaServerCallPathTest, CompletionHasUsageBasedCostAndRespectsMaxTokens) {
  auto e = BareOpenAi(*(*servers_)[0]);
  for (int64_t max_tokens : {16, 3}) {
    const auto start = Clock::now();
    StatusOr<ChatResult> r = caller_.Call(*e, Ask(max_tokens));
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    const double ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
    std::printf("[ measured ] llama-server (%s): %lld tokens in %.0f ms\n", caller_.name(),
                static_cast<long long>(r->usage.completion_tokens), ms);
    EXPECT_GT(r->usage.prompt_tokens, 0);
    EXPECT_GT(r->usage.completion_tokens, 0);
    EXPECT_LE(r->usage.completion_tokens, max_tokens);
    EXPECT_NEAR(r->cost_usd, (r->usage.prompt_tokens * 1.5 + r->usage.completion_tokens * 6.0) / 1e6, 1e-12);
    EXPECT_GT(r->latency_ms, 0);
  }
}

TEST_P(LlamaServerCallPathTest, StreamingDeliversSeveralDeltasThatAddUpToTheContent) {
  auto e = BareOpenAi(*(*servers_)[1]);
  testing::CallOutcome out = caller_.Stream(*e, Ask(24));
  ASSERT_TRUE(out.result.ok()) << out.result.status().ToString();
  const ChatResult& r = *out.result;
  EXPECT_GE(out.pieces.size(), 3u);
  std::string joined;
  for (const auto& d : out.pieces) joined += d;
  EXPECT_EQ(joined, r.content);
  EXPECT_GT(r.usage.prompt_tokens, 0);
  EXPECT_GT(r.usage.completion_tokens, 0);
  EXPECT_LE(r.usage.completion_tokens, 24);
  EXPECT_GT(r.cost_usd, 0);
  EXPECT_NEAR(r.cost_usd, (r.usage.prompt_tokens * 1.5 + r.usage.completion_tokens * 6.0) / 1e6, 1e-12);
}

TEST_F(LlamaServerTest, InProcessLlamaCppOnTheSameGguf) {
  auto e = MakeExpert(ExpertConfig{.name = "local",
                                   .kind = "llamacpp",
                                   .usd_per_mtok_in = 0.1,
                                   .usd_per_mtok_out = 0.2,
                                   .gguf_path = *gguf_,
                                   .n_ctx = 512});
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  const auto start = Clock::now();
  StatusOr<ChatResult> r = (*e)->Complete(Ask(32));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const double ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
  std::printf("[ measured ] in-process llamacpp: %lld tokens in %.0f ms\n",
              static_cast<long long>(r->usage.completion_tokens), ms);
  EXPECT_GT(r->usage.prompt_tokens, 0);
  EXPECT_GT(r->usage.completion_tokens, 0);
  EXPECT_LE(r->usage.completion_tokens, 32);
  EXPECT_NEAR(r->cost_usd, (r->usage.prompt_tokens * 0.1 + r->usage.completion_tokens * 0.2) / 1e6, 1e-12);
  // Greedy is deterministic; streaming yields the same text piece by piece.
  std::string joined;
  int pieces = 0;
  StreamSink sink = [&](std::string_view d) {
    joined += d;
    ++pieces;
    return true;
  };
  StatusOr<ChatResult> s = (*e)->Complete(Ask(32), &sink);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->content, r->content);
  EXPECT_EQ(joined, s->content);
  EXPECT_GE(pieces, 2);
  EXPECT_EQ(s->usage.completion_tokens, r->usage.completion_tokens);
}

// Counts calls in flight through it (for the concurrency test).
class InFlightCounter : public ExpertBackend {
 public:
  InFlightCounter(std::unique_ptr<ExpertBackend> inner, std::atomic<int>* now, std::atomic<int>* max)
      : inner_(std::move(inner)), now_(now), max_(max) {}
  const std::string& name() const override { return inner_->name(); }
  StatusOr<ChatResult> Complete(const ChatRequest& request, const StreamSink* sink) override {
    int n = ++*now_;
    int seen = max_->load();
    while (n > seen && !max_->compare_exchange_weak(seen, n)) {
    }
    auto r = inner_->Complete(request, sink);
    --*now_;
    return r;
  }

 private:
  std::unique_ptr<ExpertBackend> inner_;
  std::atomic<int>* now_;
  std::atomic<int>* max_;
};

TEST_F(LlamaServerTest, ConcurrencyLimitHolds) {
  std::atomic<int> now{0}, max{0};
  ConcurrencyLimitedExpert e(std::make_unique<InFlightCounter>(OpenAi(*(*servers_)[0]), &now, &max), 2);
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int i = 0; i < 6; ++i) {
    threads.emplace_back([&] {
      if (e.Complete(Ask(8)).ok()) ++ok;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok, 6);
  EXPECT_EQ(max, 2);
}

TEST_F(LlamaServerTest, StalledServerTimesOut) {
  std::unique_ptr<Server> stalled = StartLlamaServer(*gguf_, *dir_ + "/stalled.log");
  ASSERT_NE(stalled, nullptr);
  kill(-stalled->pid, SIGSTOP);  // accepts connections (the kernel does) but never answers
  auto e = OpenAi(*stalled);
  const auto start = Clock::now();
  StatusOr<ChatResult> r = e->Complete(Ask(8, milliseconds(300)));
  const auto took = Clock::now() - start;
  kill(-stalled->pid, SIGCONT);
  EXPECT_EQ(r.status().code(), StatusCode::kDeadlineExceeded) << r.status().ToString();
  EXPECT_LT(took, milliseconds(2'000));
}

TEST_F(LlamaServerTest, ServerKilledUnderLoadFailsItsCallsAndSparesTheOthers) {
  std::unique_ptr<Server> victim = StartLlamaServer(*gguf_, *dir_ + "/victim.log");
  ASSERT_NE(victim, nullptr);
  auto doomed = OpenAi(*victim, "doomed");
  auto healthy = OpenAi(*(*servers_)[1], "healthy");
  std::atomic<bool> stop{false};
  std::atomic<int> doomed_ok{0}, doomed_unavailable{0}, doomed_other{0}, healthy_ok{0}, healthy_failed{0};
  std::atomic<int64_t> longest_ms{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 3; ++i) {
    threads.emplace_back([&, i] {
      while (!stop) {
        const auto start = Clock::now();
        StreamSink sink = [](std::string_view) { return true; };
        StatusOr<ChatResult> r = doomed->Complete(Ask(48, milliseconds(20'000)), i % 2 == 0 ? &sink : nullptr);
        const auto ms = std::chrono::duration_cast<milliseconds>(Clock::now() - start).count();
        int64_t seen = longest_ms.load();
        while (ms > seen && !longest_ms.compare_exchange_weak(seen, ms)) {
        }
        if (r.ok()) {
          ++doomed_ok;
        } else if (r.status().code() == StatusCode::kUnavailable) {
          ++doomed_unavailable;
        } else {
          ++doomed_other;
          ADD_FAILURE() << r.status().ToString();
        }
      }
    });
  }
  threads.emplace_back([&] {
    while (!stop) (healthy->Complete(Ask(8)).ok() ? healthy_ok : healthy_failed)++;
  });
  std::this_thread::sleep_for(milliseconds(400));
  victim->Kill();
  std::this_thread::sleep_for(milliseconds(600));
  stop = true;
  for (auto& t : threads) t.join();
  std::printf("[ measured ] killed server: %d ok, %d unavailable, longest call %lld ms; survivor: %d ok\n",
              doomed_ok.load(), doomed_unavailable.load(), static_cast<long long>(longest_ms.load()),
              healthy_ok.load());
  EXPECT_GT(doomed_unavailable, 0);
  EXPECT_EQ(doomed_other, 0);
  EXPECT_LT(longest_ms, 5'000);  // retries against a dead server give up quickly, no hang
  EXPECT_GT(healthy_ok, 0);
  EXPECT_EQ(healthy_failed, 0);
}

}  // namespace
}  // namespace baton
