// End to end against real upstreams: `baton serve` as a subprocess in front of two llama-server processes (each
// serving a tiny random-weight GGUF generated at test time) configured as `openai` experts, talked to over loopback
// HTTP. The model's output is gibberish: these tests check structure, routing, fallback and cost accounting.
// Everything listens on 127.0.0.1; every child process is killed in TearDownTestSuite, failures included.
#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "baton/store.h"
#include "experts/backends.h"
#include "experts/llama_server_process.h"
#include "gateway/test_http_client.h"

namespace baton {
namespace {

using gateway::testing::Http;
using gateway::testing::HttpResult;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// Two experts with distinct prices. Each price per token is a whole number of nano-dollars, so the gateway's
// x-baton-cost-usd header (printed with 9 decimals) carries the exact cost.
struct ExpertSpec {
  const char* name;
  double usd_per_mtok_in, usd_per_mtok_out;
};
// tiny-c serves only the Archon architecture whose degradation is tested (its server is killed there).
constexpr ExpertSpec kExperts[3] = {{"tiny-a", 2.0, 8.0}, {"tiny-b", 0.5, 1.0}, {"tiny-c", 1.0, 4.0}};
const ExpertSpec& Spec(const std::string& name) {
  for (const ExpertSpec& e : kExperts)
    if (name == e.name) return e;
  return kExperts[0];
}

// Two Archon architectures (baton/archon.h) over the tiny experts: generate with two experts, critique, rank, fuse;
// and one whose tiny-c calls fail once tiny-c's server is killed.
constexpr const char* kCriticRankFuse = R"({"name": "critic-rank-fuse", "layers": [
  [{"type": "generator", "model": "tiny-a", "temperature": 0, "max_tokens": 8},
   {"type": "generator", "model": "tiny-b", "temperature": 0, "max_tokens": 8}],
  [{"type": "critic", "model": "tiny-a", "temperature": 0, "max_tokens": 8}],
  [{"type": "ranker", "model": "tiny-b", "temperature": 0, "max_tokens": 8, "top_k": 2}],
  [{"type": "fuser", "model": "tiny-a", "temperature": 0, "max_tokens": 8}]]})";
constexpr const char* kDegrading = R"({"name": "degrading", "layers": [
  [{"type": "generator", "model": "tiny-a", "temperature": 0, "max_tokens": 8},
   {"type": "generator", "model": "tiny-c", "temperature": 0, "max_tokens": 8}],
  [{"type": "ranker", "model": "tiny-a", "temperature": 0, "max_tokens": 8, "top_k": 1}],
  [{"type": "fuser", "model": "tiny-c", "temperature": 0, "max_tokens": 8}]]})";
constexpr const char* kKey = "sk-serve-llama-test";

using testing::StartLlamaServer;
using LlamaServer = testing::LlamaServerProcess;

// `baton serve --config FILE --listen 127.0.0.1:0`; reads the port from its "listening on" line. stderr goes to
// `log`. Stop(): SIGTERM, up to 30 s, then SIGKILL.
struct BatonServe {
  pid_t pid = -1;
  int out = -1;
  int port = 0;
  std::string log;
  void Stop() {
    if (pid > 0) {
      kill(pid, SIGTERM);
      bool reaped = false;
      for (int i = 0; i < 300 && !reaped; ++i) {
        reaped = waitpid(pid, nullptr, WNOHANG) == pid;
        if (!reaped) std::this_thread::sleep_for(milliseconds(100));
      }
      if (!reaped) {
        kill(pid, SIGKILL);
        waitpid(pid, nullptr, 0);
      }
      pid = -1;
    }
    if (out >= 0) close(out);
    out = -1;
  }
  ~BatonServe() { Stop(); }
};

