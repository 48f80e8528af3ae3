// The gateway's HTTP server: Boost.Beast, asynchronous, one io_context per event-loop thread.
//
// Library choice, by measurement (bench/RESULTS.md, "HTTP server library"; re-run with scripts/http_library_bench.sh):
// a hello-world server under `wrk -t2 -c100` on this 2-core machine answers ~300 req/s with Debian's cpp-httplib 0.11
// (a pool of blocking threads, each held by one keep-alive connection: 1,000 open connections would need 1,000
// threads) against 73,000-92,000 req/s with Beast, which keeps an idle connection at a socket plus a buffer.
// One io_context per thread (rather than one shared by all threads with a strand per connection) keeps a connection,
// its handlers and its upstream calls on one thread with no locking: see bench/RESULTS.md, "Gateway overhead".
#include "gateway/http_server.h"

#include <algorithm>
#include <array>
#include <cstdio>
#include <deque>
#include <optional>
#include <thread>

#include <fmt/format.h>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>

namespace baton::gateway {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

HttpResponse MakeHttpResponse(int status, std::string body, std::string content_type) {
  HttpResponse r;
  r.status = status;
  r.content_type = std::move(content_type);
  r.body = std::move(body);
  return r;
}

HttpResponse ErrorResponse(int status, std::string_view message, std::string_view type, std::string_view code) {
  nlohmann::json j = {{"error", {{"message", message}, {"type", type}, {"code", code}}}};
  HttpResponse r;
  r.status = status;
  r.body = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return r;
}

struct HttpServer::Impl {
  HttpServerOptions options;
  HttpHandler handler;
  HttpObserver observer;
  std::vector<std::thread> threads;
  std::atomic<int64_t> in_flight{0};      // see HttpServer::in_flight()
  std::atomic<int64_t> connections{0};    // see HttpServer::connections()
  std::atomic<int64_t> accept_errors{0};  // see HttpServer::accept_errors()
  std::atomic<bool> stopping{false};      // no new requests: answers close their connections
  std::atomic<bool> stopped{false};       // the loops have stopped: exchanges are inert
  bool shut_down = false;                 // guarded by the controlling thread
  uint16_t port = 0;
  size_t next_loop = 0;  // round robin over loops; used by the accepting loop only
  // After a failed accept, the pause before the next one (0 after a success), and when one was last logged; used by
  // the accepting loop only.
  std::chrono::milliseconds accept_pause{0};
  std::optional<std::chrono::steady_clock::time_point> accept_logged;
  // Declared last so that they are destroyed first, while everything a queued handler may touch still exists.
  std::vector<std::unique_ptr<net::io_context>> loops;
  std::vector<net::executor_work_guard<net::io_context::executor_type>> work;
  std::optional<tcp::acceptor> acceptor;          // on loops[0]
  std::optional<net::steady_timer> accept_timer;  // on loops[0]: the pause after a failed accept

  void Accept();
  void OnAcceptError(const beast::error_code& ec);
  static void Shed(tcp::socket& socket);
};

namespace {

constexpr size_t kHeaderLimit = size_t{64} * 1024;
constexpr size_t kDrainLimit = size_t{16} * 1024 * 1024;

class Session;

// One open connection, counted in HttpServer::Impl::connections from its accept until Release() or destruction.
class ConnectionSlot {
 public:
  explicit ConnectionSlot(HttpServer::Impl* server) : server_(server) { server_->connections.fetch_add(1); }
  ConnectionSlot(ConnectionSlot&& other) noexcept : server_(std::exchange(other.server_, nullptr)) {}
  ConnectionSlot& operator=(ConnectionSlot&&) = delete;
  ~ConnectionSlot() { Release(); }
  void Release() {
    if (server_ != nullptr) std::exchange(server_, nullptr)->connections.fetch_sub(1);
  }

 private:
  HttpServer::Impl* server_;
};

// A handle on one request of a session. The session serves its requests one after another; each gets a sequence
// number, and an Exchange whose request is over (answered, and the connection moved on) no longer acts.
class Exchange : public HttpExchange {
 public:
  Exchange(std::shared_ptr<Session> session, std::string path, uint64_t seq)
      : session_(std::move(session)), path_(std::move(path)), seq_(seq) {}
  ~Exchange() override;
  net::io_context& loop() override;
  void Respond(HttpResponse response) override;
  void BeginStream(int status, std::string_view content_type, const Headers& headers) override;
  bool WriteStream(std::string_view data) override;
  void EndStream() override;

