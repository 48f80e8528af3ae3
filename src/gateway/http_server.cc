// The gateway's HTTP server: Boost.Beast, asynchronous, a small pool of event-loop threads.
//
// Library choice, by measurement (2-core VM shared with wrk, loopback, hello-world GET answering 200 "ok",
// `wrk -t2 -c100 -d5s --latency http://127.0.0.1:PORT/`; re-run with scripts/http_library_bench.sh):
//   cpp-httplib 0.11 (Debian libcpp-httplib-dev):      562 req/s, p50 44 ms, p99 902 ms, 9 threads, 8 MB RSS
//   Boost.Beast 1.81 async, 2 event-loop threads:   68,379 req/s, p50 1.26 ms, p99 3.8 ms, 3 threads, 4.5 MB RSS
// cpp-httplib is thread-per-connection (a pool of 8 blocking threads, each held by one keep-alive connection), so
// 100 connections queue behind 8 and 1,000 open connections would need 1,000 threads. Beast keeps an idle
// connection at a socket plus a buffer: the gateway holding 1,000 idle keep-alive connections grew from 81.3 MB to
// 84.0 MB resident (replay example: most of that is the 11 experts' recorded answers), with no extra threads.
// The finished gateway (examples/replay.yaml, budget raised, pass-through to a replay expert, 10 connections paced
// with a 2 ms wrk delay(), ~3,500 req/s offered, machine load average 4.7 from parallel builds): server-side time
// from request read to response written p50 ~0.2 ms, p99 ~1 ms (/metrics histogram); wrk end to end p50 0.51 ms,
// p99 2.8 ms. Routed ("model": "baton") requests add the router's prediction (~0.3-0.5 ms with the default
// predictor). See the gateway report for the exact commands.
#include "gateway/http_server.h"

#include <condition_variable>
#include <mutex>
#include <optional>
#include <thread>

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
  net::io_context ioc;
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work;
  tcp::acceptor acceptor{ioc};
  std::vector<std::thread> threads;
  std::atomic<int64_t> in_flight{0};
  std::atomic<bool> stopping{false};
  bool stopped = false;  // guarded by the controlling thread
  uint16_t port = 0;

  void Accept();
};

namespace {

constexpr size_t kHeaderLimit = 64 * 1024;
constexpr size_t kDrainLimit = 16 * 1024 * 1024;
constexpr size_t kSyncWriteLimit = 16 * 1024;   // a response this small fits an idle socket's send buffer
thread_local bool t_event_loop_thread = false;  // true on the server's event-loop threads

class Session;

class Exchange : public HttpExchange {
 public:
  Exchange(std::shared_ptr<Session> session, std::string path) : session_(std::move(session)), path_(std::move(path)) {}
  ~Exchange() override;
  void Respond(HttpResponse response) override;
  bool BeginStream(int status, std::string_view content_type, const Headers& headers) override;
  bool WriteStream(std::string_view data) override;
  void EndStream() override;

 private:
  std::shared_ptr<Session> session_;
  std::string path_;
  bool answered_ = false;
  bool streaming_ = false;
  bool stream_ok_ = true;
  int status_ = 0;
};

// One connection. Its socket is used by one party at a time: the strand's async reads and writes, or (while a
// request is being streamed) the worker thread holding the Exchange, while no async operation is pending.
class Session : public std::enable_shared_from_this<Session> {
 public:
  // `server` outlives every session: the HttpServer's owner releases all exchanges before destroying it.
  Session(tcp::socket socket, HttpServer::Impl* server) : stream_(std::move(socket)), server_(server) {}