std::unique_ptr<BatonServe> StartBaton(const std::string& config, const std::string& log) {
  auto b = std::make_unique<BatonServe>();
  b->log = log;
  int fds[2];
  if (pipe(fds) != 0) return b;
  b->pid = fork();
  if (b->pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    dup2(fds[1], STDOUT_FILENO);
    close(fds[0]);
    close(fds[1]);
    FILE* f = freopen(log.c_str(), "w", stderr);
    (void)f;
    execl(BATON_BINARY, BATON_BINARY, "serve", "--config", config.c_str(), "--listen", "127.0.0.1:0",
          static_cast<char*>(nullptr));
    _exit(127);
  }
  close(fds[1]);
  b->out = fds[0];
  const std::regex re("listening on http://127\\.0\\.0\\.1:([0-9]+)");
  std::string text;
  std::smatch m;
  for (int i = 0; i < 600 && !std::regex_search(text, m, re); ++i) {  // up to ~120 s
    pollfd p{b->out, POLLIN, 0};
    if (poll(&p, 1, 200) <= 0) continue;
    char buf[512];
    const ssize_t n = read(b->out, buf, sizeof buf);
    if (n <= 0) break;
    text.append(buf, static_cast<size_t>(n));
  }
  if (std::regex_search(text, m, re)) b->port = std::stoi(m[1]);
  return b;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream(path) << text;
}

// The same prompt as src/experts/llama_server_test.cc, greedy: the tiny model's answer is deterministic.
std::string Body(const std::string& model, int64_t max_tokens, bool stream = false, const json& baton = nullptr) {
  json j = {{"model", model},
            {"messages", json::array({{{"role", "system"}, {"content", "You are terse."}},
                                      {{"role", "user"}, {"content", "Say something about the sea."}}})},
            {"max_tokens", max_tokens},
            {"temperature", 0.0}};
  if (stream) j["stream"] = true;
  if (!baton.is_null()) j["baton"] = baton;
  return j.dump();
}

double ExpectedCost(const std::string& expert, const json& usage) {
  const ExpertSpec& e = Spec(expert);
  return usage["prompt_tokens"].get<int64_t>() * e.usd_per_mtok_in / 1e6 +
         usage["completion_tokens"].get<int64_t>() * e.usd_per_mtok_out / 1e6;
}

class ServeLlamaTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!HaveLlamaCpp()) return;
    char tmpl[] = "/tmp/baton-serve-llama-test.XXXXXX";
    dir_ = new std::string(mkdtemp(tmpl));
    servers_ = new std::vector<std::unique_ptr<LlamaServer>>();
    const std::string gguf = *dir_ + "/tiny.gguf";
    const Status s = experts::WriteTinyGguf(LlamaCppPrefix() + "/share/baton/ggml-vocab-llama-spm.gguf", gguf, 7);
    ASSERT_TRUE(s.ok()) << s.ToString();
    for (int i = 0; i < 3; ++i) {  // a context large enough for the architectures' critic, ranker and fuser prompts
      servers_->push_back(StartLlamaServer(gguf, *dir_ + "/llama" + std::to_string(i) + ".log", 4096));
      ASSERT_NE(servers_->back(), nullptr);
    }

    // The router's training set: both experts on a few queries of one domain, tiny-a scoring higher, so with
    // lambda 0 routed requests go to tiny-a first and fall back to tiny-b.
    const std::string train = *dir_ + "/train";
    std::filesystem::create_directories(train);
    std::string models = "model,params_b,usd_per_mtok_in,usd_per_mtok_out,price_source\n";
    for (int e = 0; e < 2; ++e) {  // the router knows tiny-a and tiny-b; tiny-c is reachable by name only
      models +=
          fmt::format("{},,{},{},test\n", kExperts[e].name, kExperts[e].usd_per_mtok_in, kExperts[e].usd_per_mtok_out);
    }
    WriteFile(train + "/models.csv", models);
    std::string queries, outcomes = "query_id,model,score,cost_usd,tokens_in,tokens_out\n";
    for (int q = 0; q < 8; ++q) {
      queries += json({{"id", "q" + std::to_string(q)},
                       {"domain", "sea"},
                       {"text", "Say something about the sea, number " + std::to_string(q) + "."}})
                     .dump() +
                 "\n";
      for (int e = 0; e < 2; ++e) {
        const double cost = (20 * kExperts[e].usd_per_mtok_in + 10 * kExperts[e].usd_per_mtok_out) / 1e6;
        outcomes += fmt::format("q{},{},{},{},20,10\n", q, kExperts[e].name, e == 0 ? 0.9 : 0.2, cost);
      }
    }
    WriteFile(train + "/queries.jsonl", queries);
    WriteFile(train + "/outcomes.csv", outcomes);

    std::string yaml = fmt::format(
        "store: {}/gateway.db\n"
        "metrics_public: true\n"
        "router: {{train_dir: {}, predictor: domain-prior, lambda: 0}}\n"
        "keys:\n"
        "  - {{name: test, key: {}, budget_usd: 100}}\n"
        "experts:\n",
        *dir_, train, kKey);
    for (int i = 0; i < 3; ++i) {
      yaml += fmt::format(
          "  - {{name: {}, kind: openai, base_url: \"http://127.0.0.1:{}/v1\", model: tiny, usd_per_mtok_in: {}, "
          "usd_per_mtok_out: {}, timeout_s: 30, max_retries: 1}}\n",
          kExperts[i].name, (*servers_)[i]->port, kExperts[i].usd_per_mtok_in, kExperts[i].usd_per_mtok_out);
    }
    WriteFile(*dir_ + "/critic_rank_fuse.json", kCriticRankFuse);
    WriteFile(*dir_ + "/degrading.json", kDegrading);
    yaml +=
        "architectures:\n"
        "  - {name: crf, file: critic_rank_fuse.json, max_calls: 5}\n"
        "  - {name: degrading, file: degrading.json, max_calls: 10}\n";
    const std::string config = *dir_ + "/gateway.yaml";
    WriteFile(config, yaml);
    baton_ = StartBaton(config, *dir_ + "/baton.log").release();
    ASSERT_GT(baton_->port, 0) << "baton serve did not start:\n" << ReadFile(baton_->log);
  }

  static void TearDownTestSuite() {
    if (baton_ != nullptr) baton_->Stop();
    delete baton_;
    baton_ = nullptr;
    delete servers_;  // kills every llama-server's process group
    servers_ = nullptr;
    if (dir_ != nullptr) std::filesystem::remove_all(*dir_);
    delete dir_;
    dir_ = nullptr;
  }

  void SetUp() override {
    if (!HaveLlamaCpp()) {
      GTEST_SKIP() << "baton was built without llama.cpp (run scripts/build_llama.sh and configure with "
                      "-DBATON_LLAMA_PREFIX=<its prefix>)";
    }
    ASSERT_NE(servers_, nullptr);
    ASSERT_EQ(servers_->size(), 3u) << "a llama-server did not start";
    for (const auto& s : *servers_) ASSERT_NE(s, nullptr) << "a llama-server did not start";
    ASSERT_NE(baton_, nullptr);
    ASSERT_GT(baton_->port, 0) << "baton serve did not start";
  }

  void TearDown() override {
    if (HasFailure() && baton_ != nullptr)
      std::fprintf(stderr, "baton serve's log:\n%s\n", ReadFile(baton_->log).c_str());
  }

  static HttpResult Chat(const std::string& body) {
    return Http("POST", baton_->port, "/v1/chat/completions", body, kKey);
  }

  static std::string* dir_;
  static std::vector<std::unique_ptr<LlamaServer>>* servers_;
  static BatonServe* baton_;
};
std::string* ServeLlamaTest::dir_ = nullptr;
std::vector<std::unique_ptr<LlamaServer>>* ServeLlamaTest::servers_ = nullptr;
BatonServe* ServeLlamaTest::baton_ = nullptr;

