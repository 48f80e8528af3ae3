// The openai backend, blocking and asynchronous, against a minimal loopback HTTP responder written here (scripted
// status codes, SSE, stalls). What both paths share is tested once and run on each (OpenAiExpertTest, a TEST_P over
// testing::CallPath); what only CompleteAsync does has tests of its own (OpenAiExpertAsyncTest).
// Tests build configs with designated initializers that leave most fields at their defaults.
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <functional>
#include <future>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <nlohmann/json.hpp>

#include "baton/expert.h"
#include "experts/backends.h"
#include "experts/llama_server_process.h"
#include "experts/loop_thread.h"

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

// One server-sent event carrying `json`, and one carrying a content delta.
std::string Event(const std::string& json) {
  return "data: " + json + "\n\n";
}
std::string DeltaEvent(const std::string& content) {
  return Event(nlohmann::json{{"choices", {{{"delta", {{"content", content}}}, {"finish_reason", nullptr}}}}}.dump());
}

// "Hello, world" in three deltas 30 ms apart, then the finish reason and the usage (12 in, 3 out), the latter split
// across two writes.
Reply HelloWorldStream() {
  Reply r;
  r.pieces.push_back("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n");
  for (const char* d : {"Hel", "lo, ", "world"}) r.pieces.push_back(DeltaEvent(d));
  r.pieces.push_back(Event(R"({"choices":[{"delta":{},"finish_reason":"stop"}]})"));
  r.pieces.push_back(R"(data: {"choices":[],"usage":{"prompt_tokens":12,)");
  r.pieces.push_back(" \"completion_tokens\":3}}\r\n\r\ndata: [DONE]\n\n");
  r.pause = milliseconds(30);
  r.close = true;
  return r;
}

// A completion ("late") whose status line comes at once and the rest `pause` later.
Reply SlowReply(milliseconds pause) {
  Reply r = Http(200, Completion("late", 1, 1));
  r.pieces = {"HTTP/1.1 200 OK\r\n", r.pieces[0].substr(17)};
  r.pause = pause;
  return r;
}

// A loopback HTTP/1.1 server with keep-alive: answers the i-th request with handler(i, request).
class Responder {
 public:
  explicit Responder(std::function<Reply(int, const std::string&)> handler) : handler_(std::move(handler)) {
    const testing::LoopbackSocket s = testing::BindLoopback();
    fd_ = s.fd;
    port_ = s.port;
    listen(fd_, 256);  // room for a burst of concurrent connects
    acceptor_ = std::thread([this] { Accept(); });
  }
  // Also ends the connections that clients still keep alive (a loop's connection cache may outlive the server).
  ~Responder() {
    stop_ = true;
    shutdown(fd_, SHUT_RDWR);
    close(fd_);
    acceptor_.join();
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (int c : open_) shutdown(c, SHUT_RDWR);
    }
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
      {
        std::lock_guard<std::mutex> lock(mu_);
        open_.insert(c);
      }
      workers_.emplace_back([this, c] {
        Serve(c);
        std::lock_guard<std::mutex> lock(mu_);
        open_.erase(c);
        close(c);
      });
    }
  }
  // Answers the requests of connection `c` until either side ends it.
  void Serve(int c) {
    std::string buf;
    char tmp[4096];
    while (!stop_) {
      size_t head_end;
      while ((head_end = buf.find("\r\n\r\n")) == std::string::npos) {
        ssize_t n = read(c, tmp, sizeof tmp);
        if (n <= 0) return;
        buf.append(tmp, n);
      }
      size_t body_len = 0;
      if (size_t p = buf.find("Content-Length: "); p != std::string::npos && p < head_end)
        body_len = std::stoul(buf.substr(p + 16));
      while (buf.size() < head_end + 4 + body_len) {
        ssize_t n = read(c, tmp, sizeof tmp);
        if (n <= 0) return;
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
        // MSG_NOSIGNAL: a client that gave up (timeout, cancel) makes this fail rather than raise SIGPIPE.
        if (send(c, reply.pieces[i].data(), reply.pieces[i].size(), MSG_NOSIGNAL) < 0) break;
      }
      if (reply.close) return;
    }
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
  std::string last_;    // guarded by mu_
  std::set<int> open_;  // accepted connections not closed yet; guarded by mu_
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

// The asynchronous path's HTTP client for the experts Make builds (ExpertConfig::http_client): "auto" (Boost.Beast's
// HttpPool for these http:// URLs) or "curl" (CurlLoop). Set per test by OpenAiExpertTest.
std::string g_http_client = "auto";

std::unique_ptr<ExpertBackend> Make(ExpertConfig c) {
  c.http_client = g_http_client;
  auto e = experts::MakeOpenAiExpert(c);
  EXPECT_TRUE(e.ok()) << e.status().ToString();
  return std::move(e).value();
}

// ---------------------------------------------------------------------------------------------------------------------
// What every path does alike, each test run three times: through Complete() on the test's thread (/Blocking) and
// through CompleteAsync() on a testing::LoopThread, once with each HTTP client (/AsyncBeast, /AsyncCurl); RunAsync
// also checks that the sink and the handler run on the loop's thread, that the handler never runs inside
// CompleteAsync, and that no piece follows it.

using PathAndClient = std::tuple<testing::CallPath, const char*>;
class OpenAiExpertTest : public ::testing::TestWithParam<PathAndClient> {
 protected:
  void SetUp() override { g_http_client = std::get<1>(GetParam()); }
  void TearDown() override { g_http_client = "auto"; }
  testing::Caller caller_{std::get<0>(GetParam())};
};
INSTANTIATE_TEST_SUITE_P(Paths, OpenAiExpertTest,
                         ::testing::Values(PathAndClient{testing::CallPath::kBlocking, "auto"},
                                           PathAndClient{testing::CallPath::kAsync, "auto"},
                                           PathAndClient{testing::CallPath::kAsync, "curl"}),
                         [](const ::testing::TestParamInfo<PathAndClient>& info) {
                           if (std::get<0>(info.param) == testing::CallPath::kBlocking) return std::string("Blocking");
                           return std::string(std::get<1>(info.param) == std::string("curl") ? "AsyncCurl"
                                                                                             : "AsyncBeast");
                         });

TEST_P(OpenAiExpertTest, CompletionWithUsageBasedCostAndConnectionReuse) {
  // Within what Req() allows: a prompt bound of 126 tokens, max_tokens 8 (see ImplausibleUsageIsClampedAndNoted).
  Responder server([](int, const std::string&) { return Http(200, Completion("four", 100, 8)); });
  auto e = Make(Config(server));
  for (int i = 0; i < 5; ++i) {
    StatusOr<ChatResult> r = caller_.Call(*e, Req());
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->content, "four");
    EXPECT_EQ(r->finish_reason, "length");
    EXPECT_EQ(r->usage.prompt_tokens, 100);
    EXPECT_EQ(r->usage.completion_tokens, 8);
    EXPECT_EQ(r->usage_note, "");
    EXPECT_NEAR(r->cost_usd, (100 * 2.0 + 8 * 10.0) / 1e6, 1e-12);
    EXPECT_GT(r->latency_ms, 0);
  }
  // One kept-alive connection served all five: the expert's pool of handles (blocking), the loop's connection cache
  // (async).
  EXPECT_EQ(server.connections(), 1);
  const std::string req = server.last_request();
  EXPECT_NE(req.find("POST /v1/chat/completions"), std::string::npos);
  auto body = nlohmann::json::parse(req.substr(req.find("\r\n\r\n") + 4));
  EXPECT_EQ(body["model"], "m1");
  EXPECT_EQ(body["max_tokens"], 8);
  EXPECT_EQ(body["stream"], false);
  EXPECT_EQ(body["messages"].size(), 2u);
}

