// The gateway probed as an attacker and as a demanding client would: hostile JSON, budgets under concurrency with an
// upstream that ignores or lies about usage, clients that leave mid-stream, upstream errors that must not leak,
// unbounded metrics, prompts that must not be stored, answers that must be recorded before they are sent.
// Each test failed before the fix it guards (see bench/RESULTS.md, "Gateway hardening").
#include <netinet/in.h>
#include <sqlite3.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "baton/store.h"
#include "gateway/budget.h"
#include "gateway/gateway.h"
#include "gateway/http_server.h"
#include "gateway/test_gateway_harness.h"
#include "gateway/test_http_client.h"

namespace baton::gateway {
namespace {

using testing::ChatBody;
using testing::ExpectOpenAiError;
using testing::Harness;
using testing::Http;
using testing::kKey;
using testing::StartGateway;
using json = nlohmann::json;
using std::chrono::milliseconds;

// Polls `done` every 10 ms for up to 10 s: waiting for something asynchronous, not asserting how long it takes.
template <typename F>
bool Eventually(F done) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(milliseconds(10));
  }
  return true;
}

std::string Nested(size_t depth) {
  return std::string(depth, '[') + std::string(depth, ']');
}

TEST(GatewayHardeningTest, DeeplyNestedJsonIsRefusedWithTheLimitNotACrash) {
  Harness h = StartGateway({.max_body = 1 << 20});
  // ~300 KB nested 150,000 deep in a passed-through field, an ignored one and an unknown one.
  for (const char* field : {"tools", "response_format", "x_unknown"}) {
    const auto r = Http("POST", h.port, "/v1/chat/completions",
                        ChatBody("good", "hi", false, std::string(", \"") + field + "\": " + Nested(150'000)), kKey);
    ExpectOpenAiError(r, 400, "invalid_request");
    EXPECT_NE(r.body.find("deeper than 64 levels"), std::string::npos) << field << ": " << r.body;
  }
  // Nesting within the limit still passes through.
  EXPECT_EQ(Http("POST", h.port, "/v1/chat/completions", ChatBody("good", "hi", false, ", \"x\": " + Nested(60)), kKey)
                .status,
            200);
  EXPECT_EQ(Http("GET", h.port, "/healthz").status, 200);
  EXPECT_EQ(h.fakes[0]->calls.load(), 1);
}

// A minimal OpenAI-compatible upstream on loopback (baton's own HTTP server): answers every chat completion with
// "ok" and the usage `usage_for(max_tokens sent, or -1)` says, and remembers the max_tokens it was sent.
class FakeUpstream {
 public:
  using UsageFn = std::function<json(int64_t max_tokens)>;
  explicit FakeUpstream(UsageFn usage_for) : usage_for_(std::move(usage_for)) {
    auto server = HttpServer::Start(
        {.host = "127.0.0.1", .port = 0, .io_threads = 1}, [this](HttpRequest req, std::shared_ptr<HttpExchange> ex) {
          const json body = json::parse(req.body, nullptr, false);
          const int64_t max_tokens =
              body.is_object() && body.contains("max_tokens") ? body["max_tokens"].get<int64_t>() : -1;
          {
            std::lock_guard<std::mutex> lock(mu_);
            max_tokens_seen_.push_back(max_tokens);
          }
          json answer = {
              {"choices", {{{"message", {{"role", "assistant"}, {"content", "ok"}}}, {"finish_reason", "stop"}}}},
              {"usage", usage_for_(max_tokens)}};
          ex->Respond(MakeHttpResponse(200, answer.dump()));
        });
    EXPECT_TRUE(server.ok()) << server.status().ToString();
    server_ = std::move(*server);
  }
  ~FakeUpstream() { server_->Shutdown(milliseconds(0)); }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(server_->port()) + "/v1"; }
  std::vector<int64_t> max_tokens_seen() {
    std::lock_guard<std::mutex> lock(mu_);
    return max_tokens_seen_;
  }

 private:
  UsageFn usage_for_;
  std::mutex mu_;
  std::vector<int64_t> max_tokens_seen_;
  std::unique_ptr<HttpServer> server_;
};

// A gateway whose one expert, "priced", is a real openai backend in front of `upstream`, priced per token
// ($10 / $30 per million in / out), with default_max_tokens 256 and no retries. No router: clients name the expert.
struct PricedGateway {
  std::unique_ptr<Gateway> gw;
  int port = 0;
};

PricedGateway StartPricedGateway(const FakeUpstream& upstream, double budget) {
  GatewayConfig c;
  c.source = "test";
  c.metrics_public = true;
  c.keys = {{.name = "tester", .key_sha256 = Sha256Hex(kKey), .budget_usd = budget}};
  ExpertConfig e;
  e.name = "priced";
  e.kind = "openai";
  e.base_url = upstream.url();
  e.usd_per_mtok_in = 10;
  e.usd_per_mtok_out = 30;
  e.default_max_tokens = 256;
  e.max_retries = 0;
  e.max_concurrency = 0;
  c.experts = {e};
  auto parts = BuildGatewayParts(c);
  EXPECT_TRUE(parts.ok()) << parts.status().ToString();
  auto gw = Gateway::Create(std::move(c), std::move(*parts));
  EXPECT_TRUE(gw.ok()) << gw.status().ToString();
  PricedGateway g{std::move(*gw)};
  EXPECT_TRUE(g.gw->Start("127.0.0.1:0").ok());
  g.port = g.gw->port();
  return g;
}

// Sends `n` requests for "priced" from `n` threads at once; returns how many were answered 200.
int SendConcurrently(int port, int n) {
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < n; ++i) {
    threads.emplace_back([&] {
      if (Http("POST", port, "/v1/chat/completions", ChatBody("priced", "write a long essay"), kKey).status == 200) {
        ++ok;
      }
    });
  }
  for (auto& t : threads) t.join();
  return ok.load();
}

// A model that writes 4,000 tokens whenever it is not told otherwise: the reservation assumed 256, so the gateway must
// send max_tokens = 256 upstream. 200 concurrent requests never spend more than the budget.
TEST(GatewayHardeningTest, ConcurrentRequestsWithoutMaxTokensNeverOverspend) {
  FakeUpstream upstream([](int64_t max_tokens) {
    return json{{"prompt_tokens", 20}, {"completion_tokens", max_tokens > 0 ? max_tokens : 4000}};
  });
  const double budget = 0.25;
  PricedGateway g = StartPricedGateway(upstream, budget);
  const int ok = SendConcurrently(g.port, 200);
  const BudgetAccount a = g.gw->ledger().Get(0);
  EXPECT_LE(a.spent_usd, budget + 1e-12);
  EXPECT_EQ(g.gw->ledger().overruns(), 0);
  EXPECT_NEAR(a.reserved_usd, 0, 1e-12);
  EXPECT_NEAR(a.spent_usd, ok * (20 * 10 + 256 * 30) / 1e6, 1e-9);
  EXPECT_GE(ok, 20);  // the budget is used, not just guarded: 31 calls fit at most
  for (int64_t m : upstream.max_tokens_seen()) EXPECT_EQ(m, 256);
}

// An upstream that reports absurd usage (10^9 tokens) is charged at most what the request allowed, never past the
// budget; negative usage charges nothing and never makes a counter go down.
TEST(GatewayHardeningTest, LyingUsageIsCappedAndNeverNegative) {
  {
    FakeUpstream upstream([](int64_t) {
      return json{{"prompt_tokens", 1'000'000'000}, {"completion_tokens", 1'000'000'000}};
    });
    const double budget = 1000;
    PricedGateway g = StartPricedGateway(upstream, budget);
    const int ok = SendConcurrently(g.port, 20);
    EXPECT_EQ(ok, 20);
    const BudgetAccount a = g.gw->ledger().Get(0);
    EXPECT_LE(a.spent_usd, budget);
    EXPECT_LT(a.spent_usd, 1.0);  // 20 calls of at most (prompt bound + 256) tokens each, not $3,000
  }
  {
    FakeUpstream upstream([](int64_t) { return json{{"prompt_tokens", -500}, {"completion_tokens", -7}}; });
    PricedGateway g = StartPricedGateway(upstream, 1);
    const auto r = Http("POST", g.port, "/v1/chat/completions", ChatBody("priced", "hi"), kKey);
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_GE(std::stod(r.headers.at("x-baton-cost-usd")), 0.0);
    EXPECT_GE(g.gw->ledger().Get(0).spent_usd, 0.0);
    const auto m = Http("GET", g.port, "/metrics");
    ASSERT_EQ(m.status, 200);
    EXPECT_EQ(m.body.find("} -"), std::string::npos) << m.body;  // no counter or gauge below zero
  }
}

// Opens a raw connection, sends a streaming chat request and closes the connection once the first bytes of the
// answer have arrived.
void StreamThenHangUp(int port, const std::string& body) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  const std::string req =
      "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + std::string(kKey) +
      "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  ASSERT_EQ(send(fd, req.data(), req.size(), MSG_NOSIGNAL), static_cast<ssize_t>(req.size()));
  std::string got;
  char buf[4096];
  while (got.find("data:") == std::string::npos) {
    const ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    got.append(buf, static_cast<size_t>(n));
  }
  EXPECT_NE(got.find("data:"), std::string::npos) << got;
  close(fd);
}

