#include "gateway/config.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "gateway/auth.h"
#include "gateway/gateway_state.h"

namespace baton::gateway {
namespace {

constexpr const char* kGood = R"yaml(
listen: 127.0.0.1:0
store: ":memory:"
record_prompts: true
max_body_bytes: 2048
router: {lambda: 3}
keys:
  - {name: demo, key: sk-demo, budget_usd: 5}
  - {name: prod, sha256: 9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08, budget_usd: 1.5}
experts:
  - {name: a, kind: replay, replay_dir: data/x, usd_per_mtok_in: 1, usd_per_mtok_out: 2}
  - {name: b, kind: openai, base_url: "http://127.0.0.1:1/v1", timeout_s: 2.5, max_retries: 0}
)yaml";

TEST(ConfigTest, ParsesAGoodFile) {
  auto c = ParseGatewayConfig(kGood, "config.yaml");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->listen, "127.0.0.1:0");
  EXPECT_TRUE(c->record_prompts);
  EXPECT_EQ(c->max_body_bytes, 2048);
  EXPECT_DOUBLE_EQ(c->router.lambda, 3);
  ASSERT_EQ(c->keys.size(), 2u);
  EXPECT_EQ(c->keys[0].key_sha256, Sha256Hex("sk-demo"));  // the plain key is hashed at load
  EXPECT_EQ(c->keys[1].key_sha256, "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08");
  ASSERT_EQ(c->experts.size(), 2u);
  EXPECT_EQ(c->experts[0].usd_per_mtok_out, 2);
  EXPECT_EQ(c->experts[1].timeout, std::chrono::milliseconds(2500));
  EXPECT_EQ(c->experts[1].max_retries, 0);
}

TEST(ConfigTest, Sha256KnownAnswer) {
  EXPECT_EQ(Sha256Hex("test"), "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08");
}

void ExpectError(const std::string& yaml, const std::string& fragment) {
  auto c = ParseGatewayConfig(yaml, "config.yaml");
  ASSERT_FALSE(c.ok()) << "accepted: " << yaml;
  EXPECT_EQ(c.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(c.status().message().find(fragment), std::string::npos) << c.status().message();
}

TEST(ConfigTest, ErrorsNameTheField) {
  const std::string keys = "keys: [{name: k, key: x, budget_usd: 1}]\n";
  ExpectError(keys +
                  "experts: [{name: a, kind: replay, replay_dir: d}, {name: b, kind: replay, replay_dir: d}, "
                  "{name: c, kind: foo}]",
              "config.yaml: experts[2].kind: unknown kind 'foo' (valid: openai, replay, llamacpp)");
  ExpectError(keys + "experts: [{name: a, kind: openai}]", "experts[0].base_url: required");
  ExpectError(keys + "experts: [{kind: replay, replay_dir: d}]", "experts[0].name: missing");
  ExpectError(keys + "experts: [{name: a, kind: replay, replay_dir: d}, {name: a, kind: replay, replay_dir: d}]",
              "experts[1].name: duplicate expert name 'a'");
  ExpectError(keys + "experts: [{name: a, kind: replay, replay_dir: d, colour: red}]", "experts[0].colour: unknown");
  ExpectError(keys + "experts: [{name: a, kind: replay, replay_dir: d, max_retries: many}]",
              "experts[0].max_retries: cannot read 'many' as an integer");
  ExpectError(keys + "experts: []", "experts: a non-empty list");
  ExpectError("experts: [{name: a, kind: replay, replay_dir: d}]", "keys: at least one");
  ExpectError("keys: [{name: k, sha256: abc, budget_usd: 1}]\nexperts: [{name: a, kind: replay, replay_dir: d}]",
              "keys[0].sha256: must be 64 hex digits");
  ExpectError("keys: [{name: k, key: x}]\nexperts: [{name: a, kind: replay, replay_dir: d}]",
              "keys[0].budget_usd: missing");
  ExpectError("keys: [{name: k, key: x, budget_usd: -1}]\nexperts: [{name: a, kind: replay, replay_dir: d}]",
              "keys[0].budget_usd: must be >= 0");
  ExpectError(
      "keys: [{name: k, key: x, budget_usd: 1, max_concurrency: -2}]\nexperts: [{name: a, kind: replay, "
      "replay_dir: d}]",
      "keys[0].max_concurrency: must be >= 0 (0 = unlimited)");
  ExpectError("keys: [{name: k, key: x, budget_usd: 1, rate_limit_rps: .inf}]\nexperts: [{name: a, kind: replay, "
              "replay_dir: d}]",
              "keys[0].rate_limit_rps: must be a finite number >= 0");
  ExpectError(keys + "max_in_flight: 0\nexperts: [{name: a, kind: replay, replay_dir: d}]",
              "max_in_flight: must be >= 1");
  ExpectError(keys + "max_body_bytes: 0\nexperts: [{name: a, kind: replay, replay_dir: d}]", "max_body_bytes:");
  ExpectError(keys + "router: {model: m, train_dir: d}\nexperts: [{name: a, kind: replay, replay_dir: d}]",
              "router.model: give either");
  ExpectError("listen: [unclosed", "config.yaml:");
}

// A key's rate_limit_rps becomes its token bucket; a tiny rate used to overflow the int of Retry-After (undefined
// behaviour: the cast of 1e10 seconds), now clamped to a day.
TEST(ConfigTest, TinyRateLimitGivesABoundedRetryAfter) {
  RateLimiter l;
  l.rate = 1e-10;
  l.tokens = 1;
  l.last = std::chrono::steady_clock::now();
  EXPECT_TRUE(l.Allow());
  EXPECT_FALSE(l.Allow());
  EXPECT_EQ(l.RetryAfterSeconds(), 86400);
}

TEST(ConfigTest, ArchitecturesAreOptionalAndValidated) {
  const std::string base =
      "keys: [{name: k, key: x, budget_usd: 1}]\nexperts: [{name: a, kind: replay, replay_dir: d}]\n";
  auto none = ParseGatewayConfig(base, "config.yaml");
  ASSERT_TRUE(none.ok()) << none.status().ToString();
  EXPECT_TRUE(none->architectures.empty());
  auto c = ParseGatewayConfig(
      base + "architectures: [{name: moa, file: archon/moa.json, max_calls: 9, max_cost_usd: 0.5, timeout_s: 3}]",
      "config.yaml", "/etc/baton");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  ASSERT_EQ(c->architectures.size(), 1u);
  EXPECT_EQ(c->architectures[0].name, "moa");
  EXPECT_EQ(c->architectures[0].path, "/etc/baton/archon/moa.json");
  EXPECT_EQ(c->architectures[0].max_calls, 9);
  EXPECT_EQ(c->architectures[0].max_cost_usd, 0.5);
  EXPECT_EQ(c->architectures[0].max_concurrency, 8);
  EXPECT_EQ(c->architectures[0].timeout, std::chrono::milliseconds(3000));
  ExpectError(base + "architectures: {name: x}", "architectures: expected a list");
  ExpectError(base + "architectures: [{file: f.json}]", "architectures[0].name: missing");
  ExpectError(base + "architectures: [{name: a/b, file: f.json}]", "architectures[0].name: must not contain");
  ExpectError(base + "architectures: [{name: x}]", "architectures[0].file: missing");
  ExpectError(base + "architectures: [{name: x, file: f, max_calls: 0}]", "architectures[0].max_calls: must be > 0");
  ExpectError(base + "architectures: [{name: x, file: f, layers: 3}]", "architectures[0].layers: unknown field");
  ExpectError(base + "architectures: [{name: x, file: f}, {name: x, file: g}]",
              "architectures[1].name: duplicate architecture name 'x'");
}

TEST(ConfigTest, KeysCanBeOptionalForToolsThatOnlyCallExperts) {
  const std::string experts = "experts: [{name: a, kind: replay, replay_dir: d}]";
  ExpectError(experts, "keys: at least one");
  auto c = ParseGatewayConfig(experts, "config.yaml", "", {.require_keys = false});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_TRUE(c->keys.empty());
  EXPECT_EQ(c->experts.size(), 1u);
}

TEST(ConfigTest, MissingFileIsNotFound) {
  auto c = LoadGatewayConfig("/nonexistent/baton.yaml");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), StatusCode::kNotFound);
}

