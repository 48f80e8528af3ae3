#include "ingest/csv.h"

#include <gtest/gtest.h>

#include "ingest/text_file.h"

namespace baton::ingest {
namespace {

std::vector<std::vector<std::string>> ReadAll(const std::string& text, Status* error = nullptr) {
  StatusOr<CsvReader> r = CsvReader::FromString(text, "t.csv");
  if (!r.ok()) {
    if (error) *error = r.status();
    return {};
  }
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string_view> f;
  while (true) {
    StatusOr<bool> more = r->Next(&f);
    if (!more.ok()) {
      if (error) *error = more.status();
      return rows;
    }
    if (!*more) break;
    rows.emplace_back(f.begin(), f.end());
  }
  return rows;
}

TEST(CsvTest, QuotedFieldsWithCommasQuotesAndNewlines) {
  auto rows = ReadAll("a,b,c\n\"x, y\",\"say \"\"hi\"\"\",\"line1\nline2\"\r\n,,\n");
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[1][0], "x, y");
  EXPECT_EQ(rows[1][1], "say \"hi\"");
  EXPECT_EQ(rows[1][2], "line1\nline2");
  EXPECT_EQ(rows[2], (std::vector<std::string>{"", "", ""}));
}

TEST(CsvTest, LineNumbersCountNewlinesInsideQuotes) {
  auto r = CsvReader::FromString("h\n\"a\nb\"\nc\n", "t.csv");
  ASSERT_TRUE(r.ok());
  std::vector<std::string_view> f;
  ASSERT_TRUE(*r->Next(&f));
  EXPECT_EQ(r->line(), 1u);
  ASSERT_TRUE(*r->Next(&f));
  EXPECT_EQ(r->line(), 2u);
  ASSERT_TRUE(*r->Next(&f));
  EXPECT_EQ(r->line(), 4u);
  EXPECT_EQ(f[0], "c");
}

TEST(CsvTest, Utf8IsKeptAndBomSkipped) {
  auto rows = ReadAll("\xEF\xBB\xBFname\nZ\xC3\xBCrich \xE2\x82\xAC \xF0\x9F\x98\x80\n");
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0][0], "name");
  EXPECT_EQ(rows[1][0], "Z\xC3\xBCrich \xE2\x82\xAC \xF0\x9F\x98\x80");
}

TEST(CsvTest, UnterminatedQuoteIsDataLossWithLine) {
  Status err;
  ReadAll("a,b\n1,2\n3,\"never closed\n", &err);
  EXPECT_EQ(err.code(), StatusCode::kDataLoss);
  EXPECT_NE(err.message().find("t.csv:3"), std::string::npos) << err.message();
}

TEST(CsvTest, TextAfterClosingQuoteIsAnError) {
  Status err;
  ReadAll("a\n\"x\"y\n", &err);
  EXPECT_EQ(err.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(err.message().find("t.csv:2"), std::string::npos) << err.message();
}

TEST(CsvTest, InvalidUtf8NamesLineAndByte) {
  Status err;
  ReadAll("a\nok\nbad \xFF byte\n", &err);
  EXPECT_EQ(err.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(err.message().find("t.csv:3"), std::string::npos) << err.message();
  EXPECT_NE(err.message().find("0xFF"), std::string::npos) << err.message();
}

TEST(CsvTest, Utf8ValidatorRejectsOverlongAndSurrogates) {
  EXPECT_FALSE(ValidateUtf8("\xC0\xAF", "x").ok());          // overlong '/'
  EXPECT_FALSE(ValidateUtf8("\xED\xA0\x80", "x").ok());      // surrogate
  EXPECT_FALSE(ValidateUtf8("\xE2\x82", "x").ok());          // truncated sequence
  EXPECT_TRUE(ValidateUtf8("\xF4\x8F\xBF\xBF", "x").ok());   // U+10FFFF
  EXPECT_FALSE(ValidateUtf8("\xF4\x90\x80\x80", "x").ok());  // above U+10FFFF
}

TEST(CsvTest, WriterRoundTrips) {
  std::string out;
  CsvWriter w(&out);
  const std::vector<std::string> row = {"plain", "with,comma", "with \"quote\"", "multi\nline", ""};
  w.Row(row);
  auto rows = ReadAll(out);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0], row);
}

TEST(CsvTest, StrictNumbers) {
  EXPECT_EQ(ParseDouble("0.25"), 0.25);
  EXPECT_EQ(ParseDouble("1e-3"), 1e-3);
  EXPECT_EQ(ParseDouble("+1"), 1.0);
  EXPECT_FALSE(ParseDouble(" 1").has_value());
  EXPECT_FALSE(ParseDouble("1x").has_value());
  EXPECT_FALSE(ParseDouble("nan").has_value());
  EXPECT_FALSE(ParseDouble("inf").has_value());
  EXPECT_FALSE(ParseDouble("").has_value());
  EXPECT_EQ(ParseInt("42"), 42);
  EXPECT_FALSE(ParseInt("4.2").has_value());
}

TEST(CsvHeaderTest, MissingColumnListsTheColumns) {
  std::vector<std::string_view> f = {"query_id", "model"};
  CsvHeader h(f, "o.csv");
  EXPECT_EQ(*h.Require("model"), 1u);
  StatusOr<size_t> missing = h.Require("score");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("missing column 'score'"), std::string::npos);
  EXPECT_NE(missing.status().message().find("query_id, model"), std::string::npos);
}

}  // namespace
}  // namespace baton::ingest
