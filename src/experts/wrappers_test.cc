// Tests build configs with designated initializers that leave most fields at their defaults.
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

#include <atomic>
#include <chrono>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "baton/expert.h"

namespace baton {
namespace {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

// A scripted backend: answers each call with the next scripted status (OK when the script is empty), optionally
// streams two deltas first and sleeps. Counts calls and the most calls in flight at once.
class FakeExpert : public ExpertBackend {
 public:
  explicit FakeExpert(std::deque<Status> script = {}, milliseconds sleep = milliseconds(0), bool stream_first = false)
      : script_(std::move(script)), sleep_(sleep), stream_first_(stream_first) {}
  const std::string& name() const override { return name_; }
  StatusOr<ChatResult> Complete(const ChatRequest& request, const StreamSink* sink) override {
    const int now = ++in_flight_;
    int seen = max_in_flight_.load();
    while (now > seen && !max_in_flight_.compare_exchange_weak(seen, now)) {
    }
    ++calls_;
    last_timeout_ = request.timeout;
    Status s;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!script_.empty()) {
        s = script_.front();
        script_.pop_front();
      }
    }
    if (stream_first_ && sink != nullptr) (*sink)("he");
    std::this_thread::sleep_for(sleep_);
    --in_flight_;
    if (!s.ok()) return s;
    if (sink != nullptr && !stream_first_) (*sink)("hello");
    ChatResult r;
    r.content = "hello";
    r.usage = {.prompt_tokens = 10, .completion_tokens = 3};
    r.cost_usd = 0.25;
    return r;
  }
  std::atomic<int> calls_{0};
  std::atomic<int> in_flight_{0};
  std::atomic<int> max_in_flight_{0};
  std::atomic<milliseconds> last_timeout_{milliseconds(0)};

 private:
  std::string name_ = "fake";
  std::mutex mu_;
  std::deque<Status> script_;
  milliseconds sleep_;
  bool stream_first_;
};

