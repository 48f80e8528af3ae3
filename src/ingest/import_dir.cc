// ImportDir: baton's dataset layout (models.csv, queries.jsonl, outcomes.csv, responses.jsonl) -> Store.
#include <filesystem>
#include <unordered_map>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "baton/importer.h"
#include "ingest/csv.h"
#include "ingest/import_common.h"
#include "ingest/text_file.h"

namespace baton {

namespace fs = std::filesystem;
using ingest::CsvHeader;
using ingest::CsvReader;
using ingest::Where;

namespace {

Status ImportModels(Store& store, const std::string& path, ingest::ImportState& st) {
  BATON_ASSIGN_OR_RETURN(CsvReader r, CsvReader::Open(path));
  std::vector<std::string_view> f;
  BATON_ASSIGN_OR_RETURN(bool has_header, r.Next(&f));
  if (!has_header) return Status::InvalidArgument(fmt::format("{}: empty file, expected a header", path));
  CsvHeader h(f, path);
  BATON_RETURN_IF_ERROR(h.CheckKnown({"model", "params_b", "usd_per_mtok_in", "usd_per_mtok_out", "price_source"}));
  BATON_ASSIGN_OR_RETURN(size_t c_model, h.Require("model"));
  const int c_params = h.Find("params_b"), c_in = h.Find("usd_per_mtok_in"), c_out = h.Find("usd_per_mtok_out"),
            c_src = h.Find("price_source");
  while (true) {
    BATON_ASSIGN_OR_RETURN(bool more, r.Next(&f));
    if (!more) break;
    BATON_RETURN_IF_ERROR(ingest::CheckFieldCount(f, h, path, r.line()));
    ExpertRecord e;
    e.name = std::string(f[c_model]);
    if (e.name.empty()) return Status::InvalidArgument(fmt::format("{}: empty model name", Where(path, r.line())));
    if (st.expert_line.count(e.name)) {
      return Status::AlreadyExists(fmt::format("{}: model '{}' is listed twice (first on line {})",
                                               Where(path, r.line()), e.name, st.expert_line[e.name]));
    }
    auto opt = [&](int col, const char* what) -> StatusOr<std::optional<double>> {
      if (col < 0 || f[col].empty()) return std::optional<double>();
      BATON_ASSIGN_OR_RETURN(double v, ingest::ParseNonNegative(f[col], what, path, r.line()));
      return std::optional<double>(v);
    };
    BATON_ASSIGN_OR_RETURN(e.params_b, opt(c_params, "params_b"));
    BATON_ASSIGN_OR_RETURN(e.usd_per_mtok_in, opt(c_in, "usd_per_mtok_in"));
    BATON_ASSIGN_OR_RETURN(e.usd_per_mtok_out, opt(c_out, "usd_per_mtok_out"));
    if (c_src >= 0) e.price_source = std::string(f[c_src]);
    BATON_ASSIGN_OR_RETURN(int64_t id, store.UpsertExpert(e));
    st.expert_id[e.name] = id;
    st.expert_line[e.name] = r.line();
  }
  if (st.expert_id.empty()) return Status::InvalidArgument(fmt::format("{}: no models listed", path));
  return Status::Ok();
}

// Reads a JSON Lines file, calling `fn(object, line)` for every non-blank line.
Status ForEachJsonLine(const std::string& path, const std::function<Status(const nlohmann::json&, size_t)>& fn) {
  BATON_ASSIGN_OR_RETURN(std::string text, ingest::ReadFile(path));
  BATON_RETURN_IF_ERROR(ingest::ValidateUtf8(text, path));
  size_t pos = 0, line = 0;
  while (pos < text.size()) {
    ++line;
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string_view l(text.data() + pos, end - pos);
    pos = end + 1;
    if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
    if (l.find_first_not_of(" \t") == std::string_view::npos) continue;
    nlohmann::json j = nlohmann::json::parse(l, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) {
      return Status::InvalidArgument(
          fmt::format("{}: not a valid JSON object (malformed or truncated line)", Where(path, line)));
    }
    if (!j.is_object()) return Status::InvalidArgument(fmt::format("{}: expected a JSON object", Where(path, line)));
    BATON_RETURN_IF_ERROR(fn(j, line));
  }
  return Status::Ok();
}

StatusOr<std::string> StringField(const nlohmann::json& j, const char* key, bool required, const std::string& path,
                                  size_t line) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) {
    if (required) return Status::InvalidArgument(fmt::format("{}: missing field \"{}\"", Where(path, line), key));
    return std::string();
  }
  if (it->is_string()) return it->get<std::string>();
  if (it->is_number()) return it->dump();
  return Status::InvalidArgument(fmt::format("{}: field \"{}\" must be a string", Where(path, line), key));
}

Status ImportQueries(Store& store, const std::string& path, const std::string& dataset, ingest::ImportState& st) {
  return ForEachJsonLine(path, [&](const nlohmann::json& j, size_t line) -> Status {
    QueryRecord q;
    BATON_ASSIGN_OR_RETURN(q.external_id, StringField(j, "id", true, path, line));
    if (q.external_id.empty()) return Status::InvalidArgument(fmt::format("{}: empty query id", Where(path, line)));
    BATON_ASSIGN_OR_RETURN(q.text, StringField(j, "text", true, path, line));
    BATON_ASSIGN_OR_RETURN(q.domain, StringField(j, "domain", false, path, line));
    BATON_ASSIGN_OR_RETURN(q.reference, StringField(j, "reference", false, path, line));
    BATON_ASSIGN_OR_RETURN(q.source, StringField(j, "source", false, path, line));
    q.dataset = dataset;
    return ingest::AddQuery(store, q, path, line, st);
  });
}