TEST(GatewayHardeningTest, AClientLeavingMidStreamIsChargedAndLoggedAsACancellation) {
  Harness h = StartGateway({.max_body = 1 << 20});
  h.fakes[2]->piece_delay_ms = 2;  // "cheap" streams 4 characters every 2 ms: about 2 s for this answer
  StreamThenHangUp(h.port, ChatBody("cheap", std::string(4000, 'a'), /*stream=*/true));
  ASSERT_TRUE(Eventually([&] { return h.gw->ledger().Get(0).reserved_usd == 0; }));
  const double spent = h.gw->ledger().Get(0).spent_usd;
  EXPECT_GT(spent, 0);     // what was streamed is billed by the upstream, so it is charged
  EXPECT_LT(spent, 0.01);  // but not the whole answer
  const auto m = Http("GET", h.port, "/metrics");
  EXPECT_NE(m.body.find("baton_client_cancellations_total{expert=\"cheap\"} 1"), std::string::npos) << m.body;
  EXPECT_EQ(m.body.find("baton_upstream_failures_total{expert=\"cheap\""), std::string::npos) << m.body;
  h.gw->Shutdown();
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open_v2(h.db.c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "SELECT http_status, note, cost_usd FROM requests", -1, &st, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
  EXPECT_EQ(sqlite3_column_int(st, 0), 499);
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(st, 1)), "client_cancelled");
  EXPECT_NEAR(sqlite3_column_double(st, 2), spent, 1e-12);
  sqlite3_finalize(st);
  sqlite3_close(db);
}

