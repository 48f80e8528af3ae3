// HttpPool: a plain-HTTP/1.1 client (Boost.Beast) on one Boost.Asio io_context, with keep-alive connections pooled
// per upstream (host:port). Internal to src/experts/: the openai backend uses it for http:// upstreams (vLLM,
// llama-server, a local proxy), where it does less work per call than libcurl's multi interface (no option setting,
// no socket callbacks, fewer system calls); https:// stays on libcurl (CurlLoop).
//
// One HttpPool per io_context, made on first use and destroyed with it:
//   HttpPool& pool = boost::asio::use_service<HttpPool>(loop);
//   pool.Start(std::move(exchange));  // exchange->Finish(...) runs later on the loop
//
// An exchange takes an idle connection to its upstream or opens one; after a complete response that allows it, the
// connection goes back to the pool (at most kMaxIdlePerUpstream per upstream). A reused connection that the upstream
// had closed fails before any byte of the answer arrives; the request is then sent once more on a new connection (as
// browsers and libcurl do), never after part of an answer came back.
//
// Thread-safety: Start may be called from any thread; everything else runs on the loop, which must be run by exactly
// one thread.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/execution_context.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/beast/core/tcp_stream.hpp>

namespace baton::experts {

// Where a plain-HTTP URL points: "http://host[:port]/path" (no user info, query or fragment).
struct HttpEndpoint {
  std::string host;
  std::string port;    // "80" when the URL names none
  std::string target;  // the path, "/" when empty
};
// nullopt for anything else (https, user info, a query, an IPv6 literal, a malformed URL): use libcurl for those.
std::optional<HttpEndpoint> ParsePlainHttpUrl(std::string_view url);

// How an exchange ended.
enum class HttpOutcome {
  kComplete,  // a whole response was read
  kTimeout,   // the deadline passed (connecting, sending or reading)
  kConnect,   // no connection could be made (refused, unresolvable)
  kIo,        // the connection failed or closed before the response was complete
  kProtocol,  // the upstream sent something that is not HTTP/1.x
  kAborted,   // OnBody asked to stop
};

class HttpPool final : public boost::asio::execution_context::service {
 public:
  // One request and its response handling, owned by the pool from Start until Finish (or until the io_context is
  // destroyed, which destroys it unfinished).
  class Exchange {
   public:
    virtual ~Exchange() = default;
    virtual const HttpEndpoint& endpoint() const = 0;
    virtual const std::string& body() const = 0;                                          // sent as is
    virtual const std::vector<std::pair<std::string, std::string>>& headers() const = 0;  // besides Host, length
    virtual std::chrono::milliseconds timeout() const = 0;  // the whole exchange, connecting included
    // The response's status, once its header has arrived (before any OnBody).
    virtual void OnStatus(int status) = 0;
    // A piece of the body as it arrives (de-chunked); false aborts the exchange (kAborted).
    virtual bool OnBody(const char* data, size_t n) = 0;
    // Called once on the loop when the exchange ended; `detail` says what failed ("" when complete).
    virtual void Finish(HttpOutcome outcome, const std::string& detail) = 0;
  };

  static constexpr size_t kMaxIdlePerUpstream = 64;
  static inline boost::asio::execution_context::id id;  // what use_service finds this service by

  explicit HttpPool(boost::asio::io_context& loop);

  void Start(std::unique_ptr<Exchange> x);

  // Idle pooled connections to all upstreams (for tests).
  size_t idle_connections() const;

 private:
  using Stream = boost::beast::tcp_stream;
  void shutdown() override;
  boost::asio::awaitable<void> Run(std::unique_ptr<Exchange> x);

  boost::asio::io_context& loop_;
  bool shut_down_ = false;
  std::unordered_map<std::string, std::vector<std::unique_ptr<Stream>>> idle_;  // by "host:port"
};

}  // namespace baton::experts
