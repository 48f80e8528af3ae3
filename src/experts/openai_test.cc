// The openai backend against a minimal loopback HTTP responder written here (scripted status codes, SSE, stalls).
// Tests build configs with designated initializers that leave most fields at their defaults.
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "baton/expert.h"
#include "experts/backends.h"

namespace baton {
namespace {

using std::chrono::milliseconds;

// One scripted reply: raw bytes written in pieces (with a pause between them); `close` ends the connection after it.
struct Reply {
  std::vector<std::string> pieces;
  milliseconds pause{0};
  bool close = false;
};

Reply Http(int code, const std::string& body) {
  std::string head = "HTTP/1.1 " + std::to_string(code) +
                     " X\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
                     "\r\n\r\n";
  return {.pieces = {head + body}};
}

std::string Completion(const std::string& content, int in, int out) {
  return nlohmann::json{
      {"choices", {{{"message", {{"role", "assistant"}, {"content", content}}}, {"finish_reason", "length"}}}},
      {"usage", {{"prompt_tokens", in}, {"completion_tokens", out}}}}
      .dump();
}

// A loopback HTTP/1.1 server with keep-alive: answers the i-th request with handler(i, request).
class Responder {
 public:
  explicit Responder(std::function<Reply(int, const std::string&)> handler) : handler_(std::move(handler)) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    listen(fd_, 16);
    acceptor_ = std::thread([this] { Accept(); });
  }
  ~Responder() {
    stop_ = true;
    shutdown(fd_, SHUT_RDWR);
    close(fd_);
    acceptor_.join();
    for (auto& t : workers_) t.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/v1"; }
  int connections() const { return connections_; }
  int requests() const { return requests_; }
  std::string last_request() {
    std::lock_guard<std::mutex> lock(mu_);
    return last_;
  }

 private:
  void Accept() {
    while (!stop_) {
      int c = accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      ++connections_;
      workers_.emplace_back([this, c] { Serve(c); });
    }
  }
  void Serve(int c) {
    std::string buf;
    char tmp[4096];
    while (!stop_) {
      size_t head_end;
      while ((head_end = buf.find("\r\n\r\n")) == std::string::npos) {
        ssize_t n = read(c, tmp, sizeof tmp);
        if (n <= 0) return (void)close(c);
        buf.append(tmp, n);
      }
      size_t body_len = 0;
      if (size_t p = buf.find("Content-Length: "); p != std::string::npos && p < head_end)
        body_len = std::stoul(buf.substr(p + 16));
      while (buf.size() < head_end + 4 + body_len) {
        ssize_t n = read(c, tmp, sizeof tmp);
        if (n <= 0) return (void)close(c);
        buf.append(tmp, n);
      }
      std::string request = buf.substr(0, head_end + 4 + body_len);
      buf.erase(0, request.size());
      {
        std::lock_guard<std::mutex> lock(mu_);
        last_ = request;
      }
      Reply reply = handler_(requests_++, request);
      for (size_t i = 0; i < reply.pieces.size(); ++i) {
        if (i > 0) std::this_thread::sleep_for(reply.pause);
        if (write(c, reply.pieces[i].data(), reply.pieces[i].size()) < 0) break;
      }
      if (reply.close) break;
    }
    close(c);
  }

  std::function<Reply(int, const std::string&)> handler_;
  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> connections_{0};
  std::atomic<int> requests_{0};
  std::thread acceptor_;
  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::string last_;
};

ExpertConfig Config(const Responder& r) {
  return ExpertConfig{.name = "up",
                      .kind = "openai",
                      .usd_per_mtok_in = 2.0,
                      .usd_per_mtok_out = 10.0,
                      .base_url = r.url(),
                      .model = "m1"};
}

ChatRequest Req(milliseconds timeout = milliseconds(5'000)) {
  ChatRequest q;
  q.messages = {{"system", "be brief"}, {"user", "What is 2+2?"}};
  q.max_tokens = 8;
  q.timeout = timeout;
  return q;
}

std::unique_ptr<ExpertBackend> Make(const ExpertConfig& c) {
  auto e = experts::MakeOpenAiExpert(c);
  EXPECT_TRUE(e.ok()) << e.status().ToString();
  return std::move(e).value();
}

TEST(OpenAiExpertTest, CompletionWithUsageBasedCostAndConnectionReuse) {
  Responder server([](int, const std::string&) { return Http(200, Completion("four", 1000, 100)); });
  auto e = Make(Config(server));
  for (int i = 0; i < 5; ++i) {
    StatusOr<ChatResult> r = e->Complete(Req());
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->content, "four");
    EXPECT_EQ(r->finish_reason, "length");
    EXPECT_EQ(r->usage.prompt_tokens, 1000);
    EXPECT_EQ(r->usage.completion_tokens, 100);
    EXPECT_NEAR(r->cost_usd, (1000 * 2.0 + 100 * 10.0) / 1e6, 1e-12);
  }
  EXPECT_EQ(server.connections(), 1);  // one kept-alive connection served all five
  const std::string req = server.last_request();
  EXPECT_NE(req.find("POST /v1/chat/completions"), std::string::npos);
  auto body = nlohmann::json::parse(req.substr(req.find("\r\n\r\n") + 4));
  EXPECT_EQ(body["model"], "m1");
  EXPECT_EQ(body["max_tokens"], 8);
  EXPECT_EQ(body["stream"], false);
  EXPECT_EQ(body["messages"].size(), 2u);
}

TEST(OpenAiExpertTest, MapsHttpErrors) {
  Responder server([](int i, const std::string&) {
    switch (i) {
      case 0:
        return Http(429, R"({"error":{"message":"slow down"}})");
      case 1:
        return Http(503, R"({"error":{"message":"overloaded"}})");
      case 2:
        return Http(400, R"({"error":{"message":"max_tokens is too large"}})");
      default:
        return Http(404, "no such route");
    }
  });
  auto e = Make(Config(server));
  StatusOr<ChatResult> r = e->Complete(Req());
  EXPECT_EQ(r.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(r.status().message().find("slow down"), std::string::npos);
  EXPECT_EQ(e->Complete(Req()).status().code(), StatusCode::kUnavailable);
  r = e->Complete(Req());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("max_tokens is too large"), std::string::npos) << r.status().message();
  r = e->Complete(Req());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("no such route"), std::string::npos);
}

TEST(OpenAiExpertTest, SendsTheKeyAsBearerAndNeverInErrors) {
  setenv("BATON_OPENAI_TEST_KEY", "sk-secret-123", 1);
  Responder server([](int, const std::string&) { return Http(401, R"({"error":{"message":"bad key"}})"); });
  ExpertConfig c = Config(server);
  c.api_key_env = "BATON_OPENAI_TEST_KEY";
  auto e = Make(c);
  StatusOr<ChatResult> r = e->Complete(Req());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(r.status().ToString().find("sk-secret-123"), std::string::npos);
  EXPECT_NE(server.last_request().find("Authorization: Bearer sk-secret-123\r\n"), std::string::npos);
}

TEST(OpenAiExpertTest, StreamsDeltasAsTheyArriveAndReadsUsageFromTheLastChunk) {
  auto chunk = [](const std::string& json) { return "data: " + json + "\n\n"; };
  Responder server([&](int, const std::string&) {
    Reply r;
    r.pieces.push_back("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n");
    for (const char* d : {"Hel", "lo, ", "world"}) {
      r.pieces.push_back(
          chunk(nlohmann::json{{"choices", {{{"delta", {{"content", d}}}, {"finish_reason", nullptr}}}}}.dump()));
    }
    r.pieces.push_back(chunk(R"({"choices":[{"delta":{},"finish_reason":"stop"}]})"));
    // An event split across two writes.
    r.pieces.push_back(R"(data: {"choices":[],"usage":{"prompt_tokens":12,)");
    r.pieces.push_back(" \"completion_tokens\":3}}\r\n\r\ndata: [DONE]\n\n");
    r.pause = milliseconds(30);
    r.close = true;
    return r;
  });
  auto e = Make(Config(server));
  std::vector<std::string> deltas;
  std::vector<std::chrono::steady_clock::time_point> when;
  StreamSink sink = [&](std::string_view d) {
    deltas.emplace_back(d);
    when.push_back(std::chrono::steady_clock::now());
    return true;
  };
  StatusOr<ChatResult> r = e->Complete(Req(), &sink);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(deltas.size(), 3u);
  EXPECT_EQ(deltas[0] + deltas[1] + deltas[2], r->content);
  EXPECT_EQ(r->content, "Hello, world");
  EXPECT_GE(when[2] - when[0], milliseconds(40));  // delivered incrementally, not at the end
  EXPECT_EQ(r->usage.prompt_tokens, 12);
  EXPECT_EQ(r->usage.completion_tokens, 3);
  EXPECT_NEAR(r->cost_usd, (12 * 2.0 + 3 * 10.0) / 1e6, 1e-12);
  const std::string req = server.last_request();
  auto body = nlohmann::json::parse(req.substr(req.find("\r\n\r\n") + 4));
  EXPECT_EQ(body["stream"], true);
  EXPECT_EQ(body["stream_options"]["include_usage"], true);
}

TEST(OpenAiExpertTest, ConnectionRefusedIsUnavailable) {
  int port;
  {
    Responder closed([](int, const std::string&) { return Http(200, "{}"); });
    port = std::stoi(closed.url().substr(17));
  }
  ExpertConfig c{.name = "gone", .kind = "openai", .base_url = "http://127.0.0.1:" + std::to_string(port) + "/v1"};
  EXPECT_EQ(Make(c)->Complete(Req()).status().code(), StatusCode::kUnavailable);
}

TEST(OpenAiExpertTest, ResetMidStreamIsUnavailable) {
  Responder server([](int, const std::string&) {
    return Reply{.pieces = {"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n",
                            "data: {\"choices\":[{\"delta\":{\"content\":\"par\"}}]}\n\n"},
                 .close = true};
  });
  auto e = Make(Config(server));
  StreamSink sink = [](std::string_view) { return true; };
  EXPECT_EQ(e->Complete(Req(), &sink).status().code(), StatusCode::kUnavailable);
}

TEST(OpenAiExpertTest, SlowUpstreamIsDeadlineExceeded) {
  Responder server([](int, const std::string&) {
    Reply r = Http(200, Completion("late", 1, 1));
    r.pieces = {"HTTP/1.1 200 OK\r\n", r.pieces[0].substr(17)};
    r.pause = milliseconds(600);
    return r;
  });
  auto e = Make(Config(server));
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(e->Complete(Req(milliseconds(150))).status().code(), StatusCode::kDeadlineExceeded);
  EXPECT_LT(std::chrono::steady_clock::now() - start, milliseconds(500));
}

TEST(OpenAiExpertTest, MakeExpertRetries5xxAndMeters) {
  Responder server(
      [](int i, const std::string&) { return i < 2 ? Http(502, "bad gateway") : Http(200, Completion("ok", 5, 1)); });
  ExpertConfig c = Config(server);
  c.max_retries = 3;
  auto meter = std::make_shared<ExpertMeter>();
  auto e = MakeExpert(c, meter);
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  StatusOr<ChatResult> r = (*e)->Complete(Req());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(server.requests(), 3);
  ExpertMeter::Snapshot s = meter->Read();
  EXPECT_EQ(s.calls, 3);  // the meter sees every attempt
  EXPECT_EQ(s.errors, 2);
  EXPECT_EQ(s.prompt_tokens, 5);
}

}  // namespace
}  // namespace baton