TEST(GatewayHardeningTest, UpstreamErrorTextNeverReachesTheClient) {
  const std::string leaky =
      "expert 'down' at http://10.1.2.3:9000/v1/chat/completions answered HTTP 401: {\"error\": \"bad key\", "
      "\"echo\": \"Authorization: Bearer sk-upstream-SECRET\"}" +
      std::string(100'000, 'x');
  for (const Status& st : {Status::InvalidArgument(leaky), Status::Unavailable(leaky)}) {
    Harness h = StartGateway({.down_status = st});
    const auto r = Http("POST", h.port, "/v1/chat/completions", ChatBody("down", "hi"), kKey);
    EXPECT_GE(r.status, 400);
    EXPECT_EQ(r.body.find("SECRET"), std::string::npos) << r.body;
    EXPECT_EQ(r.body.find("10.1.2.3"), std::string::npos) << r.body;
    EXPECT_LT(r.body.size(), 400u);
    ASSERT_TRUE(r.headers.count("x-request-id"));
    EXPECT_NE(r.body.find(r.headers.at("x-request-id")), std::string::npos) << r.body;  // a handle for the logs
  }
}

TEST(GatewayHardeningTest, MetricsLabelRoutesNotRawPaths) {
  Harness h = StartGateway();
  for (int i = 0; i < 500; ++i) {
    ASSERT_EQ(Http("GET", h.port, "/probe/" + std::to_string(i)).status, 404);
  }
  const auto m = Http("GET", h.port, "/metrics");
  EXPECT_NE(m.body.find("baton_http_requests_total{path=\"other\",code=\"404\"} 500"), std::string::npos) << m.body;
  EXPECT_EQ(m.body.find("/probe/"), std::string::npos);
  EXPECT_LT(m.body.size(), 16'000u);
}

TEST(GatewayHardeningTest, MetricsAreOffByDefaultAndKeyedWhenConfigured) {
  {
    Harness h = StartGateway({.metrics_public = false});
    ExpectOpenAiError(Http("GET", h.port, "/metrics"), 403, "metrics_disabled");
    ExpectOpenAiError(Http("GET", h.port, "/metrics", "", kKey), 403,
                      "metrics_disabled");  // a client key is not enough
  }
  {
    Harness h = StartGateway({.metrics_public = false, .metrics_key = "sk-metrics"});
    ExpectOpenAiError(Http("GET", h.port, "/metrics"), 401, "invalid_api_key");
    ExpectOpenAiError(Http("GET", h.port, "/metrics", "", kKey), 401, "invalid_api_key");
    const auto m = Http("GET", h.port, "/metrics", "", "sk-metrics");
    EXPECT_EQ(m.status, 200);
    EXPECT_NE(m.body.find("baton_key_budget_remaining_usd"), std::string::npos);
  }
}

// Every byte of the store's files (database, WAL, shared memory) as one string.
std::string StoreBytes(const std::string& db) {
  std::string all;
  for (const char* suffix : {"", "-wal", "-shm"}) {
    std::ifstream in(db + suffix, std::ios::binary);
    all.append(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  return all;
}

TEST(GatewayHardeningTest, NothingOfAPromptIsStoredWhenRecordPromptsIsOff) {
  const std::string secret = "the-secret-prompt-7391";
  for (bool record : {false, true}) {
    Harness h = StartGateway({.record_prompts = record});
    ASSERT_EQ(Http("POST", h.port, "/v1/chat/completions", ChatBody("good", secret), kKey).status, 200);
    h.gw->Shutdown();
    auto store = Store::Open(h.db);
    ASSERT_TRUE(store.ok());
    EXPECT_EQ((*store)->CountRows("outcomes").value_or(-1),
              1);  // the outcome is still recorded, under the request's id
    store->reset();
    // The control (record_prompts: true) shows the check can see a stored prompt.
    EXPECT_EQ(StoreBytes(h.db).find(secret) != std::string::npos, record) << "record_prompts: " << record;
  }
}

// The moment a client has its answer, the request's log row and its spend are in the database: a crash right after
// cannot lose them.
TEST(GatewayHardeningTest, AnAnswerIsSentOnlyOnceItsLogRowAndSpendAreCommitted) {
  Harness h = StartGateway();
  sqlite3* db = nullptr;
  for (int i = 0; i < 20; ++i) {
    const auto r = Http("POST", h.port, "/v1/chat/completions", ChatBody(i % 2 ? "cheap" : "good", "hi"), kKey);
    ASSERT_EQ(r.status, 200) << r.body;
    const std::string id = r.headers.at("x-request-id");
    if (db == nullptr) ASSERT_EQ(sqlite3_open_v2(h.db.c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
    sqlite3_stmt* st = nullptr;
    ASSERT_EQ(sqlite3_prepare_v2(db,
                                 "SELECT (SELECT count(*) FROM requests WHERE request_id = ?1 AND http_status = 200), "
                                 "(SELECT spent_usd FROM client_budgets)",
                                 -1, &st, nullptr),
              SQLITE_OK);
    sqlite3_bind_text(st, 1, id.c_str(), -1, SQLITE_TRANSIENT);
    ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
    EXPECT_EQ(sqlite3_column_int(st, 0), 1) << "request " << i << " (" << id << ") answered before it was recorded";
    EXPECT_NEAR(sqlite3_column_double(st, 1), 0.01 * (i + 1), 1e-9) << "spend of request " << i << " not durable";
    sqlite3_finalize(st);
  }
  sqlite3_close(db);
}

TEST(GatewayHardeningTest, TooManyRequestsCarryRetryAfter) {
  Harness h = StartGateway({.rate_limit_rps = 1});
  ASSERT_EQ(Http("POST", h.port, "/v1/chat/completions", ChatBody("cheap", "a"), kKey).status, 200);
  const auto r = Http("POST", h.port, "/v1/chat/completions", ChatBody("cheap", "b"), kKey);
  ExpectOpenAiError(r, 429, "rate_limit_exceeded");
  ASSERT_TRUE(r.headers.count("retry-after"));
  EXPECT_GE(std::stoi(r.headers.at("retry-after")), 1);
  Harness o = StartGateway({.down_status = Status::ResourceExhausted("429 upstream")});
  const auto u = Http("POST", o.port, "/v1/chat/completions", ChatBody("down", "hi"), kKey);
  ExpectOpenAiError(u, 503, "upstream_overloaded");
  EXPECT_EQ(u.headers.count("retry-after"), 1u);
}

}  // namespace
}  // namespace baton::gateway
