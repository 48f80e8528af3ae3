// Tests build configs with designated initializers that leave most fields at their defaults.
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

#include <atomic>
#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>

#include "baton/expert.h"
#include "experts/loop_thread.h"

namespace baton {
namespace {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

namespace net = boost::asio;

// A scripted backend: answers each call with the next scripted status (OK when the script is empty), optionally
// streams two deltas first and sleeps. Counts calls and the most calls in flight at once, and notes the threads it
// ran on and the user message of each call in the order the calls started. With `async`, CompleteAsync does the same
// on the loop without blocking (a post, then a timer for the sleep); without, it keeps the default (Complete on the
// blocking pool).
class FakeExpert : public ExpertBackend {
 public:
  explicit FakeExpert(std::deque<Status> script = {}, milliseconds sleep = milliseconds(0), bool stream_first = false,
                      bool async = false)
      : script_(std::move(script)), sleep_(sleep), stream_first_(stream_first), async_(async) {}
  const std::string& name() const override { return name_; }
  StatusOr<ChatResult> Complete(const ChatRequest& request, const StreamSink* sink) override {
    const Status s = Begin(request);
    if (stream_first_ && sink != nullptr) (*sink)("he");
    std::this_thread::sleep_for(sleep_);
    return End(s, sink);
  }
  void CompleteAsync(ChatRequest request, StreamSink sink, const AsyncContext& ctx, CompletionHandler done) override {
    if (!async_) return ExpertBackend::CompleteAsync(std::move(request), std::move(sink), ctx, std::move(done));
    const Status s = Begin(request);
    auto timer = std::make_shared<net::steady_timer>(*ctx.loop, sleep_);
    net::post(*ctx.loop, [this, s, sink = std::move(sink), done = std::move(done), timer]() mutable {
      Note();
      if (stream_first_ && sink) sink("he");
      timer->async_wait([this, s, sink = std::move(sink), done = std::move(done), timer](auto) {
        Note();
        done(End(s, sink ? &sink : nullptr));
      });
    });
  }
  std::set<std::thread::id> threads() {
    std::lock_guard<std::mutex> lock(mu_);
    return threads_;
  }
  std::vector<std::string> started() {
    std::lock_guard<std::mutex> lock(mu_);
    return started_;
  }
  std::atomic<int> calls_{0};
  std::atomic<int> in_flight_{0};
  std::atomic<int> max_in_flight_{0};
  std::atomic<milliseconds> last_timeout_{milliseconds(0)};

 private:
  // Accounts the start of a call and returns its scripted status.
  Status Begin(const ChatRequest& request) {
    const int now = ++in_flight_;
    int seen = max_in_flight_.load();
    while (now > seen && !max_in_flight_.compare_exchange_weak(seen, now)) {
    }
    ++calls_;
    last_timeout_ = request.timeout;
    std::lock_guard<std::mutex> lock(mu_);
    threads_.insert(std::this_thread::get_id());
    started_.push_back(request.messages.back().content);
    if (script_.empty()) return Status::Ok();
    Status s = script_.front();
    script_.pop_front();
    return s;
  }
  StatusOr<ChatResult> End(const Status& s, const StreamSink* sink) {
    --in_flight_;
    if (!s.ok()) return s;
    if (sink != nullptr && *sink && !stream_first_) (*sink)("hello");
    ChatResult r;
    r.content = "hello";
    r.usage = {.prompt_tokens = 10, .completion_tokens = 3};
    r.cost_usd = 0.25;
    return r;
  }
  void Note() {
    std::lock_guard<std::mutex> lock(mu_);
    threads_.insert(std::this_thread::get_id());
  }

