// The gateway's in-process test harness: a real Gateway on a free loopback port with scripted experts (FakeExpert)
// and a fixed router (FixedPredictor). Test-only; shared by gateway_test.cc and gateway_hardening_test.cc.
#pragma once

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "baton/predictor.h"
#include "gateway/auth.h"
#include "gateway/gateway.h"
#include "gateway/test_http_client.h"

namespace baton::gateway::testing {

using json = nlohmann::json;

inline constexpr const char* kKey = "sk-test";
inline constexpr const char* kOtherKey = "sk-other";  // a second client key (GatewayOptions::second_key)

// A scripted expert: answers "<name>: <prompt>" with a fixed cost, or fails with `fail`.
class FakeExpert : public ExpertBackend {
 public:
  FakeExpert(std::string name, double cost, Status fail = Status::Ok(), std::optional<double> score = {})
      : name_(std::move(name)), cost_(cost), fail_(std::move(fail)), score_(score) {}
  const std::string& name() const override { return name_; }
  StatusOr<ChatResult> Complete(const ChatRequest& request, const StreamSink* sink) override {
    calls.fetch_add(1);
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms.load()));
    if (!fail_.ok()) return fail_;
    ChatResult r;
    r.content = name_ + ": " + request.messages.back().content;
    r.usage = {10, 5};
    r.cost_usd = cost_;
    r.recorded_score = score_;
    if (!tool_calls.empty()) {  // a backend that returns its tool calls whole, never through the sink
      r.content.clear();
      r.tool_calls = tool_calls;
      r.finish_reason = "tool_calls";
    }
    if (sink && *sink) {
      for (size_t i = 0; i < r.content.size(); i += 4) {
        if (piece_delay_ms.load() > 0) std::this_thread::sleep_for(std::chrono::milliseconds(piece_delay_ms.load()));
        if (!(*sink)(std::string_view(r.content).substr(i, 4))) return Status::FailedPrecondition("cancelled");
      }
    }
    return r;
  }
  std::atomic<int> calls{0};
  std::atomic<int> delay_ms{0};        // how long each call blocks (on the gateway's blocking pool)
  std::atomic<int> piece_delay_ms{0};  // pause before each streamed piece
  json tool_calls = json::array();     // answered instead of text when not empty; set before any request

 private:
  std::string name_;
  double cost_;
  Status fail_;
  std::optional<double> score_;
};

// Scores fixed per expert: the router prefers them in this order.
class FixedPredictor : public Predictor {
 public:
  FixedPredictor(std::vector<std::string> experts, std::vector<float> scores)
      : experts_(std::move(experts)), scores_(std::move(scores)) {}
  std::string name() const override { return "fixed"; }
  Status Fit(const Dataset&) override { return Status::Ok(); }
  void Predict(const QueryView&, std::span<float> out) const override {
    std::copy(scores_.begin(), scores_.end(), out.begin());
  }
  const std::vector<std::string>& experts() const override { return experts_; }

 private:
  std::vector<std::string> experts_;
  std::vector<float> scores_;
};

// Stops the gateway and removes its database files when it goes out of scope.
struct Harness {
  Harness() = default;
  Harness(Harness&&) = default;
  Harness& operator=(Harness&&) = default;
  ~Harness() {
    gw.reset();
    if (db.empty()) return;
    for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(db + suffix);
  }
  std::unique_ptr<Gateway> gw;
  std::vector<FakeExpert*> fakes;
  int port = 0;
  std::string db;
};

struct GatewayOptions {
  double budget = 100;
  Status down_status = Status::Unavailable("connection refused");  // how "down" fails
  int64_t max_body = 4096;
  bool record_prompts = false;
  double rate_limit_rps = 0;
  int key_max_concurrency = 0;
  bool metrics_public = true;
  std::vector<uint64_t> train_outcomes;  // per expert (good, down, cheap) in the router model; empty = unknown
  std::string metrics_key;               // plain; "" = none
  bool second_key = false;               // also accept kOtherKey (key name "other")
  std::string model_path;                // router.model (what a reload re-reads); the initial router is fixed anyway
};

// Experts: "good" (score .9), "down" (score .95, fails with `down_status`), "cheap" (score .5). Prices make the
// router's cost estimate 0.01 USD for each.
inline Harness StartGateway(const GatewayOptions& o = {}) {
  Harness h;
  static std::atomic<int> n{0};
  h.db = (std::filesystem::temp_directory_path() /
          ("baton_gw_" + std::to_string(::getpid()) + "_" + std::to_string(n++) + ".db"))
             .string();
  std::filesystem::remove(h.db);
  GatewayConfig c;
  c.source = "test";
  c.store_path = h.db;
  c.max_body_bytes = o.max_body;
  c.record_prompts = o.record_prompts;
  c.worker_threads = 32;
  c.metrics_public = o.metrics_public;
  if (!o.metrics_key.empty()) c.metrics_key_sha256 = Sha256Hex(o.metrics_key);
  c.keys = {{.name = "tester",
             .key_sha256 = Sha256Hex(kKey),
             .budget_usd = o.budget,
             .rate_limit_rps = o.rate_limit_rps,
             .max_concurrency = o.key_max_concurrency}};
  if (o.second_key) c.keys.push_back({.name = "other", .key_sha256 = Sha256Hex(kOtherKey), .budget_usd = o.budget});
  c.router.model_path = o.model_path;
  GatewayParts parts;
  const std::vector<std::string> names = {"good", "down", "cheap"};
  for (const auto& name : names) {
    // 1000 output tokens x $10/Mtok = $0.01 (plus a little for the prompt).
    ExpertConfig e;
    e.name = name;
    e.kind = "replay";
    e.usd_per_mtok_out = 10.0;
    e.default_max_tokens = 1000;
    c.experts.push_back(e);
    auto fake = std::make_unique<FakeExpert>(name, 0.01, name == "down" ? o.down_status : Status::Ok(), 0.75);
    h.fakes.push_back(fake.get());
    parts.backends.push_back(std::move(fake));
  }
  parts.router = RouterModel{std::make_unique<FixedPredictor>(names, std::vector<float>{0.9f, 0.95f, 0.5f}), {}};
  parts.router->train_outcomes = o.train_outcomes;
  auto gw = Gateway::Create(std::move(c), std::move(parts));
  EXPECT_TRUE(gw.ok()) << gw.status().ToString();
  h.gw = std::move(*gw);
  Status st = h.gw->Start("127.0.0.1:0");
  EXPECT_TRUE(st.ok()) << st.ToString();
  h.port = h.gw->port();
  return h;
}

inline void ExpectOpenAiError(const testing::HttpResult& r, long status, const std::string& code) {
  EXPECT_EQ(r.status, status) << r.body << r.error;
  json j = json::parse(r.body, nullptr, false);
  ASSERT_TRUE(j.is_object()) << r.body;
  ASSERT_TRUE(j.contains("error")) << r.body;
  EXPECT_TRUE(j["error"]["message"].is_string());
  EXPECT_TRUE(j["error"]["type"].is_string());
  EXPECT_EQ(j["error"]["code"], code) << r.body;
}

}  // namespace baton::gateway::testing