  void Start() {
    net::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->ReadHeader(); });
  }

  // Called by Exchange::Respond from any thread. On the strand the write is asynchronous. On a worker thread the
  // connection is idle (no operation pending: the handler owns it), so the worker writes a small response itself,
  // synchronously, and only then hands the connection back to the strand: the client gets its answer without
  // waiting for an event-loop thread to wake up.
  void Send(HttpResponse r, const std::string& path) {
    if (t_event_loop_thread || r.body.size() > kSyncWriteLimit) {  // a big one may not fit the send buffer
      return net::dispatch(stream_.get_executor(), [self = shared_from_this(), r = std::move(r), path]() mutable {
        self->DoSend(std::move(r), path, !self->keep_alive_);
      });
    }
    auto res = MakeResponse(std::move(r), path, !keep_alive_);
    beast::error_code ec;
    http::write(stream_.socket(), *res, ec);
    net::post(stream_.get_executor(), [self = shared_from_this(), ok = !ec, close = !res->keep_alive()] {
      if (!ok) return self->Close();
      if (close) return self->Drain();
      self->ReadHeader();
    });
  }

  beast::tcp_stream& stream() { return stream_; }
  bool keep_alive() const { return keep_alive_; }
  HttpServer::Impl& server() { return *server_; }
  std::chrono::steady_clock::time_point arrived() const { return arrived_; }

  // After a streamed response: serve the next request, or close.
  void AfterStream(bool ok) {
    net::dispatch(stream_.get_executor(), [self = shared_from_this(), ok] {
      if (ok && self->keep_alive_ && !self->server_->stopping) {
        self->ReadHeader();
      } else {
        beast::error_code ec;
        self->stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
        self->stream_.socket().close(ec);
      }
    });
  }

 private:
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
    DoSend(ErrorResponse(status, message, "invalid_request_error", code), "(unread)", true);
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
    server_->in_flight.fetch_add(1);
    auto exchange = std::make_shared<Exchange>(shared_from_this(), path);
    try {
      server_->handler(std::move(r), exchange);
    } catch (...) {
      exchange->Respond(ErrorResponse(500, "internal error", "server_error", "internal_error"));
    }
  }

  // Builds the response and reports it to the observer.
  std::shared_ptr<http::response<http::string_body>> MakeResponse(HttpResponse r, const std::string& path, bool close) {
    auto res = std::make_shared<http::response<http::string_body>>(static_cast<http::status>(r.status), 11);
    res->set(http::field::server, "baton");
    res->set(http::field::content_type, r.content_type);
    for (const auto& [k, v] : r.headers) res->set(k, v);
    res->body() = std::move(r.body);
    res->keep_alive(!close && !server_->stopping);
    res->prepare_payload();
    if (server_->observer) {
      const bool read = path != "(unread)";
      server_->observer(path, r.status,
                        read ? std::chrono::duration<double>(std::chrono::steady_clock::now() - arrived_).count() : 0);
    }
    return res;
  }

  void DoSend(HttpResponse r, const std::string& path, bool close) {
    auto res = MakeResponse(std::move(r), path, close);
    stream_.expires_after(std::chrono::seconds(30));
    http::async_write(stream_, *res, [self = shared_from_this(), res](beast::error_code ec, size_t) {
      if (ec) return self->Close();
      if (!res->keep_alive()) return self->Drain();
      self->ReadHeader();
    });
  }

  // Half-closes, then reads and discards until the client closes (bounded by bytes and time).
  void Drain() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    stream_.expires_after(std::chrono::seconds(5));
    drain_buf_.resize(16 * 1024);
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
  }

  beast::tcp_stream stream_;
  HttpServer::Impl* server_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::vector<char> drain_buf_;
  size_t drained_ = 0;
  bool keep_alive_ = true;
  std::chrono::steady_clock::time_point arrived_;
};

Exchange::~Exchange() {
  if (!answered_) Respond(ErrorResponse(500, "the request was not answered", "server_error", "internal_error"));
  if (streaming_) EndStream();
}

void Exchange::Respond(HttpResponse response) {
  if (answered_) return;
  answered_ = true;
  session_->server().in_flight.fetch_sub(1);
  session_->Send(std::move(response), path_);
}

