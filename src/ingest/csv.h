// CsvReader and CsvWriter: RFC 4180 CSV (quoted fields holding commas, doubled quotes and newlines; CRLF or LF).
//
// Why not a library: Debian's libcsv is a callback parser that does not report line numbers, and every error baton
// prints must name the file and the line. This reader is ~150 lines, validates UTF-8 once for the whole buffer and
// hands out string_views without a heap allocation per cell, which is what the 3 s import target needs.
//
// Example:
//   BATON_ASSIGN_OR_RETURN(CsvReader reader, CsvReader::Open("outcomes.csv"));
//   std::vector<std::string_view> row;
//   while (true) {
//     BATON_ASSIGN_OR_RETURN(bool more, reader.Next(&row));
//     if (!more) break;
//     ... reader.line() is the line the row starts on ...
//   }
//
// Thread-safety: one reader per thread.
#pragma once

#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "baton/status.h"

namespace baton::ingest {

class CsvReader {
 public:
  // Reads and UTF-8-validates the whole file.
  static StatusOr<CsvReader> Open(const std::string& path);
  // `name` is used in error messages in place of a path.
  static StatusOr<CsvReader> FromString(std::string content, std::string name);

  // Reads the next record into `fields` (views valid until the next call). Returns false at the end of input.
  // A record made of one empty field on an otherwise blank line is skipped. An unterminated quoted field or text
  // after a closing quote is DataLoss / InvalidArgument with file and line.
  StatusOr<bool> Next(std::vector<std::string_view>* fields);

  // The 1-based line on which the record last returned by Next() starts.
  size_t line() const { return record_line_; }
  const std::string& name() const { return name_; }

 private:
  CsvReader(std::string content, std::string name) : data_(std::move(content)), name_(std::move(name)) {}

  std::string data_;
  std::string name_;
  size_t pos_ = 0;
  size_t line_ = 1;         // line at pos_
  size_t record_line_ = 0;  // line where the last record began
  std::string scratch_;     // unescaped quoted fields of the current record
};

// Column lookup by header name.
class CsvHeader {
 public:
  CsvHeader() = default;
  CsvHeader(const std::vector<std::string_view>& fields, std::string file);

  // Index of `column`, or InvalidArgument "file:1: missing column 'x' (columns are: a, b, c)".
  StatusOr<size_t> Require(std::string_view column) const;
  // OK when every column is one of `known`; otherwise InvalidArgument naming the file, each unknown column (with
  // the known name it is closest to) and the known ones. For files with a fixed set of columns, where a misspelt
  // optional column (a price, a cost) would otherwise be read as absent without a word.
  Status CheckKnown(const std::vector<std::string>& known) const;
  // " (looks like ';'-separated; ...)" when the header reads as one column holding ';' or tabs, "" otherwise.
  std::string SeparatorHint() const;
  // Index of `column` or -1.
  int Find(std::string_view column) const;
  size_t size() const { return names_.size(); }
  const std::vector<std::string>& names() const { return names_; }

 private:
  std::vector<std::string> names_;
  std::unordered_map<std::string, size_t> index_;
  std::string file_;
};

// Writes RFC 4180 CSV, quoting a field only when it holds a comma, quote, CR or LF.
class CsvWriter {
 public:
  explicit CsvWriter(std::string* out) : out_(out) {}
  void Row(const std::vector<std::string>& fields);

 private:
  std::string* out_;
};

}  // namespace baton::ingest
