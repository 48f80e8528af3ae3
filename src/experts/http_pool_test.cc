// HttpPool against a scripted loopback server: URL parsing, keep-alive reuse, the one resend on a connection the
// upstream had closed, chunked bodies, timeouts, refused connections, mid-body closes and aborts. The openai backend's
// behaviour over it (errors, streaming, limits) is tested in openai_test.cc (/AsyncBeast).
#include "experts/http_pool.h"

#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <boost/asio/post.hpp>

#include "experts/llama_server_process.h"
#include "experts/loop_thread.h"

namespace baton::experts {
namespace {

TEST(ParsePlainHttpUrlTest, AcceptsHostPortPathAndRefusesTheRest) {
  auto e = ParsePlainHttpUrl("http://127.0.0.1:8081/v1/chat/completions");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->host, "127.0.0.1");
  EXPECT_EQ(e->port, "8081");
  EXPECT_EQ(e->target, "/v1/chat/completions");
  e = ParsePlainHttpUrl("HTTP://example.com");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->port, "80");
  EXPECT_EQ(e->target, "/");
  for (const char* bad :
       {"https://api.openai.com/v1", "http://user:pw@host/v1", "http://host/v1?x=1", "http://[::1]:80/",
        "http://host:0/", "http://host:99999/", "http://host:8a/", "http:///v1", "ftp://host/", "http://ho st/"}) {
    EXPECT_FALSE(ParsePlainHttpUrl(bad)) << bad;
  }
}

// A loopback HTTP server run by one thread: each accepted connection answers requests with `respond(i, request)`,
// where i counts requests over all connections; the answer's bytes are sent as they are. An empty answer closes the
// connection without answering; close_after_each closes it after every answer.
class ScriptedServer {
 public:
  using Respond = std::function<std::string(int, const std::string&)>;
  ScriptedServer(Respond respond, bool close_after_each = false)
      : respond_(std::move(respond)), close_after_each_(close_after_each) {
    const testing::LoopbackSocket s = testing::BindLoopback();
    fd_ = s.fd;
    port_ = s.port;
    listen(fd_, 16);
    thread_ = std::thread([this] { Run(); });
  }
  ~ScriptedServer() {
    stop_ = true;
    shutdown(fd_, SHUT_RDWR);
    close(fd_);
    thread_.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/v1/x"; }
  int accepted() const { return accepted_; }

 private:
  void Run() {
    while (!stop_) {
      const int c = accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      ++accepted_;
      std::string in;
      char buf[4096];
      bool open = true;
      while (open && !stop_) {
        const size_t end = in.find("\r\n\r\n");
        if (end == std::string::npos) {
          const ssize_t n = read(c, buf, sizeof buf);
          if (n <= 0) break;
          in.append(buf, static_cast<size_t>(n));
          continue;
        }
        size_t length = 0;
        if (const size_t at = in.find("Content-Length: "); at != std::string::npos && at < end) {
          length = std::stoul(in.substr(at + 16));
        }
        while (in.size() < end + 4 + length) {
          const ssize_t n = read(c, buf, sizeof buf);
          if (n <= 0) break;
          in.append(buf, static_cast<size_t>(n));
        }
        const std::string request = in.substr(0, end + 4 + length);
        in.erase(0, request.size());
        const std::string answer = respond_(requests_++, request);
        if (answer.empty()) break;
        if (write(c, answer.data(), answer.size()) < 0) break;
        if (close_after_each_) open = false;
      }
      close(c);
    }
  }

  Respond respond_;
  bool close_after_each_;
  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> accepted_{0};
  int requests_ = 0;  // the server thread's
  std::thread thread_;
};

std::string Ok(const std::string& body, bool close = false) {
  return "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
         (close ? "\r\nConnection: close" : "") + "\r\n\r\n" + body;
}

struct Result {
  HttpOutcome outcome = HttpOutcome::kComplete;
  std::string detail;
  int status = 0;
  std::string body;
};

class Exchange final : public HttpPool::Exchange {
 public:
  Exchange(HttpEndpoint e, std::promise<Result>* done, std::chrono::milliseconds timeout, size_t abort_after = 0)
      : endpoint_(std::move(e)), done_(done), timeout_(timeout), abort_after_(abort_after) {}
  const HttpEndpoint& endpoint() const override { return endpoint_; }
  const std::string& body() const override { return body_; }
  const std::vector<std::pair<std::string, std::string>>& headers() const override { return headers_; }
  std::chrono::milliseconds timeout() const override { return timeout_; }
  void OnStatus(int status) override { r_.status = status; }
  bool OnBody(const char* data, size_t n) override {
    r_.body.append(data, n);
    return abort_after_ == 0 || r_.body.size() < abort_after_;
  }
  void Finish(HttpOutcome outcome, const std::string& detail) override {
    r_.outcome = outcome;
    r_.detail = detail;
    done_->set_value(r_);
  }

