// Test support: an event loop run by one thread, as the gateway's are, and RunAsync, which makes one CompleteAsync call
// from that thread and waits for its result. Header-only; used by the backend tests only.
//
// Thread-safety: a LoopThread belongs to the test's thread; RunAsync blocks it until the call completes.
#pragma once

#include <future>
#include <memory>
#include <string_view>
#include <thread>
#include <utility>

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
// on that thread and that the handler is not called from inside CompleteAsync.
inline StatusOr<ChatResult> RunAsync(ExpertBackend& expert, LoopThread& loop, ChatRequest request,
                                     StreamSink sink = {}) {
  std::promise<StatusOr<ChatResult>> result;
  boost::asio::post(loop.loop(), [&] {
    StreamSink checked;
    if (sink) {
      checked = [&](std::string_view delta) {
        EXPECT_EQ(std::this_thread::get_id(), loop.thread_id());
        return sink(delta);
      };
    }
    auto returned = std::make_shared<bool>(false);
    expert.CompleteAsync(std::move(request), std::move(checked), loop.ctx(), [&, returned](StatusOr<ChatResult> r) {
      EXPECT_TRUE(*returned) << "the handler ran inside CompleteAsync";
      EXPECT_EQ(std::this_thread::get_id(), loop.thread_id());
      result.set_value(std::move(r));
    });
    *returned = true;
  });
  return result.get_future().get();
}

}  // namespace baton::testing
