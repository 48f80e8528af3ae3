// The replay backend on the bundled data/routerbench-test; expectations are read from the dataset's own files.
// Tests build configs with designated initializers that leave most fields at their defaults.
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

#include <algorithm>
#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "baton/expert.h"
#include "experts/backends.h"
#include "experts/loop_thread.h"

namespace baton {
namespace {

const std::string kDir = std::string(BATON_SOURCE_DIR) + "/data/routerbench-test";
const std::string kModel = "claude-instant-v1";

struct Expected {
  std::string text, response;
  double cost = 0, score = 0;
  int64_t tokens_in = 0, tokens_out = 0;
};

// The first query of the dataset and kModel's recorded answer to it, straight from the files.
Expected ReadExpected() {
  Expected e;
  std::ifstream q(kDir + "/queries.jsonl");
  std::string line;
  std::getline(q, line);
  auto query = nlohmann::json::parse(line);
  const std::string id = query["id"];
  e.text = query["text"];
  std::ifstream o(kDir + "/outcomes.csv");
  while (std::getline(o, line)) {
    if (line.starts_with(id + "," + kModel + ",")) {
      std::vector<std::string> f;
      size_t start = 0;
      for (size_t c; (c = line.find(',', start)) != std::string::npos; start = c + 1)
        f.push_back(line.substr(start, c - start));
      f.push_back(line.substr(start));
      e.score = std::stod(f[2]);
      e.cost = std::stod(f[3]);
      e.tokens_in = std::stoll(f[4]);
      e.tokens_out = std::stoll(f[5]);
      break;
    }
  }
  std::ifstream r(kDir + "/responses.jsonl");
  while (std::getline(r, line)) {
    auto j = nlohmann::json::parse(line);
    if (j["query_id"] == id && j["model"] == kModel) {
      e.response = j["response"];
      break;
    }
  }
  return e;
}

// Each test runs twice: through Complete() (/Blocking) and through CompleteAsync() on a testing::LoopThread without a
// blocking pool (/Async), where replay answers on the loop itself; RunAsync also checks that the sink and the handler
// run on the loop's thread, that the handler never runs inside CompleteAsync, and that every piece comes before it.
class ReplayExpertTest : public testing::CallPathTest {
 protected:
  static void SetUpTestSuite() {
    auto e = MakeExpert(ExpertConfig{.name = "replayed", .kind = "replay", .replay_dir = kDir, .replay_model = kModel});
    ASSERT_TRUE(e.ok()) << e.status().ToString();
    expert_ = std::move(e).value().release();
    expected_ = new Expected(ReadExpected());
  }
  static void TearDownTestSuite() {
    delete expert_;
    delete expected_;
  }
  static ChatRequest Ask(const std::string& text) {
    ChatRequest r;
    r.messages = {{"system", "irrelevant"}, {"user", text}};
    return r;
  }
  static ExpertBackend* expert_;
  static Expected* expected_;
};
ExpertBackend* ReplayExpertTest::expert_ = nullptr;
Expected* ReplayExpertTest::expected_ = nullptr;

INSTANTIATE_TEST_SUITE_P(BlockingAndAsync, ReplayExpertTest, testing::BothCallPaths(), testing::CallPathName);

TEST_P(ReplayExpertTest, KnownPromptGetsTheRecordedAnswerCostAndScore) {
  ASSERT_FALSE(expected_->response.empty());
  StatusOr<ChatResult> r = caller_.Call(*expert_, Ask(expected_->text));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->content, expected_->response);
  EXPECT_DOUBLE_EQ(r->cost_usd, expected_->cost);
  ASSERT_TRUE(r->recorded_score.has_value());
  EXPECT_DOUBLE_EQ(*r->recorded_score, expected_->score);
  EXPECT_EQ(r->usage.prompt_tokens, expected_->tokens_in);
  EXPECT_EQ(r->usage.completion_tokens, expected_->tokens_out);
  // Deterministic.
  StatusOr<ChatResult> again = caller_.Call(*expert_, Ask(expected_->text));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->content, r->content);
}

TEST_P(ReplayExpertTest, UnknownPromptIsNotFound) {
  StatusOr<ChatResult> r = caller_.Call(*expert_, Ask("A prompt nobody ever recorded, surely."));
  ASSERT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_NE(r.status().message().find("replay expert 'replayed' has no recorded answer for this prompt"),
            std::string::npos);
  EXPECT_NE(r.status().message().find("A prompt nobody"), std::string::npos);
}

TEST_P(ReplayExpertTest, StreamsTheRecordedTextInChunks) {
  testing::CallOutcome out = caller_.Stream(*expert_, Ask(expected_->text));
  ASSERT_TRUE(out.result.ok()) << out.result.status().ToString();
  std::string joined;
  for (const auto& p : out.pieces) joined += p;
  EXPECT_EQ(joined, out.result->content);
  EXPECT_EQ(out.result->content, expected_->response);
  EXPECT_GE(out.pieces.size(), std::min<size_t>(out.result->content.size(), 2));
  EXPECT_LE(out.pieces.size(), 8u);
  EXPECT_EQ(out.piece_threads, std::set<std::thread::id>{caller_.call_thread()});
}

TEST_P(ReplayExpertTest, SinkReturningFalseCancels) {
  int pieces = 0;
  StatusOr<ChatResult> r = caller_.Call(*expert_, Ask(expected_->text), [&](std::string_view) {
    ++pieces;
    return false;
  });
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(r.status().message().find("cancelled by the sink"), std::string::npos) << r.status().message();
  EXPECT_EQ(pieces, 1);
}

TEST(ReplayExpertConfigTest, UnknownModelAndMissingSourceAreClearErrors) {
  auto r = MakeExpert(ExpertConfig{.name = "nope", .kind = "replay", .replay_dir = kDir});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_NE(r.status().message().find("'nope'"), std::string::npos);
  auto m = MakeExpert(ExpertConfig{.name = "x", .kind = "replay"});
  EXPECT_EQ(m.status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace baton
