// ExpertBackend::CompleteAsync's default: the blocking Complete() on the blocking pool, pieces and result posted back
// to the caller's loop.
#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include <fmt/format.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>

#include "baton/expert.h"

namespace baton {

void ExpertBackend::CompleteAsync(ChatRequest request, StreamSink sink, const AsyncContext& ctx,
                                  CompletionHandler done) {
  namespace net = boost::asio;
  if (ctx.loop == nullptr) return;  // nowhere to deliver a result: a caller bug, nothing to answer
  if (ctx.blocking == nullptr) {
    net::post(*ctx.loop, [done = std::move(done), n = name()] {
      done(Status::FailedPrecondition(fmt::format("expert '{}' blocks and no blocking pool was given", n)));
    });
    return;
  }
  // The sink runs on the loop, the call on a pool thread: the pool thread cannot wait for the sink's verdict, so a
  // cancellation takes effect at the next piece.
  struct Shared {
    StreamSink sink;
    std::atomic<bool> cancelled{false};
  };
  auto shared = std::make_shared<Shared>();
  shared->sink = std::move(sink);
  net::io_context* loop = ctx.loop;
  net::post(*ctx.blocking, [this, request = std::move(request), shared, loop, done = std::move(done)]() mutable {
    std::string n = name();
    StreamSink relay;
    if (shared->sink) {
      // The piece's views die when the relay returns: the loop gets copies (tool-call deltas included).
      relay = [shared, loop](const StreamDelta& delta) {
        if (shared->cancelled.load()) return false;
        std::optional<nlohmann::json> tool_calls;
        if (delta.tool_calls != nullptr) tool_calls = *delta.tool_calls;
        net::post(*loop, [shared, piece = std::string(delta.content), tool_calls = std::move(tool_calls)] {
          const StreamDelta copy(piece, tool_calls ? &*tool_calls : nullptr);
          if (!shared->cancelled.load() && !shared->sink(copy)) shared->cancelled.store(true);
        });
        return true;
      };
    }
    StatusOr<ChatResult> r = Complete(request, relay ? &relay : nullptr);
    // Posted after every piece from this thread, so the loop sees the pieces first (an io_context runs posts in order).
    net::post(*loop, [shared, n = std::move(n), done = std::move(done), r = std::move(r)]() mutable {
      if (r.ok() && shared->cancelled.load()) {
        r = Status::FailedPrecondition(fmt::format("expert '{}': cancelled by the sink", n));
      }
      done(std::move(r));
    });
  });
}

}  // namespace baton
