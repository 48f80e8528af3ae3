// What both importers share: per-import bookkeeping (ids, first-seen lines for duplicate messages) and the
// validation of one cell. Internal to the ingest stage.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "baton/importer.h"
#include "baton/status.h"
#include "baton/store.h"
#include "ingest/csv.h"

namespace baton::ingest {

struct CellValues {
  double score = 0;
  std::optional<double> cost;
  std::optional<int64_t> tokens_in, tokens_out;
};

struct ImportState {
  ImportSummary summary;
  std::unordered_map<std::string, int64_t> expert_id;
  std::unordered_map<std::string, size_t> expert_line;
  std::unordered_map<std::string, std::pair<int64_t, size_t>> query;  // external id -> (store id, line)
  std::unordered_map<uint64_t, size_t> pair_line;  // (query id, expert id) -> line of its first outcome

  // The store id of a query named in this import or already stored; InvalidArgument naming file:line otherwise.
  StatusOr<int64_t> QueryId(Store& store, std::string_view external_id, const std::string& file, size_t line);
  StatusOr<int64_t> ExpertId(Store& store, std::string_view name, const std::string& file, size_t line);
};

Status CheckFieldCount(const std::vector<std::string_view>& f, const CsvHeader& h, const std::string& file,
                       size_t line);
StatusOr<double> ParseScore(std::string_view s, const std::string& file, size_t line);
StatusOr<double> ParseNonNegative(std::string_view s, const char* what, const std::string& file, size_t line);
StatusOr<int64_t> ParseTokens(std::string_view s, const char* what, const std::string& file, size_t line);

Status AddQuery(Store& store, const QueryRecord& q, const std::string& file, size_t line, ImportState& st);
// Rejects a second outcome for the same (query, expert) pair with the line of the first.
Status AddOutcome(Store& store, int64_t query_id, int64_t expert_id, const CellValues& v, const std::string& file,
                  size_t line, ImportState& st);

}  // namespace baton::ingest
