// ImportWide / ExportWide: the "one column per model" matrix of RouterBench and RouteLLM CSVs <-> Store.
#include <filesystem>
#include <map>
#include <unordered_map>
#include <unordered_set>

#include <fmt/format.h>

#include "baton/importer.h"
#include "ingest/csv.h"
#include "ingest/import_common.h"
#include "ingest/text_file.h"

namespace baton {

using ingest::CsvHeader;
using ingest::CsvReader;
using ingest::Where;

namespace {

constexpr std::string_view kCostSuffix = "|total_cost";
constexpr std::string_view kResponseSuffix = "|model_response";

struct ModelColumns {
  std::string name;
  size_t score;
  int cost = -1;
  int response = -1;
  int64_t expert_id = 0;
};

StatusOr<std::vector<ModelColumns>> ResolveModelColumns(const CsvHeader& h, const WideImportOptions& o,
                                                        const std::string& path) {
  std::unordered_set<std::string> reserved = {o.query_col, o.text_col};
  if (!o.domain_col.empty()) reserved.insert(o.domain_col);
  std::vector<std::string> names = o.model_cols;
  for (const std::string& c : o.ignore_cols) {
    if (h.Find(c) < 0) return h.Require(c).status();  // names the missing column
  }
  if (names.empty()) {
    const std::unordered_set<std::string> ignore(o.ignore_cols.begin(), o.ignore_cols.end());
    for (const std::string& c : h.names()) {
      if (c.empty()) continue;  // the pandas index column, checked by ImportWide
      if (!reserved.count(c) && !ignore.count(c) && c.find('|') == std::string::npos) names.push_back(c);
    }
  }
  if (names.empty()) {
    return Status::InvalidArgument(
        fmt::format("{}: no model score columns (every column is the query, text or "
                    "domain column, ignored, or holds a '|')",
                    path));
  }
  std::vector<ModelColumns> out;
  std::unordered_set<std::string> models(names.begin(), names.end());
  for (const std::string& n : names) {
    if (reserved.count(n)) {
      return Status::InvalidArgument(
          fmt::format("{}: column '{}' cannot be both a model and the query/text/domain "
                      "column",
                      path, n));
    }
    BATON_ASSIGN_OR_RETURN(size_t score, h.Require(n));
    out.push_back({n, score, h.Find(n + std::string(kCostSuffix)), h.Find(n + std::string(kResponseSuffix))});
  }
  for (const std::string& c : h.names()) {
    const size_t bar = c.find('|');
    if (bar == std::string::npos || c.substr(bar) != kCostSuffix) continue;
    if (!models.count(c.substr(0, bar))) {
      return Status::InvalidArgument(
          fmt::format("{}: cost column '{}' names no model score column (add the model "
                      "with --models or drop the column)",
                      Where(path, 1), c));
    }
  }
  return out;
}

}  // namespace

StatusOr<ImportSummary> ImportWide(Store& store, const std::string& path, const WideImportOptions& o) {
  if (o.query_col.empty() || o.text_col.empty()) {
    return Status::InvalidArgument("both the query id column and the text column must be named");
  }
  BATON_ASSIGN_OR_RETURN(CsvReader r, CsvReader::Open(path));
  std::vector<std::string_view> f;
  BATON_ASSIGN_OR_RETURN(bool has_header, r.Next(&f));
  if (!has_header) return Status::InvalidArgument(fmt::format("{}: empty file, expected a header", path));
  CsvHeader h(f, path);
  BATON_ASSIGN_OR_RETURN(size_t c_query, h.Require(o.query_col));
  BATON_ASSIGN_OR_RETURN(size_t c_text, h.Require(o.text_col));
  int c_domain = -1;
  if (!o.domain_col.empty()) {
    BATON_ASSIGN_OR_RETURN(size_t d, h.Require(o.domain_col));
    c_domain = static_cast<int>(d);
  }
  // pandas' df.to_csv() writes the row index as a first column with an empty name. That one is skipped (its values
  // are checked to be 0, 1, 2, ... below); any other unnamed column is refused, as its role cannot be guessed.
  const bool pandas_index = !h.names().empty() && h.names()[0].empty();
  for (size_t i = pandas_index ? 1 : 0; i < h.size(); ++i) {
    if (!h.names()[i].empty()) continue;
    return Status::InvalidArgument(
        fmt::format("{}: column {} has no name in the header; name it (and pass --ignore-col NAME when it holds "
                    "no model's scores){}",
                    Where(path, 1), i + 1, h.SeparatorHint()));
  }
  BATON_ASSIGN_OR_RETURN(std::vector<ModelColumns> models, ResolveModelColumns(h, o, path));

  ingest::ImportState st;
  if (pandas_index) {
    st.summary.notes.push_back(fmt::format(
        "{}: skipped the unnamed first column (the row index pandas writes; df.to_csv(path, index=False) leaves it "
        "out)",
        path));
  }
  st.summary.dataset = o.dataset.empty() ? std::filesystem::path(path).stem().string() : o.dataset;
  BATON_ASSIGN_OR_RETURN(Store::Transaction tx, store.Begin());
  if (o.replace) {
    BATON_ASSIGN_OR_RETURN(int64_t gone, store.DeleteDataset(st.summary.dataset));
    st.summary.replaced_queries = static_cast<size_t>(gone);
  }
  for (ModelColumns& m : models) {
    ExpertRecord e;
    e.name = m.name;
    e.price_source = m.cost >= 0 ? "per-query costs from " + path : "";
    BATON_ASSIGN_OR_RETURN(m.expert_id, store.UpsertExpert(e));
  }
  while (true) {
    BATON_ASSIGN_OR_RETURN(bool more, r.Next(&f));
    if (!more) break;
    const size_t line = r.line();
    BATON_RETURN_IF_ERROR(ingest::CheckFieldCount(f, h, path, line));
    if (pandas_index && f[0] != std::to_string(st.summary.queries)) {
      return Status::InvalidArgument(fmt::format(
          "{}: the unnamed first column holds '{}' where a pandas row index holds {}; name the column in the "
          "header (and pass --ignore-col NAME) or write the file with df.to_csv(path, index=False)",
          Where(path, line), f[0], st.summary.queries));
    }
    QueryRecord q;
    q.external_id = std::string(f[c_query]);
    if (q.external_id.empty()) return Status::InvalidArgument(fmt::format("{}: empty query id", Where(path, line)));
    q.text = std::string(f[c_text]);
    if (c_domain >= 0) q.domain = std::string(f[c_domain]);
    q.dataset = st.summary.dataset;
    BATON_RETURN_IF_ERROR(ingest::AddQuery(store, q, path, line, st));
    const int64_t qid = st.query[q.external_id].first;
    for (const ModelColumns& m : models) {
      const std::string_view cell = f[m.score];
      if (cell.empty()) continue;  // not observed
      ingest::CellValues v;
      if (ingest::IsNanLike(cell)) {
        return Status::InvalidArgument(
            fmt::format("{}: score '{}' in column '{}' is not a number; a blank cell means 'not observed', so write "
                        "missing scores as empty cells (pandas does unless to_csv is given na_rep)",
                        Where(path, line), cell, m.name));
      }
      StatusOr<double> score = ingest::ParseScore(cell, path, line);
      if (!score.ok()) {
        return Status::InvalidArgument(fmt::format("{} in column '{}' (name non-score columns with --ignore-col)",
                                                   score.status().message(), m.name));
      }
      v.score = *score;
      if (m.cost >= 0 && !f[m.cost].empty()) {
        BATON_ASSIGN_OR_RETURN(v.cost, ingest::ParseNonNegative(f[m.cost], "total_cost", path, line));
      }
      BATON_RETURN_IF_ERROR(ingest::AddOutcome(store, qid, m.expert_id, v, path, line, st));
      if (m.response >= 0 && !f[m.response].empty()) {
        BATON_RETURN_IF_ERROR(store.PutResponse(qid, m.expert_id, std::string(f[m.response])));
        ++st.summary.responses;
      }
    }
  }
  if (st.summary.queries == 0) return Status::InvalidArgument(fmt::format("{}: no rows after the header", path));
  BATON_RETURN_IF_ERROR(tx.Commit());
  st.summary.experts = models.size();
  return st.summary;
}

StatusOr<std::string> ExportWide(Store& store, const std::string& dataset) {
  BATON_ASSIGN_OR_RETURN(std::vector<QueryRecord> queries, store.ListQueries({dataset}));
  if (queries.empty()) return Status::NotFound(fmt::format("no dataset named '{}' in the database", dataset));
  BATON_ASSIGN_OR_RETURN(std::vector<ExpertRecord> experts, store.ListExperts());
  std::unordered_map<int64_t, size_t> row_of;
  for (size_t i = 0; i < queries.size(); ++i) row_of.emplace(queries[i].id, i);
  std::unordered_map<int64_t, size_t> col_of;
  for (size_t j = 0; j < experts.size(); ++j) col_of.emplace(experts[j].id, j);

  // Cells as text, exactly as stored (shortest round-trip form of the double).
  const size_t ne = experts.size();
  std::vector<std::string> score(queries.size() * ne), cost(queries.size() * ne);
  std::vector<bool> used(ne, false), has_cost(ne, false);
  BATON_RETURN_IF_ERROR(store.ForEachOutcome([&](const OutcomeRecord& o) {
    auto r = row_of.find(o.query_id);
    if (r == row_of.end() || o.source != OutcomeSource::kImported) return;
    const size_t e = col_of.at(o.expert_id), i = r->second * ne + e;
    used[e] = true;
    score[i] = fmt::format("{}", o.score);
    if (o.cost_usd) cost[i] = fmt::format("{}", *o.cost_usd), has_cost[e] = true;
  }));
  std::string out;
  ingest::CsvWriter w(&out);
  std::vector<std::string> header = {"query_id", "domain", "text"};
  for (size_t e = 0; e < ne; ++e)
    if (used[e]) header.push_back(experts[e].name);
  for (size_t e = 0; e < ne; ++e)
    if (has_cost[e]) header.push_back(experts[e].name + std::string(kCostSuffix));
  w.Row(header);
  std::vector<std::string> row;
  for (size_t q = 0; q < queries.size(); ++q) {
    row = {queries[q].external_id, queries[q].domain, queries[q].text};
    for (size_t e = 0; e < ne; ++e)
      if (used[e]) row.push_back(score[q * ne + e]);
    for (size_t e = 0; e < ne; ++e)
      if (has_cost[e]) row.push_back(cost[q * ne + e]);
    w.Row(row);
  }
  return out;
}

}  // namespace baton