TEST_P(OpenAiExpertTest, MapsHttpErrors) {
  Responder server([](int i, const std::string&) {
    switch (i) {
      case 0:
        return Http(429, R"({"error":{"message":"slow down"}})");
      case 1:
        return Http(503, R"({"error":{"message":"overloaded"}})");
      case 2:
        return Http(500, R"({"error":{"message":"oops"}})");
      case 3:
        return Http(400, R"({"error":{"message":"max_tokens is too large"}})");
      default:
        return Http(404, "no such route");
    }
  });
  auto e = Make(Config(server));
  StatusOr<ChatResult> r = caller_.Call(*e, Req());
  EXPECT_EQ(r.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(r.status().message().find("slow down"), std::string::npos);
  EXPECT_EQ(caller_.Call(*e, Req()).status().code(), StatusCode::kUnavailable);  // 503
  EXPECT_EQ(caller_.Call(*e, Req()).status().code(), StatusCode::kUnavailable);  // 500
  r = caller_.Call(*e, Req());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("max_tokens is too large"), std::string::npos) << r.status().message();
  r = caller_.Call(*e, Req());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("no such route"), std::string::npos);
}

TEST_P(OpenAiExpertTest, SendsTheKeyAsBearerLeavesItOnNoPooledHandleAndNeverInErrors) {
  setenv("BATON_OPENAI_TEST_KEY", "sk-secret-123", 1);
  Responder server([](int i, const std::string&) {
    return i < 2 ? Http(200, Completion("ok", 1, 1)) : Http(401, R"({"error":{"message":"bad key"}})");
  });
  ExpertConfig keyed = Config(server);
  keyed.api_key_env = "BATON_OPENAI_TEST_KEY";
  auto with_key = Make(keyed);
  auto without_key = Make(Config(server));
  ASSERT_TRUE(caller_.Call(*with_key, Req()).ok());
  EXPECT_NE(server.last_request().find("Authorization: Bearer sk-secret-123\r\n"), std::string::npos);
  // Async: on the easy handle the first call gave back to the loop's pool.
  ASSERT_TRUE(caller_.Call(*without_key, Req()).ok());
  EXPECT_EQ(server.last_request().find("Authorization"), std::string::npos);
  StatusOr<ChatResult> r = caller_.Call(*with_key, Req());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(r.status().ToString().find("sk-secret-123"), std::string::npos);
}

