// The HTTP server's contract with its handler: exchanges answer exactly their own request, from any thread, and
// streams are ordered, bounded and always ended. A raw Beast client keeps one connection so keep-alive is exercised.
// Then the server's defences: a connection cap, pausing failed accepts, refusing ambiguous framing, and a shutdown
// that lets slow readers have their whole answer.
#include "gateway/http_server.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <functional>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace baton::gateway {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

// One keep-alive connection to the server. A read gives up after a while (closing the socket), so that a server
// that never answers fails the test rather than hanging it.
class Client {
 public:
  // The socket is opened at once; `connect` = false leaves connecting to Connect().
  explicit Client(uint16_t port, bool connect = true) : stream_(ioc_), port_(port) {
    stream_.socket().open(tcp::v4());
    if (connect) Connect();
  }
  void Connect() { stream_.socket().connect({net::ip::make_address("127.0.0.1"), port_}); }

  http::response<http::string_body> Get(const std::string& target) {
    http::request<http::string_body> req{http::verb::get, target, 11};
    req.set(http::field::host, "127.0.0.1");
    http::write(stream_.socket(), req);
    return Read();
  }
  // Sends `bytes` as they are and reads the answer.
  http::response<http::string_body> Raw(const std::string& bytes) {
    net::write(stream_.socket(), net::buffer(bytes));
    return Read();
  }
  // One response; on failure (see error()) its status is 0.
  http::response<http::string_body> Read(std::chrono::seconds timeout = std::chrono::seconds(30)) {
    http::response<http::string_body> res;
    error_ = {};
    stream_.expires_after(timeout);
    http::async_read(stream_, buffer_, res, [this](beast::error_code ec, size_t) { error_ = ec; });
    ioc_.restart();
    ioc_.run();
    if (error_) res.result(http::status::unknown);
    return res;
  }
  // Whether the server has closed the connection: the next read finds the end of the stream.
  bool ClosedByServer() {
    Read(std::chrono::seconds(10));
    return error_ == http::error::end_of_stream;
  }
  beast::error_code error() const { return error_; }
  tcp::socket& socket() { return stream_.socket(); }

 private:
  net::io_context ioc_;
  beast::tcp_stream stream_;
  uint16_t port_;
  beast::flat_buffer buffer_;
  beast::error_code error_;
};

// Waits for what the server does asynchronously (a close noticed, a counter moved): true once `done` holds, false
// after 30 s.
bool Eventually(const std::function<bool()>& done) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

// A field of an OpenAI-shaped error body ({"error": {"message", "type", "code"}}); "" when there is none.
std::string ErrorField(const std::string& body, const std::string& field) {
  const auto j = nlohmann::json::parse(body, nullptr, false);
  const auto p = nlohmann::json::json_pointer("/error/" + field);
  return j.contains(p) && j[p].is_string() ? j[p].get<std::string>() : "";
}

// Answers every request with its target and body.
void Echo(HttpRequest req, std::shared_ptr<HttpExchange> ex) {
  ex->Respond(MakeHttpResponse(200, req.target + req.body, "text/plain"));
}

TEST(HttpServerTest, AnExchangeKeptPastItsRequestNeverTouchesTheNextOne) {
  std::mutex mu;
  std::vector<std::shared_ptr<HttpExchange>> kept;
  auto server = HttpServer::Start({}, [&](HttpRequest req, std::shared_ptr<HttpExchange> ex) {
    {
      std::lock_guard<std::mutex> lock(mu);
      kept.push_back(ex);  // still referenced after the answer, as a slow callback might
    }
    ex->Respond(MakeHttpResponse(200, req.target, "text/plain"));
  });
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  Client c((*server)->port());
  EXPECT_EQ(c.Get("/one").body(), "/one");
  EXPECT_EQ(c.Get("/two").body(), "/two");
  {
    std::lock_guard<std::mutex> lock(mu);
    ASSERT_EQ(kept.size(), 2u);
    kept[0]->Respond(MakeHttpResponse(500, "stale", "text/plain"));  // ignored: its request is over
    kept.clear();                                                    // destroyed: no stray 500 either
  }
  EXPECT_EQ(c.Get("/three").body(), "/three");
  // Every request was answered (a request counts until its answer is written, which the client may see first).
  EXPECT_TRUE(Eventually([&] { return (*server)->in_flight() == 0; }));
  (*server)->Shutdown(std::chrono::milliseconds(0));
}

