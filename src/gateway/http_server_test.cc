// The HTTP server's contract with its handler: exchanges answer exactly their own request, from any thread, and
// streams are ordered, bounded and always ended. A raw Beast client keeps one connection so keep-alive is exercised.
#include "gateway/http_server.h"

#include <gtest/gtest.h>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <atomic>
#include <chrono>
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

// One keep-alive connection to the server.
class Client {
 public:
  explicit Client(uint16_t port) : socket_(ioc_) { socket_.connect({net::ip::make_address("127.0.0.1"), port}); }

  http::response<http::string_body> Get(const std::string& target) {
    http::request<http::string_body> req{http::verb::get, target, 11};
    req.set(http::field::host, "127.0.0.1");
    http::write(socket_, req);
    http::response<http::string_body> res;
    http::read(socket_, buffer_, res);
    return res;
  }
  tcp::socket& socket() { return socket_; }

 private:
  net::io_context ioc_;
  tcp::socket socket_;
  beast::flat_buffer buffer_;
};

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
  EXPECT_EQ((*server)->in_flight(), 0);  // every request was answered
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
  http::write(c.socket(), req);  // and never read the answer
  auto f = written.get_future();
  ASSERT_EQ(f.wait_for(std::chrono::seconds(30)), std::future_status::ready);
  // Stopped after the socket buffers and the backlog filled, far short of the 1 GiB it would have sent.
  EXPECT_LT(f.get(), int64_t{256} << 20);
}

}  // namespace
}  // namespace baton::gateway