 private:
  // Runs `f(session)` on the connection's loop, for this request only, in call order: at once when called there with
  // nothing queued before it, posted otherwise.
  template <typename F>
  void OnLoop(F&& f);

  std::shared_ptr<Session> session_;
  std::string path_;
  uint64_t seq_;
};

// One connection, living on one loop (single-threaded: no strand needed). Between reading a request and finishing
// its answer the connection belongs to that request's Exchange; then it reads the next request.
class Session : public std::enable_shared_from_this<Session> {
 public:
  // `server` outlives every session that can still run: see HttpServer::Impl's member order.
  Session(tcp::socket socket, ConnectionSlot slot, net::io_context& loop, HttpServer::Impl* server)
      : stream_(std::move(socket)), slot_(std::move(slot)), loop_(loop), server_(server) {}
  // A request still counted here (its write was dropped with the stopped loops, say) can no longer be answered.
  ~Session() { EndInFlight(); }

  void Start() { ReadHeader(); }

  net::io_context& loop() { return loop_; }
  HttpServer::Impl& server() { return *server_; }
  bool stream_broken() const { return broken_.load(std::memory_order_relaxed); }

  // The request being served (loop thread only): its number, and whether it was answered or is streaming.
  uint64_t seq = 0;
  bool answered = false;
  bool streaming = false;
  // Exchange calls posted to the loop (from other threads) and not run yet. While there are any, calls made on the
  // loop thread are posted too, behind them: run at once, they would overtake (an exchange dropped on the loop thread
  // right after another thread streamed a whole answer would send a 500 before the stream had even begun).
  std::atomic<int64_t> queued{0};

  // The whole response, asynchronously (Asio writes at once when the socket has room; only the completion waits).
  void Send(HttpResponse r, const std::string& path) {
    Observe(path, r.status);
    auto res = std::make_shared<http::response<http::string_body>>(static_cast<http::status>(r.status), 11);
    res->set(http::field::server, "baton");
    res->set(http::field::content_type, r.content_type);
    for (const auto& [k, v] : r.headers) res->set(k, v);
    res->body() = std::move(r.body);
    res->keep_alive(keep_alive_ && !server_->stopping);
    res->prepare_payload();
    stream_.expires_after(server_->options.write_timeout);
    http::async_write(stream_, *res, [self = shared_from_this(), res](beast::error_code ec, size_t) {
      self->EndInFlight();  // written, or never will be
      if (ec) return self->Close();
      if (!res->keep_alive()) return self->Drain();
      self->ReadHeader();
    });
  }

  // Chunked responses: the status line and headers, then chunks, then the last chunk, queued in order and written
  // in batches (one writev per batch).
  void BeginStream(int status, std::string_view content_type, const Headers& headers) {
    keep_alive_ = keep_alive_ && !server_->stopping;
    std::string head = fmt::format("HTTP/1.1 {} {}\r\nServer: baton\r\nContent-Type: {}\r\nCache-Control: no-cache\r\n",
                                   status, std::string_view(http::obsolete_reason(static_cast<http::status>(status))),
                                   HeaderValue(content_type));
    for (const auto& [k, v] : headers) head += fmt::format("{}: {}\r\n", HeaderValue(k), HeaderValue(v));
    head +=
        keep_alive_ ? "Transfer-Encoding: chunked\r\n\r\n" : "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
    stream_status_ = status;
    Queue(std::move(head));
  }

  bool WriteStream(std::string_view data) {
    if (broken_) return false;
    if (data.empty()) return true;
    if (backlog_ > server_->options.max_stream_backlog) {
      broken_ = true;  // a client this slow would make us buffer without bound
      return false;
    }
    Queue(fmt::format("{:x}\r\n{}\r\n", data.size(), data));
    return true;
  }

  void EndStream(const std::string& path) {
    if (!broken_) Queue("0\r\n\r\n");
    end_path_ = path;
    ending_ = true;
    if (!writing_) FinishStream();
  }

