// Test support: an event loop run by one thread, as the gateway's are; RunAsync, which makes one CompleteAsync call
// from that thread and waits for its result; and Caller, which makes a call through either Complete() or
// CompleteAsync(), so that one test body checks a behaviour on both paths (a TEST_P over CallPath). Header-only; used
// by the backend tests only.
//
// Thread-safety: a LoopThread belongs to the test's thread; RunAsync blocks its caller until the call completes and may
// be called from several threads at once, and so may Caller::Call.
#pragma once

#include <chrono>
#include <future>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include <gtest/gtest.h>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include "baton/expert.h"

namespace baton::testing {

// An io_context with a thread running it until destruction (calls still in flight then are abandoned).
class LoopThread {
 public:
  LoopThread() : work_(boost::asio::make_work_guard(loop_)), thread_([this] { loop_.run(); }) {}
  ~LoopThread() {
    work_.reset();
    loop_.stop();
    thread_.join();
  }
  boost::asio::io_context& loop() { return loop_; }
  AsyncContext ctx() { return AsyncContext{.loop = &loop_, .blocking = nullptr}; }
  std::thread::id thread_id() const { return thread_.get_id(); }

 private:
  boost::asio::io_context loop_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  std::thread thread_;
};

// Calls expert.CompleteAsync on the loop's thread and waits for the result, checking that the sink and the handler run
// on that thread, that the handler is not called from inside CompleteAsync, and that no piece follows the handler.
inline StatusOr<ChatResult> RunAsync(ExpertBackend& expert, LoopThread& loop, ChatRequest request,
                                     StreamSink sink = {}) {
  std::promise<StatusOr<ChatResult>> result;
  boost::asio::post(loop.loop(), [&] {
    const std::thread::id loop_id = loop.thread_id();
    auto finished = std::make_shared<bool>(false);  // on the loop's thread only
    StreamSink checked;
    if (sink) {
      checked = [sink = std::move(sink), finished, loop_id](const StreamDelta& delta) {
        EXPECT_EQ(std::this_thread::get_id(), loop_id);
        EXPECT_FALSE(*finished) << "a piece arrived after the handler ran";
        return sink(delta);
      };
    }
    auto returned = std::make_shared<bool>(false);
    expert.CompleteAsync(std::move(request), std::move(checked), loop.ctx(),
                         [&result, returned, finished, loop_id](StatusOr<ChatResult> r) {
                           EXPECT_TRUE(*returned) << "the handler ran inside CompleteAsync";
                           EXPECT_EQ(std::this_thread::get_id(), loop_id);
                           *finished = true;
                           result.set_value(std::move(r));
                         });
    *returned = true;
  });
  return result.get_future().get();
}

// The two ways to call a backend: Complete() on the calling thread, or CompleteAsync() on an event loop.
enum class CallPath { kBlocking, kAsync };

// For a TEST_P over CallPath: INSTANTIATE_TEST_SUITE_P(BlockingAndAsync, Suite, BothCallPaths(), CallPathName) runs
// each test of Suite twice, as Suite.Test/Blocking and Suite.Test/Async.
inline auto BothCallPaths() {
  return ::testing::Values(CallPath::kBlocking, CallPath::kAsync);
}
inline std::string CallPathName(const ::testing::TestParamInfo<CallPath>& info) {
  return info.param == CallPath::kBlocking ? "Blocking" : "Async";
}

// A call's result and what its sink received.
struct CallOutcome {
  StatusOr<ChatResult> result;
  std::vector<std::string> pieces;                                 // in the order they arrived
  std::vector<std::chrono::steady_clock::time_point> piece_times;  // when each arrived
  std::set<std::thread::id> piece_threads;                         // the threads they arrived on
  std::vector<nlohmann::json> tool_call_deltas;  // each piece's delta.tool_calls, in the order they arrived
};

// Makes calls through one path. Blocking: expert.Complete() on the calling thread. Async: RunAsync on a LoopThread of
// its own, with RunAsync's checks (sink and handler on the loop's thread, the handler never inside CompleteAsync, no
// piece after the handler); the loop lives as long as the Caller.
class Caller {
 public:
  explicit Caller(CallPath path) : path_(path), owner_(std::this_thread::get_id()) {
    if (path == CallPath::kAsync) loop_.emplace();
  }
  bool async() const { return path_ == CallPath::kAsync; }
  // "blocking" or "async", for failure messages.
  const char* name() const { return async() ? "async" : "blocking"; }
  // The thread that a call made from the Caller's creator runs on (the backend's work, its sink, its result): the
  // creator's own (blocking) or the loop's (async).
  std::thread::id call_thread() const { return async() ? loop_->thread_id() : owner_; }

  // One call; `sink` (may be empty) receives the pieces and may cancel the call by returning false.
  StatusOr<ChatResult> Call(ExpertBackend& expert, ChatRequest request, StreamSink sink = {}) {
    if (async()) return RunAsync(expert, *loop_, std::move(request), std::move(sink));
    return expert.Complete(request, sink ? &sink : nullptr);
  }

  // One streaming call whose sink records (and accepts) every piece.
  CallOutcome Stream(ExpertBackend& expert, ChatRequest request) {
    std::vector<std::string> pieces;
    std::vector<std::chrono::steady_clock::time_point> times;
    std::set<std::thread::id> threads;
    std::vector<nlohmann::json> tool_call_deltas;
    StatusOr<ChatResult> result = Call(expert, std::move(request), [&](const StreamDelta& delta) {
      // A tool-call-only piece is not a content piece.
      if (delta.tool_calls == nullptr || !delta.content.empty()) pieces.emplace_back(delta.content);
      if (delta.tool_calls != nullptr) tool_call_deltas.push_back(*delta.tool_calls);
      times.push_back(std::chrono::steady_clock::now());
      threads.insert(std::this_thread::get_id());
      return true;
    });
    return CallOutcome{std::move(result), std::move(pieces), std::move(times), std::move(threads),
                       std::move(tool_call_deltas)};
  }

 private:
  const CallPath path_;
  const std::thread::id owner_;
  std::optional<LoopThread> loop_;  // async only
};

// The fixture of a TEST_P over CallPath (derive one class per suite): caller_ makes the calls through the test's path.
class CallPathTest : public ::testing::TestWithParam<CallPath> {
 protected:
  Caller caller_{GetParam()};
};

}  // namespace baton::testing