TEST(HttpServerTest, AnExchangeDroppedUnansweredSends500) {
  auto server = HttpServer::Start({}, [](HttpRequest, std::shared_ptr<HttpExchange> ex) {
    std::thread([ex = std::move(ex)]() mutable { ex.reset(); }).detach();  // dropped on another thread
  });
  ASSERT_TRUE(server.ok());
  Client c((*server)->port());
  auto res = c.Get("/x");
  EXPECT_EQ(res.result_int(), 500);
  EXPECT_NE(res.body().find("not answered"), std::string::npos);
  EXPECT_EQ(c.Get("/y").result_int(), 500);  // and the connection is still usable
}

TEST(HttpServerTest, StreamsFromAnotherThreadArriveInOrder) {
  auto server = HttpServer::Start({}, [](HttpRequest, std::shared_ptr<HttpExchange> ex) {
    std::thread([ex] {
      ex->BeginStream(200, "text/event-stream", {{"x-test", "yes"}});
      for (int i = 0; i < 500; ++i) ex->WriteStream(std::to_string(i) + ",");
      ex->EndStream();
    }).detach();
  });
  ASSERT_TRUE(server.ok());
  Client c((*server)->port());
  auto res = c.Get("/stream");
  EXPECT_EQ(res.result_int(), 200);
  EXPECT_EQ(res["x-test"], "yes");
  std::string expected;
  for (int i = 0; i < 500; ++i) expected += std::to_string(i) + ",";
  EXPECT_EQ(res.body(), expected);
  EXPECT_EQ(c.Get("/again").result_int(), 200);  // the connection serves its next request
}

TEST(HttpServerTest, AClientThatDoesNotReadStopsTheStreamInsteadOfGrowingMemory) {
  HttpServerOptions o;
  o.max_stream_backlog = 256 * 1024;
  std::promise<int64_t> written;
  auto server = HttpServer::Start(o, [&](HttpRequest, std::shared_ptr<HttpExchange> ex) {
    ex->BeginStream(200, "text/event-stream", {});
    const std::string piece(16 * 1024, 'x');
    int64_t n = 0;
    while (n < (int64_t{1} << 30) && ex->WriteStream(piece)) n += static_cast<int64_t>(piece.size());
    ex->EndStream();
    written.set_value(n);
  });
  ASSERT_TRUE(server.ok());
  Client c((*server)->port());
  http::request<http::string_body> req{http::verb::get, "/flood", 11};
  req.set(http::field::host, "127.0.0.1");
  http::write(c.socket(), req);  // and never read the answer
  auto f = written.get_future();
  ASSERT_EQ(f.wait_for(std::chrono::seconds(30)), std::future_status::ready);
  // Stopped after the socket buffers and the backlog filled, far short of the 1 GiB it would have sent.
  EXPECT_LT(f.get(), int64_t{256} << 20);
}

TEST(HttpServerTest, AConnectionOverTheCapIsAnswered503AndClosed) {
  HttpServerOptions o;
  o.max_connections = 2;
  auto server = HttpServer::Start(o, Echo);
  ASSERT_TRUE(server.ok());
  const uint16_t port = (*server)->port();
  auto a = std::make_unique<Client>(port);
  Client b(port);
  EXPECT_EQ(a->Get("/a").body(), "/a");  // both served, and now idle keep-alive connections
  EXPECT_EQ(b.Get("/b").body(), "/b");
  EXPECT_EQ((*server)->connections(), 2);

  Client c(port);
  auto res = c.Read(std::chrono::seconds(10));  // answered without even reading a request
  ASSERT_EQ(res.result_int(), 503) << c.error().message();
  EXPECT_EQ(res[http::field::retry_after], "1");
  EXPECT_FALSE(res.keep_alive());
  EXPECT_EQ(ErrorField(res.body(), "type"), "server_error");
  EXPECT_EQ(ErrorField(res.body(), "code"), "too_many_connections");
  EXPECT_NE(ErrorField(res.body(), "message").find("too many open connections"), std::string::npos);
  EXPECT_TRUE(c.ClosedByServer());
  EXPECT_EQ((*server)->connections(), 2);  // the refused one was never counted

  a.reset();  // one of the two goes: once the server has noticed, a new connection is served again
  ASSERT_TRUE(Eventually([&] { return (*server)->connections() == 1; }));
  Client d(port);
  EXPECT_EQ(d.Get("/d").body(), "/d");
  EXPECT_EQ(b.Get("/b2").body(), "/b2");
}

