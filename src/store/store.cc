#include "baton/store.h"

#include <chrono>

#include <fmt/format.h>

#include "store/schema.h"
#include "store/sqlite.h"

namespace baton {

using store::Db;
using store::Stmt;

const char* OutcomeSourceName(OutcomeSource s) {
  switch (s) {
    case OutcomeSource::kImported:
      return "imported";
    case OutcomeSource::kLive:
      return "live";
    case OutcomeSource::kSelfPlay:
      return "selfplay";
  }
  return "imported";
}

namespace {

OutcomeSource ParseSource(std::string_view s) {
  if (s == "live") return OutcomeSource::kLive;
  if (s == "selfplay") return OutcomeSource::kSelfPlay;
  return OutcomeSource::kImported;
}

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

struct Store::Impl {
  Db db;
  std::string path;
  bool in_transaction = false;
  // Prepared once, reused for every row (the import hot path).
  std::optional<Stmt> insert_outcome, insert_query, find_expert, find_query, insert_expert, fill_prices, put_response;
  // Prepared once for the gateway's recorder (a row per request, a spend update per batch).
  std::optional<Stmt> log_request, set_spend, log_archon;

  StatusOr<Stmt*> Cached(std::optional<Stmt>& slot, std::string_view sql) {
    if (!slot) {
      BATON_ASSIGN_OR_RETURN(Stmt s, db.Prepare(sql));
      slot.emplace(std::move(s));
    }
    return &*slot;
  }
};

Store::Store(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Store::~Store() = default;

StatusOr<std::unique_ptr<Store>> Store::Open(const std::string& path, const StoreOptions& options) {
  if (path.empty()) return Status::InvalidArgument("database path is empty (pass --db FILE)");
  BATON_ASSIGN_OR_RETURN(Db db, Db::Open(path, options.create && !options.read_only));
  auto impl = std::make_unique<Impl>();
  impl->db = std::move(db);
  impl->path = path;
  Db& d = impl->db;
  // A file that is not a database fails here, on the first read.
  BATON_ASSIGN_OR_RETURN(Stmt version_stmt, d.Prepare("PRAGMA user_version"));
  StatusOr<bool> has = version_stmt.Step();
  if (!has.ok()) return Status::DataLoss(fmt::format("{}: not a baton database ({})", path, has.status().message()));
  const int64_t version = version_stmt.Int(0);
  version_stmt.Reset();  // an active statement would keep a read transaction open
  if (version > store::kSchemaVersion) {
    return Status::FailedPrecondition(
        fmt::format("{}: schema version {} was written by a newer baton (this one reads up to {})", path, version,
                    store::kSchemaVersion));
  }
  if (!options.read_only) {
    if (path != ":memory:") BATON_RETURN_IF_ERROR(d.Exec("PRAGMA journal_mode=WAL"));
    // 64 MiB page cache: an import touches three B-trees per outcome row.
    BATON_RETURN_IF_ERROR(d.Exec("PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON; PRAGMA cache_size=-65536"));
    if (version < store::kSchemaVersion) {
      BATON_RETURN_IF_ERROR(d.Exec("BEGIN IMMEDIATE"));
      Status st = version < 1 ? d.Exec(store::kSchemaV1) : Status::Ok();
      if (st.ok() && version < 2) st = d.Exec(store::kSchemaV2);
      if (st.ok() && version < 3) st = d.Exec(store::kSchemaV3);
      if (st.ok() && version < 4) st = d.Exec(store::kSchemaV4);
      if (st.ok() && version < 5) st = d.Exec(store::kSchemaV5);
      if (st.ok()) st = d.Exec(fmt::format("PRAGMA user_version={}", store::kSchemaVersion));
      if (!st.ok()) {
        (void)d.Exec("ROLLBACK");
        return st.WithContext(path);
      }
      BATON_RETURN_IF_ERROR(d.Exec("COMMIT"));
    }
  } else if (version == 0) {
    return Status::FailedPrecondition(fmt::format("{}: empty database (run `baton import` first)", path));
  }
  return std::unique_ptr<Store>(new Store(std::move(impl)));
}

StatusOr<Store::Transaction> Store::Begin() {
  if (impl_->in_transaction) return Status::FailedPrecondition("a transaction is already open on this store");
  BATON_RETURN_IF_ERROR(impl_->db.Exec("BEGIN IMMEDIATE"));
  impl_->in_transaction = true;
  return Transaction(this);
}

Store::Transaction::~Transaction() {
  if (store_ && store_->impl_->in_transaction) {
    (void)store_->impl_->db.Exec("ROLLBACK");
    store_->impl_->in_transaction = false;
  }
}

Status Store::Transaction::Commit() {
  if (!store_ || !store_->impl_->in_transaction) return Status::FailedPrecondition("no open transaction");
  BATON_RETURN_IF_ERROR(store_->impl_->db.Exec("COMMIT"));
  store_->impl_->in_transaction = false;
  return Status::Ok();
}

StatusOr<int64_t> Store::UpsertExpert(const ExpertRecord& e) {
  if (e.name.empty()) return Status::InvalidArgument("expert name is empty");
  BATON_ASSIGN_OR_RETURN(std::optional<int64_t> id, FindExpert(e.name));
  if (id) {
    BATON_ASSIGN_OR_RETURN(Stmt * fill, impl_->Cached(impl_->fill_prices, R"sql(
      UPDATE experts SET params_b = COALESCE(params_b, ?2), usd_per_mtok_in = COALESCE(usd_per_mtok_in, ?3),
        usd_per_mtok_out = COALESCE(usd_per_mtok_out, ?4),
        price_source = CASE WHEN price_source = '' THEN ?5 ELSE price_source END WHERE id = ?1)sql"));
    fill->Bind(1, *id)
        .Bind(2, e.params_b)
        .Bind(3, e.usd_per_mtok_in)
        .Bind(4, e.usd_per_mtok_out)
        .Bind(5, e.price_source);
    BATON_RETURN_IF_ERROR(fill->Run());
    return *id;
  }
  BATON_ASSIGN_OR_RETURN(Stmt * s, impl_->Cached(impl_->insert_expert, R"sql(
    INSERT INTO experts(name, params_b, usd_per_mtok_in, usd_per_mtok_out, price_source, backend_json)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6))sql"));
  s->Bind(1, e.name).Bind(2, e.params_b).Bind(3, e.usd_per_mtok_in).Bind(4, e.usd_per_mtok_out);
  s->Bind(5, e.price_source).Bind(6, e.backend_json);
  BATON_RETURN_IF_ERROR(s->Run().WithContext(fmt::format("expert '{}'", e.name)));
  return impl_->db.LastInsertRowId();
}

StatusOr<int64_t> Store::InsertQuery(const QueryRecord& q) {
  BATON_ASSIGN_OR_RETURN(Stmt * s, impl_->Cached(impl_->insert_query, R"sql(
    INSERT INTO queries(external_id, dataset, domain, text, reference, source) VALUES (?1, ?2, ?3, ?4, ?5, ?6))sql"));
  s->Bind(1, q.external_id).Bind(2, q.dataset).Bind(3, q.domain).Bind(4, q.text).Bind(5, q.reference);
  s->Bind(6, q.source);
  Status st = s->Run();
  if (st.code() == StatusCode::kAlreadyExists) {
    return Status::AlreadyExists(
        fmt::format("query id '{}' of dataset '{}' is already in the database", q.external_id, q.dataset));
  }
  BATON_RETURN_IF_ERROR(st);
  return impl_->db.LastInsertRowId();
}

Status Store::InsertOutcome(const OutcomeRecord& o) {
  BATON_ASSIGN_OR_RETURN(Stmt * s, impl_->Cached(impl_->insert_outcome, R"sql(
    INSERT INTO outcomes(query_id, expert_id, score, cost_usd, tokens_in, tokens_out, latency_ms, source, time_unix_ms)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9))sql"));
  s->Bind(1, o.query_id).Bind(2, o.expert_id).Bind(3, o.score).Bind(4, o.cost_usd).Bind(5, o.tokens_in);
  s->Bind(6, o.tokens_out).Bind(7, o.latency_ms).Bind(8, std::string_view(OutcomeSourceName(o.source)));
  s->Bind(9, o.time_unix_ms ? o.time_unix_ms : NowMs());
  return s->Run();
}

Status Store::PutResponse(int64_t query_id, int64_t expert_id, const std::string& text) {
  BATON_ASSIGN_OR_RETURN(Stmt * s, impl_->Cached(impl_->put_response,
                                                 "INSERT OR REPLACE INTO responses(query_id, expert_id, text) "
                                                 "VALUES (?1, ?2, ?3)"));
  s->Bind(1, query_id).Bind(2, expert_id).Bind(3, text);
  return s->Run();
}

Status Store::LogRequest(const RequestLogRecord& r) {
  BATON_ASSIGN_OR_RETURN(Stmt * s, impl_->Cached(impl_->log_request, R"sql(
    INSERT INTO requests(time_unix_ms, client_key_hash, requested_model, expert, http_status, tokens_in, tokens_out,
                         cost_usd, latency_ms, prompt, request_id, note)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12))sql"));
  s->Bind(1, r.time_unix_ms ? r.time_unix_ms : NowMs()).Bind(2, r.client_key_hash).Bind(3, r.requested_model);
  s->Bind(4, r.expert).Bind(5, static_cast<int64_t>(r.http_status)).Bind(6, r.tokens_in).Bind(7, r.tokens_out);
  s->Bind(8, r.cost_usd).Bind(9, r.latency_ms);
  if (r.prompt)
    s->Bind(10, *r.prompt);
  else
    s->BindNull(10);
  s->Bind(11, r.request_id);
  if (r.note.empty())
    s->BindNull(12);
  else
    s->Bind(12, r.note);
  return s->Run();
}

Status Store::LogArchonCall(const ArchonCallRecord& r) {
  BATON_ASSIGN_OR_RETURN(Stmt * s, impl_->Cached(impl_->log_archon, R"sql(
    INSERT INTO archon_calls(time_unix_ms, run_id, architecture, layer, component_index, component, expert,
                             prompt_tokens, completion_tokens, cost_usd, latency_ms, status, parse)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13))sql"));
  s->Bind(1, r.time_unix_ms ? r.time_unix_ms : NowMs()).Bind(2, r.run_id).Bind(3, r.architecture);
  s->Bind(4, static_cast<int64_t>(r.layer)).Bind(5, static_cast<int64_t>(r.component_index)).Bind(6, r.component);
  s->Bind(7, r.expert).Bind(8, r.prompt_tokens).Bind(9, r.completion_tokens).Bind(10, r.cost_usd);
  s->Bind(11, r.latency_ms).Bind(12, r.status).Bind(13, r.parse);
  return s->Run();
}

StatusOr<std::vector<ArchonCallRecord>> Store::ListArchonCalls(const std::string& run_id) {
  BATON_ASSIGN_OR_RETURN(Stmt s, impl_->db.Prepare(R"sql(
    SELECT time_unix_ms, run_id, architecture, layer, component_index, component, expert, prompt_tokens,
           completion_tokens, cost_usd, latency_ms, status, parse
    FROM archon_calls WHERE ?1 = '' OR run_id = ?1 ORDER BY id)sql"));
  s.Bind(1, run_id);
  std::vector<ArchonCallRecord> out;
  while (true) {
    BATON_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    ArchonCallRecord r;
    r.time_unix_ms = s.Int(0);
    r.run_id = s.Text(1);
    r.architecture = s.Text(2);
    r.layer = static_cast<int>(s.Int(3));
    r.component_index = static_cast<int>(s.Int(4));
    r.component = s.Text(5);
    r.expert = s.Text(6);
    r.prompt_tokens = s.Int(7);
    r.completion_tokens = s.Int(8);
    r.cost_usd = s.Double(9);
    r.latency_ms = s.Double(10);
    r.status = s.Text(11);
    r.parse = s.Text(12);
    out.push_back(std::move(r));
  }
  return out;
}

namespace {
// Runs a prepared single-id lookup; resets the cached statement on every path so it can be reused.
StatusOr<std::optional<int64_t>> LookupId(Stmt& s) {
  StatusOr<bool> row = s.Step();
  std::optional<int64_t> id;
  if (row.ok() && *row) id = s.Int(0);
  s.Reset();
  if (!row.ok()) return row.status();
  return id;
}
}  // namespace

StatusOr<std::optional<int64_t>> Store::FindExpert(const std::string& name) {
  BATON_ASSIGN_OR_RETURN(Stmt * s, impl_->Cached(impl_->find_expert, "SELECT id FROM experts WHERE name = ?1"));
  s->Bind(1, name);
  return LookupId(*s);
}

StatusOr<std::optional<int64_t>> Store::FindQuery(const std::string& dataset, const std::string& external_id) {
  BATON_ASSIGN_OR_RETURN(
      Stmt * s, impl_->Cached(impl_->find_query, "SELECT id FROM queries WHERE dataset = ?1 AND external_id = ?2"));
  s->Bind(1, dataset).Bind(2, external_id);
  return LookupId(*s);
}

StatusOr<std::vector<ExpertRecord>> Store::ListExperts() {
  BATON_ASSIGN_OR_RETURN(
      Stmt s,
      impl_->db.Prepare(
          "SELECT id, name, params_b, usd_per_mtok_in, usd_per_mtok_out, price_source, backend_json FROM experts "
          "ORDER BY id"));
  std::vector<ExpertRecord> out;
  while (true) {
    BATON_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    out.push_back({s.Int(0), std::string(s.Text(1)), s.OptDouble(2), s.OptDouble(3), s.OptDouble(4),
                   std::string(s.Text(5)), std::string(s.Text(6))});
  }
  return out;
}

StatusOr<std::vector<QueryRecord>> Store::ListQueries(const std::vector<std::string>& datasets) {
  std::string sql = "SELECT id, external_id, dataset, domain, text, reference, source FROM queries";
  if (!datasets.empty()) {
    sql += " WHERE dataset IN (";
    for (size_t i = 0; i < datasets.size(); ++i) sql += fmt::format("{}?{}", i ? "," : "", i + 1);
    sql += ")";
  }
  sql += " ORDER BY id";
  BATON_ASSIGN_OR_RETURN(Stmt s, impl_->db.Prepare(sql));
  for (size_t i = 0; i < datasets.size(); ++i) s.Bind(static_cast<int>(i + 1), datasets[i]);
  std::vector<QueryRecord> out;
  while (true) {
    BATON_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    out.push_back({s.Int(0), std::string(s.Text(1)), std::string(s.Text(2)), std::string(s.Text(3)),
                   std::string(s.Text(4)), std::string(s.Text(5)), std::string(s.Text(6))});
  }
  return out;
}

StatusOr<std::vector<std::string>> Store::ListDatasets() {
  BATON_ASSIGN_OR_RETURN(Stmt s, impl_->db.Prepare("SELECT DISTINCT dataset FROM queries ORDER BY dataset"));
  std::vector<std::string> out;
  while (true) {
    BATON_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    out.emplace_back(s.Text(0));
  }
  return out;
}

StatusOr<std::vector<DatasetInfo>> Store::DescribeDatasets() {
  BATON_ASSIGN_OR_RETURN(Stmt s, impl_->db.Prepare(R"sql(
    SELECT q.dataset, COUNT(DISTINCT q.id), COUNT(o.query_id) FROM queries q LEFT JOIN outcomes o ON o.query_id = q.id
    GROUP BY q.dataset ORDER BY q.dataset)sql"));
  std::vector<DatasetInfo> out;
  while (true) {
    BATON_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    out.push_back({std::string(s.Text(0)), s.Int(1), s.Int(2)});
  }
  return out;
}

StatusOr<int64_t> Store::DeleteDataset(const std::string& dataset) {
  // Children first: outcomes and responses reference queries (foreign keys are on).
  for (const char* table : {"outcomes", "responses"}) {
    BATON_ASSIGN_OR_RETURN(Stmt s,
                           impl_->db.Prepare(fmt::format(
                               "DELETE FROM {} WHERE query_id IN (SELECT id FROM queries WHERE dataset = ?1)", table)));
    s.Bind(1, dataset);
    BATON_RETURN_IF_ERROR(s.Run());
  }
  BATON_ASSIGN_OR_RETURN(Stmt s, impl_->db.Prepare("DELETE FROM queries WHERE dataset = ?1"));
  s.Bind(1, dataset);
  BATON_RETURN_IF_ERROR(s.Run());
  return impl_->db.Changes();
}

Status Store::ForEachOutcome(const std::function<void(const OutcomeRecord&)>& fn) {
  BATON_ASSIGN_OR_RETURN(
      Stmt s,
      impl_->db.Prepare(
          "SELECT query_id, expert_id, score, cost_usd, tokens_in, tokens_out, latency_ms, source, time_unix_ms "
          "FROM outcomes ORDER BY query_id, expert_id"));
  OutcomeRecord o;
  while (true) {
    BATON_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    o.query_id = s.Int(0);
    o.expert_id = s.Int(1);
    o.score = s.Double(2);
    o.cost_usd = s.OptDouble(3);
    o.tokens_in = s.OptInt(4);
    o.tokens_out = s.OptInt(5);
    o.latency_ms = s.OptDouble(6);
    o.source = ParseSource(s.Text(7));
    o.time_unix_ms = s.Int(8);
    fn(o);
  }
  return Status::Ok();
}

StatusOr<std::string> Store::GetResponse(int64_t query_id, int64_t expert_id) {
  BATON_ASSIGN_OR_RETURN(Stmt s,
                         impl_->db.Prepare("SELECT text FROM responses WHERE query_id = ?1 AND expert_id = ?2"));
  s.Bind(1, query_id).Bind(2, expert_id);
  BATON_ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row)
    return Status::NotFound(fmt::format("no recorded response for query {} and expert {}", query_id, expert_id));
  return std::string(s.Text(0));
}

Status Store::UpsertClientBudget(const ClientBudgetRecord& b) {
  BATON_ASSIGN_OR_RETURN(Stmt s, impl_->db.Prepare(R"sql(
    INSERT INTO client_budgets(key_hash, name, budget_usd, spent_usd, reserved_usd) VALUES (?1, ?2, ?3, ?4, ?5)
    ON CONFLICT(key_hash) DO UPDATE SET name = excluded.name, budget_usd = excluded.budget_usd)sql"));
  s.Bind(1, b.key_hash).Bind(2, b.name).Bind(3, b.budget_usd).Bind(4, b.spent_usd).Bind(5, b.reserved_usd);
  return s.Run();
}

Status Store::SetClientSpend(const std::string& key_hash, double spent_usd, double reserved_usd) {
  BATON_ASSIGN_OR_RETURN(
      Stmt * s, impl_->Cached(impl_->set_spend,
                              "UPDATE client_budgets SET spent_usd = ?2, reserved_usd = ?3 WHERE key_hash = ?1"));
  s->Bind(1, key_hash).Bind(2, spent_usd).Bind(3, reserved_usd);
  BATON_RETURN_IF_ERROR(s->Run());
  if (impl_->db.Changes() == 0) return Status::NotFound("no client budget for key hash " + key_hash.substr(0, 12));
  return Status::Ok();
}

StatusOr<std::vector<ClientBudgetRecord>> Store::ListClientBudgets() {
  BATON_ASSIGN_OR_RETURN(
      Stmt s, impl_->db.Prepare("SELECT key_hash, name, budget_usd, spent_usd, reserved_usd FROM client_budgets "
                                "ORDER BY name, key_hash"));
  std::vector<ClientBudgetRecord> out;
  while (true) {
    BATON_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    out.push_back({std::string(s.Text(0)), std::string(s.Text(1)), s.Double(2), s.Double(3), s.Double(4)});
  }
  return out;
}

Status Store::Atomically(const std::function<Status()>& fn) {
  // Savepoint names are per connection; nesting works (each level releases or rolls back its own).
  BATON_RETURN_IF_ERROR(impl_->db.Exec("SAVEPOINT baton_atomically"));
  Status st;
  try {
    st = fn();
  } catch (const std::exception& e) {
    st = Status::Internal(std::string("exception inside Store::Atomically: ") + e.what());
  }
  if (!st.ok()) {
    (void)impl_->db.Exec("ROLLBACK TO baton_atomically");
    (void)impl_->db.Exec("RELEASE baton_atomically");
    return st;
  }
  return impl_->db.Exec("RELEASE baton_atomically");
}

StatusOr<std::optional<RequestLogRecord>> Store::FindRequest(const std::string& request_id) {
  BATON_ASSIGN_OR_RETURN(Stmt s, impl_->db.Prepare(R"sql(
    SELECT time_unix_ms, client_key_hash, requested_model, expert, http_status, tokens_in, tokens_out, cost_usd,
           latency_ms, prompt, request_id, note
    FROM requests WHERE request_id = ?1 ORDER BY id DESC LIMIT 1)sql"));
  s.Bind(1, request_id);
  BATON_ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return std::optional<RequestLogRecord>();
  RequestLogRecord r;
  r.time_unix_ms = s.Int(0);
  r.client_key_hash = std::string(s.Text(1));
  r.requested_model = std::string(s.Text(2));
  r.expert = std::string(s.Text(3));
  r.http_status = static_cast<int>(s.Int(4));
  r.tokens_in = s.OptInt(5);
  r.tokens_out = s.OptInt(6);
  r.cost_usd = s.OptDouble(7);
  r.latency_ms = s.OptDouble(8);
  if (!s.IsNull(9)) r.prompt = std::string(s.Text(9));
  r.request_id = std::string(s.Text(10));
  if (!s.IsNull(11)) r.note = std::string(s.Text(11));
  return std::optional<RequestLogRecord>(std::move(r));
}

StatusOr<int64_t> Store::InsertOutcomeReturningId(const OutcomeRecord& outcome) {
  BATON_RETURN_IF_ERROR(InsertOutcome(outcome));
  return impl_->db.LastInsertRowId();
}

Status Store::InsertFeedback(const FeedbackRecord& f) {
  BATON_ASSIGN_OR_RETURN(Stmt s, impl_->db.Prepare(R"sql(
    INSERT INTO feedback(request_id, client_key_hash, score, note, query_id, expert_id, outcome_id, time_unix_ms)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8))sql"));
  s.Bind(1, f.request_id).Bind(2, f.client_key_hash).Bind(3, f.score);
  if (f.note.empty())
    s.BindNull(4);
  else
    s.Bind(4, f.note);
  s.Bind(5, f.query_id).Bind(6, f.expert_id).Bind(7, f.outcome_id).Bind(8, f.time_unix_ms ? f.time_unix_ms : NowMs());
  Status st = s.Run();
  if (st.code() == StatusCode::kAlreadyExists) {
    return Status::AlreadyExists(fmt::format("request {} already has feedback", f.request_id.substr(0, 100)));
  }
  return st;
}

StatusOr<bool> Store::HasFeedback(const std::string& request_id) {
  BATON_ASSIGN_OR_RETURN(Stmt s, impl_->db.Prepare("SELECT 1 FROM feedback WHERE request_id = ?1"));
  s.Bind(1, request_id);
  return s.Step();
}

StatusOr<int64_t> Store::InsertOnboarding(const OnboardingRecord& r) {
  BATON_ASSIGN_OR_RETURN(Stmt s, impl_->db.Prepare(R"sql(
    INSERT INTO onboarding(time_unix_ms, expert, decision, replaces, evidence_json) VALUES (?1, ?2, ?3, ?4, ?5))sql"));
  s.Bind(1, r.time_unix_ms ? r.time_unix_ms : NowMs()).Bind(2, r.expert).Bind(3, r.decision).Bind(4, r.replaces);
  s.Bind(5, r.evidence_json);
  BATON_RETURN_IF_ERROR(s.Run());
  return impl_->db.LastInsertRowId();
}

StatusOr<std::vector<OnboardingRecord>> Store::ListOnboarding() {
  BATON_ASSIGN_OR_RETURN(
      Stmt s, impl_->db.Prepare("SELECT id, time_unix_ms, expert, decision, replaces, evidence_json FROM onboarding "
                                "ORDER BY id"));
  std::vector<OnboardingRecord> out;
  while (true) {
    BATON_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    out.push_back({s.Int(0), s.Int(1), std::string(s.Text(2)), std::string(s.Text(3)), std::string(s.Text(4)),
                   std::string(s.Text(5))});
  }
  return out;
}

StatusOr<int64_t> Store::CountRows(const std::string& table) {
  BATON_ASSIGN_OR_RETURN(Stmt s, impl_->db.Prepare(fmt::format("SELECT COUNT(*) FROM \"{}\"", table)));
  BATON_ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return Status::Internal(fmt::format("COUNT(*) of {} returned no row", table));
  return s.Int(0);
}

}  // namespace baton
