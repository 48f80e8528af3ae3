// End to end with real servers: `baton selfplay` with two llama-server experts (a tiny random-weight GGUF generated at
// test time), one of them writing the questions and the other judging the answers. The model's text is gibberish, so
// the writer and the judge are held to their reply formats with llama-server's GBNF `grammar` (passed through as
// `extra` request fields); the test checks structure, not wording: questions stored, outcomes recorded with source
// selfplay, a refit written, and the spend cap stopping a second run. Everything listens on 127.0.0.1; the servers
// die with the test.
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "baton/dataset.h"
#include "baton/store.h"
#include "experts/backends.h"
#include "experts/llama_server_process.h"
#include "test_util.h"

namespace baton {
namespace {

// The writer's reply: "QUESTION: What is <word> <word>?\nANSWER: <word>"; the judge's: a verdict.
constexpr const char* kWriterGrammar =
    R"(root ::= "QUESTION: What is " [a-z]{3,10} " " [a-z]{3,10} "?\nANSWER: " [a-z]{2,8})";
constexpr const char* kJudgeGrammar = R"(root ::= "VERDICT: " ("CORRECT" | "INCORRECT"))";

// A YAML single-quoted scalar: quotes doubled, nothing else escaped.
std::string SingleQuoted(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("''") : std::string(1, c);
  return out + "'";
}

TEST(SelfPlayLlamaTest, WriterAndJudgeOnRealServersGrowTheStoreAndRefit) {
  if (!HaveLlamaCpp()) GTEST_SKIP() << "baton was built without llama.cpp";
  testing::TempDir dir;
  const std::string gguf = dir.path() + "/tiny.gguf";
  const Status s = experts::WriteTinyGguf(LlamaCppPrefix() + "/share/baton/ggml-vocab-llama-spm.gguf", gguf, 7);
  ASSERT_TRUE(s.ok()) << s.ToString();
  std::vector<std::unique_ptr<testing::LlamaServerProcess>> servers;
  for (int i = 0; i < 2; ++i) {
    servers.push_back(testing::StartLlamaServer(gguf, dir.path() + fmt::format("/llama{}.log", i), 2048));
    ASSERT_NE(servers.back(), nullptr);
  }
  const std::string db = dir.path() + "/selfplay.db", model = dir.path() + "/selfplay.baton";
  auto config = [&](double cap) {
    std::string yaml = "experts:\n";
    const char* names[2] = {"tiny-a", "tiny-b"};
    const double in[2] = {2.0, 0.5}, out[2] = {8.0, 1.0};
    for (int i = 0; i < 2; ++i) {
      yaml += fmt::format(
          "  - {{name: {}, kind: openai, base_url: \"http://127.0.0.1:{}/v1\", model: tiny, usd_per_mtok_in: {}, "
          "usd_per_mtok_out: {}, timeout_s: 30, max_retries: 0}}\n",
          names[i], servers[i]->port, in[i], out[i]);
    }
    yaml += fmt::format(
        "selfplay:\n"
        "  db: {}\n"
        "  questions: {{writer: tiny-a, domains: [geography, chemistry], extra: {{grammar: {}, max_tokens: 48}}}}\n"
        "  evaluate: {{judge: tiny-b, extra: {{grammar: {}, max_tokens: 32}}}}\n"
        "  experts: [tiny-a, tiny-b]\n"
        "  questions_per_round: 2\n"
        "  candidates_per_question: 1\n"
        "  refit_every: 4\n"
        "  model: {}\n"
        "  predictor: domain-prior\n"
        "  spend_cap_usd: {}\n"
        "  max_tokens: 16\n"
        "  timeout_s: 30\n",
        db, SingleQuoted(kWriterGrammar), SingleQuoted(kJudgeGrammar), model, cap);
    return dir.Write("selfplay.yaml", yaml);
  };

  const testing::CommandResult run = testing::RunBaton("selfplay --config " + config(1.0) + " --rounds 2");
  ASSERT_EQ(run.exit_code, 0) << run.output;
  StatusOr<std::unique_ptr<Store>> store = Store::Open(db, {.create = false});
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  StatusOr<Dataset> ds =
      LoadDataset(**store, {.datasets = {"selfplay"}, .experts = {}, .sources = {OutcomeSource::kSelfPlay}});
  ASSERT_TRUE(ds.ok()) << ds.status().ToString() << "\n" << run.output;
  EXPECT_GE(ds->num_queries(), 2u) << run.output;  // questions written by tiny-a, stored with their reference
  size_t outcomes = 0;
  for (float v : ds->score_matrix()) outcomes += !std::isnan(v);
  EXPECT_GE(outcomes, 4u) << "both experts answer every question (a pool of two), the judge's verdicts parse\n"
                          << run.output;
  for (const QueryRecord& q : ds->queries()) {
    EXPECT_EQ(q.text.rfind("What is ", 0), 0u) << q.text;
    EXPECT_FALSE(q.reference.empty());
  }
  EXPECT_TRUE(std::filesystem::exists(model)) << "no refit after " << outcomes << " outcomes\n" << run.output;
  // Nothing else: an imported or live view of the same store is empty.
  StatusOr<Dataset> other =
      LoadDataset(**store, {.datasets = {"selfplay"}, .experts = {}, .sources = {OutcomeSource::kImported}});
  if (other.ok()) {
    size_t n = 0;
    for (float v : other->score_matrix()) n += !std::isnan(v);
    EXPECT_EQ(n, 0u);
  }
  store->reset();

  // A cap already spent: the next run stops before asking anything and stores nothing more.
  const std::string before = testing::DumpDatabase(db);
  const testing::CommandResult capped = testing::RunBaton("selfplay --config " + config(1e-9) + " --rounds 2");
  EXPECT_EQ(capped.exit_code, 0) << capped.output;
  EXPECT_NE(capped.output.find("spend cap"), std::string::npos) << capped.output;
  EXPECT_EQ(testing::DumpDatabase(db), before) << capped.output;
}

}  // namespace
}  // namespace baton