// Lowers the soft RLIMIT_NOFILE of this process to its lowest free descriptor number, so that opening any new
// descriptor (an accept()) fails with EMFILE; restores the limit when destroyed, whatever the test's outcome.
class NoNewDescriptors {
 public:
  NoNewDescriptors() {
    if (getrlimit(RLIMIT_NOFILE, &saved_) != 0) return;
    const int lowest_free = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (lowest_free < 0) return;
    ::close(lowest_free);
    rlimit lowered = saved_;
    lowered.rlim_cur = static_cast<rlim_t>(lowest_free);
    lowered_ = setrlimit(RLIMIT_NOFILE, &lowered) == 0;
  }
  ~NoNewDescriptors() {
    if (lowered_) setrlimit(RLIMIT_NOFILE, &saved_);
  }
  NoNewDescriptors(const NoNewDescriptors&) = delete;
  NoNewDescriptors& operator=(const NoNewDescriptors&) = delete;
  bool lowered() const { return lowered_; }

 private:
  rlimit saved_{};
  bool lowered_ = false;
};

TEST(HttpServerTest, FailingAcceptsPauseInsteadOfSpinning) {
  auto server = HttpServer::Start({}, Echo);
  ASSERT_TRUE(server.ok());
  Client a((*server)->port(), /*connect=*/false);  // its socket is opened while descriptors are still to be had
  {
    NoNewDescriptors limit;
    ASSERT_TRUE(limit.lowered());
    a.Connect();  // completes in the listen backlog: the server's accept() finds no descriptor for it
    ASSERT_TRUE(Eventually([&] { return (*server)->accept_errors() > 0; }));
    const int64_t before = (*server)->accept_errors();
    const auto start = std::chrono::steady_clock::now();
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    const int64_t failed = (*server)->accept_errors() - before;
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    // Pauses of 10, 20, 40 ... ms up to 1 s allow a handful of attempts in the first second and one a second after
    // that, however slow the machine; retrying at once makes thousands.
    EXPECT_LE(failed, 10 + 2 * static_cast<int64_t>(seconds)) << "over " << seconds << " s";
  }
  // Descriptors again: the waiting connection is accepted after the current pause (at most 1 s) and served.
  EXPECT_EQ(a.Get("/after").body(), "/after");
}

TEST(HttpServerTest, ATransferEncodingOtherThanChunkedIsRefusedAndTheConnectionClosed) {
  std::atomic<int> handled{0};
  auto server = HttpServer::Start({}, [&](HttpRequest req, std::shared_ptr<HttpExchange> ex) {
    ++handled;
    Echo(std::move(req), std::move(ex));
  });
  ASSERT_TRUE(server.ok());
  const std::string head = "POST /x HTTP/1.1\r\nHost: h\r\n";
  const std::vector<std::string> ambiguous = {
      head + "Transfer-Encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
      head + "Transfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n",
      head + "Transfer-Encoding: identity\r\n\r\n",
      head + "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
      head + "Transfer-Encoding: identity\r\nContent-Length: 5\r\n\r\nhello",
      head + "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
      head + "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
  };
  for (const auto& request : ambiguous) {
    SCOPED_TRACE(request);
    Client c((*server)->port());
    auto res = c.Raw(request);
    EXPECT_EQ(res.result_int(), 400);
    EXPECT_FALSE(res.keep_alive());
    EXPECT_EQ(ErrorField(res.body(), "type"), "invalid_request_error");
    EXPECT_NE(ErrorField(res.body(), "message"), "");
    EXPECT_TRUE(c.ClosedByServer());
  }
  EXPECT_EQ(handled.load(), 0);
  Client c((*server)->port());  // plain chunked is fine
  EXPECT_EQ(c.Raw(head + "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n").body(), "/xhello");
}

