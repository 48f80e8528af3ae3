// The replay backend on the bundled data/routerbench-test; expectations are read from the dataset's own files.
// Tests build configs with designated initializers that leave most fields at their defaults.
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

#include <chrono>
#include <fstream>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <nlohmann/json.hpp>

#include "baton/expert.h"
#include "experts/backends.h"

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

class ReplayExpertTest : public ::testing::Test {
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

TEST_F(ReplayExpertTest, KnownPromptGetsTheRecordedAnswerCostAndScore) {
  ASSERT_FALSE(expected_->response.empty());
  StatusOr<ChatResult> r = expert_->Complete(Ask(expected_->text));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->content, expected_->response);
  EXPECT_DOUBLE_EQ(r->cost_usd, expected_->cost);
  ASSERT_TRUE(r->recorded_score.has_value());
  EXPECT_DOUBLE_EQ(*r->recorded_score, expected_->score);
  EXPECT_EQ(r->usage.prompt_tokens, expected_->tokens_in);
  EXPECT_EQ(r->usage.completion_tokens, expected_->tokens_out);
  // Deterministic.
  StatusOr<ChatResult> again = expert_->Complete(Ask(expected_->text));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->content, r->content);
}

TEST_F(ReplayExpertTest, UnknownPromptIsNotFound) {
  StatusOr<ChatResult> r = expert_->Complete(Ask("A prompt nobody ever recorded, surely."));
  ASSERT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_NE(r.status().message().find("replay expert 'replayed' has no recorded answer for this prompt"),
            std::string::npos);
  EXPECT_NE(r.status().message().find("A prompt nobody"), std::string::npos);
}

TEST_F(ReplayExpertTest, StreamsTheRecordedTextInChunks) {
  // A longer answer than the first query's, so that it is split.
  StatusOr<ChatResult> plain = expert_->Complete(Ask(expected_->text));
  ASSERT_TRUE(plain.ok());
  std::vector<std::string> pieces;
  StreamSink sink = [&](std::string_view d) {
    pieces.emplace_back(d);
    return true;
  };
  StatusOr<ChatResult> r = expert_->Complete(Ask(expected_->text), &sink);
  ASSERT_TRUE(r.ok());
  std::string joined;
  for (const auto& p : pieces) joined += p;
  EXPECT_EQ(joined, r->content);
  EXPECT_GE(pieces.size(), std::min<size_t>(r->content.size(), 2));
  EXPECT_LE(pieces.size(), 8u);
}

// Runs `loop` on the calling thread until `finished()` holds, for at most 10 s.
void RunUntil(boost::asio::io_context& loop, const std::function<bool()>& finished) {
  auto guard = boost::asio::make_work_guard(loop);
  const auto limit = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!finished() && std::chrono::steady_clock::now() < limit) loop.run_one_for(std::chrono::milliseconds(10));
}

// Without a blocking pool: replay answers on the loop itself.
TEST_F(ReplayExpertTest, AsyncAnswersOnTheLoopWithoutABlockingPool) {
  StatusOr<ChatResult> sync = expert_->Complete(Ask(expected_->text));
  ASSERT_TRUE(sync.ok());
  boost::asio::io_context loop;
  std::optional<StatusOr<ChatResult>> r;
  std::thread::id done_on;
  bool inside = true;
  expert_->CompleteAsync(Ask(expected_->text), {}, {.loop = &loop}, [&](StatusOr<ChatResult> got) {
    EXPECT_FALSE(inside);
    done_on = std::this_thread::get_id();
    r = std::move(got);
  });
  inside = false;
  EXPECT_FALSE(r.has_value());
  RunUntil(loop, [&] { return r.has_value(); });
  ASSERT_TRUE(r.has_value());
  ASSERT_TRUE(r->ok()) << r->status().ToString();
  EXPECT_EQ((*r)->content, expected_->response);
  EXPECT_DOUBLE_EQ((*r)->cost_usd, sync->cost_usd);
  EXPECT_EQ((*r)->recorded_score, sync->recorded_score);
  EXPECT_EQ(done_on, std::this_thread::get_id());
}

TEST_F(ReplayExpertTest, AsyncStreamsThePiecesBeforeTheResult) {
  boost::asio::io_context loop;
  std::vector<std::string> pieces;
  std::optional<StatusOr<ChatResult>> r;
  size_t pieces_before_done = 0;
  expert_->CompleteAsync(
      Ask(expected_->text),
      [&](std::string_view d) {
        pieces.emplace_back(d);
        return true;
      },
      {.loop = &loop},
      [&](StatusOr<ChatResult> got) {
        pieces_before_done = pieces.size();
        r = std::move(got);
      });
  RunUntil(loop, [&] { return r.has_value(); });
  ASSERT_TRUE(r.has_value());
  ASSERT_TRUE(r->ok()) << r->status().ToString();
  std::string joined;
  for (const auto& p : pieces) joined += p;
  EXPECT_EQ(joined, (*r)->content);
  EXPECT_GE(pieces.size(), 1u);
  EXPECT_EQ(pieces_before_done, pieces.size());
}

TEST_F(ReplayExpertTest, AsyncUnknownPromptIsNotFoundAndAStoppingSinkCancels) {
  boost::asio::io_context loop;
  std::optional<StatusOr<ChatResult>> unknown, cancelled;
  expert_->CompleteAsync(Ask("A prompt nobody ever recorded, surely."), {}, {.loop = &loop},
                         [&](StatusOr<ChatResult> got) { unknown = std::move(got); });
  expert_->CompleteAsync(
      Ask(expected_->text), [](std::string_view) { return false; }, {.loop = &loop},
      [&](StatusOr<ChatResult> got) { cancelled = std::move(got); });
  RunUntil(loop, [&] { return unknown.has_value() && cancelled.has_value(); });
  ASSERT_TRUE(unknown.has_value() && cancelled.has_value());
  EXPECT_EQ(unknown->status().code(), StatusCode::kNotFound);
  EXPECT_NE(unknown->status().message().find("has no recorded answer for this prompt"), std::string::npos);
  EXPECT_EQ(cancelled->status().code(), StatusCode::kFailedPrecondition);
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