  // Reports an answered request to the observer.
  void Observe(const std::string& path, int status) {
    if (!server_->observer) return;
    const bool read = path != "(unread)";
    server_->observer(path, status,
                      read ? std::chrono::duration<double>(std::chrono::steady_clock::now() - arrived_).count() : 0);
  }

 private:
  // Header text from our own values: a CR or LF would split the header, so they become spaces.
  static std::string HeaderValue(std::string_view v) {
    std::string out(v);
    for (char& c : out) {
      if (c == '\r' || c == '\n') c = ' ';
    }
    return out;
  }

  void Queue(std::string bytes) {
    if (broken_) return;
    backlog_ += bytes.size();
    pending_.push_back(std::move(bytes));
    if (!writing_) Pump();
  }

  void Pump() {
    if (pending_.empty()) {
      writing_ = false;
      if (ending_) FinishStream();
      return;
    }
    writing_ = true;
    batch_.clear();
    std::swap(batch_, pending_);
    buffers_.clear();
    for (const auto& b : batch_) buffers_.emplace_back(b.data(), b.size());
    stream_.expires_after(server_->options.write_timeout);
    net::async_write(stream_, buffers_, [self = shared_from_this()](beast::error_code ec, size_t n) {
      self->backlog_ -= std::min(self->backlog_, n);
      if (ec) {
        self->broken_ = true;
        self->pending_.clear();
        self->backlog_ = 0;
      }
      self->Pump();
    });
  }

  void FinishStream() {
    ending_ = false;
    Observe(end_path_, stream_status_);
    EndInFlight();  // the last chunk was written, or the stream broke
    if (broken_ || !keep_alive_ || server_->stopping) return Close();
    ReadHeader();
  }

  void ReadHeader() {
    parser_.emplace();
    parser_->header_limit(kHeaderLimit);
    parser_->body_limit(static_cast<uint64_t>(server_->options.max_body_bytes));
    stream_.expires_after(server_->options.idle_timeout);
    http::async_read_header(stream_, buffer_, *parser_,
                            [self = shared_from_this()](beast::error_code ec, size_t) { self->OnHeader(ec); });
  }

  void OnHeader(beast::error_code ec) {
    if (ec) return OnReadError(ec);
    const auto& req = parser_->get();
    keep_alive_ = req.keep_alive();
    if (const auto problem = FramingProblem(req)) return Reject(400, problem->first, problem->second);
    const auto len = parser_->content_length();
    if (len && *len > static_cast<uint64_t>(server_->options.max_body_bytes)) {
      return Reject(
          413, "the request body is over the limit of " + std::to_string(server_->options.max_body_bytes) + " bytes",
          "request_too_large");
    }
    if (beast::iequals(req[http::field::expect], "100-continue")) {
      auto cont = std::make_shared<http::response<http::empty_body>>(http::status::continue_, req.version());
      http::async_write(stream_, *cont, [self = shared_from_this(), cont](beast::error_code ec2, size_t) {
        if (ec2) return self->Close();
        self->ReadBody();
      });
      return;
    }
    ReadBody();
  }

  // What makes a request's length or Host ambiguous, so that a proxy in front of us could read it differently from
  // us (request smuggling): the message and error code to refuse it with, or nothing. Beast has already refused
  // duplicate Transfer-Encoding: chunked, Content-Length after chunked, and conflicting Content-Lengths.
  static std::optional<std::pair<std::string, const char*>> FramingProblem(
      const http::request<http::string_body>& req) {
    const auto te = req.equal_range(http::field::transfer_encoding);
    if (te.first != te.second) {
      // Beast decodes "chunked" only when it comes last and ignores any other coding ("gzip, chunked", "identity",
      // "chunked, chunked"), which would leave the body, or part of it, to be read as the next request.
      if (std::next(te.first) != te.second || !beast::iequals(te.first->value(), "chunked")) {
        return std::make_pair("unsupported Transfer-Encoding '" + std::string(te.first->value().substr(0, 100)) +
                                  "': only 'chunked' is accepted",
                              "unsupported_transfer_encoding");
      }
      if (req.count(http::field::content_length) > 0) {
        return std::make_pair(std::string("a request cannot have both Transfer-Encoding and Content-Length"),
                              "bad_request");
      }
    }
    const size_t hosts = req.count(http::field::host);
    if (hosts > 1) return std::make_pair(std::string("the request has more than one Host header"), "bad_request");
    if (hosts == 0 && req.version() >= 11) {
      return std::make_pair(std::string("an HTTP/1.1 request needs a Host header"), "bad_request");
    }
    return std::nullopt;
  }