bool Exchange::BeginStream(int status, std::string_view content_type, const Headers& headers) {
  if (answered_) return false;
  answered_ = streaming_ = true;
  status_ = status;
  http::response<http::empty_body> res{static_cast<http::status>(status), 11};
  res.set(http::field::server, "baton");
  res.set(http::field::content_type, content_type);
  res.set(http::field::cache_control, "no-cache");
  for (const auto& [k, v] : headers) res.set(k, v);
  res.keep_alive(session_->keep_alive());
  res.chunked(true);
  http::response_serializer<http::empty_body> sr{res};
  beast::error_code ec;
  http::write_header(session_->stream().socket(), sr, ec);
  stream_ok_ = !ec;
  return stream_ok_;
}

bool Exchange::WriteStream(std::string_view data) {
  if (!streaming_ || !stream_ok_) return false;
  if (data.empty()) return true;
  beast::error_code ec;
  net::write(session_->stream().socket(), http::make_chunk(net::const_buffer(data.data(), data.size())), ec);
  stream_ok_ = !ec;
  return stream_ok_;
}

void Exchange::EndStream() {
  if (!streaming_) return;
  streaming_ = false;
  if (stream_ok_) {
    beast::error_code ec;
    net::write(session_->stream().socket(), http::make_chunk_last(), ec);
    stream_ok_ = !ec;
  }
  auto& server = session_->server();
  if (server.observer) {
    server.observer(path_, status_,
                    std::chrono::duration<double>(std::chrono::steady_clock::now() - session_->arrived()).count());
  }
  server.in_flight.fetch_sub(1);
  session_->AfterStream(stream_ok_);
}

}  // namespace

void HttpServer::Impl::Accept() {
  acceptor.async_accept(net::make_strand(ioc), [self = this](beast::error_code ec, tcp::socket socket) {
    if (self->stopping) return;
    if (!ec) {
      socket.set_option(tcp::no_delay(true), ec);
      std::make_shared<Session>(std::move(socket), self)->Start();
    }
    self->Accept();
  });
}

StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(const HttpServerOptions& options, HttpHandler handler,
                                                        HttpObserver observer) {
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->handler = std::move(handler);
  impl->observer = std::move(observer);
  beast::error_code ec;
  const auto address = net::ip::make_address(options.host, ec);
  if (ec) return Status::InvalidArgument("listen address '" + options.host + "': " + ec.message());
  const tcp::endpoint endpoint{address, options.port};
  impl->acceptor.open(endpoint.protocol(), ec);
  if (!ec) impl->acceptor.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) impl->acceptor.bind(endpoint, ec);
  if (!ec) impl->acceptor.listen(net::socket_base::max_listen_connections, ec);
  if (ec) {
    return Status::IoError("cannot listen on " + options.host + ":" + std::to_string(options.port) + ": " +
                           ec.message());
  }
  impl->port = impl->acceptor.local_endpoint().port();
  impl->work.emplace(net::make_work_guard(impl->ioc));
  impl->Accept();
  for (int i = 0; i < std::max(1, options.io_threads); ++i) {
    impl->threads.emplace_back([raw = impl.get()] {
      t_event_loop_thread = true;
      raw->ioc.run();
    });
  }
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

HttpServer::~HttpServer() {
  Shutdown(std::chrono::milliseconds(0));
}

uint16_t HttpServer::port() const {
  return impl_->port;
}
int64_t HttpServer::in_flight() const {
  return impl_->in_flight.load();
}

void HttpServer::Shutdown(std::chrono::milliseconds grace) {
  if (impl_->stopped) return;
  impl_->stopped = true;
  impl_->stopping = true;
  net::post(impl_->acceptor.get_executor(), [impl = impl_.get()] {
    beast::error_code ec;
    impl->acceptor.close(ec);
  });
  const auto deadline = std::chrono::steady_clock::now() + grace;
  while (impl_->in_flight.load() > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  // Give responses just handed over a moment to be written.
  if (grace.count() > 0) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  impl_->work.reset();
  impl_->ioc.stop();
  for (auto& t : impl_->threads) t.join();
  impl_->threads.clear();
}

}  // namespace baton::gateway
