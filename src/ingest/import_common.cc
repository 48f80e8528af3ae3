#include "ingest/import_common.h"

#include <fmt/format.h>

#include "ingest/text_file.h"

namespace baton::ingest {

StatusOr<int64_t> ImportState::QueryId(Store& store, std::string_view external_id, const std::string& file,
                                       size_t line) {
  const std::string key(external_id);
  if (auto it = query.find(key); it != query.end()) return it->second.first;
  BATON_ASSIGN_OR_RETURN(std::optional<int64_t> id, store.FindQuery(summary.dataset, key));
  if (id) return *id;
  return Status::InvalidArgument(
      fmt::format("{}: query '{}' does not exist (not in queries.jsonl nor in dataset '{}' of the database)",
                  Where(file, line), key, summary.dataset));
}

StatusOr<int64_t> ImportState::ExpertId(Store& store, std::string_view name, const std::string& file, size_t line) {
  const std::string key(name);
  if (auto it = expert_id.find(key); it != expert_id.end()) return it->second;
  BATON_ASSIGN_OR_RETURN(std::optional<int64_t> id, store.FindExpert(key));
  if (id) {
    expert_id.emplace(key, *id);
    return *id;
  }
  return Status::InvalidArgument(
      fmt::format("{}: model '{}' is not listed in models.csv nor in the database", Where(file, line), key));
}

Status CheckFieldCount(const std::vector<std::string_view>& f, const CsvHeader& h, const std::string& file,
                       size_t line) {
  if (f.size() == h.size()) return Status::Ok();
  return Status::InvalidArgument(fmt::format("{}: expected {} fields as in the header, found {}{}", Where(file, line),
                                             h.size(), f.size(), f.size() < h.size() ? " (truncated row?)" : ""));
}

StatusOr<double> ParseScore(std::string_view s, const std::string& file, size_t line) {
  std::optional<double> v = ParseDouble(s);
  if (!v) return Status::InvalidArgument(fmt::format("{}: score '{}' is not a number", Where(file, line), s));
  if (*v < 0 || *v > 1) {
    return Status::InvalidArgument(fmt::format("{}: score {} is outside [0, 1]", Where(file, line), s));
  }
  return *v;
}

StatusOr<double> ParseNonNegative(std::string_view s, const char* what, const std::string& file, size_t line) {
  std::optional<double> v = ParseDouble(s);
  if (!v && IsNanLike(s)) {
    return Status::InvalidArgument(fmt::format("{}: {} '{}' is not a number; leave the cell blank when it is unknown",
                                               Where(file, line), what, s));
  }
  if (!v) return Status::InvalidArgument(fmt::format("{}: {} '{}' is not a number", Where(file, line), what, s));
  if (*v < 0) return Status::InvalidArgument(fmt::format("{}: {} {} is negative", Where(file, line), what, s));
  return *v;
}

StatusOr<int64_t> ParseTokens(std::string_view s, const char* what, const std::string& file, size_t line) {
  std::optional<int64_t> v = ParseInt(s);
  if (!v) {
    // Accept "12.0" (pandas writes integer columns with blanks as floats), refuse "12.5".
    std::optional<double> d = ParseDouble(s);
    if (d && *d == static_cast<double>(static_cast<int64_t>(*d))) v = static_cast<int64_t>(*d);
  }
  if (!v) return Status::InvalidArgument(fmt::format("{}: {} '{}' is not a whole number", Where(file, line), what, s));
  if (*v < 0) return Status::InvalidArgument(fmt::format("{}: {} {} is negative", Where(file, line), what, s));
  return *v;
}

Status AddQuery(Store& store, const QueryRecord& q, const std::string& file, size_t line, ImportState& st) {
  if (auto it = st.query.find(q.external_id); it != st.query.end()) {
    return Status::AlreadyExists(fmt::format("{}: query id '{}' appears twice (first on line {})", Where(file, line),
                                             q.external_id, it->second.second));
  }
  StatusOr<int64_t> id = store.InsertQuery(q);
  if (id.status().code() == StatusCode::kAlreadyExists) {
    return Status::AlreadyExists(fmt::format("{}: {} (re-import the dataset with --replace, or name it with --dataset)",
                                             Where(file, line), id.status().message()));
  }
  if (!id.ok()) return id.status().WithContext(Where(file, line));
  st.query.emplace(q.external_id, std::make_pair(*id, line));
  ++st.summary.queries;
  return Status::Ok();
}

Status AddOutcome(Store& store, int64_t query_id, int64_t expert_id, const CellValues& v, const std::string& file,
                  size_t line, ImportState& st) {
  const uint64_t key = (static_cast<uint64_t>(query_id) << 32) ^ static_cast<uint64_t>(expert_id);
  if (auto [it, added] = st.pair_line.emplace(key, line); !added) {
    return Status::AlreadyExists(fmt::format("{}: duplicate outcome for this (query, model) pair (first on line {})",
                                             Where(file, line), it->second));
  }
  OutcomeRecord o;
  o.query_id = query_id;
  o.expert_id = expert_id;
  o.score = v.score;
  o.cost_usd = v.cost;
  o.tokens_in = v.tokens_in;
  o.tokens_out = v.tokens_out;
  o.source = OutcomeSource::kImported;
  Status s = store.InsertOutcome(o);
  if (s.code() == StatusCode::kAlreadyExists) {
    return Status::AlreadyExists(fmt::format(
        "{}: an imported outcome for this (query, model) pair is already in the database", Where(file, line)));
  }
  if (!s.ok()) return s.WithContext(Where(file, line));
  ++st.summary.outcomes;
  return Status::Ok();
}

}  // namespace baton::ingest
