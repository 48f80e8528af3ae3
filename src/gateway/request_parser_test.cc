#include "gateway/request_parser.h"

#include <gtest/gtest.h>

#include <random>

namespace baton::gateway {
namespace {

TEST(ParserTest, ParsesAFullRequest) {
  auto r = ParseChatCompletionRequest(R"({"model": "baton", "stream": true, "max_tokens": 20, "temperature": 0.5,
    "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": [{"type": "text", "text": "hi"}]}],
    "top_p": 0.9, "baton": {"max_cost_usd": 0.01, "lambda": 2, "experts": ["a", "b"]}})");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->model, "baton");
  EXPECT_TRUE(r->stream);
  ASSERT_EQ(r->chat.messages.size(), 2u);
  EXPECT_EQ(r->chat.messages[1].content, "hi");
  EXPECT_EQ(r->chat.max_tokens, 20);
  EXPECT_EQ(r->chat.temperature, 0.5);
  EXPECT_EQ(r->chat.extra["top_p"], 0.9);
  EXPECT_EQ(r->baton.max_cost_usd, 0.01);
  EXPECT_EQ(r->baton.lambda, 2);
  EXPECT_EQ(r->baton.experts, (std::vector<std::string>{"a", "b"}));
}

TEST(ParserTest, RejectsBadBodies) {
  for (const char* body : {
           "",
           "{",
           "not json",
           "[]",
           "null",
           "{}",
           R"({"model": "baton"})",
           R"({"messages": [{"role": "user", "content": "x"}]})",
           R"({"model": 3, "messages": [{"role": "user", "content": "x"}]})",
           R"({"model": "baton", "messages": []})",
           R"({"model": "baton", "messages": "hi"})",
           R"({"model": "baton", "messages": [{"role": "wizard", "content": "x"}]})",
           R"({"model": "baton", "messages": [{"role": "user"}]})",
           R"({"model": "baton", "messages": [{"role": "user", "content": 5}]})",
           R"({"model": "baton", "messages": [{"role": "user", "content": "x"}], "stream": "yes"})",
           R"({"model": "baton", "messages": [{"role": "user", "content": "x"}], "max_tokens": -1})",
           R"({"model": "baton", "messages": [{"role": "user", "content": "x"}], "max_tokens": 1.5})",
           R"({"model": "baton", "messages": [{"role": "user", "content": "x"}], "temperature": 9})",
           R"({"model": "baton", "messages": [{"role": "user", "content": "x"}], "n": 3})",
           R"({"model": "baton", "messages": [{"role": "user", "content": "x"}], "baton": {"lambda": -1}})",
           R"({"model": "baton", "messages": [{"role": "user", "content": "x"}], "baton": {"experts": [1]}})",
           R"({"model": "baton", "messages": [{"role": "user", "content": "x"}], "baton": {"colour": 1}})",
       }) {
    auto r = ParseChatCompletionRequest(body);
    EXPECT_FALSE(r.ok()) << body;
    if (!r.ok()) {
      EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << body;
    }
  }
}

TEST(ParserTest, SurvivesRandomAndHostileBytes) {
  std::mt19937 rng(7);
  const std::string seed = R"({"model": "baton", "messages": [{"role": "user", "content": "hello"}], "baton": {}})";
  for (int i = 0; i < 3000; ++i) {
    std::string s = seed;
    const int edits = 1 + static_cast<int>(rng() % 8);
    for (int e = 0; e < edits; ++e) s[rng() % s.size()] = static_cast<char>(rng() % 256);
    (void)ParseChatCompletionRequest(s);
  }
  (void)ParseChatCompletionRequest(std::string(100000, '['));
  (void)ParseChatCompletionRequest(std::string("{\"model\":\"\xff\xfe\",\"messages\":[]}"));
  (void)ParseChatCompletionRequest(std::string("\0\0\0", 3));
}

}  // namespace
}  // namespace baton::gateway