  std::string name_ = "fake";
  std::mutex mu_;
  std::deque<Status> script_;          // guarded by mu_
  std::set<std::thread::id> threads_;  // guarded by mu_
  std::vector<std::string> started_;   // guarded by mu_
  milliseconds sleep_;
  bool stream_first_;
  bool async_;
};

// A FakeExpert that answers CompleteAsync on the loop without blocking (its Complete still blocks).
std::unique_ptr<FakeExpert> AsyncFake(std::deque<Status> script = {}, milliseconds sleep = milliseconds(0),
                                      bool stream_first = false) {
  return std::make_unique<FakeExpert>(std::move(script), sleep, stream_first, /*async=*/true);
}

// Runs `loop` on the calling thread until `finished()` holds, for at most 20 s.
void RunUntil(net::io_context& loop, const std::function<bool()>& finished) {
  auto guard = net::make_work_guard(loop);
  const auto limit = Clock::now() + std::chrono::seconds(20);
  while (!finished() && Clock::now() < limit) loop.run_one_for(milliseconds(10));
}

// Waits on the calling thread until `finished()` holds, for at most 20 s.
void WaitUntil(const std::function<bool()>& finished) {
  const auto limit = Clock::now() + std::chrono::seconds(20);
  while (!finished() && Clock::now() < limit) std::this_thread::sleep_for(milliseconds(1));
}

// An event loop run by a thread of its own, as the gateway has them; destruction lets the work queued finish (unlike
// testing::LoopThread's, which abandons it).
class LoopThread {
 public:
  LoopThread() : guard_(net::make_work_guard(loop_)), thread_([this] { loop_.run(); }) {}
  ~LoopThread() {
    guard_.reset();
    thread_.join();
  }
  net::io_context& loop() { return loop_; }
  AsyncContext ctx() { return {.loop = &loop_}; }