TEST_F(ServeLlamaTest, RoutedRequestCostMatchesTheUpstreamUsage) {
  HttpResult r = Chat(Body("baton", 16));
  ASSERT_EQ(r.status, 200) << r.error << r.body;
  const std::string expert = r.headers.count("x-baton-expert") ? r.headers.at("x-baton-expert") : "";
  EXPECT_TRUE(expert == kExperts[0].name || expert == kExperts[1].name) << "x-baton-expert: '" << expert << "'";
  const json j = json::parse(r.body);
  EXPECT_EQ(j["model"], expert);
  const json& usage = j["usage"];
  ASSERT_TRUE(usage.is_object()) << r.body;
  EXPECT_GT(usage["prompt_tokens"].get<int64_t>(), 0);
  EXPECT_GT(usage["completion_tokens"].get<int64_t>(), 0);
  EXPECT_LE(usage["completion_tokens"].get<int64_t>(), 16);
  ASSERT_TRUE(r.headers.count("x-baton-cost-usd")) << r.body;
  EXPECT_NEAR(std::stod(r.headers.at("x-baton-cost-usd")), ExpectedCost(expert, usage), 1e-12)
      << "usage " << usage.dump();
}

TEST_F(ServeLlamaTest, PassThroughByNameRespectsMaxTokens) {
  for (const auto& e : kExperts) {
    HttpResult r = Chat(Body(e.name, 8));
    ASSERT_EQ(r.status, 200) << r.error << r.body;
    EXPECT_EQ(r.headers["x-baton-expert"], e.name);
    const json usage = json::parse(r.body)["usage"];
    EXPECT_GT(usage["completion_tokens"].get<int64_t>(), 0);
    EXPECT_LE(usage["completion_tokens"].get<int64_t>(), 8);
    EXPECT_NEAR(std::stod(r.headers["x-baton-cost-usd"]), ExpectedCost(e.name, usage), 1e-12) << usage.dump();
  }
}

TEST_F(ServeLlamaTest, StreamingSendsChunksThenDone) {
  HttpResult r = Chat(Body("baton", 24, /*stream=*/true));
  ASSERT_EQ(r.status, 200) << r.error << r.body;
  EXPECT_NE(r.headers["content-type"].find("text/event-stream"), std::string::npos);
  const std::string expert = r.headers["x-baton-expert"];
  EXPECT_TRUE(expert == kExperts[0].name || expert == kExperts[1].name) << "x-baton-expert: '" << expert << "'";
  std::vector<std::string> data;
  std::istringstream lines(r.body);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("data: ", 0) == 0) data.push_back(line.substr(6));
  }
  ASSERT_GE(data.size(), 4u) << r.body;  // role chunk, deltas, the final chunk, [DONE]
  EXPECT_EQ(data.back(), "[DONE]");
  std::string content;
  int deltas = 0;
  json last;
  for (size_t i = 0; i + 1 < data.size(); ++i) {
    const json c = json::parse(data[i]);
    ASSERT_EQ(c["object"], "chat.completion.chunk") << data[i];
    EXPECT_FALSE(c.contains("error")) << data[i];
    const json& delta = c["choices"][0]["delta"];
    if (delta.contains("content") && delta["content"].is_string() && !delta["content"].get<std::string>().empty()) {
      content += delta["content"].get<std::string>();
      ++deltas;
    }
    last = c;
  }
  EXPECT_GE(deltas, 2) << r.body;
  EXPECT_FALSE(content.empty());
  EXPECT_EQ(r.body.substr(r.body.size() - 14), "data: [DONE]\n\n");
  // The final chunk carries the usage; its cost follows the same prices.
  ASSERT_TRUE(last.contains("usage") && last["usage"].is_object() && last.contains("x_baton_cost_usd")) << last.dump();
  EXPECT_GT(last["usage"]["completion_tokens"].get<int64_t>(), 0);
  EXPECT_LE(last["usage"]["completion_tokens"].get<int64_t>(), 24);
  EXPECT_NEAR(last["x_baton_cost_usd"].get<double>(), ExpectedCost(expert, last["usage"]), 1e-12);
}

