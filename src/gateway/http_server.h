// A small asynchronous HTTP/1.1 server (Boost.Beast over Asio) built for one thing: answering each request on the
// thread that read it. It runs `io_threads` event loops, each an io_context driven by exactly one thread; every
// accepted connection is handed to one loop (round robin) and lives there. Idle keep-alive connections cost a socket
// and a buffer, not a thread.
//
// The server reads a request (refusing bodies over max_body_bytes with 413 and malformed requests with 400, both as
// OpenAI-shaped JSON errors), hands it to the handler on the connection's loop thread and writes whatever the handler
// sends back through its HttpExchange. A handler must not block: it answers at once or starts asynchronous work on
// exchange->loop() (which is how the gateway calls upstream experts without ever changing thread).
// Malformed includes what a proxy in front of us could read differently (request smuggling): a Transfer-Encoding
// other than exactly "chunked", Transfer-Encoding together with Content-Length, and an HTTP/1.1 request without
// exactly one Host header; such a request is answered 400 and its connection closed.
//
// Overload: at most max_connections connections are open at once; one more is answered a canned 503 and closed at
// once, without a session. A failing accept (out of file descriptors, say) pauses accepting, 10 ms doubling up to
// 1 s, instead of retrying in a loop.
//
// Lifetime: Shutdown() stops the loops; exchanges still held afterwards (in queued handlers, on other threads) become
// inert. Every thread that may still call into an exchange must be joined before the HttpServer is destroyed.
// Thread-safety: Start/Shutdown from one controlling thread. HttpExchange methods may be called from any thread; they
// run at once on the connection's loop thread and are posted there from anywhere else.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "baton/status.h"

namespace boost::asio {
class io_context;
}  // namespace boost::asio

namespace baton::gateway {

using Headers = std::vector<std::pair<std::string, std::string>>;

struct HttpRequest {
  std::string method;  // "GET", "POST", ...
  std::string target;  // path and query, e.g. "/v1/chat/completions"
  std::string authorization;
  std::string body;
  std::chrono::steady_clock::time_point arrived;  // when the whole request had been read
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  Headers headers;
  std::string body;
};

// A response with the given status, content type and body.
HttpResponse MakeHttpResponse(int status, std::string body, std::string content_type = "application/json");

// {"error": {"message": ..., "type": ..., "code": ...}} with the given status.
HttpResponse ErrorResponse(int status, std::string_view message, std::string_view type, std::string_view code);

// One request's way back to its client: either Respond() once, or BeginStream(), WriteStream()*, EndStream().
// Writes are asynchronous and queued in order. Dropping the last reference without answering sends a 500 error (and
// ends an unfinished stream), so a client is never left without a response.
class HttpExchange {
 public:
  virtual ~HttpExchange() = default;
  // The event loop (single thread) the connection lives on: where asynchronous work for this request should run.
  virtual boost::asio::io_context& loop() = 0;
  // Sends the whole response.
  virtual void Respond(HttpResponse response) = 0;
  // Sends the status line and headers of a chunked response.
  virtual void BeginStream(int status, std::string_view content_type, const Headers& headers) = 0;
  // Queues one chunk. false when the client has gone, or reads so slowly that more than max_stream_backlog bytes are
  // waiting: the caller should stop producing (the connection is then closed after EndStream).
  virtual bool WriteStream(std::string_view data) = 0;
  // Ends the chunked response; the connection then serves its next request.
  virtual void EndStream() = 0;
};

using HttpHandler = std::function<void(HttpRequest request, std::shared_ptr<HttpExchange> exchange)>;
// Observes every answered request: path, status, seconds from arrival to the response being handed over.
using HttpObserver = std::function<void(const std::string& path, int status, double seconds)>;

struct HttpServerOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 0;   // 0 = any free port (see HttpServer::port())
  int io_threads = 2;  // event loops, one thread each
  int64_t max_body_bytes = 1 << 20;
  std::chrono::seconds idle_timeout{60};   // a keep-alive connection idle this long is closed
  std::chrono::seconds write_timeout{30};  // a client that takes longer than this to accept a write is dropped
  size_t max_stream_backlog = 4 << 20;     // streamed bytes queued for a slow client before WriteStream says stop
  int64_t max_connections = 10'000;        // open connections at once; more are answered 503 and closed. 0 = no cap
};

class HttpServer {
 public:
  // Binds, listens and starts the event-loop threads. IoError when the address cannot be bound.
  static StatusOr<std::unique_ptr<HttpServer>> Start(const HttpServerOptions& options, HttpHandler handler,
                                                     HttpObserver observer = nullptr);
  ~HttpServer();  // Shutdown(0) if still running
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  uint16_t port() const;
  // Stops accepting, waits up to `grace` for the requests in flight (see in_flight()) to be completely answered, then
  // stops the event loops and joins them. Connections are closed when the HttpServer is destroyed.
  void Shutdown(std::chrono::milliseconds grace);
  // Requests handed to the handler whose response has not been completely written yet: a request counts from the
  // handler call until the last byte of its answer (whole or streamed) was handed to the socket, or the write failed
  // or timed out. So a slow reader's answer still counts, and Shutdown waits for it.
  int64_t in_flight() const;
  // Connections open now (accepted and not yet closed), the ones refused over max_connections not included.
  int64_t connections() const;
  // Accepts that failed since Start (out of file descriptors, say): each one pauses accepting for a while.
  int64_t accept_errors() const;

  struct Impl;

 private:
  explicit HttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace baton::gateway