  void ReadBody() {
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code ec, size_t) { self->OnRead(ec); });
  }

  void OnReadError(beast::error_code ec) {
    if (ec == http::error::body_limit) {
      return Reject(
          413, "the request body is over the limit of " + std::to_string(server_->options.max_body_bytes) + " bytes",
          "request_too_large");
    }
    if (ec == http::error::header_limit) return Reject(431, "the request headers are too large", "headers_too_large");
    if (ec.category() == beast::error_code(http::error::bad_target).category() && ec != http::error::end_of_stream &&
        ec != http::error::partial_message) {
      return Reject(400, "malformed HTTP request: " + ec.message(), "bad_request");
    }
    Close();  // end of stream, timeout, reset: nobody left to answer
  }

  // Answers an unreadable request and closes the connection, draining what the client still sends first so that
  // the close does not reset the connection before the client has read the answer.
  void Reject(int status, const std::string& message, const char* code) {
    keep_alive_ = false;
    Send(ErrorResponse(status, message, "invalid_request_error", code), "(unread)");
  }

  void OnRead(beast::error_code ec) {
    if (ec) return OnReadError(ec);
    stream_.expires_never();  // the handler may take as long as the upstream call does
    auto& req = parser_->get();
    HttpRequest r;
    r.method = std::string(req.method_string());
    r.target = std::string(req.target());
    r.authorization = std::string(req[http::field::authorization]);
    r.body = std::move(req.body());
    r.arrived = arrived_ = std::chrono::steady_clock::now();
    const std::string path = r.target.substr(0, r.target.find('?'));
    in_flight_ = true;
    server_->in_flight.fetch_add(1);
    broken_ = false;
    backlog_ = 0;
    ++seq;
    answered = streaming = false;
    auto exchange = std::make_shared<Exchange>(shared_from_this(), path, seq);
    try {
      server_->handler(std::move(r), exchange);
    } catch (...) {
      exchange->Respond(ErrorResponse(500, "internal error", "server_error", "internal_error"));
    }
  }

  // Half-closes, then reads and discards until the client closes (bounded by bytes and time).
  void Drain() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    stream_.expires_after(std::chrono::seconds(5));
    drain_buf_.resize(size_t{16} * 1024);
    stream_.async_read_some(net::buffer(drain_buf_), [self = shared_from_this()](beast::error_code ec2, size_t n) {
      self->drained_ += n;
      if (ec2 || self->drained_ > kDrainLimit) return self->Close();
      self->Drain();
    });
  }

  void Close() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream_.socket().close(ec);
    slot_.Release();
  }

  // The request being served stops counting in flight: its answer was written, or can no longer be.
  void EndInFlight() {
    if (!in_flight_) return;
    in_flight_ = false;
    server_->in_flight.fetch_sub(1);
  }

  beast::tcp_stream stream_;
  ConnectionSlot slot_;
  net::io_context& loop_;
  HttpServer::Impl* server_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::chrono::steady_clock::time_point arrived_;
  bool keep_alive_ = true;
  bool in_flight_ = false;  // the request being served counts in HttpServer::Impl::in_flight
  // Streaming.
  std::vector<std::string> pending_, batch_;
  std::vector<net::const_buffer> buffers_;
  size_t backlog_ = 0;  // bytes queued and not yet written
  bool writing_ = false, ending_ = false;
  std::atomic<bool> broken_{false};  // written on the loop; read from anywhere by stream_broken()
  int stream_status_ = 0;
  std::string end_path_;
  // Draining before a close.
  std::vector<char> drain_buf_;
  size_t drained_ = 0;
};

