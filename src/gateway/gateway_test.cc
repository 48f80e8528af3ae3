// The gateway end to end in-process: a real server on a free loopback port, fake experts, a libcurl client.
#include "gateway/gateway.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <thread>

#include "baton/store.h"
#include "gateway/auth.h"
#include "gateway/budget.h"
#include "gateway/recorder.h"
#include "gateway/test_gateway_harness.h"
#include "gateway/test_http_client.h"

namespace baton::gateway {
namespace {

using testing::ChatBody;
using testing::ExpectOpenAiError;
using testing::GatewayOptions;
using testing::Harness;
using testing::Http;
using testing::kKey;
using testing::StartGateway;
using json = nlohmann::json;

TEST(GatewayTest, HealthModelsAndUnknownPaths) {
  Harness h = StartGateway();
  auto health = Http("GET", h.port, "/healthz");
  EXPECT_EQ(health.status, 200);
  auto models = Http("GET", h.port, "/v1/models", "", kKey);
  ASSERT_EQ(models.status, 200) << models.body;
  json m = json::parse(models.body);
  EXPECT_EQ(m["object"], "list");
  ASSERT_EQ(m["data"].size(), 4u);
  EXPECT_EQ(m["data"][0]["id"], "baton");
  EXPECT_EQ(m["data"][3]["id"], "cheap");
  ExpectOpenAiError(Http("GET", h.port, "/v1/nothing", "", kKey), 404, "not_found");
  ExpectOpenAiError(Http("GET", h.port, "/v1/chat/completions", "", kKey), 405, "method_not_allowed");
}

TEST(GatewayTest, AuthErrors) {
  Harness h = StartGateway();
  ExpectOpenAiError(Http("POST", h.port, "/v1/chat/completions", ChatBody("good", "hi")), 401, "missing_api_key");
  ExpectOpenAiError(Http("POST", h.port, "/v1/chat/completions", ChatBody("good", "hi"), "sk-wrong"), 401,
                    "invalid_api_key");
  ExpectOpenAiError(Http("GET", h.port, "/v1/models", "", "sk-wrong"), 401, "invalid_api_key");
  EXPECT_EQ(h.fakes[0]->calls.load(), 0);
}

TEST(GatewayTest, BodyTooLargeIs413) {
  Harness h = StartGateway({.max_body = 4096});
  ExpectOpenAiError(Http("POST", h.port, "/v1/chat/completions", ChatBody("good", std::string(10000, 'x')), kKey), 413,
                    "request_too_large");
  // Over 1 MiB: curl sends "Expect: 100-continue"; the gateway refuses before the body is sent.
  ExpectOpenAiError(Http("POST", h.port, "/v1/chat/completions", ChatBody("good", std::string(2 << 20, 'x')), kKey),
                    413, "request_too_large");
  EXPECT_EQ(Http("GET", h.port, "/healthz").status, 200);  // still serving
}

TEST(GatewayTest, BadJsonAndParamsAre400) {
  Harness h = StartGateway();
  ExpectOpenAiError(Http("POST", h.port, "/v1/chat/completions", "{not json", kKey), 400, "invalid_request");
  ExpectOpenAiError(Http("POST", h.port, "/v1/chat/completions", R"({"model": "good", "messages": []})", kKey), 400,
                    "invalid_request");
  ExpectOpenAiError(
      Http("POST", h.port, "/v1/chat/completions", ChatBody("good", "hi", false, R"(, "temperature": 7)"), kKey), 400,
      "invalid_request");
  ExpectOpenAiError(Http("POST", h.port, "/v1/chat/completions", ChatBody("gpt-nope", "hi"), kKey), 404,
                    "model_not_found");
  ExpectOpenAiError(Http("POST", h.port, "/v1/chat/completions",
                         ChatBody("baton", "hi", false, R"(, "baton": {"max_cost_usd": 0.000001})"), kKey),
                    400, "invalid_request");
}

TEST(GatewayTest, PassThroughByExpertName) {
  Harness h = StartGateway();
  auto r = Http("POST", h.port, "/v1/chat/completions", ChatBody("cheap", "hello"), kKey);
  ASSERT_EQ(r.status, 200) << r.body;
  json j = json::parse(r.body);
  EXPECT_EQ(j["object"], "chat.completion");
  EXPECT_EQ(j["model"], "cheap");
  EXPECT_EQ(j["choices"][0]["message"]["content"], "cheap: hello");
  EXPECT_EQ(j["usage"]["total_tokens"], 15);
  EXPECT_EQ(r.headers["x-baton-expert"], "cheap");
  EXPECT_NEAR(std::stod(r.headers["x-baton-cost-usd"]), 0.01, 1e-9);
  EXPECT_GE(std::stod(r.headers["x-baton-overhead-ms"]), 0);
}

TEST(GatewayTest, RoutingFallsBackWhenTheBestExpertFails) {
  Harness h = StartGateway();
  // "down" has the best predicted score but fails; the gateway falls back to "good".
  auto r = Http("POST", h.port, "/v1/chat/completions", ChatBody("baton", "route me"), kKey);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.headers["x-baton-expert"], "good");
  EXPECT_EQ(h.fakes[1]->calls.load(), 1);
  // baton.experts restricts the pool; lambda high enough makes the cheap one win among equals.
  auto r2 = Http("POST", h.port, "/v1/chat/completions",
                 ChatBody("baton", "route me", false, R"(, "baton": {"experts": ["cheap"]})"), kKey);
  ASSERT_EQ(r2.status, 200) << r2.body;
  EXPECT_EQ(r2.headers["x-baton-expert"], "cheap");
}

// An expert the router model has no training outcome for (a cold start) is served by name, never routed to.
TEST(GatewayTest, AColdStartExpertIsNeverRoutedTo) {
  Harness h = StartGateway({.down_status = Status::Ok(), .train_outcomes = {5, 0, 5}});
  for (int i = 0; i < 3; ++i) {
    auto r = Http("POST", h.port, "/v1/chat/completions", ChatBody("baton", "route me"), kKey);
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.headers["x-baton-expert"], "good");  // "down" has the best prediction, but only its prior
  }
  EXPECT_EQ(h.fakes[1]->calls.load(), 0);
  EXPECT_EQ(Http("POST", h.port, "/v1/chat/completions", ChatBody("down", "by name"), kKey).status, 200);
}

