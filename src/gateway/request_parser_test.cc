#include "gateway/request_parser.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

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

TEST(ParserTest, KeepsTheToolCallingProtocol) {
  auto r = ParseChatCompletionRequest(R"({"model": "up", "messages": [
      {"role": "user", "content": "Weather in Paris?", "name": "ann"},
      {"role": "assistant", "content": null, "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
      {"role": "tool", "tool_call_id": "call_1", "name": "get_weather", "content": "18C"},
      {"role": "assistant", "tool_calls": [{"id": "call_2", "function": {"name": "f", "arguments": "{}"}}]}],
    "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}],
    "tool_choice": "auto", "parallel_tool_calls": false})");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const auto& m = r->chat.messages;
  ASSERT_EQ(m.size(), 4u);
  EXPECT_EQ(m[0].content, "Weather in Paris?");
  EXPECT_FALSE(m[0].content_null);
  EXPECT_EQ(m[0].fields, (nlohmann::json{{"name", "ann"}}));
  EXPECT_EQ(m[1].role, "assistant");
  EXPECT_EQ(m[1].content, "");
  EXPECT_TRUE(m[1].content_null);
  EXPECT_EQ(m[1].fields["tool_calls"][0]["function"]["arguments"], "{\"city\":\"Paris\"}");
  EXPECT_EQ(m[2].role, "tool");
  EXPECT_EQ(m[2].content, "18C");
  EXPECT_EQ(m[2].fields, (nlohmann::json{{"tool_call_id", "call_1"}, {"name", "get_weather"}}));
  EXPECT_TRUE(m[3].content_null);  // no content at all: allowed with tool calls
  EXPECT_EQ(r->chat.extra["tools"][0]["function"]["name"], "get_weather");
  EXPECT_EQ(r->chat.extra["tool_choice"], "auto");
  EXPECT_EQ(r->chat.extra["parallel_tool_calls"], false);
}

TEST(ParserTest, RejectsMalformedToolFieldsNamingThem) {
  const std::string pre = R"({"model": "up", "messages": [)";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"({"role": "assistant", "content": null, "tool_calls": {"id": "x"}})",
       "messages[0].tool_calls: expected an array"},
      {R"({"role": "assistant", "content": null, "tool_calls": ["x"]})",
       "messages[0].tool_calls[0]: expected an object"},
      {R"({"role": "assistant", "content": null, "tool_calls": [{"function": {"name": "f"}}]})",
       "messages[0].tool_calls[0].id: expected a string"},
      {R"({"role": "assistant", "content": null, "tool_calls": [{"id": "a", "function": "f"}]})",
       "messages[0].tool_calls[0].function: expected an object"},
      {R"({"role": "assistant", "content": null, "tool_calls": [{"id": "a", "function": {"name": 1}}]})",
       "messages[0].tool_calls[0].function.name: expected a string"},
      {R"({"role": "assistant", "content": null, "tool_calls": [{"id": "a", "function": {"name": "f", "arguments": {}}}]})",
       "messages[0].tool_calls[0].function.arguments: expected a string"},
      {R"({"role": "assistant", "content": null, "tool_calls": [{"id": "a", "type": 3, "function": {"name": "f"}}]})",
       "messages[0].tool_calls[0].type: expected a string"},
      {R"({"role": "user", "content": "x", "tool_calls": []})", "messages[0].tool_calls: only assistant messages"},
      {R"({"role": "tool", "content": "x", "tool_call_id": 7})", "messages[0].tool_call_id: expected a string"},
      {R"({"role": "tool", "content": "x"})", "messages[0].tool_call_id: missing"},
      {R"({"role": "user", "content": "x", "name": ["a"]})", "messages[0].name: expected a string"},
      {R"({"role": "assistant"})", "messages[0].content: missing"},
  };
  for (const auto& [message, expected] : cases) {
    auto r = ParseChatCompletionRequest(pre + message + "]}");
    ASSERT_FALSE(r.ok()) << message;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << message;
    EXPECT_NE(r.status().message().find(expected), std::string::npos) << message << " -> " << r.status().message();
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