// The store's traces of one architecture run (the request's id), read while the gateway runs (WAL allows it).
std::vector<ArchonCallRecord> Traces(const std::string& db, const std::string& run_id) {
  StatusOr<std::unique_ptr<Store>> store = Store::Open(db, {.create = false, .read_only = true});
  if (!store.ok()) {
    ADD_FAILURE() << store.status().ToString();
    return {};
  }
  StatusOr<std::vector<ArchonCallRecord>> calls = (*store)->ListArchonCalls(run_id);
  if (!calls.ok()) ADD_FAILURE() << calls.status().ToString();
  return calls.ok() ? *calls : std::vector<ArchonCallRecord>{};
}

double SpentByKey(const std::string& db) {
  StatusOr<std::unique_ptr<Store>> store = Store::Open(db, {.create = false, .read_only = true});
  if (!store.ok()) return -1;
  StatusOr<std::vector<ClientBudgetRecord>> rows = (*store)->ListClientBudgets();
  if (!rows.ok() || rows->size() != 1) return -1;
  EXPECT_EQ(rows->front().reserved_usd, 0) << "a reservation was left behind";
  return rows->front().spent_usd;
}

// critic -> ranker -> fuser through `baton serve` against real llama-servers: one call per component (two
// generators, then one each), layer by layer; the request's cost is the sum of its calls, each priced from its
// reported usage; the key is charged exactly that and holds no reservation afterwards; every call is traced.
TEST_F(ServeLlamaTest, ArchitectureRunsEveryLayerAndSettlesTheSumOfItsCalls) {
  const std::string db = *dir_ + "/gateway.db";
  const double spent_before = SpentByKey(db);
  HttpResult r = Chat(Body("archon/crf", 8));
  ASSERT_EQ(r.status, 200) << r.error << r.body;
  EXPECT_EQ(r.headers["x-baton-expert"], "archon/crf");
  EXPECT_EQ(r.headers["x-baton-architecture-calls"], "5");
  const json j = json::parse(r.body);
  EXPECT_EQ(j["model"], "archon/crf");
  ASSERT_TRUE(j["choices"][0]["message"]["content"].is_string()) << r.body;

  const std::vector<ArchonCallRecord> calls = Traces(db, r.headers["x-request-id"]);
  ASSERT_EQ(calls.size(), 5u);
  const std::vector<std::pair<int, std::string>> want = {
      {0, "generator"}, {0, "generator"}, {1, "critic"}, {2, "ranker"}, {3, "fuser"}};
  std::vector<std::pair<int, std::string>> got;
  std::vector<std::string> generator_experts;
  double sum = 0;
  int64_t prompt = 0, completion = 0;
  for (const ArchonCallRecord& c : calls) {
    got.emplace_back(c.layer, c.component);
    if (c.layer == 0) generator_experts.push_back(c.expert);
    EXPECT_EQ(c.status, "ok") << c.component << " on " << c.expert;
    EXPECT_EQ(c.architecture, "critic-rank-fuse");
    EXPECT_GT(c.completion_tokens, 0);
    EXPECT_LE(c.completion_tokens, 8);
    const json usage = {{"prompt_tokens", c.prompt_tokens}, {"completion_tokens", c.completion_tokens}};
    EXPECT_NEAR(c.cost_usd, ExpectedCost(c.expert, usage), 1e-12) << c.component << " on " << c.expert;
    sum += c.cost_usd;
    prompt += c.prompt_tokens;
    completion += c.completion_tokens;
  }
  EXPECT_EQ(got, want) << "calls out of layer order";
  std::sort(generator_experts.begin(), generator_experts.end());
  EXPECT_EQ(generator_experts, (std::vector<std::string>{"tiny-a", "tiny-b"}));
  EXPECT_EQ(calls[2].expert, "tiny-a");
  EXPECT_EQ(calls[3].expert, "tiny-b");
  EXPECT_EQ(calls[4].expert, "tiny-a");
  EXPECT_NEAR(std::stod(r.headers["x-baton-cost-usd"]), sum, 1e-12);
  EXPECT_EQ(j["usage"]["prompt_tokens"].get<int64_t>(), prompt);
  EXPECT_EQ(j["usage"]["completion_tokens"].get<int64_t>(), completion);
  EXPECT_NEAR(SpentByKey(db) - spent_before, sum, 1e-12);

  const HttpResult m = Http("GET", baton_->port, "/metrics");
  ASSERT_EQ(m.status, 200) << m.error;
  for (const char* line : {"baton_archon_calls_total{architecture=\"crf\",layer=\"1\",component=\"generator\","
                           "status=\"ok\"} 2",
                           "baton_archon_calls_total{architecture=\"crf\",layer=\"4\",component=\"fuser\","
                           "status=\"ok\"} 1"}) {
    EXPECT_NE(m.body.find(line), std::string::npos) << line << "\n" << m.body;
  }
  EXPECT_NE(m.body.find("baton_archon_runs_total{architecture=\"crf\""), std::string::npos) << m.body;
}