TEST(GatewayTest, UpstreamFailureIsOpenAiShaped) {
  Harness h = StartGateway();
  ExpectOpenAiError(Http("POST", h.port, "/v1/chat/completions", ChatBody("down", "hi"), kKey), 502,
                    "upstream_unavailable");
  Harness t = StartGateway({.down_status = Status::DeadlineExceeded("slow")});
  ExpectOpenAiError(Http("POST", t.port, "/v1/chat/completions", ChatBody("down", "hi"), kKey), 504,
                    "upstream_timeout");
  Harness o = StartGateway({.down_status = Status::ResourceExhausted("429 upstream")});
  ExpectOpenAiError(Http("POST", o.port, "/v1/chat/completions", ChatBody("down", "hi"), kKey), 503,
                    "upstream_overloaded");
}

TEST(GatewayTest, StreamingSseFraming) {
  Harness h = StartGateway();
  auto r = Http("POST", h.port, "/v1/chat/completions", ChatBody("baton", "stream this please", true), kKey);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.headers["content-type"], "text/event-stream");
  EXPECT_EQ(r.headers["x-baton-expert"], "good");  // after the fallback from "down"
  std::string content;
  std::vector<std::string> events;
  size_t pos = 0;
  while (pos < r.body.size()) {
    const size_t end = r.body.find("\n\n", pos);
    ASSERT_NE(end, std::string::npos) << r.body;
    events.push_back(r.body.substr(pos, end - pos));
    pos = end + 2;
  }
  ASSERT_GE(events.size(), 4u);
  EXPECT_EQ(events.back(), "data: [DONE]");
  for (size_t i = 0; i + 1 < events.size(); ++i) {
    ASSERT_EQ(events[i].rfind("data: ", 0), 0u) << events[i];
    json j = json::parse(events[i].substr(6));
    EXPECT_EQ(j["object"], "chat.completion.chunk");
    const json& d = j["choices"][0]["delta"];
    if (d.contains("content")) content += d["content"].get<std::string>();
    if (i + 2 == events.size()) {
      EXPECT_EQ(j["choices"][0]["finish_reason"], "stop");
    }
  }
  EXPECT_EQ(content, "good: stream this please");
}

