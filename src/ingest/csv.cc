#include "ingest/csv.h"

#include <algorithm>

#include <fmt/format.h>

#include "ingest/text_file.h"

namespace baton::ingest {

StatusOr<CsvReader> CsvReader::Open(const std::string& path) {
  BATON_ASSIGN_OR_RETURN(std::string content, ReadFile(path));
  return FromString(std::move(content), path);
}

StatusOr<CsvReader> CsvReader::FromString(std::string content, std::string name) {
  BATON_RETURN_IF_ERROR(ValidateUtf8(content, name));
  CsvReader r(std::move(content), std::move(name));
  // Skip a UTF-8 byte-order mark.
  if (r.data_.compare(0, 3, "\xEF\xBB\xBF") == 0) r.pos_ = 3;
  return r;
}

StatusOr<bool> CsvReader::Next(std::vector<std::string_view>* fields) {
  fields->clear();
  const size_t n = data_.size();
  // Skip blank lines between records.
  while (pos_ < n && (data_[pos_] == '\n' || data_[pos_] == '\r')) {
    if (data_[pos_] == '\n') ++line_;
    ++pos_;
  }
  if (pos_ >= n) return false;
  record_line_ = line_;
  scratch_.clear();

  // Fields are collected as (offset, length, in_scratch) and turned into views at the end, because scratch_ may
  // reallocate while the record is parsed.
  struct Span {
    size_t off, len;
    bool scratch;
  };
  std::vector<Span> spans;
  const char* d = data_.data();
  while (true) {
    if (pos_ < n && d[pos_] == '"') {
      const size_t quote_line = line_;
      const size_t start = scratch_.size();
      ++pos_;
      while (true) {
        if (pos_ >= n) {
          return Status::DataLoss(
              fmt::format("{}: quoted field opened here is never closed (file truncated?)", Where(name_, quote_line)));
        }
        const char c = d[pos_];
        if (c == '"') {
          if (pos_ + 1 < n && d[pos_ + 1] == '"') {
            scratch_.push_back('"');
            pos_ += 2;
            continue;
          }
          ++pos_;
          break;
        }
        if (c == '\n') ++line_;
        scratch_.push_back(c);
        ++pos_;
      }
      spans.push_back({start, scratch_.size() - start, true});
      if (pos_ < n && d[pos_] != ',' && d[pos_] != '\n' && d[pos_] != '\r') {
        return Status::InvalidArgument(
            fmt::format("{}: unexpected character '{}' after a closing quote", Where(name_, line_), d[pos_]));
      }
    } else {
      const size_t start = pos_;
      while (pos_ < n && d[pos_] != ',' && d[pos_] != '\n' && d[pos_] != '\r') {
        if (d[pos_] == '"') {
          return Status::InvalidArgument(
              fmt::format("{}: stray quote inside an unquoted field (quote the whole field)", Where(name_, line_)));
        }
        ++pos_;
      }
      spans.push_back({start, pos_ - start, false});
    }
    if (pos_ < n && d[pos_] == ',') {
      ++pos_;
      continue;
    }
    // End of record: consume one line ending.
    if (pos_ < n && d[pos_] == '\r') ++pos_;
    if (pos_ < n && d[pos_] == '\n') {
      ++pos_;
      ++line_;
    }
    break;
  }
  fields->reserve(spans.size());
  for (const Span& s : spans) {
    fields->emplace_back(s.scratch ? std::string_view(scratch_).substr(s.off, s.len)
                                   : std::string_view(data_).substr(s.off, s.len));
  }
  return true;
}

CsvHeader::CsvHeader(const std::vector<std::string_view>& fields, std::string file) : file_(std::move(file)) {
  for (size_t i = 0; i < fields.size(); ++i) {
    names_.emplace_back(fields[i]);
    index_.emplace(names_.back(), i);
  }
}

int CsvHeader::Find(std::string_view column) const {
  auto it = index_.find(std::string(column));
  return it == index_.end() ? -1 : static_cast<int>(it->second);
}

StatusOr<size_t> CsvHeader::Require(std::string_view column) const {
  const int i = Find(column);
  if (i >= 0) return static_cast<size_t>(i);
  std::string all;
  for (const auto& n : names_) all += (all.empty() ? "" : ", ") + n;
  return Status::InvalidArgument(fmt::format("{}: missing column '{}' in the header (columns are: {}){}",
                                             Where(file_, 1), column, all, SeparatorHint()));
}

std::string CsvHeader::SeparatorHint() const {
  if (names_.size() != 1) return "";
  const std::pair<char, const char*> separators[] = {{';', "';'"}, {'\t', "tab"}, {'|', "'|'"}};
  for (const auto& [c, name] : separators) {
    if (names_[0].find(c) == std::string::npos) continue;
    return fmt::format(
        "; it looks {}-separated, but baton reads comma-separated CSV (pandas: df.to_csv(path) with the default "
        "sep=',')",
        name);
  }
  return "";
}

Status CsvHeader::CheckKnown(const std::vector<std::string>& known) const {
  if (std::string hint = SeparatorHint(); !hint.empty()) {
    return Status::InvalidArgument(fmt::format("{}: one column named '{}'{}", Where(file_, 1), names_[0], hint));
  }
  std::vector<std::string> unknown;
  for (size_t i = 0; i < names_.size(); ++i) {
    const std::string& n = names_[i];
    if (std::find(known.begin(), known.end(), n) != known.end()) continue;
    if (n.empty()) {
      unknown.push_back(
          fmt::format("column {} has no name (a pandas index? write the file with "
                      "df.to_csv(path, index=False))",
                      i + 1));
      continue;
    }
    const std::string near = ClosestName(n, known);
    unknown.push_back(fmt::format("'{}'{}", n, near.empty() ? "" : fmt::format(" (did you mean '{}'?)", near)));
  }
  if (unknown.empty()) return Status::Ok();
  std::string list, valid;
  for (const auto& u : unknown) list += (list.empty() ? "" : ", ") + u;
  for (const auto& k : known) valid += (valid.empty() ? "" : ", ") + k;
  return Status::InvalidArgument(fmt::format("{}: unknown column{} {}; the valid columns are: {}", Where(file_, 1),
                                             unknown.size() > 1 ? "s" : "", list, valid));
}

void CsvWriter::Row(const std::vector<std::string>& fields) {
  for (size_t i = 0; i < fields.size(); ++i) {
    if (i) out_->push_back(',');
    const std::string& f = fields[i];
    if (f.find_first_of(",\"\r\n") == std::string::npos) {
      out_->append(f);
      continue;
    }
    out_->push_back('"');
    for (char c : f) {
      if (c == '"') out_->push_back('"');
      out_->push_back(c);
    }
    out_->push_back('"');
  }
  out_->push_back('\n');
}

}  // namespace baton::ingest