 private:
  HttpEndpoint endpoint_;
  std::promise<Result>* done_;
  std::chrono::milliseconds timeout_;
  size_t abort_after_;
  std::string body_ = R"({"q":1})";
  std::vector<std::pair<std::string, std::string>> headers_ = {{"Content-Type", "application/json"}};
  Result r_;
};

Result Call(testing::LoopThread& loop, const std::string& url,
            std::chrono::milliseconds timeout = std::chrono::seconds(10), size_t abort_after = 0) {
  std::promise<Result> done;
  auto endpoint = ParsePlainHttpUrl(url);
  EXPECT_TRUE(endpoint) << url;
  boost::asio::use_service<HttpPool>(loop.loop())
      .Start(std::make_unique<Exchange>(*endpoint, &done, timeout, abort_after));
  return done.get_future().get();
}

size_t Idle(testing::LoopThread& loop) {
  std::promise<size_t> n;
  boost::asio::post(loop.loop(),
                    [&] { n.set_value(boost::asio::use_service<HttpPool>(loop.loop()).idle_connections()); });
  return n.get_future().get();
}

TEST(HttpPoolTest, ReusesAKeptAliveConnection) {
  ScriptedServer server([](int i, const std::string& req) {
    EXPECT_NE(req.find("POST /v1/x HTTP/1.1"), std::string::npos) << req;
    EXPECT_NE(req.find("Host: 127.0.0.1:"), std::string::npos) << req;
    EXPECT_NE(req.find(R"({"q":1})"), std::string::npos) << req;
    return Ok("answer " + std::to_string(i));
  });
  testing::LoopThread loop;
  for (int i = 0; i < 5; ++i) {
    const Result r = Call(loop, server.url());
    EXPECT_EQ(r.outcome, HttpOutcome::kComplete) << r.detail;
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, "answer " + std::to_string(i));
  }
  EXPECT_EQ(server.accepted(), 1);
  EXPECT_EQ(Idle(loop), 1u);
}

TEST(HttpPoolTest, ResendsOnceWhenThePooledConnectionWasClosedAndNotAfterAnAnswerBegan) {
  // The server closes every connection after its answer without saying so: the next call finds its pooled
  // connection dead before any answer and is sent again on a new one.
  ScriptedServer server([](int i, const std::string&) { return Ok("n" + std::to_string(i)); },
                        /*close_after_each=*/true);
  testing::LoopThread loop;
  for (int i = 0; i < 3; ++i) {
    const Result r = Call(loop, server.url());
    EXPECT_EQ(r.outcome, HttpOutcome::kComplete) << r.detail;
    EXPECT_EQ(r.body, "n" + std::to_string(i));
  }
  EXPECT_EQ(server.accepted(), 3);
}

TEST(HttpPoolTest, ConnectionCloseIsNotPooledAndChunkedBodiesArriveWhole) {
  ScriptedServer server([](int, const std::string&) {
    return std::string("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n") +
           "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
  });
  testing::LoopThread loop;
  const Result r = Call(loop, server.url());
  EXPECT_EQ(r.outcome, HttpOutcome::kComplete) << r.detail;
  EXPECT_EQ(r.body, "hello world");
  EXPECT_EQ(Idle(loop), 0u);
}

TEST(HttpPoolTest, FailuresAreNamed) {
  testing::LoopThread loop;
  {                                                 // nothing listens
    const int port = testing::BindLoopback().port;  // bound, never listening: refused
    const Result r = Call(loop, "http://127.0.0.1:" + std::to_string(port) + "/v1");
    EXPECT_EQ(r.outcome, HttpOutcome::kConnect) << r.detail;
  }
  {  // closed mid-body (Content-Length promises more)
    ScriptedServer server(
        [](int, const std::string&) { return std::string("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part"); },
        /*close_after_each=*/true);
    const Result r = Call(loop, server.url());
    EXPECT_EQ(r.outcome, HttpOutcome::kIo) << r.detail;
  }
  {  // not HTTP
    ScriptedServer server([](int, const std::string&) { return std::string("SSH-2.0-OpenSSH\r\n\r\n"); },
                          /*close_after_each=*/true);
    const Result r = Call(loop, server.url());
    EXPECT_EQ(r.outcome, HttpOutcome::kProtocol) << r.detail;
  }
  {  // too slow
    std::promise<void> release;
    std::shared_future<void> released = release.get_future().share();
    ScriptedServer server([released](int, const std::string&) {
      released.wait();
      return std::string();
    });
    const Result r = Call(loop, server.url(), std::chrono::milliseconds(200));
    EXPECT_EQ(r.outcome, HttpOutcome::kTimeout) << r.detail;
    release.set_value();
  }
  {  // the caller stops reading
    ScriptedServer server([](int, const std::string&) { return Ok(std::string(100'000, 'x')); });
    const Result r = Call(loop, server.url(), std::chrono::seconds(10), /*abort_after=*/10);
    EXPECT_EQ(r.outcome, HttpOutcome::kAborted) << r.detail;
  }
}

}  // namespace
}  // namespace baton::experts