TEST(GatewayTest, ToolCallsOfABackendThatDoesNotStreamThem) {
  Harness h = StartGateway();
  const json calls = json::parse(R"([{"id":"call_1","type":"function","function":{"name":"f","arguments":"{}"}}])");
  h.fakes[2]->tool_calls = calls;  // "cheap"
  auto r = Http("POST", h.port, "/v1/chat/completions", ChatBody("cheap", "call f"), kKey);
  ASSERT_EQ(r.status, 200) << r.body;
  json j = json::parse(r.body);
  EXPECT_TRUE(j["choices"][0]["message"]["content"].is_null()) << r.body;
  EXPECT_EQ(j["choices"][0]["message"]["tool_calls"], calls);
  EXPECT_EQ(j["choices"][0]["finish_reason"], "tool_calls");
  // Streamed: one delta.tool_calls chunk (with the index clients merge by), then the finish reason.
  r = Http("POST", h.port, "/v1/chat/completions", ChatBody("cheap", "call f", true), kKey);
  ASSERT_EQ(r.status, 200) << r.body;
  json streamed = json::array();
  std::string finish;
  for (size_t pos = 0, end; (end = r.body.find("\n\n", pos)) != std::string::npos; pos = end + 2) {
    const std::string event = r.body.substr(pos + 6, end - pos - 6);
    if (event == "[DONE]") break;
    const json c = json::parse(event)["choices"][0];
    for (const json& d : c["delta"].value("tool_calls", json::array())) streamed.push_back(d);
    if (c["finish_reason"].is_string()) finish = c["finish_reason"];
  }
  json expected = calls;
  expected[0]["index"] = 0;
  EXPECT_EQ(streamed, expected) << r.body;
  EXPECT_EQ(finish, "tool_calls");
}

// The answers to a batch of chat requests: 200s, 429s (each checked to be an OpenAI error with the expected code)
// and anything else.
struct Tally {
  std::atomic<int> ok{0}, refused{0}, other{0};
};

// Sends `threads` x `each` chat requests, for "good" on odd and `model` on even request numbers when `alternate`,
// else all for `model`; threads = 1 sends them one after another.
void SendChats(const Harness& h, int threads, int each, const std::string& model, const std::string& refusal_code,
               Tally* tally, bool alternate = false) {
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&] {
      for (int i = 0; i < each; ++i) {
        auto r =
            Http("POST", h.port, "/v1/chat/completions", ChatBody(alternate && i % 2 ? "good" : model, "hi"), kKey);
        if (r.status == 200) {
          ++tally->ok;
        } else if (r.status == 429) {
          ++tally->refused;
          ExpectOpenAiError(r, 429, refusal_code);
        } else {
          ++tally->other;
        }
      }
    });
  }
  for (auto& t : pool) t.join();
}

TEST(GatewayTest, BudgetExhaustedIs429) {
  Harness h = StartGateway({.budget = 0.03});  // reservation 2 x ~0.01: one call fits, then spent 0.01 + 0.02 ...
  Tally n;
  SendChats(h, 1, 5, "cheap", "budget_exhausted", &n);
  EXPECT_GE(n.ok.load(), 1);
  EXPECT_GE(n.refused.load(), 1);
  EXPECT_LE(h.gw->ledger().Get(0).spent_usd, 0.03 + 1e-12);
}

TEST(GatewayTest, RateLimitIs429) {
  Harness h = StartGateway({.rate_limit_rps = 2});
  Tally n;
  SendChats(h, 1, 6, "cheap", "rate_limit_exceeded", &n);
  EXPECT_GE(n.ok.load(), 2);
  EXPECT_GE(n.refused.load(), 1);
}