// With stream: true the final layer's answer (one fuser call) streams, then the usage chunk and [DONE].
TEST_F(ServeLlamaTest, ArchitectureStreamsTheFinalAnswer) {
  HttpResult r = Chat(Body("archon/crf", 8, /*stream=*/true));
  ASSERT_EQ(r.status, 200) << r.error << r.body;
  EXPECT_NE(r.headers["content-type"].find("text/event-stream"), std::string::npos);
  std::vector<json> chunks;
  std::istringstream lines(r.body);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("data: ", 0) == 0 && line != "data: [DONE]") chunks.push_back(json::parse(line.substr(6)));
  }
  EXPECT_EQ(r.body.substr(r.body.size() - 14), "data: [DONE]\n\n");
  ASSERT_GE(chunks.size(), 3u) << r.body;  // role, at least one piece, usage
  for (const json& c : chunks) EXPECT_EQ(c["model"], "archon/crf");
  const json& last = chunks.back();
  ASSERT_TRUE(last.contains("x_baton_cost_usd")) << last.dump();
  double sum = 0;
  for (const ArchonCallRecord& c : Traces(*dir_ + "/gateway.db", r.headers["x-request-id"])) sum += c.cost_usd;
  EXPECT_GT(sum, 0);
  EXPECT_NEAR(last["x_baton_cost_usd"].get<double>(), sum, 1e-12);
}

// tiny-c's server is killed: its generator and the fuser fail (traced as failures, retried per the expert's
// policy), the run degrades to what tiny-a produced, the request is still answered, and only the calls that
// produced something are charged.
TEST_F(ServeLlamaTest, ArchitectureDegradesWhenAServerIsKilled) {
  (*servers_)[2]->Kill();
  const std::string db = *dir_ + "/gateway.db";
  const double spent_before = SpentByKey(db);
  HttpResult r = Chat(Body("archon/degrading", 8));
  ASSERT_EQ(r.status, 200) << r.error << r.body;
  EXPECT_EQ(r.headers["x-baton-answer-expert"], "tiny-a");
  const std::vector<ArchonCallRecord> calls = Traces(db, r.headers["x-request-id"]);
  int failed_c = 0, ok_a = 0;
  double sum = 0;
  for (const ArchonCallRecord& c : calls) {
    if (c.expert == "tiny-c") {
      EXPECT_NE(c.status, "ok");
      EXPECT_EQ(c.cost_usd, 0);
      ++failed_c;
    } else {
      EXPECT_EQ(c.status, "ok") << c.component;
      ++ok_a;
    }
    sum += c.cost_usd;
  }
  EXPECT_EQ(failed_c, 2) << "tiny-c's generator and fuser";
  EXPECT_EQ(ok_a, 2) << "tiny-a's generator and ranker";
  EXPECT_NEAR(std::stod(r.headers["x-baton-cost-usd"]), sum, 1e-12);
  EXPECT_NEAR(SpentByKey(db) - spent_before, sum, 1e-12);
  const HttpResult m = Http("GET", baton_->port, "/metrics");
  EXPECT_NE(m.body.find("baton_archon_runs_total{architecture=\"degrading\",outcome=\"degraded\"} 1"),
            std::string::npos)
      << m.body;
}

