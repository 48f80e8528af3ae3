#include "baton/json_limits.h"

#include <string>

#include <gtest/gtest.h>

namespace baton {
namespace {

std::string Nested(int depth, char open, char close) {
  return std::string(depth, open) + std::string(depth, close);
}

TEST(JsonLimitsTest, AcceptsUpToTheLimitAndRefusesOneMore) {
  EXPECT_TRUE(CheckJsonDepth(Nested(kMaxJsonDepth, '[', ']')).ok());
  const Status st = CheckJsonDepth(Nested(kMaxJsonDepth + 1, '[', ']'));
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("deeper than 64 levels"), std::string::npos) << st.message();
}

TEST(JsonLimitsTest, CountsObjectsAndArraysTogether) {
  std::string s;
  for (int i = 0; i < 40; ++i) s += R"({"a":[)";
  EXPECT_FALSE(CheckJsonDepth(s).ok());  // 80 levels, half of each kind
  EXPECT_TRUE(CheckJsonDepth(s, 80).ok());
}

TEST(JsonLimitsTest, BracketsInsideStringsDoNotCount) {
  const std::string deep_text = R"({"content": ")" + std::string(1000, '[') + R"(\"[[[[ \\" , "x": 1})";
  EXPECT_TRUE(CheckJsonDepth(deep_text).ok());
}

TEST(JsonLimitsTest, TheAttackersBodyIsRefusedQuickly) {
  // ~300 KB nested 150,000 deep in an unknown field: the case that used to overflow the gateway's stack.
  const std::string body =
      R"({"model":"baton","messages":[{"role":"user","content":"hi"}],"x":)" + Nested(150'000, '[', ']') + "}";
  const Status st = CheckJsonDepth(body);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace baton
