// POST /v1/feedback and router reloads, end to end in-process: a real gateway on a loopback port, replay-kind
// experts (scripted), a libcurl client; then `baton fit` on what the feedback recorded, and the gateway reloading it.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>
#include <vector>

#include "baton/store.h"
#include "gateway/gateway.h"
#include "gateway/metrics.h"
#include "gateway/recorder.h"
#include "gateway/router_service.h"
#include "gateway/test_gateway_harness.h"
#include "gateway/test_http_client.h"
#include "test_util.h"

namespace baton::gateway {
namespace {

using testing::ChatBody;
using testing::ExpectOpenAiError;
using testing::Harness;
using testing::Http;
using testing::HttpResult;
using testing::kKey;
using testing::kOtherKey;
using testing::StartGateway;
using json = nlohmann::json;

std::string FeedbackBody(const std::string& id, const std::string& score) {
  return R"({"request_id": ")" + id + R"(", "score": )" + score + "}";
}

// Sends a chat request and returns its x-request-id (the id feedback names).
std::string Ask(const Harness& h, const std::string& model, const std::string& prompt, const std::string& key = kKey,
                std::string* expert = nullptr) {
  HttpResult r = Http("POST", h.port, "/v1/chat/completions", ChatBody(model, prompt), key);
  EXPECT_EQ(r.status, 200) << r.body;
  if (expert) *expert = r.headers["x-baton-expert"];
  return r.headers["x-request-id"];
}

// Rows of `table` in the gateway's store (read through a second connection, as `baton fit` would).
int64_t Rows(const Harness& h, const std::string& table) {
  h.gw->recorder().Flush();
  auto store = Store::Open(h.db, {.create = false});
  EXPECT_TRUE(store.ok()) << store.status().ToString();
  auto n = (*store)->CountRows(table);
  EXPECT_TRUE(n.ok()) << n.status().ToString();
  return n.ok() ? *n : -1;
}

// The live outcomes of `expert`, as (query text, score).
std::vector<std::pair<std::string, double>> LiveOutcomes(const Harness& h, const std::string& expert) {
  h.gw->recorder().Flush();
  auto store = Store::Open(h.db, {.create = false});
  EXPECT_TRUE(store.ok());
  auto experts = (*store)->ListExperts();
  auto queries = (*store)->ListQueries({kLiveDataset});
  std::vector<std::pair<std::string, double>> out;
  Status st = (*store)->ForEachOutcome([&](const OutcomeRecord& o) {
    if (o.source != OutcomeSource::kLive) return;
    std::string name, text;
    for (const auto& e : *experts)
      if (e.id == o.expert_id) name = e.name;
    for (const auto& q : *queries)
      if (q.id == o.query_id) text = q.text;
    if (name == expert) out.emplace_back(text, o.score);
  });
  EXPECT_TRUE(st.ok());
  return out;
}

TEST(FeedbackTest, AcceptedFeedbackBecomesALiveOutcome) {
  Harness h = StartGateway({.record_prompts = true});
  std::string expert;
  const std::string id = Ask(h, "baton", "what is 2+2?", kKey, &expert);
  ASSERT_FALSE(id.empty());
  EXPECT_EQ(expert, "good");                    // "down" is predicted best but fails
  const auto before = LiveOutcomes(h, "good");  // the replay expert's own recorded score (0.75)
  HttpResult r =
      Http("POST", h.port, "/v1/feedback", R"({"request_id": ")" + id + R"(", "score": 0.25, "note": "meh"})", kKey);
  ASSERT_EQ(r.status, 200) << r.body;
  const json j = json::parse(r.body);
  EXPECT_EQ(j["object"], "feedback");
  EXPECT_EQ(j["request_id"], id);
  EXPECT_EQ(j["expert"], "good");
  EXPECT_DOUBLE_EQ(j["score"].get<double>(), 0.25);
  const auto after = LiveOutcomes(h, "good");
  ASSERT_EQ(after.size(), before.size() + 1);
  bool found = false;
  for (const auto& [text, score] : after) found |= text == "what is 2+2?" && score == 0.25;
  EXPECT_TRUE(found);
  EXPECT_EQ(Rows(h, "feedback"), 1);
  // The live query is shared with the replay outcome of the same prompt (one query row, dataset "live").
  auto store = Store::Open(h.db, {.create = false});
  ASSERT_TRUE(store.ok());
  auto qs = (*store)->ListQueries({kLiveDataset});
  ASSERT_TRUE(qs.ok());
  EXPECT_EQ(qs->size(), 1u);
  auto metrics = Http("GET", h.port, "/metrics");
  EXPECT_NE(metrics.body.find("baton_feedback_total{result=\"accepted\"} 1"), std::string::npos) << metrics.body;
}

TEST(FeedbackTest, BadFeedbackIsRefusedAndChangesNothing) {
  Harness h = StartGateway({.record_prompts = true, .second_key = true});
  const std::string mine = Ask(h, "good", "mine");
  const std::string theirs = Ask(h, "good", "theirs", kOtherKey);
  // A request that failed: "down" by name has no fallback.
  HttpResult failed = Http("POST", h.port, "/v1/chat/completions", ChatBody("down", "no answer"), kKey);
  ASSERT_EQ(failed.status, 502) << failed.body;
  const std::string failed_id = failed.headers["x-request-id"];
  ASSERT_FALSE(failed_id.empty());
  h.gw->recorder().Flush();
  const std::string before = baton::testing::DumpDatabase(h.db);

  ExpectOpenAiError(Http("POST", h.port, "/v1/feedback", FeedbackBody(mine, "1")), 401, "missing_api_key");
  ExpectOpenAiError(Http("POST", h.port, "/v1/feedback", FeedbackBody(mine, "1"), "sk-wrong"), 401, "invalid_api_key");
  ExpectOpenAiError(Http("POST", h.port, "/v1/feedback", FeedbackBody("chatcmpl-nope", "1"), kKey), 404,
                    "request_not_found");
  // Another key's request reads exactly like an unknown one (its existence does not leak).
  HttpResult other = Http("POST", h.port, "/v1/feedback", FeedbackBody(theirs, "1"), kKey);
  ExpectOpenAiError(other, 404, "request_not_found");
  HttpResult unknown = Http("POST", h.port, "/v1/feedback", FeedbackBody("x" + theirs.substr(1), "1"), kKey);
  ExpectOpenAiError(unknown, 404, "request_not_found");
  EXPECT_EQ(json::parse(other.body)["error"]["message"], "no request with id '" + theirs + "' was made with this key");
  EXPECT_EQ(json::parse(unknown.body)["error"]["message"],
            "no request with id 'x" + theirs.substr(1) + "' was made with this key");
  for (const std::string score : {"1.5", "-0.1", "\"0.5\"", "true", "null", "[1]"}) {
    ExpectOpenAiError(Http("POST", h.port, "/v1/feedback", FeedbackBody(mine, score), kKey), 400, "invalid_request");
  }
  ExpectOpenAiError(Http("POST", h.port, "/v1/feedback", R"({"request_id": ")" + mine + R"("})", kKey), 400,
                    "invalid_request");
  ExpectOpenAiError(Http("POST", h.port, "/v1/feedback", R"({"score": 1})", kKey), 400, "invalid_request");
  ExpectOpenAiError(Http("POST", h.port, "/v1/feedback", R"({"request_id": 7, "score": 1})", kKey), 400,
                    "invalid_request");
  ExpectOpenAiError(
      Http("POST", h.port, "/v1/feedback", R"({"request_id": ")" + mine + R"(", "score": 1, "note": 5})", kKey), 400,
      "invalid_request");
  ExpectOpenAiError(Http("POST", h.port, "/v1/feedback", "{not json", kKey), 400, "invalid_json");
  ExpectOpenAiError(Http("POST", h.port, "/v1/feedback", "[1, 2]", kKey), 400, "invalid_request");
  ExpectOpenAiError(Http("POST", h.port, "/v1/feedback", std::string(100, '[') + std::string(100, ']'), kKey), 400,
                    "invalid_json");
  ExpectOpenAiError(Http("POST", h.port, "/v1/feedback", FeedbackBody(failed_id, "0"), kKey), 422,
                    "request_not_answered");
  ExpectOpenAiError(Http("GET", h.port, "/v1/feedback", "", kKey), 405, "method_not_allowed");
  h.gw->recorder().Flush();
  EXPECT_EQ(baton::testing::DumpDatabase(h.db), before) << "a rejected feedback changed the store";

  // Accepted once, then 409: twice for one request is refused and changes nothing more.
  ASSERT_EQ(Http("POST", h.port, "/v1/feedback", FeedbackBody(mine, "0.5"), kKey).status, 200);
  h.gw->recorder().Flush();
  const std::string once = baton::testing::DumpDatabase(h.db);
  ExpectOpenAiError(Http("POST", h.port, "/v1/feedback", FeedbackBody(mine, "1"), kKey), 409, "feedback_exists");
  h.gw->recorder().Flush();
  EXPECT_EQ(baton::testing::DumpDatabase(h.db), once);
  // The other key can judge its own request.
  EXPECT_EQ(Http("POST", h.port, "/v1/feedback", FeedbackBody(theirs, "0"), kOtherKey).status, 200);
  EXPECT_EQ(Rows(h, "feedback"), 2);

  const std::string m = Http("GET", h.port, "/metrics").body;
  for (const std::string& line :
       {"baton_feedback_total{result=\"accepted\"} 2", "baton_feedback_total{result=\"request_not_found\"} 3",
        "baton_feedback_total{result=\"feedback_exists\"} 1", "baton_feedback_total{result=\"request_not_answered\"} 1",
        "baton_feedback_total{result=\"unauthenticated\"} 2"}) {
    EXPECT_NE(m.find(line), std::string::npos) << line << "\n" << m;
  }
}

TEST(FeedbackTest, ConcurrentDuplicatesStoreExactlyOne) {
  Harness h = StartGateway({.record_prompts = true});
  const std::string id = Ask(h, "cheap", "race me");
  std::atomic<int> ok{0}, conflict{0}, other{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      const long s = Http("POST", h.port, "/v1/feedback", FeedbackBody(id, t % 2 ? "1" : "0"), kKey).status;
      (s == 200 ? ok : s == 409 ? conflict : other).fetch_add(1);
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 1);
  EXPECT_EQ(conflict.load(), 7);
  EXPECT_EQ(other.load(), 0);
  EXPECT_EQ(Rows(h, "feedback"), 1);
}

TEST(FeedbackTest, WithoutRecordedPromptsTheQueryHasNoText) {
  Harness h = StartGateway({.record_prompts = false});
  const std::string id = Ask(h, "cheap", "a secret prompt");
  ASSERT_EQ(Http("POST", h.port, "/v1/feedback", FeedbackBody(id, "1"), kKey).status, 200);
  h.gw->recorder().Flush();
  EXPECT_EQ(baton::testing::DumpDatabase(h.db).find("a secret prompt"), std::string::npos);
  bool found = false;
  for (const auto& [text, score] : LiveOutcomes(h, "cheap")) found |= text.empty() && score == 1;
  EXPECT_TRUE(found);
}

// The learning loop in small: feedback says "cheap" answers well and "good" badly; `baton fit --include live` trains
// on exactly those outcomes; the gateway reloads the model file (no restart) and routes to "cheap". A corrupt file
// is then refused and the fitted model keeps serving.
TEST(FeedbackTest, FitOnFeedbackThenReloadChangesRouting) {
  baton::testing::TempDir dir;
  const std::string model = dir.path() + "/router.baton";
  Harness h = StartGateway({.record_prompts = true, .metrics_key = "sk-metrics", .model_path = model});
  std::string expert;
  Ask(h, "baton", "which expert?", kKey, &expert);
  ASSERT_EQ(expert, "good");
  // No model file yet: the reload fails and the fixed router keeps serving.
  EXPECT_FALSE(h.gw->ReloadRouter().ok());
  const std::vector<std::string> topics = {"algebra",  "history", "poetry", "chemistry", "law",
                                           "medicine", "physics", "music",  "geology",   "economics"};
  for (const std::string& t : topics) {
    for (const std::string e : {"cheap", "good"}) {
      const std::string id = Ask(h, e, "a question about " + t);
      ASSERT_EQ(
          Http("POST", h.port, "/v1/feedback", FeedbackBody(id, e == std::string("cheap") ? "1" : "0"), kKey).status,
          200);
    }
  }
  h.gw->recorder().Flush();
  // Imported outcomes alone: there are none, so nothing to train on. With live ones: trained on the feedback.
  auto imported = baton::testing::RunBaton("fit --db " + h.db + " --out " + model + " --include imported --no-cv");
  EXPECT_NE(imported.exit_code, 0) << imported.output;
  auto fit = baton::testing::RunBaton("fit --db " + h.db + " --out " + model +
                                      " --dataset live --include imported,live --no-cv --no-holdout");
  ASSERT_EQ(fit.exit_code, 0) << fit.output;
  EXPECT_NE(fit.output.find("outcome sources imported, live"), std::string::npos) << fit.output;
  EXPECT_NE(fit.output.find("on 11 queries x 2 experts"), std::string::npos) << fit.output;

  // SIGHUP's path: the reload swaps the model in; the next routed request goes to "cheap".
  ASSERT_TRUE(h.gw->ReloadRouter().ok());
  Ask(h, "baton", "which expert now?", kKey, &expert);
  EXPECT_EQ(expert, "cheap");
  // "down" is unknown to the new model: reachable by name only.
  EXPECT_EQ(h.gw->router().routable().size(), 2u);

  // A corrupt file is refused; the fitted model keeps serving.
  {
    std::string bytes;
    {
      std::ifstream in(model, std::ios::binary);
      bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    }
    ASSERT_GT(bytes.size(), 100u);
    bytes[bytes.size() / 2] ^= 0x5a;  // one flipped byte in the payload: the checksum catches it
    std::ofstream(model, std::ios::binary | std::ios::trunc) << bytes;
  }
  Status bad = h.gw->ReloadRouter();
  EXPECT_EQ(bad.code(), StatusCode::kDataLoss) << bad.ToString();
  Ask(h, "baton", "and now?", kKey, &expert);
  EXPECT_EQ(expert, "cheap");

  // The admin endpoint: the metrics key only; a failed reload is a 500 that leaves the model in place.
  ExpectOpenAiError(Http("POST", h.port, "/admin/reload", "", kKey), 401, "invalid_api_key");
  ExpectOpenAiError(Http("POST", h.port, "/admin/reload", "", "sk-metrics"), 500, "reload_failed");
  ASSERT_EQ(baton::testing::RunBaton("fit --db " + h.db + " --out " + model +
                                     " --dataset live --include live --no-cv "
                                     "--no-holdout")
                .exit_code,
            0);
  HttpResult ok = Http("POST", h.port, "/admin/reload", "", "sk-metrics");
  ASSERT_EQ(ok.status, 200) << ok.body;
  EXPECT_EQ(json::parse(ok.body)["routable_experts"], 2);
  const std::string m = Http("GET", h.port, "/metrics", "", "sk-metrics").body;
  EXPECT_NE(m.find("baton_router_reloads_total{result=\"ok\"} 2"), std::string::npos) << m;
  EXPECT_NE(m.find("baton_router_reloads_total{result=\"failed\"} 3"), std::string::npos) << m;
}

// `fit --include imported,live --dataset OTHER` also trains on dataset "live", where the feedback's queries are.
TEST(FeedbackTest, FitIncludeLiveAddsTheLiveDataset) {
  baton::testing::TempDir dir;
  Harness h = StartGateway({.record_prompts = true});
  const std::string id = Ask(h, "cheap", "a fed-back question");
  ASSERT_EQ(Http("POST", h.port, "/v1/feedback", FeedbackBody(id, "1"), kKey).status, 200);
  h.gw->recorder().Flush();
  ASSERT_EQ(
      baton::testing::RunBaton("import --db " + h.db + " " + baton::testing::DataPath("routerbench-test")).exit_code,
      0);
  const std::string model = dir.path() + "/m.baton";
  auto only = baton::testing::RunBaton("fit --db " + h.db + " --out " + model +
                                       " --dataset routerbench-test --no-cv --no-holdout");
  ASSERT_EQ(only.exit_code, 0) << only.output;
  EXPECT_EQ(only.output.find("dataset 'live'"), std::string::npos) << only.output;
  auto live = baton::testing::RunBaton("fit --db " + h.db + " --out " + model +
                                       " --dataset routerbench-test --include imported,live --no-cv --no-holdout");
  ASSERT_EQ(live.exit_code, 0) << live.output;
  EXPECT_NE(live.output.find("also training on dataset 'live'"), std::string::npos) << live.output;
  EXPECT_NE(live.output.find("from dataset(s) routerbench-test, live"), std::string::npos) << live.output;
}

TEST(FeedbackTest, AdminReloadNeedsAMetricsKey) {
  Harness h = StartGateway();
  ExpectOpenAiError(Http("POST", h.port, "/admin/reload", "", kKey), 403, "admin_disabled");
  ExpectOpenAiError(Http("GET", h.port, "/admin/reload", "", kKey), 405, "method_not_allowed");
}

}  // namespace
}  // namespace baton::gateway