TEST(GatewayTest, KeyConcurrencyLimitIs429AndSlotsComeBack) {
  Harness h = StartGateway({.key_max_concurrency = 2});
  h.fakes[2]->delay_ms = 300;  // "cheap" holds its requests long enough for them to overlap
  Tally n;
  SendChats(h, 6, 1, "cheap", "concurrency_limit_exceeded", &n);
  EXPECT_EQ(n.other.load(), 0);
  EXPECT_GE(n.ok.load(), 2);
  EXPECT_LE(n.ok.load(), 5);  // six at once against a limit of two: some must have been refused
  EXPECT_GE(n.refused.load(), 1);
  // Every slot was given back: two more in a row succeed.
  h.fakes[2]->delay_ms = 0;
  EXPECT_EQ(Http("POST", h.port, "/v1/chat/completions", ChatBody("cheap", "again"), kKey).status, 200);
  EXPECT_EQ(Http("POST", h.port, "/v1/chat/completions", ChatBody("cheap", "again"), kKey).status, 200);
}

TEST(BudgetConcurrencyTest, HundredsOfConcurrentRequestsNeverOverspend) {
  const double budget = 0.5;  // 0.01 per call, reserving ~0.02: at most 50 calls can be paid for
  Harness h = StartGateway({.budget = budget});
  Tally n;
  SendChats(h, 16, 25, "cheap", "budget_exhausted", &n, /*alternate=*/true);  // 400 requests in all
  const int ok = n.ok, refused = n.refused.load();
  EXPECT_EQ(n.other.load(), 0);
  EXPECT_EQ(ok + refused, 400);
  const BudgetAccount a = h.gw->ledger().Get(0);
  EXPECT_LE(a.spent_usd, budget + 1e-9);
  EXPECT_NEAR(a.spent_usd, ok * 0.01, 1e-9);
  EXPECT_NEAR(a.reserved_usd, 0, 1e-9);
  EXPECT_GE(ok, 20);
  // The store agrees after a flush.
  h.gw->Shutdown();
  auto store = Store::Open(h.db);
  ASSERT_TRUE(store.ok());
  auto rows = (*store)->ListClientBudgets();
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->size(), 1u);
  EXPECT_NEAR((*rows)[0].spent_usd, ok * 0.01, 1e-9);
}

TEST(GatewayTest, MetricsAndRecording) {
  Harness h = StartGateway({.down_status = Status::Unavailable("down"), .record_prompts = true});
  ASSERT_EQ(Http("POST", h.port, "/v1/chat/completions", ChatBody("baton", "count me"), kKey).status, 200);
  ASSERT_EQ(Http("POST", h.port, "/v1/chat/completions", ChatBody("cheap", "and me"), kKey).status, 200);
  ASSERT_EQ(Http("POST", h.port, "/v1/chat/completions", ChatBody("cheap", "x"), "bad").status, 401);
  auto m = Http("GET", h.port, "/metrics");
  ASSERT_EQ(m.status, 200);
  EXPECT_NE(m.headers["content-type"].find("text/plain; version=0.0.4"), std::string::npos);
  for (const char* s :
       {"# TYPE baton_http_requests_total counter",
        "baton_http_requests_total{path=\"/v1/chat/completions\",code=\"200\"} 2",
        "baton_http_errors_total{code=\"401\"} 1", "baton_spend_usd_total{expert=\"cheap\"} 0.01",
        "baton_key_spend_usd_total{key=\"tester\"} 0.02", "baton_routing_decisions_total{expert=\"down\"} 1",
        "baton_routing_decisions_total{expert=\"good\"} 1",
        "baton_upstream_failures_total{expert=\"down\",reason=\"Unavailable\"} 1", "baton_fallbacks_total 1",
        "baton_http_request_duration_seconds_bucket{le=\"+Inf\"}", "baton_expert_calls_total{expert=\"down\"} 1"}) {
    EXPECT_NE(m.body.find(s), std::string::npos) << s << "\n" << m.body;
  }
  h.gw->Shutdown();
  auto store = Store::Open(h.db);
  ASSERT_TRUE(store.ok());
  EXPECT_EQ((*store)->CountRows("requests").value_or(-1), 3);
  EXPECT_EQ((*store)->CountRows("outcomes").value_or(-1), 2);  // the fakes report a recorded score, like replay experts
  auto q = (*store)->ListQueries({"live"});
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(q->size(), 2u);
}

}  // namespace
}  // namespace baton::gateway