ChatRequest Req(milliseconds timeout = milliseconds(5'000)) {
  ChatRequest r;
  r.messages = {{"user", "hi"}};
  r.timeout = timeout;
  return r;
}

const RetryPolicy kFast{.max_retries = 3, .initial_backoff = milliseconds(5), .max_backoff = milliseconds(20)};

TEST(RetryingExpertTest, RetriesUnavailableAndResourceExhaustedThenSucceeds) {
  auto fake =
      std::make_unique<FakeExpert>(std::deque<Status>{Status::Unavailable("down"), Status::ResourceExhausted("429")});
  FakeExpert* f = fake.get();
  RetryingExpert e(std::move(fake), kFast);
  StatusOr<ChatResult> r = e.Complete(Req());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(f->calls_, 3);
  EXPECT_EQ(r->content, "hello");
}

TEST(RetryingExpertTest, GivesUpAfterMaxRetries) {
  std::deque<Status> script(10, Status::Unavailable("down"));
  auto fake = std::make_unique<FakeExpert>(script);
  FakeExpert* f = fake.get();
  RetryingExpert e(std::move(fake), kFast);
  StatusOr<ChatResult> r = e.Complete(Req());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(f->calls_, 4);
  EXPECT_NE(r.status().message().find("after 4 attempts"), std::string::npos) << r.status().message();
}

TEST(RetryingExpertTest, DoesNotRetryOtherErrors) {
  auto fake =
      std::make_unique<FakeExpert>(std::deque<Status>{Status::InvalidArgument("bad"), Status::DeadlineExceeded("x")});
  FakeExpert* f = fake.get();
  RetryingExpert e(std::move(fake), kFast);
  EXPECT_EQ(e.Complete(Req()).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(e.Complete(Req()).status().code(), StatusCode::kDeadlineExceeded);
  EXPECT_EQ(f->calls_, 2);
}

TEST(RetryingExpertTest, NeverRetriesAfterStreamingStarted) {
  std::deque<Status> script(5, Status::Unavailable("reset mid-stream"));
  auto fake = std::make_unique<FakeExpert>(script, milliseconds(0), /*stream_first=*/true);
  FakeExpert* f = fake.get();
  RetryingExpert e(std::move(fake), kFast);
  std::string got;
  StreamSink sink = [&](std::string_view d) {
    got += d;
    return true;
  };
  StatusOr<ChatResult> r = e.Complete(Req(), &sink);
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(f->calls_, 1);
  EXPECT_EQ(got, "he");
}

TEST(RetryingExpertTest, RespectsTheOverallTimeout) {
  std::deque<Status> script(1000, Status::Unavailable("down"));
  auto fake = std::make_unique<FakeExpert>(script, milliseconds(20));
  RetryingExpert e(
      std::move(fake),
      RetryPolicy{.max_retries = 1000, .initial_backoff = milliseconds(10), .max_backoff = milliseconds(40)});
  const auto start = Clock::now();
  StatusOr<ChatResult> r = e.Complete(Req(milliseconds(300)));
  const auto took = std::chrono::duration_cast<milliseconds>(Clock::now() - start);
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_LT(took.count(), 450);
}

TEST(RetryingExpertTest, PassesTheRemainingTimeToEachAttempt) {
  auto fake = std::make_unique<FakeExpert>(std::deque<Status>{Status::Unavailable("down")}, milliseconds(50));
  FakeExpert* f = fake.get();
  RetryingExpert e(std::move(fake), kFast);
  ASSERT_TRUE(e.Complete(Req(milliseconds(1'000))).ok());
  EXPECT_LE(f->last_timeout_.load().count(), 950);
}

TEST(ExpertConcurrencyTest, CapsCallsInFlight) {
  auto fake = std::make_unique<FakeExpert>(std::deque<Status>{}, milliseconds(30));
  FakeExpert* f = fake.get();
  ConcurrencyLimitedExpert e(std::move(fake), 2);
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&] {
      if (e.Complete(Req()).ok()) ++ok;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok, 8);
  EXPECT_EQ(f->max_in_flight_, 2);
  EXPECT_EQ(e.in_flight(), 0);
}

TEST(ExpertConcurrencyTest, WaitersGiveUpAtTheirTimeoutWithResourceExhausted) {
  auto fake = std::make_unique<FakeExpert>(std::deque<Status>{}, milliseconds(400));
  ConcurrencyLimitedExpert e(std::move(fake), 1);
  std::thread holder([&] { EXPECT_TRUE(e.Complete(Req()).ok()); });
  std::this_thread::sleep_for(milliseconds(50));
  const auto start = Clock::now();
  StatusOr<ChatResult> r = e.Complete(Req(milliseconds(100)));
  const auto took = std::chrono::duration_cast<milliseconds>(Clock::now() - start);
  holder.join();
  EXPECT_EQ(r.status().code(), StatusCode::kResourceExhausted);
  EXPECT_GE(took.count(), 90);
  EXPECT_LT(took.count(), 300);
}

TEST(ExpertMeterTest, CountsCallsErrorsTokensCostAndLatency) {
  auto meter = std::make_shared<ExpertMeter>();
  MeteredExpert e(
      std::make_unique<FakeExpert>(std::deque<Status>{Status::Ok(), Status::ResourceExhausted("429")}, milliseconds(5)),
      meter);
  EXPECT_TRUE(e.Complete(Req()).ok());
  EXPECT_FALSE(e.Complete(Req()).ok());
  EXPECT_TRUE(e.Complete(Req()).ok());
  ExpertMeter::Snapshot s = meter->Read();
  EXPECT_EQ(s.calls, 3);
  EXPECT_EQ(s.errors, 1);
  EXPECT_EQ(s.errors_by_code[static_cast<int>(StatusCode::kResourceExhausted)], 1);
  EXPECT_EQ(s.in_flight, 0);
  EXPECT_EQ(s.prompt_tokens, 20);
  EXPECT_EQ(s.completion_tokens, 6);
  EXPECT_NEAR(s.cost_usd, 0.5, 1e-9);
  EXPECT_GE(s.latency_ms_sum, 15.0);
  EXPECT_GE(s.latency_ms_max, 5.0);
}

TEST(ExpertRegistryTest, UnknownKindNamesTheValidOnes) {
  ExpertConfig c{.name = "x", .kind = "bogus"};
  auto r = MakeExpert(c);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("openai, replay, llamacpp"), std::string::npos) << r.status().message();
}

TEST(ExpertRegistryTest, MissingApiKeyVariableIsAStartupError) {
  ExpertConfig c{.name = "x",
                 .kind = "openai",
                 .base_url = "http://127.0.0.1:9/v1",
                 .api_key_env = "BATON_TEST_SURELY_UNSET_KEY_VAR"};
  auto r = MakeExpert(c);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(r.status().message().find("BATON_TEST_SURELY_UNSET_KEY_VAR"), std::string::npos);
}

TEST(ExpertRegistryTest, LlamaCppWithoutLlamaExplainsHowToBuildIt) {
  if (HaveLlamaCpp()) GTEST_SKIP() << "this build has llama.cpp; see llama_server_test.cc";
  auto r = MakeExpert(ExpertConfig{.name = "x", .kind = "llamacpp", .gguf_path = "/nonexistent.gguf"});
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(r.status().message().find("scripts/build_llama.sh"), std::string::npos);
}

}  // namespace
}  // namespace baton