// Paths in a configuration file are relative to the file, not to wherever baton was started from.
TEST(ConfigTest, RelativePathsAreRelativeToTheConfigFile) {
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("baton_cfg_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir / "sub");
  {
    std::ofstream out(dir / "sub" / "serve.yaml");
    out << "store: gw.db\nrouter: {train_dir: ../train}\nkeys: [{name: k, key: x, budget_usd: 1}]\n"
           "experts: [{name: a, kind: replay, replay_dir: ../data}, {name: b, kind: replay, replay_db: /abs/r.db}]\n";
  }
  auto c = LoadGatewayConfig((dir / "sub" / "serve.yaml").string());
  std::filesystem::remove_all(dir);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->store_path, (dir / "sub" / "gw.db").string());
  EXPECT_EQ(c->router.train_dir, (dir / "sub" / "../train").string());
  EXPECT_EQ(c->experts[0].replay_dir, (dir / "sub" / "../data").string());
  EXPECT_EQ(c->experts[1].replay_db, "/abs/r.db");
}

TEST(ConfigTest, MetricsKeyIsHashedAndMetricsAreOffByDefault) {
  const std::string base =
      "keys: [{name: k, key: x, budget_usd: 1}]\nexperts: [{name: a, kind: replay, replay_dir: d}]\n";
  auto off = ParseGatewayConfig(base, "config.yaml");
  ASSERT_TRUE(off.ok());
  EXPECT_FALSE(off->metrics_public);
  EXPECT_EQ(off->metrics_key_sha256, "");
  auto keyed = ParseGatewayConfig(base + "metrics_key: sk-m\n", "config.yaml");
  ASSERT_TRUE(keyed.ok()) << keyed.status().ToString();
  EXPECT_EQ(keyed->metrics_key_sha256, Sha256Hex("sk-m"));
  ExpectError(base + "metrics_key: a\nmetrics_key_sha256: " + std::string(64, 'a') + "\n", "metrics_key: give either");
  ExpectError(base + "max_connections: -1\n", "max_connections: must be >= 0");
}

TEST(ConfigTest, KeyRingFindsOnlyConfiguredKeys) {
  KeyRing ring({{.name = "a", .key_sha256 = Sha256Hex("k1")}, {.name = "b", .key_sha256 = Sha256Hex("k2")}});
  EXPECT_EQ(ring.Find("k2"), std::optional<size_t>(1));
  EXPECT_EQ(ring.Find("k3"), std::nullopt);
  EXPECT_EQ(ring.Find(""), std::nullopt);
  EXPECT_EQ(BearerToken("Bearer abc "), "abc");
  EXPECT_EQ(BearerToken("bearer abc"), "abc");
  EXPECT_EQ(BearerToken("Basic abc"), "");
  EXPECT_EQ(BearerToken(""), "");
}

}  // namespace
}  // namespace baton::gateway