// Runs last in the suite (it kills tiny-a for good): 40 routed requests from 4 threads; tiny-a (the router's first
// choice) is SIGKILLed after the first 10 answers. Every request must still be answered 200, by tiny-b once tiny-a
// is gone; then /metrics shows tiny-b's spend.
TEST_F(ServeLlamaTest, FallsBackWhenAnExpertIsKilledMidLoadAndMetricsShowSpend) {
  constexpr int kRequests = 40, kThreads = 4, kKillAfter = 10;
  struct Outcome {
    bool sent_after_kill = false;
    HttpResult r;
  };
  std::vector<Outcome> outcomes(kRequests);
  std::atomic<int> next{0}, done{0};
  std::atomic<bool> killed{false};
  const std::string body = Body("baton", 8, false, {{"experts", json::array({kExperts[0].name, kExperts[1].name})}});
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = next++; i < kRequests; i = next++) {
        outcomes[i].sent_after_kill = killed.load();
        outcomes[i].r = Chat(body);
        ++done;
      }
    });
  }
  // Bounded wait (~120 s) for the first answers, then kill tiny-a's whole process group.
  for (int i = 0; i < 1200 && done.load() < kKillAfter; ++i) std::this_thread::sleep_for(milliseconds(100));
  const bool killed_mid_load = done.load() < kRequests;
  (*servers_)[0]->Kill();
  killed = true;
  for (auto& t : threads) t.join();
  EXPECT_TRUE(killed_mid_load) << "all requests finished before the kill; the test did not exercise fallback";

  int after_kill = 0, by_a = 0, by_b = 0;
  for (int i = 0; i < kRequests; ++i) {
    const Outcome& o = outcomes[i];
    EXPECT_TRUE(o.r.error.empty()) << "request " << i << ": transport error: " << o.r.error;
    ASSERT_EQ(o.r.status, 200) << "request " << i << ": " << o.r.body;
    const std::string expert = o.r.headers.count("x-baton-expert") ? o.r.headers.at("x-baton-expert") : "";
    (expert == kExperts[0].name ? by_a : by_b)++;
    const json usage = json::parse(o.r.body)["usage"];
    EXPECT_NEAR(std::stod(o.r.headers.at("x-baton-cost-usd")), ExpectedCost(expert, usage), 1e-12)
        << "request " << i << " by " << expert;
    if (o.sent_after_kill) {
      ++after_kill;
      EXPECT_EQ(expert, kExperts[1].name) << "request " << i << " was sent after tiny-a was killed";
    }
  }
  std::printf("[ measured ] fallback: %d answered by %s, %d by %s, %d sent after the kill\n", by_a, kExperts[0].name,
              by_b, kExperts[1].name, after_kill);
  EXPECT_GT(by_a, 0) << "the router never chose tiny-a before the kill";
  EXPECT_GT(after_kill, 0);

  const HttpResult m = Http("GET", baton_->port, "/metrics");
  ASSERT_EQ(m.status, 200) << m.error;
  std::smatch match;
  const std::regex spend(std::string("baton_spend_usd_total\\{expert=\"") + kExperts[1].name + "\"\\} ([0-9.eE+-]+)");
  ASSERT_TRUE(std::regex_search(m.body, match, spend)) << m.body;
  EXPECT_GT(std::stod(match[1]), 0) << m.body;
  const std::regex fallbacks("baton_fallbacks_total ([0-9]+)");
  ASSERT_TRUE(std::regex_search(m.body, match, fallbacks)) << m.body;
  EXPECT_GT(std::stoll(match[1]), 0) << "no fallback was counted after tiny-a was killed";
}

}  // namespace
}  // namespace baton