TEST_P(OpenAiExpertTest, StreamsDeltasAsTheyArriveAndReadsUsageFromTheLastChunk) {
  Responder server([](int, const std::string&) { return HelloWorldStream(); });
  auto e = Make(Config(server));
  testing::CallOutcome out = caller_.Stream(*e, Req());
  ASSERT_TRUE(out.result.ok()) << out.result.status().ToString();
  const ChatResult& r = *out.result;
  EXPECT_EQ(out.pieces, (std::vector<std::string>{"Hel", "lo, ", "world"}));
  ASSERT_EQ(out.piece_times.size(), 3u);
  EXPECT_GE(out.piece_times[2] - out.piece_times[0], milliseconds(40));  // delivered incrementally, not at the end
  EXPECT_EQ(out.piece_threads, std::set<std::thread::id>{caller_.call_thread()});
  EXPECT_EQ(r.content, "Hello, world");
  EXPECT_EQ(r.finish_reason, "stop");
  EXPECT_EQ(r.usage.prompt_tokens, 12);
  EXPECT_EQ(r.usage.completion_tokens, 3);
  EXPECT_NEAR(r.cost_usd, (12 * 2.0 + 3 * 10.0) / 1e6, 1e-12);
  const std::string req = server.last_request();
  auto body = nlohmann::json::parse(req.substr(req.find("\r\n\r\n") + 4));
  EXPECT_EQ(body["stream"], true);
  EXPECT_EQ(body["stream_options"]["include_usage"], true);
}

TEST_P(OpenAiExpertTest, SinkReturningFalseCancels) {
  Responder server([](int, const std::string&) { return HelloWorldStream(); });
  auto e = Make(Config(server));
  int pieces = 0;
  StatusOr<ChatResult> r = caller_.Call(*e, Req(), [&](std::string_view) {
    ++pieces;
    return false;
  });
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(r.status().message().find("cancelled by the sink"), std::string::npos);
  EXPECT_EQ(pieces, 1);
}

TEST_P(OpenAiExpertTest, ConnectionRefusedIsUnavailable) {
  int port;
  {
    Responder closed([](int, const std::string&) { return Http(200, "{}"); });
    port = std::stoi(closed.url().substr(17));
  }
  auto e = Make({.name = "gone", .kind = "openai", .base_url = "http://127.0.0.1:" + std::to_string(port) + "/v1"});
  EXPECT_EQ(caller_.Call(*e, Req()).status().code(), StatusCode::kUnavailable);
}

TEST_P(OpenAiExpertTest, ResetMidStreamIsUnavailable) {
  Responder server([](int, const std::string&) {
    return Reply{.pieces = {"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n",
                            "data: {\"choices\":[{\"delta\":{\"content\":\"par\"}}]}\n\n"},
                 .close = true};
  });
  auto e = Make(Config(server));
  testing::CallOutcome out = caller_.Stream(*e, Req());
  EXPECT_EQ(out.result.status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(out.pieces, std::vector<std::string>{"par"});
}

TEST_P(OpenAiExpertTest, SlowUpstreamIsDeadlineExceeded) {
  Responder server([](int, const std::string&) { return SlowReply(milliseconds(600)); });
  auto e = Make(Config(server));
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(caller_.Call(*e, Req(milliseconds(150))).status().code(), StatusCode::kDeadlineExceeded);
  EXPECT_LT(std::chrono::steady_clock::now() - start, milliseconds(500));
}

TEST_P(OpenAiExpertTest, MakeExpertRetries5xxAndMeters) {
  Responder server(
      [](int i, const std::string&) { return i < 2 ? Http(502, "bad gateway") : Http(200, Completion("ok", 5, 1)); });
  ExpertConfig c = Config(server);
  c.max_retries = 3;
  auto meter = std::make_shared<ExpertMeter>();
  auto e = MakeExpert(c, meter);
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  StatusOr<ChatResult> r = caller_.Call(**e, Req());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(server.requests(), 3);
  ExpertMeter::Snapshot s = meter->Read();
  EXPECT_EQ(s.calls, 3);  // the meter sees every attempt
  EXPECT_EQ(s.errors, 2);
  EXPECT_EQ(s.prompt_tokens, 5);
}

TEST_P(OpenAiExpertTest, LargeBodiesAreSentWithoutWaitingForContinue) {
  Responder server([](int, const std::string&) { return Http(200, Completion("ok", 1, 1)); });
  auto e = Make(Config(server));
  ChatRequest big = Req();
  big.messages.push_back({"user", std::string(2 << 20, 'a')});
  const auto start = std::chrono::steady_clock::now();
  StatusOr<ChatResult> r = caller_.Call(*e, big);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  // Asked to, libcurl would wait a second for a "100 Continue" that this server never sends.
  EXPECT_LT(std::chrono::steady_clock::now() - start, milliseconds(700));
  const std::string req = server.last_request();
  EXPECT_EQ(req.substr(0, req.find("\r\n\r\n")).find("Expect:"), std::string::npos);
}

// A body of one line of `json` (or of anything): a 200 answer with that body.
Reply JsonReply(const nlohmann::json& j) {
  return Http(200, j.dump());
}

// The JSON body of the request a Responder saw.
nlohmann::json RequestBody(const std::string& request) {
  return nlohmann::json::parse(request.substr(request.find("\r\n\r\n") + 4));
}

// A conversation in the middle of a tool-calling loop: the assistant called two tools, one answered.
ChatRequest ToolLoopReq() {
  ChatRequest q = Req();
  q.extra["tools"] = nlohmann::json::parse(
      R"([{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}])");
  q.extra["tool_choice"] = "auto";
  q.extra["parallel_tool_calls"] = true;
  ChatMessage assistant{"assistant", ""};
  assistant.content_null = true;
  assistant.fields["tool_calls"] = nlohmann::json::parse(
      R"([{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}},
          {"id":"call_2","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Rome\"}"}}])");
  ChatMessage tool{"tool", "18C"};
  tool.fields = {{"tool_call_id", "call_1"}, {"name", "get_weather"}};
  q.messages.push_back(std::move(assistant));
  q.messages.push_back(std::move(tool));
  return q;
}