template <typename F>
void Exchange::OnLoop(F&& f) {
  if (session_->server().stopped) return;
  Session& s = *session_;
  if (s.loop().get_executor().running_in_this_thread() && s.queued.load() == 0) {
    if (s.seq == seq_) f(s);
    return;
  }
  s.queued.fetch_add(1);
  net::post(s.loop(), [session = session_, seq = seq_, f = std::forward<F>(f)]() mutable {
    session->queued.fetch_sub(1);
    if (session->seq == seq) f(*session);
  });
}

Exchange::~Exchange() try {
  // The last reference may go on any thread; the cleanup runs on the loop (and keeps the session alive until then).
  OnLoop([path = path_](Session& s) {
    if (!s.answered) {
      s.answered = true;
      s.Send(ErrorResponse(500, "the request was not answered", "server_error", "internal_error"), path);
    } else if (s.streaming) {
      s.streaming = false;
      s.EndStream(path);
    }
  });
} catch (...) {
  // Out of memory for the post: this request goes unanswered and its client waits until it gives up.
}

net::io_context& Exchange::loop() {
  return session_->loop();
}

void Exchange::Respond(HttpResponse response) {
  OnLoop([path = path_, response = std::move(response)](Session& s) mutable {
    if (s.answered) return;
    s.answered = true;
    s.Send(std::move(response), path);
  });
}

void Exchange::BeginStream(int status, std::string_view content_type, const Headers& headers) {
  OnLoop([status, ct = std::string(content_type), headers](Session& s) {
    if (s.answered) return;
    s.answered = s.streaming = true;
    s.BeginStream(status, ct, headers);
  });
}

bool Exchange::WriteStream(std::string_view data) {
  Session& s = *session_;
  if (s.loop().get_executor().running_in_this_thread() && s.queued.load() == 0) {
    return !s.server().stopped && s.seq == seq_ && s.streaming && s.WriteStream(data);
  }
  OnLoop([d = std::string(data)](Session& s) {
    if (s.streaming) s.WriteStream(d);
  });
  return !session_->stream_broken();
}

void Exchange::EndStream() {
  OnLoop([path = path_](Session& s) {
    if (!s.streaming) return;
    s.streaming = false;
    s.EndStream(path);
  });
}

}  // namespace

void HttpServer::Impl::Accept() {
  net::io_context& target = *loops[next_loop++ % loops.size()];
  acceptor->async_accept(target, [this, &target](beast::error_code ec, tcp::socket socket) {
    if (stopping) return;
    if (ec) return OnAcceptError(ec);
    accept_pause = std::chrono::milliseconds(0);
    // Counted and checked on this loop only, so the cap holds exactly; sessions close on any loop.
    if (options.max_connections > 0 && connections.load() >= options.max_connections) {
      Shed(socket);
      return Accept();
    }
    ConnectionSlot slot(this);
    socket.set_option(tcp::no_delay(true), ec);
    // Constructed on its own loop: the session's handlers all run there.
    net::post(target, [this, &target, socket = std::move(socket), slot = std::move(slot)]() mutable {
      std::make_shared<Session>(std::move(socket), std::move(slot), target, this)->Start();
    });
    Accept();
  });
}

// Out of file descriptors (EMFILE, ENFILE), of buffers (ENOBUFS) or anything else: accepting again at once would fail
// again at once, burning a core and starving the loop, so the next accept waits, 10 ms doubling up to 1 s. The
// pending connections wait in the listen backlog meanwhile.
void HttpServer::Impl::OnAcceptError(const beast::error_code& ec) {
  const int64_t errors = accept_errors.fetch_add(1) + 1;
  accept_pause = std::clamp(accept_pause * 2, std::chrono::milliseconds(10), std::chrono::milliseconds(1000));
  const auto now = std::chrono::steady_clock::now();
  if (!accept_logged || now - *accept_logged >= std::chrono::seconds(1)) {
    accept_logged = now;
    std::fprintf(stderr, "baton serve: accepting a connection failed (%s; %lld failures so far); retrying in %lld ms\n",
                 ec.message().c_str(), static_cast<long long>(errors), static_cast<long long>(accept_pause.count()));
  }
  accept_timer->expires_after(accept_pause);
  accept_timer->async_wait([this](beast::error_code wait_ec) {
    if (wait_ec || stopping) return;
    Accept();
  });
}