Status ImportOutcomes(Store& store, const std::string& path, ingest::ImportState& st) {
  BATON_ASSIGN_OR_RETURN(CsvReader r, CsvReader::Open(path));
  std::vector<std::string_view> f;
  BATON_ASSIGN_OR_RETURN(bool has_header, r.Next(&f));
  if (!has_header) return Status::InvalidArgument(fmt::format("{}: empty file, expected a header", path));
  CsvHeader h(f, path);
  BATON_RETURN_IF_ERROR(h.CheckKnown({"query_id", "model", "score", "cost_usd", "tokens_in", "tokens_out"}));
  BATON_ASSIGN_OR_RETURN(size_t c_query, h.Require("query_id"));
  BATON_ASSIGN_OR_RETURN(size_t c_model, h.Require("model"));
  BATON_ASSIGN_OR_RETURN(size_t c_score, h.Require("score"));
  const int c_cost = h.Find("cost_usd"), c_in = h.Find("tokens_in"), c_out = h.Find("tokens_out");
  while (true) {
    BATON_ASSIGN_OR_RETURN(bool more, r.Next(&f));
    if (!more) break;
    const size_t line = r.line();
    BATON_RETURN_IF_ERROR(ingest::CheckFieldCount(f, h, path, line));
    BATON_ASSIGN_OR_RETURN(int64_t qid, st.QueryId(store, f[c_query], path, line));
    BATON_ASSIGN_OR_RETURN(int64_t eid, st.ExpertId(store, f[c_model], path, line));
    ingest::CellValues v;
    if (f[c_score].empty() || ingest::IsNanLike(f[c_score])) {
      // A row of outcomes.csv is an observation; an unobserved (query, model) pair is a row left out.
      return Status::InvalidArgument(
          fmt::format("{}: score is {}: outcomes.csv lists observed pairs only; leave out the row of a pair that "
                      "was not observed",
                      Where(path, line), f[c_score].empty() ? "blank" : "'" + std::string(f[c_score]) + "'"));
    }
    BATON_ASSIGN_OR_RETURN(v.score, ingest::ParseScore(f[c_score], path, line));
    if (c_cost >= 0 && !f[c_cost].empty()) {
      BATON_ASSIGN_OR_RETURN(v.cost, ingest::ParseNonNegative(f[c_cost], "cost_usd", path, line));
    }
    if (c_in >= 0 && !f[c_in].empty()) {
      BATON_ASSIGN_OR_RETURN(v.tokens_in, ingest::ParseTokens(f[c_in], "tokens_in", path, line));
    }
    if (c_out >= 0 && !f[c_out].empty()) {
      BATON_ASSIGN_OR_RETURN(v.tokens_out, ingest::ParseTokens(f[c_out], "tokens_out", path, line));
    }
    BATON_RETURN_IF_ERROR(ingest::AddOutcome(store, qid, eid, v, path, line, st));
  }
  return Status::Ok();
}

Status ImportResponses(Store& store, const std::string& path, ingest::ImportState& st) {
  return ForEachJsonLine(path, [&](const nlohmann::json& j, size_t line) -> Status {
    BATON_ASSIGN_OR_RETURN(std::string qname, StringField(j, "query_id", true, path, line));
    BATON_ASSIGN_OR_RETURN(std::string model, StringField(j, "model", true, path, line));
    BATON_ASSIGN_OR_RETURN(std::string text, StringField(j, "response", true, path, line));
    BATON_ASSIGN_OR_RETURN(int64_t qid, st.QueryId(store, qname, path, line));
    BATON_ASSIGN_OR_RETURN(int64_t eid, st.ExpertId(store, model, path, line));
    ++st.summary.responses;
    return store.PutResponse(qid, eid, text).WithContext(Where(path, line));
  });
}

}  // namespace

StatusOr<ImportSummary> ImportDir(Store& store, const std::string& dir, const ImportOptions& options) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return Status::NotFound(fmt::format("{}: not a directory", dir));
  const fs::path root(dir);
  for (const char* required : {"models.csv", "queries.jsonl", "outcomes.csv"}) {
    if (!fs::exists(root / required, ec)) {
      return Status::NotFound(
          fmt::format("{}: missing {} (a dataset folder holds models.csv, queries.jsonl, "
                      "outcomes.csv and optionally responses.jsonl)",
                      dir, required));
    }
  }
  ingest::ImportState st;
  st.summary.dataset = options.dataset;
  if (st.summary.dataset.empty()) {
    st.summary.dataset = fs::weakly_canonical(root, ec).filename().string();
    if (st.summary.dataset.empty()) st.summary.dataset = root.filename().string();
  }
  BATON_ASSIGN_OR_RETURN(Store::Transaction tx, store.Begin());
  if (options.replace) {
    BATON_ASSIGN_OR_RETURN(int64_t gone, store.DeleteDataset(st.summary.dataset));
    st.summary.replaced_queries = static_cast<size_t>(gone);
  }
  BATON_RETURN_IF_ERROR(ImportModels(store, (root / "models.csv").string(), st));
  BATON_RETURN_IF_ERROR(ImportQueries(store, (root / "queries.jsonl").string(), st.summary.dataset, st));
  BATON_RETURN_IF_ERROR(ImportOutcomes(store, (root / "outcomes.csv").string(), st));
  const fs::path responses = root / "responses.jsonl";
  if (options.with_responses && fs::exists(responses, ec)) {
    BATON_RETURN_IF_ERROR(ImportResponses(store, responses.string(), st));
  }
  BATON_RETURN_IF_ERROR(tx.Commit());
  st.summary.experts = st.expert_id.size();
  return st.summary;
}

}  // namespace baton