TEST_P(OpenAiExpertTest, PlainAnswerWithToolCallsAndMessagesSentAsTheClientWroteThem) {
  const auto calls = nlohmann::json::parse(
      R"([{"id":"call_9","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Oslo\"}"}}])");
  Responder server([&](int, const std::string&) {
    return JsonReply({{"choices",
                       {{{"message", {{"role", "assistant"}, {"content", nullptr}, {"tool_calls", calls}}},
                         {"finish_reason", "tool_calls"}}}},
                      {"usage", {{"prompt_tokens", 40}, {"completion_tokens", 7}}}});
  });
  auto e = Make(Config(server));
  StatusOr<ChatResult> r = caller_.Call(*e, ToolLoopReq());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->content, "");
  EXPECT_EQ(r->tool_calls, calls);
  EXPECT_EQ(r->finish_reason, "tool_calls");
  EXPECT_EQ(r->usage.completion_tokens, 7);
  EXPECT_EQ(r->usage_note, "");
  // Sent upstream: the tools, and every message as the client wrote it.
  const nlohmann::json body = RequestBody(server.last_request());
  EXPECT_EQ(body["tools"][0]["function"]["name"], "get_weather");
  EXPECT_EQ(body["tool_choice"], "auto");
  EXPECT_EQ(body["parallel_tool_calls"], true);
  const nlohmann::json& m = body["messages"];
  ASSERT_EQ(m.size(), 4u);
  EXPECT_EQ(m[1], (nlohmann::json{{"role", "user"}, {"content", "What is 2+2?"}}));
  EXPECT_EQ(m[2]["role"], "assistant");
  EXPECT_TRUE(m[2].contains("content") && m[2]["content"].is_null()) << m[2].dump();
  EXPECT_EQ(m[2]["tool_calls"], ToolLoopReq().messages[2].fields["tool_calls"]);
  EXPECT_EQ(m[3], (nlohmann::json{
                      {"role", "tool"}, {"content", "18C"}, {"tool_call_id", "call_1"}, {"name", "get_weather"}}));
}

TEST_P(OpenAiExpertTest, StreamedToolCallDeltasReachTheSinkAndAddUp) {
  // Two parallel calls, their arguments in interleaved pieces; index 1 starts in the same event as a piece of 0.
  Responder server([](int, const std::string&) {
    Reply r;
    r.pieces.push_back("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n");
    for (
        const char* delta : {
            R"({"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"call_a","type":"function","function":{"name":"get_weather","arguments":""}}]})",
            R"({"tool_calls":[{"index":0,"function":{"arguments":"{\"city\""}}]})",
            R"({"tool_calls":[{"index":0,"function":{"arguments":":\"Paris\"}"}},{"index":1,"id":"call_b","type":"function","function":{"name":"get_time","arguments":""}}]})",
            R"({"tool_calls":[{"index":1,"function":{"arguments":"{\"tz\":"}}]})",
            R"({"tool_calls":[{"index":1,"function":{"arguments":"\"CET\"}"}}]})",
        }) {
      r.pieces.push_back(
          Event(R"({"choices":[{"index":0,"delta":)" + std::string(delta) + R"(,"finish_reason":null}]})"));
    }
    r.pieces.push_back(Event(R"({"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]})"));
    r.pieces.push_back(Event(R"({"choices":[],"usage":{"prompt_tokens":30,"completion_tokens":6}})"));
    r.pieces.push_back("data: [DONE]\n\n");
    r.close = true;
    return r;
  });
  auto e = Make(Config(server));
  testing::CallOutcome out = caller_.Stream(*e, ToolLoopReq());
  ASSERT_TRUE(out.result.ok()) << out.result.status().ToString();
  EXPECT_TRUE(out.pieces.empty());  // no content
  ASSERT_EQ(out.tool_call_deltas.size(), 5u);
  EXPECT_EQ(out.tool_call_deltas[0][0]["id"], "call_a");
  EXPECT_EQ(out.tool_call_deltas[0][0]["function"]["name"], "get_weather");
  ASSERT_EQ(out.tool_call_deltas[2].size(), 2u);
  EXPECT_EQ(out.tool_call_deltas[2][0]["index"], 0);
  EXPECT_EQ(out.tool_call_deltas[2][1]["index"], 1);
  EXPECT_EQ(out.tool_call_deltas[4][0], nlohmann::json::parse(R"({"index":1,"function":{"arguments":"\"CET\"}"}})"));
  const ChatResult& r = *out.result;
  EXPECT_EQ(r.content, "");
  EXPECT_EQ(r.finish_reason, "tool_calls");
  EXPECT_EQ(r.tool_calls, nlohmann::json::parse(R"([
      {"id":"call_a","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}},
      {"id":"call_b","type":"function","function":{"name":"get_time","arguments":"{\"tz\":\"CET\"}"}}])"));
  EXPECT_EQ(r.usage.completion_tokens, 6);
}