TEST(HttpServerTest, AnHttp11RequestWithoutOneHostIsRefused) {
  std::atomic<int> handled{0};
  auto server = HttpServer::Start({}, [&](HttpRequest req, std::shared_ptr<HttpExchange> ex) {
    ++handled;
    Echo(std::move(req), std::move(ex));
  });
  ASSERT_TRUE(server.ok());
  for (const std::string request : {"GET /a HTTP/1.1\r\n\r\n", "GET /a HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"}) {
    SCOPED_TRACE(request);
    Client c((*server)->port());
    auto res = c.Raw(request);
    EXPECT_EQ(res.result_int(), 400);
    EXPECT_EQ(ErrorField(res.body(), "code"), "bad_request");
    EXPECT_NE(ErrorField(res.body(), "message").find("Host"), std::string::npos);
    EXPECT_TRUE(c.ClosedByServer());
  }
  EXPECT_EQ(handled.load(), 0);
  Client c((*server)->port());
  EXPECT_EQ(c.Raw("GET /old HTTP/1.0\r\n\r\n").body(), "/old");  // HTTP/1.0 has no Host to require
}

TEST(HttpServerTest, ShutdownLetsASlowReaderHaveTheWholeAnswer) {
  // Far more than the kernel buffers on both sides hold (the client's is kept small), so most of it is still to be
  // written when Shutdown begins.
  constexpr size_t kBody = size_t{32} << 20;
  auto server = HttpServer::Start({}, [](HttpRequest, std::shared_ptr<HttpExchange> ex) {
    ex->Respond(MakeHttpResponse(200, std::string(kBody, 'x'), "application/octet-stream"));
  });
  ASSERT_TRUE(server.ok());
  const uint16_t port = (*server)->port();
  Client c(port, /*connect=*/false);
  c.socket().set_option(net::socket_base::receive_buffer_size(64 * 1024));  // before connecting: no autotuning
  c.Connect();
  http::request<http::string_body> req{http::verb::get, "/big", 11};
  req.set(http::field::host, "127.0.0.1");
  http::write(c.socket(), req);

  // The head of the answer, read raw: the write has begun, and cannot end before this client reads on.
  std::string head;
  std::vector<char> buf(64 * 1024);
  beast::error_code ec;
  while (head.find("\r\n\r\n") == std::string::npos && !ec) {
    head.append(buf.data(), c.socket().read_some(net::buffer(buf), ec));
  }
  ASSERT_FALSE(ec) << ec.message();
  size_t received = head.size() - (head.find("\r\n\r\n") + 4);
  EXPECT_EQ((*server)->in_flight(), 1);  // answered by the handler, not yet written

  // Shutdown and then destruction (which closes what is left open), on their own thread: they wait for this client.
  std::thread stopper([&] {
    (*server)->Shutdown(std::chrono::seconds(60));
    server->reset();
  });
  // Reads on only once Shutdown has begun, as the listener closing shows, and slowly: 64 KiB a millisecond.
  net::io_context probes;
  EXPECT_TRUE(Eventually([&] {
    tcp::socket probe(probes);
    beast::error_code probe_ec;
    probe.connect({net::ip::make_address("127.0.0.1"), port}, probe_ec);
    return probe_ec == net::error::connection_refused;
  }));
  while (received < kBody) {
    const size_t n = c.socket().read_some(net::buffer(buf), ec);
    if (ec) break;
    received += n;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  stopper.join();
  EXPECT_EQ(received, kBody) << ec.message();
}

}  // namespace
}  // namespace baton::gateway