 private:
  net::io_context loop_;
  net::executor_work_guard<net::io_context::executor_type> guard_;
  std::thread thread_;
};

ChatRequest Req(milliseconds timeout = milliseconds(5'000), std::string text = "hi") {
  ChatRequest r;
  r.messages = {{"user", std::move(text)}};
  r.timeout = timeout;
  return r;
}

const RetryPolicy kFast{.max_retries = 3, .initial_backoff = milliseconds(5), .max_backoff = milliseconds(20)};

// ---------------------------------------------------------------------------------------------------------------------
// What Complete and CompleteAsync do alike, each test run twice: through Complete() on the test's thread (/Blocking)
// and through CompleteAsync() on a testing::LoopThread (/Async), over fakes that answer CompleteAsync on the loop
// without blocking. RunAsync also checks that the sink and the handler run on the loop's thread, that the handler never
// runs inside CompleteAsync, and that no piece follows it.

class RetryingExpertTest : public testing::CallPathTest {};
INSTANTIATE_TEST_SUITE_P(BlockingAndAsync, RetryingExpertTest, testing::BothCallPaths(), testing::CallPathName);

TEST_P(RetryingExpertTest, RetriesUnavailableAndResourceExhaustedThenSucceeds) {
  auto fake = AsyncFake({Status::Unavailable("down"), Status::ResourceExhausted("429")});
  FakeExpert* f = fake.get();
  RetryingExpert e(std::move(fake), kFast);
  StatusOr<ChatResult> r = caller_.Call(e, Req());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->content, "hello");
  EXPECT_EQ(f->calls_, 3);
  // Every attempt, and every wait between them, on the caller's thread (blocking) or the loop's (async).
  EXPECT_EQ(f->threads(), std::set<std::thread::id>{caller_.call_thread()});
}

TEST_P(RetryingExpertTest, GivesUpAfterMaxRetries) {
  auto fake = AsyncFake(std::deque<Status>(10, Status::Unavailable("down")));
  FakeExpert* f = fake.get();
  RetryingExpert e(std::move(fake), kFast);
  StatusOr<ChatResult> r = caller_.Call(e, Req());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(f->calls_, 4);
  EXPECT_NE(r.status().message().find("after 4 attempts"), std::string::npos) << r.status().message();
}

TEST_P(RetryingExpertTest, DoesNotRetryOtherErrors) {
  auto fake = AsyncFake({Status::InvalidArgument("bad"), Status::DeadlineExceeded("x")});
  FakeExpert* f = fake.get();
  RetryingExpert e(std::move(fake), kFast);
  EXPECT_EQ(caller_.Call(e, Req()).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(caller_.Call(e, Req()).status().code(), StatusCode::kDeadlineExceeded);
  EXPECT_EQ(f->calls_, 2);
}

TEST_P(RetryingExpertTest, NeverRetriesAfterStreamingStarted) {
  auto fake = AsyncFake(std::deque<Status>(5, Status::Unavailable("reset mid-stream")), milliseconds(0),
                        /*stream_first=*/true);
  FakeExpert* f = fake.get();
  RetryingExpert e(std::move(fake), kFast);
  testing::CallOutcome out = caller_.Stream(e, Req());
  EXPECT_EQ(out.result.status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(f->calls_, 1);
  EXPECT_EQ(out.pieces, std::vector<std::string>{"he"});
}

TEST_P(RetryingExpertTest, RespectsTheOverallTimeout) {
  auto fake = AsyncFake(std::deque<Status>(1000, Status::Unavailable("down")), milliseconds(20));
  FakeExpert* f = fake.get();
  RetryingExpert e(
      std::move(fake),
      RetryPolicy{.max_retries = 1000, .initial_backoff = milliseconds(10), .max_backoff = milliseconds(40)});
  const auto start = Clock::now();
  StatusOr<ChatResult> r = caller_.Call(e, Req(milliseconds(300)));
  const auto took = std::chrono::duration_cast<milliseconds>(Clock::now() - start);
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_GT(f->calls_, 1);
  EXPECT_LT(took.count(), 450);
  EXPECT_LE(f->last_timeout_.load().count(), 300 - 20);  // each attempt gets only the time left
}

TEST_P(RetryingExpertTest, PassesTheRemainingTimeToEachAttempt) {
  auto fake = AsyncFake({Status::Unavailable("down")}, milliseconds(50));
  FakeExpert* f = fake.get();
  RetryingExpert e(std::move(fake), kFast);
  ASSERT_TRUE(caller_.Call(e, Req(milliseconds(1'000))).ok());
  EXPECT_LE(f->last_timeout_.load().count(), 950);
}

// A caller that finds the one slot taken by a call through the same path.
class ExpertConcurrencyWaiterTest : public testing::CallPathTest {
 protected:
  // Starts a call that takes the slot of `e`, on a thread of its own, and returns once it has the slot.
  std::thread TakeTheSlot(ConcurrencyLimitedExpert& e) {
    std::thread holder([this, limited = &e] { EXPECT_TRUE(caller_.Call(*limited, Req()).ok()); });
    WaitUntil([&] { return e.in_flight() == 1; });
    return holder;
  }
};
INSTANTIATE_TEST_SUITE_P(BlockingAndAsync, ExpertConcurrencyWaiterTest, testing::BothCallPaths(),
                         testing::CallPathName);

TEST_P(ExpertConcurrencyWaiterTest, IsHandedTheSlotWithTheTimeLeft) {
  auto fake = AsyncFake({}, milliseconds(200));
  FakeExpert* f = fake.get();
  ConcurrencyLimitedExpert e(std::move(fake), 1);
  std::thread holder = TakeTheSlot(e);
  EXPECT_TRUE(caller_.Call(e, Req(milliseconds(1'000))).ok());
  holder.join();
  EXPECT_LE(f->last_timeout_.load().count(), 1'000 - 100);  // it waited for the holder's 200 ms, less a head start
  EXPECT_EQ(e.in_flight(), 0);
  EXPECT_EQ(e.waiting(), 0);
}

TEST_P(ExpertConcurrencyWaiterTest, GivesUpAtItsTimeoutWithResourceExhausted) {
  ConcurrencyLimitedExpert e(AsyncFake({}, milliseconds(400)), 1);
  std::thread holder = TakeTheSlot(e);
  const auto start = Clock::now();
  StatusOr<ChatResult> r = caller_.Call(e, Req(milliseconds(100)));
  const auto took = std::chrono::duration_cast<milliseconds>(Clock::now() - start);
  holder.join();
  EXPECT_EQ(e.in_flight(), 0);
  EXPECT_EQ(e.waiting(), 0);
  EXPECT_EQ(r.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(r.status().message().find("expert 'fake': all 1 call slots stayed busy for 100 ms"), std::string::npos)
      << r.status().message();
  EXPECT_GE(took.count(), 90);
  EXPECT_LT(took.count(), 300);
}

class ExpertMeterTest : public testing::CallPathTest {};
INSTANTIATE_TEST_SUITE_P(BlockingAndAsync, ExpertMeterTest, testing::BothCallPaths(), testing::CallPathName);

TEST_P(ExpertMeterTest, CountsCallsErrorsTokensCostAndLatency) {
  auto meter = std::make_shared<ExpertMeter>();
  MeteredExpert e(AsyncFake({Status::Ok(), Status::ResourceExhausted("429")}, milliseconds(5)), meter);
  EXPECT_TRUE(caller_.Call(e, Req()).ok());
  EXPECT_FALSE(caller_.Call(e, Req()).ok());
  EXPECT_TRUE(caller_.Call(e, Req()).ok());
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

// ---------------------------------------------------------------------------------------------------------------------
// Calls at once: many callers on threads, on loops, or on both.

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

TEST(ExpertConcurrencyTest, AsyncCapsCallsInFlightAndAllComplete) {
  constexpr int kSlots = 3;
  auto fake = AsyncFake({}, milliseconds(10));
  FakeExpert* f = fake.get();
  ConcurrencyLimitedExpert e(std::move(fake), kSlots);
  net::io_context loop;
  int ok = 0, finished = 0;
  for (int i = 0; i < 10 * kSlots; ++i) {
    e.CompleteAsync(Req(), {}, {.loop = &loop}, [&](StatusOr<ChatResult> r) {
      ok += r.ok();
      ++finished;
    });
  }
  EXPECT_EQ(e.in_flight(), kSlots);
  EXPECT_EQ(e.waiting(), 9 * kSlots);
  RunUntil(loop, [&] { return finished == 10 * kSlots; });
  EXPECT_EQ(ok, 10 * kSlots);
  EXPECT_EQ(f->calls_, 10 * kSlots);
  EXPECT_EQ(f->max_in_flight_, kSlots);
  EXPECT_EQ(e.in_flight(), 0);
  EXPECT_EQ(e.waiting(), 0);
}

// Many waiters with timeouts of 0 to 2 ms on several loops and threads, while slots are released on other threads:
// timer expiry and hand-over race all the time. Whichever wins, every call must complete exactly once and every slot
// must come back.
TEST(ExpertConcurrencyTest, TimeoutVersusHandOverRacesNeverLeakASlot) {
  constexpr int kSlots = 2, kLoops = 3, kAsyncPerLoop = 1'000, kSyncThreads = 2, kSyncPerThread = 200;
  constexpr int kTotal = kLoops * kAsyncPerLoop + kSyncThreads * kSyncPerThread;
  auto fake = AsyncFake();
  FakeExpert* f = fake.get();
  ConcurrencyLimitedExpert e(std::move(fake), kSlots);
  std::vector<std::atomic<int>> completions(kTotal);
  std::atomic<int> finished{0}, ok{0}, exhausted{0};
  auto account = [&](int i, const StatusOr<ChatResult>& r) {
    ++completions[i];
    if (r.ok()) ++ok;
    if (r.status().code() == StatusCode::kResourceExhausted) ++exhausted;
    ++finished;
  };
  {
    std::vector<std::unique_ptr<LoopThread>> loops;
    for (int l = 0; l < kLoops; ++l) loops.push_back(std::make_unique<LoopThread>());
    // Each loop starts its calls itself, one per handler, so that the starts interleave with completions and timers.
    std::vector<std::function<void(int)>> starters(kLoops);
    for (int l = 0; l < kLoops; ++l) {
      starters[l] = [&, l](int k) {
        const int i = l * kAsyncPerLoop + k;
        e.CompleteAsync(Req(milliseconds(k % 3)), {}, loops[l]->ctx(),
                        [&account, i](StatusOr<ChatResult> r) { account(i, r); });
        if (k + 1 < kAsyncPerLoop) net::post(loops[l]->loop(), [&starters, l, k] { starters[l](k + 1); });
      };
      net::post(loops[l]->loop(), [&starters, l] { starters[l](0); });
    }
    std::vector<std::thread> sync_callers;
    for (int t = 0; t < kSyncThreads; ++t) {
      sync_callers.emplace_back([&, t] {
        for (int k = 0; k < kSyncPerThread; ++k) {
          account(kLoops * kAsyncPerLoop + t * kSyncPerThread + k, e.Complete(Req(milliseconds(k % 3))));
        }
      });
    }
    for (auto& t : sync_callers) t.join();
    WaitUntil([&] { return finished.load() == kTotal; });
  }  // joins the loops: nothing is pending on them any more
  EXPECT_EQ(finished, kTotal);
  for (int i = 0; i < kTotal; ++i) ASSERT_EQ(completions[i], 1) << "call " << i;
  EXPECT_EQ(ok + exhausted, kTotal);
  EXPECT_GT(ok, 0);
  EXPECT_GT(exhausted, 0);
  EXPECT_EQ(e.in_flight(), 0);
  EXPECT_EQ(e.waiting(), 0);
  EXPECT_EQ(f->in_flight_, 0);
  EXPECT_LE(f->max_in_flight_, kSlots);
}

TEST(ExpertConcurrencyTest, MixedSyncAndAsyncCallersShareTheSlotsAndAllGetOne) {
  constexpr int kSlots = 2, kLoops = 2, kAsyncPerLoop = 20, kSyncThreads = 4, kSyncPerThread = 5;
  auto fake = AsyncFake({}, milliseconds(5));
  FakeExpert* f = fake.get();
  ConcurrencyLimitedExpert e(std::move(fake), kSlots);
  std::atomic<int> ok{0}, finished{0};
  {
    std::vector<std::unique_ptr<LoopThread>> loops;
    for (int l = 0; l < kLoops; ++l) loops.push_back(std::make_unique<LoopThread>());
    for (int l = 0; l < kLoops; ++l) {
      net::post(loops[l]->loop(), [&, l] {
        for (int k = 0; k < kAsyncPerLoop; ++k) {
          e.CompleteAsync(Req(), {}, loops[l]->ctx(), [&](StatusOr<ChatResult> r) {
            ok += r.ok();
            ++finished;
          });
        }
      });
    }
    std::vector<std::thread> sync_callers;
    for (int t = 0; t < kSyncThreads; ++t) {
      sync_callers.emplace_back([&] {
        for (int k = 0; k < kSyncPerThread; ++k) {
          ok += e.Complete(Req()).ok();
          ++finished;
        }
      });
    }
    for (auto& t : sync_callers) t.join();
    WaitUntil([&] { return finished.load() == kLoops * kAsyncPerLoop + kSyncThreads * kSyncPerThread; });
  }
  EXPECT_EQ(ok, kLoops * kAsyncPerLoop + kSyncThreads * kSyncPerThread);
  EXPECT_EQ(f->max_in_flight_, kSlots);
  EXPECT_EQ(e.in_flight(), 0);
  EXPECT_EQ(e.waiting(), 0);
}

TEST(ExpertConcurrencyTest, SyncAndAsyncWaitersAreServedInOneFifo) {
  auto fake = AsyncFake({}, milliseconds(50));
  FakeExpert* f = fake.get();
  ConcurrencyLimitedExpert e(std::move(fake), 1);
  LoopThread loop;
  std::atomic<int> ok{0};
  auto call_async = [&](const char* text) {
    e.CompleteAsync(Req(milliseconds(5'000), text), {}, loop.ctx(), [&](StatusOr<ChatResult> r) { ok += r.ok(); });
  };
  call_async("holder");
  call_async("async 1");
  std::thread sync_caller([&] { ok += e.Complete(Req(milliseconds(5'000), "sync")).ok(); });
  WaitUntil([&] { return e.waiting() == 2; });
  call_async("async 2");
  sync_caller.join();
  WaitUntil([&] { return ok.load() == 4; });
  EXPECT_EQ(ok, 4);
  EXPECT_EQ(f->started(), (std::vector<std::string>{"holder", "async 1", "sync", "async 2"}));
}

// ---------------------------------------------------------------------------------------------------------------------
// What only CompleteAsync does: calls in flight on a loop that has not run yet, the whole stack on one loop thread, and
// the default CompleteAsync of a backend that can only block.

// Three calls started at once are in flight until their handlers run, and each one's latency runs until then.
TEST(ExpertMeterAsyncTest, CountsAsyncCallsFromStartToCompletion) {
  auto meter = std::make_shared<ExpertMeter>();
  MeteredExpert e(AsyncFake({Status::Ok(), Status::ResourceExhausted("429")}, milliseconds(5)), meter);
  net::io_context loop;
  int finished = 0;
  for (int i = 0; i < 3; ++i) e.CompleteAsync(Req(), {}, {.loop = &loop}, [&](StatusOr<ChatResult>) { ++finished; });
  EXPECT_EQ(meter->Read().in_flight, 3);
  EXPECT_EQ(meter->Read().calls, 0);
  RunUntil(loop, [&] { return finished == 3; });
  ExpertMeter::Snapshot s = meter->Read();
  EXPECT_EQ(s.in_flight, 0);
  EXPECT_EQ(s.calls, 3);
  EXPECT_EQ(s.errors, 1);
  EXPECT_GE(s.latency_ms_max, 5.0);
}

// The gateway's stack over a backend that is asynchronous itself, without a blocking pool: every attempt, backoff,
// slot wait, streamed piece and completion happens on the one loop thread, and two calls run at once on it (so
// nothing blocks it).
TEST(AsyncWrapperTest, TheWholeStackStaysOnTheLoopThread) {
  auto fake = AsyncFake({Status::Unavailable("down"), Status::Unavailable("down")}, milliseconds(20));
  FakeExpert* f = fake.get();
  auto meter = std::make_shared<ExpertMeter>();
  RetryingExpert e(
      std::make_unique<ConcurrencyLimitedExpert>(std::make_unique<MeteredExpert>(std::move(fake), meter), 2), kFast);
  net::io_context loop;
  int ok = 0, finished = 0;
  std::set<std::thread::id> done_on;
  std::vector<std::string> streamed(6);
  net::post(loop, [&] {
    for (int i = 0; i < 6; ++i) {
      e.CompleteAsync(
          Req(),
          [&, i](std::string_view d) {
            done_on.insert(std::this_thread::get_id());
            streamed[i] += d;
            return true;
          },
          {.loop = &loop},
          [&](StatusOr<ChatResult> r) {
            done_on.insert(std::this_thread::get_id());
            ok += r.ok();
            ++finished;
          });
    }
  });
  RunUntil(loop, [&] { return finished == 6; });
  EXPECT_EQ(ok, 6);
  EXPECT_EQ(streamed, std::vector<std::string>(6, "hello"));  // also through the calls that waited for a slot
  EXPECT_EQ(meter->Read().calls, 8);                          // two attempts were retried
  EXPECT_EQ(meter->Read().in_flight, 0);
  EXPECT_EQ(f->max_in_flight_, 2);
  const std::set<std::thread::id> only_this{std::this_thread::get_id()};
  EXPECT_EQ(done_on, only_this);
  EXPECT_EQ(f->threads(), only_this);
}

// Every path that can end a call early (a free slot, no time left, a wait that times out at once, an error not worth
// retrying) still answers from the loop, never from inside CompleteAsync.
TEST(AsyncWrapperTest, DoneIsNeverInvokedInsideCompleteAsync) {
  MeteredExpert metered(AsyncFake(), nullptr);
  ConcurrencyLimitedExpert limited(AsyncFake(), 1);
  RetryingExpert retrying(AsyncFake({Status::InvalidArgument("bad")}), kFast);
  net::io_context loop;
  bool inside = false;
  int finished = 0, called_inside = 0;
  auto start = [&](ExpertBackend& e, milliseconds timeout) {
    inside = true;
    e.CompleteAsync(Req(timeout), {}, {.loop = &loop}, [&](StatusOr<ChatResult>) {
      called_inside += inside;
      ++finished;
    });
    inside = false;
  };
  start(metered, milliseconds(5'000));
  start(limited, milliseconds(0));      // takes the free slot but has no time left
  start(limited, milliseconds(5'000));  // takes the free slot
  start(limited, milliseconds(0));      // waits, and its timer fires at once
  start(retrying, milliseconds(5'000));
  RunUntil(loop, [&] { return finished == 5; });
  EXPECT_EQ(finished, 5);
  EXPECT_EQ(called_inside, 0);
  EXPECT_EQ(limited.in_flight(), 0);
}

TEST(AsyncWrapperTest, DefaultRunsCompleteOnThePoolAndAnswersOnTheLoopInOrder) {
  FakeExpert blocking_only(std::deque<Status>{}, milliseconds(10));
  boost::asio::thread_pool pool(1);
  net::io_context loop;
  std::vector<std::string> events;
  std::set<std::thread::id> events_on;
  bool inside = true;
  blocking_only.CompleteAsync(
      Req(),
      [&](std::string_view d) {
        events_on.insert(std::this_thread::get_id());
        events.push_back("piece " + std::string(d));
        return true;
      },
      {.loop = &loop, .blocking = &pool},
      [&](StatusOr<ChatResult> r) {
        events_on.insert(std::this_thread::get_id());
        EXPECT_FALSE(inside);
        events.push_back(r.ok() ? "done " + r->content : r.status().ToString());
      });
  inside = false;
  RunUntil(loop, [&] { return events.size() == 2; });
  EXPECT_EQ(events, (std::vector<std::string>{"piece hello", "done hello"}));
  EXPECT_EQ(events_on, std::set<std::thread::id>{std::this_thread::get_id()});
  EXPECT_FALSE(blocking_only.threads().contains(std::this_thread::get_id()));  // Complete ran on the pool
  pool.join();
}

TEST(AsyncWrapperTest, DefaultWithoutABlockingPoolIsFailedPrecondition) {
  FakeExpert blocking_only;
  net::io_context loop;
  std::optional<StatusOr<ChatResult>> r;
  bool inside = true;
  blocking_only.CompleteAsync(Req(), {}, {.loop = &loop}, [&](StatusOr<ChatResult> got) {
    EXPECT_FALSE(inside);
    r = std::move(got);
  });
  inside = false;
  RunUntil(loop, [&] { return r.has_value(); });
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(r->status().message().find("no blocking pool"), std::string::npos) << r->status().message();
  EXPECT_EQ(blocking_only.calls_, 0);
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
