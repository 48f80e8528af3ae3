// End to end: `baton serve --config examples/replay.yaml` as a subprocess on a free loopback port, talked to over
// HTTP (libcurl), then stopped with SIGTERM.
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#include <nlohmann/json.hpp>

#include <sqlite3.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <map>
#include <mutex>
#include <regex>
#include <set>
#include <sstream>
#include <thread>
#include <vector>

#include "baton/store.h"
#include "gateway/test_http_client.h"
#include "test_util.h"

namespace baton {
namespace {

using gateway::testing::ChatBody;
using gateway::testing::Http;
using json = nlohmann::json;

// Runs `baton serve` and reads the port it prints. Kills the process on destruction if still running.
class ServeProcess {
 public:
  explicit ServeProcess(const std::string& config) {
    int fds[2];
    if (pipe(fds) != 0) return;
    pid_ = fork();
    if (pid_ == 0) {
      dup2(fds[1], STDOUT_FILENO);
      close(fds[0]);
      close(fds[1]);
      if (chdir(BATON_SOURCE_DIR) != 0) _exit(126);
      execl(BATON_BINARY, BATON_BINARY, "serve", "--config", config.c_str(), "--listen", "127.0.0.1:0",
            static_cast<char*>(nullptr));
      _exit(127);
    }
    close(fds[1]);
    out_ = fds[0];
    // Start-up fits the router: allow up to 120 s for the "listening on" line.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    std::string text;
    std::smatch m;
    const std::regex re("listening on http://127\\.0\\.0\\.1:([0-9]+)");
    while (std::chrono::steady_clock::now() < deadline && !std::regex_search(text, m, re)) {
      pollfd p{out_, POLLIN, 0};
      if (poll(&p, 1, 200) <= 0) continue;
      char buf[512];
      const ssize_t n = read(out_, buf, sizeof buf);
      if (n <= 0) break;
      text.append(buf, static_cast<size_t>(n));
    }
    if (std::regex_search(text, m, re)) port_ = std::stoi(m[1]);
  }
  ~ServeProcess() {
    if (pid_ > 0 && !reaped_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    if (out_ >= 0) close(out_);
  }
  int port() const { return port_; }
  // kill -9: no shutdown, no flush, nothing the process could still do.
  void Kill9() {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    reaped_ = true;
  }
  // kill -HUP: `baton serve` re-reads its router model file.
  void Hup() { kill(pid_, SIGHUP); }
  // Sends SIGTERM and waits (up to 30 s) for the exit status; -1 on timeout.
  int Terminate() {
    kill(pid_, SIGTERM);
    for (int i = 0; i < 300; ++i) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        reaped_ = true;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return -1;
  }

 private:
  pid_t pid_ = -1;
  int out_ = -1;
  int port_ = 0;
  bool reaped_ = false;
};

// examples/replay.yaml as a config in `dir`: its store there, its data folders and architecture files (relative to the
// example) absolute.
std::string ExampleConfigIn(const testing::TempDir& dir) {
  std::ifstream in(std::string(BATON_SOURCE_DIR) + "/examples/replay.yaml");
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text =
      std::regex_replace(ss.str(), std::regex("\nstore: [^ \n]+"), "\nstore: " + dir.path() + "/gateway.db");
  text = std::regex_replace(text, std::regex("file: archon/"),
                            "file: " + std::string(BATON_SOURCE_DIR) + "/examples/archon/");
  return std::regex_replace(text, std::regex("\\.\\./data/"), std::string(BATON_SOURCE_DIR) + "/data/");
}

std::string FirstTestPrompt() {
  std::ifstream in(testing::DataPath("routerbench-train/queries.jsonl"));
  std::string line;
  std::getline(in, line);
  return json::parse(line)["text"].get<std::string>();
}

TEST(ServeTest, ReplayExampleEndToEnd) {
  testing::TempDir dir;
  const std::string db = dir.path() + "/gateway.db";
  const std::string config = dir.Write("replay.yaml", ExampleConfigIn(dir));
  ServeProcess serve(config);
  ASSERT_GT(serve.port(), 0) << "baton serve did not start";
  const int port = serve.port();
  const std::string key = "sk-baton-demo", prompt = FirstTestPrompt();

  EXPECT_EQ(Http("GET", port, "/healthz").status, 200);
  auto models = Http("GET", port, "/v1/models", "", key);
  ASSERT_EQ(models.status, 200);
  EXPECT_EQ(json::parse(models.body)["data"].size(), 13u);  // "baton" + 11 replay experts + archon/vote-top3

  auto routed = Http("POST", port, "/v1/chat/completions", ChatBody("baton", prompt), key);
  ASSERT_EQ(routed.status, 200) << routed.body;
  EXPECT_FALSE(routed.headers["x-baton-expert"].empty());
  EXPECT_GT(std::stod(routed.headers["x-baton-cost-usd"]), 0);
  EXPECT_FALSE(json::parse(routed.body)["choices"][0]["message"]["content"].get<std::string>().empty());

  auto passed = Http("POST", port, "/v1/chat/completions", ChatBody("claude-v2", prompt), key);
  ASSERT_EQ(passed.status, 200) << passed.body;
  EXPECT_EQ(passed.headers["x-baton-expert"], "claude-v2");

  // The example's architecture: three replay experts answer, the vote (no call) picks the majority letter.
  auto voted = Http("POST", port, "/v1/chat/completions", ChatBody("archon/vote-top3", prompt), key);
  ASSERT_EQ(voted.status, 200) << voted.body;
  EXPECT_EQ(voted.headers["x-baton-expert"], "archon/vote-top3");
  EXPECT_EQ(voted.headers["x-baton-architecture-calls"], "3");
  EXPECT_GT(std::stod(voted.headers["x-baton-cost-usd"]), 0);
  EXPECT_FALSE(json::parse(voted.body)["choices"][0]["message"]["content"].get<std::string>().empty());

  auto streamed = Http("POST", port, "/v1/chat/completions", ChatBody("baton", prompt, true), key);
  ASSERT_EQ(streamed.status, 200);
  EXPECT_NE(streamed.body.find("\"chat.completion.chunk\""), std::string::npos);
  EXPECT_EQ(streamed.body.substr(streamed.body.size() - 14), "data: [DONE]\n\n");

  EXPECT_EQ(Http("POST", port, "/v1/chat/completions", ChatBody("baton", prompt), "sk-wrong").status, 401);
  // A prompt no replay expert has recorded: every expert fails, the client gets a 502 error body.
  auto unknown = Http("POST", port, "/v1/chat/completions", ChatBody("baton", "never recorded"), key);
  EXPECT_EQ(unknown.status, 502);
  EXPECT_TRUE(json::parse(unknown.body).contains("error"));

  EXPECT_EQ(serve.Terminate(), 0);
  auto store = Store::Open(db, {.create = false});
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  EXPECT_EQ((*store)->CountRows("requests").value_or(-1), 6);      // the chat requests, errors included
  EXPECT_EQ((*store)->CountRows("archon_calls").value_or(-1), 4);  // three generator calls and the vote
  EXPECT_EQ((*store)->CountRows("outcomes").value_or(-1), 3);      // live outcomes of the three answered calls
  auto budgets = (*store)->ListClientBudgets();
  ASSERT_TRUE(budgets.ok());
  ASSERT_EQ(budgets->size(), 1u);
  EXPECT_GT((*budgets)[0].spent_usd, 0);
}

// SIGHUP re-reads router.model without a restart: a model that only knows mistral-7b, then one that only knows
// gpt-4 (written over it by `baton fit`, atomically), changes where "baton" routes; a corrupt file is refused and the
// last good model keeps serving; the process lives on through every SIGHUP and stops cleanly.
TEST(ServeTest, SighupReloadsTheRouterModel) {
  testing::TempDir dir;
  const std::string db = dir.path() + "/train.db", model = dir.path() + "/router.baton";
  ASSERT_EQ(testing::RunBaton("import --db " + db + " " + testing::DataPath("routerbench-train")).exit_code, 0);
  auto fit = [&](const std::string& expert) {
    return testing::RunBaton("fit --db " + db + " --out " + model +
                             " --predictor domain-prior --no-cv --no-holdout "
                             "--experts " +
                             expert);
  };
  ASSERT_EQ(fit("mistralai/mistral-7b-chat").exit_code, 0);
  std::string config = ExampleConfigIn(dir);
  config = std::regex_replace(config, std::regex("\n  train_dir: [^\n]+"), "\n  model: " + model);
  const std::string path = dir.Write("replay.yaml", config);
  ServeProcess serve(path);
  ASSERT_GT(serve.port(), 0) << "baton serve did not start";
  const std::string key = "sk-baton-demo", prompt = FirstTestPrompt();
  auto routed_to = [&] {
    return Http("POST", serve.port(), "/v1/chat/completions", ChatBody("baton", prompt), key).headers["x-baton-expert"];
  };
  EXPECT_EQ(routed_to(), "mistralai/mistral-7b-chat");
  ASSERT_EQ(fit("gpt-4-1106-preview").exit_code, 0);
  serve.Hup();
  std::string now;
  for (int i = 0; i < 100 && (now = routed_to()) != "gpt-4-1106-preview"; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(now, "gpt-4-1106-preview");
  dir.Write("router.baton", "BATONMDL not a model");
  serve.Hup();
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  EXPECT_EQ(routed_to(), "gpt-4-1106-preview");
  const std::string metrics = Http("GET", serve.port(), "/metrics", "", "sk-baton-metrics").body;
  EXPECT_NE(metrics.find("baton_router_reloads_total{result=\"ok\"} 1"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("baton_router_reloads_total{result=\"failed\"} 1"), std::string::npos) << metrics;
  EXPECT_EQ(serve.Terminate(), 0);
}

// The first `n` prompts of the RouterBench train split (every replay expert of the example answers them).
std::vector<std::string> TestPrompts(size_t n) {
  std::ifstream in(testing::DataPath("routerbench-train/queries.jsonl"));
  std::vector<std::string> out;
  for (std::string line; out.size() < n && std::getline(in, line);) out.push_back(json::parse(line)["text"]);
  return out;
}

// kill -9 under load, several times over one store: every request answered 200 has its log row, the spend of every
// answered request survived, the store opens cleanly and no reservation is left behind.
TEST(ServeTest, KillNineUnderLoadLosesNoAnsweredRequestAndNoSpend) {
  testing::TempDir dir;
  const std::string config = dir.Write("replay.yaml", ExampleConfigIn(dir));
  const std::string db = dir.path() + "/gateway.db";
  const std::vector<std::string> prompts = TestPrompts(50);
  std::map<std::string, double> answered;  // request id -> cost, over every round
  double spent_before = 0;
  for (int round = 0; round < 3; ++round) {
    ServeProcess serve(config);
    ASSERT_GT(serve.port(), 0) << "baton serve did not start (round " << round << ")";
    std::mutex mu;
    std::atomic<bool> stop{false};
    std::atomic<int> ok{0};
    std::vector<std::thread> clients;
    for (int t = 0; t < 8; ++t) {
      clients.emplace_back([&, t] {
        for (size_t i = t; !stop; i += 8) {
          auto r = Http("POST", serve.port(), "/v1/chat/completions",
                        ChatBody("claude-v2", prompts[i % prompts.size()]), "sk-baton-demo");
          if (r.status != 200) continue;
          std::lock_guard<std::mutex> lock(mu);
          answered[r.headers["x-request-id"]] = std::stod(r.headers["x-baton-cost-usd"]);
          ++ok;
        }
      });
    }
    while (ok < 100 * (round + 1)) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    serve.Kill9();  // mid-load: the clients still have requests in flight
    stop = true;
    for (auto& c : clients) c.join();

    auto store = Store::Open(db, {.create = false});
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    sqlite3* raw = nullptr;
    ASSERT_EQ(sqlite3_open_v2(db.c_str(), &raw, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
    auto scalar = [&](const std::string& sql) {
      sqlite3_stmt* st = nullptr;
      EXPECT_EQ(sqlite3_prepare_v2(raw, sql.c_str(), -1, &st, nullptr), SQLITE_OK) << sql;
      EXPECT_EQ(sqlite3_step(st), SQLITE_ROW);
      const std::string v = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
      sqlite3_finalize(st);
      return v;
    };
    EXPECT_EQ(scalar("PRAGMA integrity_check"), "ok");
    std::set<std::string> recorded;
    {
      sqlite3_stmt* st = nullptr;
      ASSERT_EQ(sqlite3_prepare_v2(raw, "SELECT request_id FROM requests WHERE http_status = 200", -1, &st, nullptr),
                SQLITE_OK);
      while (sqlite3_step(st) == SQLITE_ROW) recorded.insert(reinterpret_cast<const char*>(sqlite3_column_text(st, 0)));
      sqlite3_finalize(st);
    }
    double answered_cost = 0;
    int lost = 0;
    for (const auto& [id, cost] : answered) {
      answered_cost += cost;
      lost += recorded.count(id) == 0;
    }
    EXPECT_EQ(lost, 0) << "round " << round << ": " << lost << " of " << answered.size()
                       << " answered requests have no log row";
    const double spent = std::stod(scalar("SELECT spent_usd FROM client_budgets"));
    EXPECT_GE(spent + 1e-9, answered_cost) << "round " << round << ": spend of answered requests was lost";
    EXPECT_GE(spent + 1e-12, spent_before);
    spent_before = spent;
    sqlite3_close(raw);
  }
}

TEST(ServeTest, BadConfigFailsWithTheField) {
  testing::TempDir dir;
  const std::string config =
      dir.Write("bad.yaml", "keys: [{name: k, key: x, budget_usd: 1}]\nexperts: [{name: a, kind: foo}]\n");
  auto r = testing::RunBaton("serve --config " + config);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("experts[0].kind: unknown kind 'foo' (valid: openai, replay, llamacpp)"), std::string::npos)
      << r.output;
}

}  // namespace
}  // namespace baton