TEST_P(OpenAiExpertTest, ResponsesPastMaxResponseBytesAreCutOff) {
  const std::string huge(20 << 20, 'x');
  Responder server([&](int i, const std::string&) {
    if (i == 0) return Http(200, Completion(huge, 1, 1));  // a 20 MB body
    // A stream whose second line never ends.
    return Reply{.pieces = {"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n", DeltaEvent("a"),
                            "data: {\"choices\":[{\"delta\":{\"content\":\"" + huge},
                 .close = true};
  });
  auto e = Make(Config(server));  // the default: 8 MiB
  StatusOr<ChatResult> r = caller_.Call(*e, Req());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(r.status().message().find("the upstream response exceeded 8388608 bytes"), std::string::npos)
      << r.status().message();
  testing::CallOutcome out = caller_.Stream(*e, Req());
  EXPECT_EQ(out.result.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(out.result.status().message().find("exceeded 8388608 bytes"), std::string::npos)
      << out.result.status().message();
  EXPECT_EQ(out.pieces, std::vector<std::string>{"a"});
  EXPECT_FALSE(experts::MakeOpenAiExpert(
                   ExpertConfig{.name = "z", .kind = "openai", .base_url = server.url(), .max_response_bytes = 0})
                   .ok());
}

TEST_P(OpenAiExpertTest, DeeplyNestedAnswersAreUnreadableNotACrash) {
  const std::string deep = std::string(100'000, '[') + std::string(100'000, ']');
  Responder server([&](int i, const std::string&) {
    switch (i) {
      case 0:  // a plain answer
        return Http(200, R"({"choices":[{"message":{"content":"x","tool_calls":)" + deep + "}}]}");
      case 1:  // an error body
        return Http(500, R"({"error":)" + deep + "}");
      default:  // a stream event
        return Reply{.pieces = {"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n", DeltaEvent("a"),
                                Event(R"({"choices":[{"delta":{"tool_calls":)" + deep + "}}]}"), "data: [DONE]\n\n"},
                     .close = true};
    }
  });
  auto e = Make(Config(server));
  StatusOr<ChatResult> r = caller_.Call(*e, Req());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(r.status().message().find("unreadable answer"), std::string::npos) << r.status().message();
  EXPECT_EQ(caller_.Call(*e, Req()).status().code(), StatusCode::kUnavailable);
  testing::CallOutcome out = caller_.Stream(*e, Req());
  EXPECT_EQ(out.result.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(out.result.status().message().find("unreadable answer"), std::string::npos)
      << out.result.status().message();
}

TEST_P(OpenAiExpertTest, ImplausibleUsageIsClampedAndNoted) {
  // Req(): max_tokens 8; the prompt bound (PromptTokenBound) is 8 + 12 bytes of content + 10 of roles + 2 x 16 + 64 =
  // 126 tokens.
  struct Case {
    nlohmann::json usage;
    int64_t prompt, completion;
    std::string note;  // a part of the note; "" = no note
  };
  const std::vector<Case> cases = {
      {{{"prompt_tokens", 20}, {"completion_tokens", 8}}, 20, 8, ""},
      {{{"prompt_tokens", -5}, {"completion_tokens", -100}},
       0,
       0,
       "upstream reported prompt_tokens=-5 < 0; charged 0; upstream reported completion_tokens=-100 < 0; charged 0"},
      {{{"prompt_tokens", 10}, {"completion_tokens", 1'000'000'000}},
       10,
       8,
       "upstream reported completion_tokens=1000000000 > max_tokens=8; charged 8"},
      {{{"prompt_tokens", 5'000'000}, {"completion_tokens", 3}},
       126,
       3,
       "upstream reported prompt_tokens=5000000 > prompt bound=126; charged 126"},
      {{{"prompt_tokens", 18446744073709551615u}, {"completion_tokens", 1e300}}, 126, 8, "charged 8"},
      {{{"prompt_tokens", "lots"}, {"completion_tokens", true}},
       0,
       0,
       R"(upstream reported prompt_tokens="lots" (not a number); charged 0)"},
      {{{"prompt_tokens", 2.5}, {"completion_tokens", -0.5}}, 3, 0, "prompt_tokens=2.5 (not an integer); charged 3"},
      {{{"prompt_tokens", nullptr}}, 0, 0, ""},
  };
  for (const Case& c : cases) {
    Responder server([&](int, const std::string&) {
      return JsonReply(
          {{"choices", {{{"message", {{"content", "ok"}}}, {"finish_reason", "stop"}}}}, {"usage", c.usage}});
    });
    auto e = Make(Config(server));
    StatusOr<ChatResult> r = caller_.Call(*e, Req());
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->usage.prompt_tokens, c.prompt) << c.usage.dump();
    EXPECT_EQ(r->usage.completion_tokens, c.completion) << c.usage.dump();
    EXPECT_NEAR(r->cost_usd, (c.prompt * 2.0 + c.completion * 10.0) / 1e6, 1e-12) << c.usage.dump();
    if (c.note.empty()) {
      EXPECT_EQ(r->usage_note, "") << c.usage.dump();
    } else {
      EXPECT_NE(r->usage_note.find(c.note), std::string::npos) << r->usage_note;
    }
  }
}

TEST_P(OpenAiExpertTest, StreamedUsageIsClampedTooAndWithoutMaxTokensCappedAtTenMillion) {
  Responder server([](int, const std::string&) {
    Reply r = HelloWorldStream();
    r.pieces[5] = R"(data: {"choices":[],"usage":{"prompt_tokens":-1,)";
    r.pieces[6] = " \"completion_tokens\":99999999999}}\r\n\r\ndata: [DONE]\n\n";
    r.pause = milliseconds(0);
    return r;
  });
  auto e = Make(Config(server));
  ChatRequest q = Req();
  q.max_tokens.reset();
  testing::CallOutcome out = caller_.Stream(*e, q);
  ASSERT_TRUE(out.result.ok()) << out.result.status().ToString();
  EXPECT_EQ(out.result->usage.prompt_tokens, 0);
  EXPECT_EQ(out.result->usage.completion_tokens, 10'000'000);
  EXPECT_NE(out.result->usage_note.find("prompt_tokens=-1 < 0"), std::string::npos) << out.result->usage_note;
  EXPECT_NE(out.result->usage_note.find("completion_tokens=99999999999 > limit (no max_tokens sent)=10000000"),
            std::string::npos)
      << out.result->usage_note;
}

// ---------------------------------------------------------------------------------------------------------------------
// What only CompleteAsync does: many calls on one loop, calls started from sinks and from other threads, a loop that
// goes away, and the reactor's edge cases. The calls run on a testing::LoopThread (mostly through RunAsync, with its
// checks) unless the test needs the loop in its own hands.

using testing::LoopThread;
using testing::RunAsync;

TEST(OpenAiExpertAsyncTest, TwoHundredConcurrentCallsOnOneLoop) {
  // Each answer quotes its request's question, so that answers cannot be mixed up unnoticed.
  Responder server([](int, const std::string& request) {
    auto body = nlohmann::json::parse(request.substr(request.find("\r\n\r\n") + 4));
    return Http(200, Completion("re: " + body["messages"].back()["content"].get<std::string>(), 3, 2));
  });
  auto e = Make(Config(server));
  LoopThread loop;
  constexpr int kCalls = 200;
  std::vector<std::optional<StatusOr<ChatResult>>> results(kCalls);
  int left = kCalls;  // on the loop's thread only
  std::promise<void> all_done;
  boost::asio::post(loop.loop(), [&] {
    for (int i = 0; i < kCalls; ++i) {
      ChatRequest q = Req(milliseconds(20'000));
      q.messages.back().content = fmt::format("q{}", i);
      e->CompleteAsync(std::move(q), {}, loop.ctx(), [&, i](StatusOr<ChatResult> r) {
        results[i] = std::move(r);
        if (--left == 0) all_done.set_value();
      });
    }
  });
  all_done.get_future().get();
  for (int i = 0; i < kCalls; ++i) {
    ASSERT_TRUE(results[i]->ok()) << i << ": " << results[i]->status().ToString();
    EXPECT_EQ((*results[i])->content, fmt::format("re: q{}", i));
    EXPECT_NEAR((*results[i])->cost_usd, (3 * 2.0 + 2 * 10.0) / 1e6, 1e-12);
  }
  EXPECT_EQ(server.requests(), kCalls);
}

TEST(OpenAiExpertAsyncTest, SinkMayStartAnotherCall) {
  // The sink runs inside libcurl's write callback, where libcurl refuses new transfers: the new call must still run.
  Responder server(
      [](int i, const std::string&) { return i == 0 ? HelloWorldStream() : Http(200, Completion("ok", 1, 1)); });
  auto e = Make(Config(server));
  LoopThread loop;
  std::promise<StatusOr<ChatResult>> inner;
  bool started = false;
  StatusOr<ChatResult> outer = RunAsync(*e, loop, Req(), [&](std::string_view) {
    if (!started) {
      started = true;
      e->CompleteAsync(Req(), {}, loop.ctx(), [&](StatusOr<ChatResult> r) { inner.set_value(std::move(r)); });
    }
    return true;
  });
  ASSERT_TRUE(outer.ok()) << outer.status().ToString();
  StatusOr<ChatResult> r = inner.get_future().get();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->content, "ok");
}

TEST(OpenAiExpertAsyncTest, FailuresBeforeTheTransferArePosted) {
  auto e = Make({.name = "x", .kind = "openai", .base_url = "http://127.0.0.1:1/v1"});  // nothing listens on port 1
  LoopThread loop;
  EXPECT_EQ(RunAsync(*e, loop, Req(milliseconds(0))).status().code(), StatusCode::kDeadlineExceeded);
  ChatRequest unencodable = Req();
  unencodable.messages.back().content = "\xff\xfe";  // not UTF-8
  EXPECT_EQ(RunAsync(*e, loop, unencodable).status().code(), StatusCode::kInvalidArgument);
  // Called from another thread than the loop's, the call moves to the loop.
  std::promise<StatusOr<ChatResult>> result;
  e->CompleteAsync(Req(), {}, loop.ctx(), [&](StatusOr<ChatResult> r) {
    EXPECT_EQ(std::this_thread::get_id(), loop.thread_id());
    result.set_value(std::move(r));
  });
  EXPECT_EQ(result.get_future().get().status().code(), StatusCode::kUnavailable);
}

TEST(OpenAiExpertAsyncTest, DestroyingTheLoopDropsCallsInFlightWithoutCallingThem) {
  Responder server([](int, const std::string&) { return SlowReply(milliseconds(300)); });
  auto e = Make(Config(server));
  auto token = std::make_shared<int>(0);  // held by the dropped call's sink and handler
  std::atomic<bool> called{false};
  {
    LoopThread doomed;
    boost::asio::post(doomed.loop(), [&, token] {
      e->CompleteAsync(
          Req(), [token](std::string_view) { return true; }, doomed.ctx(),
          [&called, token](StatusOr<ChatResult>) { called = true; });
    });
    while (server.requests() == 0) std::this_thread::sleep_for(milliseconds(5));
  }  // stops the loop and destroys its io_context with the call waiting for its answer
  EXPECT_FALSE(called);
  EXPECT_EQ(token.use_count(), 1);  // the sink and the handler were destroyed
  LoopThread loop;                  // the expert still works, on another loop
  StatusOr<ChatResult> r = RunAsync(*e, loop, Req());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->content, "late");
}

TEST(OpenAiExpertAsyncTest, LargeStreamArrivesCompletely) {
  // 4 MB of events in one write while the sink stalls on the first piece: by then the socket holds more than libcurl
  // reads in one go, and the end of the stream brings no new data (no new edge) to report the rest.
  constexpr int kEvents = 4000;
  const std::string text(1000, 'x');
  Responder server([&](int, const std::string&) {
    std::string all = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n";
    for (int i = 0; i < kEvents; ++i) all += DeltaEvent(text);
    all += Event(
        R"({"choices":[{"delta":{},"finish_reason":"stop"}],"usage":{"prompt_tokens":7,"completion_tokens":4000}})");
    all += "data: [DONE]\n\n";
    return Reply{.pieces = {all}, .close = true};
  });
  auto e = Make(Config(server));
  LoopThread loop;
  int pieces = 0;
  size_t bytes = 0;
  ChatRequest q = Req(milliseconds(10'000));
  q.max_tokens = kEvents;  // the usage reported is charged only up to the max_tokens sent
  StatusOr<ChatResult> r = RunAsync(*e, loop, q, [&](std::string_view d) {
    if (pieces++ == 0) std::this_thread::sleep_for(milliseconds(300));
    bytes += d.size();
    return true;
  });
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(pieces, kEvents);
  EXPECT_EQ(bytes, kEvents * text.size());
  EXPECT_EQ(r->content.size(), bytes);
  EXPECT_EQ(r->usage.completion_tokens, 4000);
}

TEST(OpenAiExpertAsyncTest, AnswerReadyBeforeTheCallWaitsForItIsNotMissed) {
  // A server that answers as soon as it accepts, before it reads the request, while the loop is kept busy: the answer
  // is there before the call waits to read, and an edge-triggered reactor reported it (once) together with the
  // connect's completion, when the call only waited to write. The call must see it anyway.
  const testing::LoopbackSocket listener = testing::BindLoopback();
  const int fd = listener.fd;
  listen(fd, 4);
  std::thread server([fd] {
    int c = accept(fd, nullptr, nullptr);
    std::string answer = Completion("early", 1, 1);
    answer = "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: " + std::to_string(answer.size()) + "\r\n\r\n" +
             answer;
    send(c, answer.data(), answer.size(), MSG_NOSIGNAL);
    char buf[4096];
    while (read(c, buf, sizeof buf) > 0) {
    }
    close(c);
  });
  ExpertConfig c{
      .name = "early", .kind = "openai", .base_url = "http://127.0.0.1:" + std::to_string(listener.port) + "/v1"};
  auto e = Make(c);
  LoopThread loop;
  std::promise<StatusOr<ChatResult>> result;
  boost::asio::post(loop.loop(), [&] {
    e->CompleteAsync(Req(milliseconds(2'000)), {}, loop.ctx(),
                     [&](StatusOr<ChatResult> r) { result.set_value(std::move(r)); });
    // Runs right after the call has started to connect.
    boost::asio::post(loop.loop(), [] { std::this_thread::sleep_for(milliseconds(100)); });
  });
  StatusOr<ChatResult> r = result.get_future().get();
  server.join();
  close(fd);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->content, "early");
}

TEST(OpenAiExpertAsyncTest, LoopRunsOutOfWorkOnceCallsAreDone) {
  // Nothing of a finished call stays queued on the loop (no wait on the kept-alive connection, no timer), so a loop
  // run without a work guard returns. This loop is run by the test's own thread, in turns.
  Responder server([](int, const std::string&) { return Http(200, Completion("four", 1, 1)); });
  auto e = Make(Config(server));
  boost::asio::io_context loop;
  for (int i = 0; i < 3; ++i) {
    std::optional<StatusOr<ChatResult>> result;
    e->CompleteAsync(Req(), {}, {.loop = &loop}, [&](StatusOr<ChatResult> r) { result = std::move(r); });
    loop.restart();
    loop.run_for(std::chrono::seconds(5));
    EXPECT_TRUE(loop.stopped()) << "work left on the loop after call " << i;
    ASSERT_TRUE(result.has_value());
    EXPECT_TRUE(result->ok()) << result->status().ToString();
  }
  EXPECT_EQ(server.connections(), 1);
}

// A backend that can only block: the openai expert's Complete() behind the default CompleteAsync (async.cc), which
// posts each piece from the blocking pool to the loop and so must copy the tool-call deltas too.
class BlockingOnly : public ExpertBackend {
 public:
  explicit BlockingOnly(std::unique_ptr<ExpertBackend> inner) : inner_(std::move(inner)) {}
  const std::string& name() const override { return inner_->name(); }
  StatusOr<ChatResult> Complete(const ChatRequest& request, const StreamSink* sink) override {
    return inner_->Complete(request, sink);
  }

 private:
  std::unique_ptr<ExpertBackend> inner_;
};

TEST(OpenAiExpertAsyncTest, DefaultCompleteAsyncRelaysToolCallDeltas) {
  Responder server([](int, const std::string&) {
    Reply r;
    r.pieces.push_back("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n");
    r.pieces.push_back(Event(
        R"({"choices":[{"delta":{"content":"Let me look.","tool_calls":[{"index":0,"id":"c1","type":"function","function":{"name":"f","arguments":"{\"a\""}}]}}]})"));
    r.pieces.push_back(Event(R"({"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"arguments":":1}"}}]}}]})"));
    r.pieces.push_back(Event(R"({"choices":[{"delta":{},"finish_reason":"tool_calls"}]})"));
    r.pieces.push_back("data: [DONE]\n\n");
    r.close = true;
    return r;
  });
  BlockingOnly e(Make(Config(server)));
  LoopThread loop;
  boost::asio::thread_pool pool(1);
  std::vector<std::pair<std::string, nlohmann::json>> pieces;  // on the loop's thread only, until done
  std::promise<StatusOr<ChatResult>> result;
  boost::asio::post(loop.loop(), [&] {
    e.CompleteAsync(
        Req(),
        [&](const StreamDelta& d) {
          pieces.emplace_back(std::string(d.content), d.tool_calls ? *d.tool_calls : nlohmann::json());
          return true;
        },
        {.loop = &loop.loop(), .blocking = &pool}, [&](StatusOr<ChatResult> r) { result.set_value(std::move(r)); });
  });
  StatusOr<ChatResult> r = result.get_future().get();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(pieces.size(), 2u);
  EXPECT_EQ(pieces[0].first, "Let me look.");
  EXPECT_EQ(pieces[0].second[0]["id"], "c1");
  EXPECT_EQ(pieces[1].first, "");
  EXPECT_EQ(pieces[1].second[0]["function"]["arguments"], ":1}");
  EXPECT_EQ(r->tool_calls[0]["function"]["arguments"], "{\"a\":1}");
  EXPECT_EQ(r->content, "Let me look.");
  pool.join();
}

}  // namespace
}  // namespace baton