// A connection over max_connections: a canned 503 and a close, on the accepting loop, with no session, no buffer and
// no timer, so that shedding stays cheap under the load that causes it.
void HttpServer::Impl::Shed(tcp::socket& socket) {
  static const std::string response = [] {
    const std::string body =
        R"({"error":{"message":"the server has too many open connections; retry later","type":"server_error",)"
        R"("code":"too_many_connections"}})";
    return fmt::format(
        "HTTP/1.1 503 Service Unavailable\r\nServer: baton\r\nContent-Type: application/json\r\nRetry-After: 1\r\n"
        "Connection: close\r\nContent-Length: {}\r\n\r\n{}",
        body.size(), body);
  }();
  beast::error_code ec;
  socket.non_blocking(true, ec);
  socket.write_some(net::buffer(response), ec);  // a new socket's send buffer has room for these few bytes
  socket.shutdown(tcp::socket::shutdown_send, ec);
  // Discards what the client already sent (its request, up to 64 KiB): closing with unread data would reset the
  // connection, and the client could lose the answer.
  std::array<char, 4096> sink;
  ec = {};
  for (int i = 0; i < 16 && !ec; ++i) socket.read_some(net::buffer(sink), ec);
  socket.close(ec);
}

StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(const HttpServerOptions& options, HttpHandler handler,
                                                        HttpObserver observer) {
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->handler = std::move(handler);
  impl->observer = std::move(observer);
  const int n = std::max(1, options.io_threads);
  for (int i = 0; i < n; ++i) {
    impl->loops.push_back(std::make_unique<net::io_context>(1));  // concurrency hint: one thread per loop
    impl->work.push_back(net::make_work_guard(*impl->loops.back()));
    // Creates the loop's reactor (its epoll, eventfd and timerfd descriptors) now, with a timer. Asio creates it with
    // the loop's first socket or timer, which for this loop may be a connection accepted onto it, and when that
    // happens with no descriptor left (the very moment accepts fail), it throws out of the accepting loop.
    try {
      net::steady_timer create_reactor(*impl->loops.back());
    } catch (const std::exception& e) {
      return Status::IoError(std::string("cannot start an event loop: ") + e.what());
    }
  }
  impl->acceptor.emplace(*impl->loops.front());
  impl->accept_timer.emplace(*impl->loops.front());
  tcp::acceptor& acceptor = *impl->acceptor;
  beast::error_code ec;
  const auto address = net::ip::make_address(options.host, ec);
  if (ec) return Status::InvalidArgument("listen address '" + options.host + "': " + ec.message());
  const tcp::endpoint endpoint{address, options.port};
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(net::socket_base::max_listen_connections, ec);
  if (ec) {
    return Status::IoError("cannot listen on " + options.host + ":" + std::to_string(options.port) + ": " +
                           ec.message());
  }
  impl->port = acceptor.local_endpoint().port();
  impl->Accept();
  for (auto& loop : impl->loops) {
    impl->threads.emplace_back([raw = loop.get()] { raw->run(); });
  }
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

HttpServer::~HttpServer() {
  try {
    Shutdown(std::chrono::milliseconds(0));
  } catch (...) {  // joining a thread failed: nothing left to do about it while being destroyed
  }
}

uint16_t HttpServer::port() const {
  return impl_->port;
}
int64_t HttpServer::in_flight() const {
  return impl_->in_flight.load();
}
int64_t HttpServer::connections() const {
  return impl_->connections.load();
}
int64_t HttpServer::accept_errors() const {
  return impl_->accept_errors.load();
}

void HttpServer::Shutdown(std::chrono::milliseconds grace) {
  if (impl_->shut_down) return;
  impl_->shut_down = true;
  impl_->stopping = true;
  net::post(*impl_->loops.front(), [impl = impl_.get()] {
    beast::error_code ec;
    impl->acceptor->close(ec);
  });
  // A request counts in flight until its answer is written (see in_flight()), so this waits for slow readers too.
  const auto deadline = std::chrono::steady_clock::now() + grace;
  while (impl_->in_flight.load() > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  impl_->work.clear();
  for (auto& loop : impl_->loops) loop->stop();
  for (auto& t : impl_->threads) t.join();
  impl_->threads.clear();
  impl_->stopped = true;
}

}  // namespace baton::gateway
