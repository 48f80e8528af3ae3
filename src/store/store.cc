#include "baton/store.h"

#include <chrono>
#include <cmath>
#include <map>

#include <fmt/format.h>

#include "store/backend.h"
#include "store/schema.h"

namespace baton {

using store::Statement;
using store::StmtPtr;

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

// Steps an INSERT ... RETURNING id once and resets it for the next use.
StatusOr<int64_t> InsertedId(Statement& s) {
  StatusOr<bool> row = s.Step();
  const int64_t id = row.ok() && *row ? s.Int(0) : 0;
  s.Reset();
  if (!row.ok()) return row.status();
  if (!*row) return Status::Internal("INSERT ... RETURNING id returned no row");
  return id;
}

}  // namespace

struct Store::Impl {
  std::unique_ptr<store::Connection> db;
  // Prepared once, reused for every row (the import hot path).
  StmtPtr insert_outcome, insert_query, find_expert, find_query, insert_expert, fill_prices, put_response;
  // Prepared once for the gateway's recorder (a row per request, a spend update per batch) and its budgets.
  StmtPtr log_request, set_spend, log_archon, reserve, reservation, release, charge_room, charge, recompute;

  StatusOr<Statement*> Cached(StmtPtr& slot, std::string_view sql) {
    if (!slot) {
      BATON_ASSIGN_OR_RETURN(slot, db->Prepare(sql));
    }
    return slot.get();
  }

  // Inside a transaction: gives `released` back to the key, then charges min(actual, what the key has left) and
  // recomputes reserved_usd as the sum of its live reservations. The first UPDATE takes the key's row lock (PostgreSQL;
  // SQLite's BEGIN IMMEDIATE already excludes other writers) and computes the charge in SQL from the row as it is
  // under that lock, so no other writer can change the room before the second UPDATE. Returns what was charged;
  // NotFound for an unknown key.
  StatusOr<double> ReleaseAndCharge(const std::string& key_hash, double released, double actual) {
    BATON_ASSIGN_OR_RETURN(Statement * lock, Cached(charge_room, R"sql(
      UPDATE client_budgets SET reserved_usd = GREATEST(0, reserved_usd - CAST(?2 AS DOUBLE PRECISION))
      WHERE key_hash = ?1
      RETURNING LEAST(CAST(?3 AS DOUBLE PRECISION), GREATEST(0, budget_usd - spent_usd - reserved_usd)))sql"));
    lock->Bind(1, key_hash).Bind(2, released).Bind(3, actual);
    StatusOr<bool> row = lock->Step();
    const double charged = row.ok() && *row ? lock->Double(0) : 0;
    lock->Reset();
    if (!row.ok()) return row.status();
    if (!*row) return Status::NotFound("no client budget for key hash " + key_hash.substr(0, 12));
    BATON_ASSIGN_OR_RETURN(Statement * upd, Cached(charge, R"sql(
      UPDATE client_budgets SET spent_usd = spent_usd + CAST(?2 AS DOUBLE PRECISION),
        reserved_usd = (SELECT COALESCE(SUM(amount_usd), 0) FROM budget_reservations r WHERE r.key_hash = ?1)
      WHERE key_hash = ?1)sql"));
    upd->Bind(1, key_hash).Bind(2, charged);
    BATON_RETURN_IF_ERROR(upd->Run());
    return charged;
  }
};

Store::Store(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Store::~Store() = default;

StatusOr<std::unique_ptr<Store>> Store::Open(const std::string& path, const StoreOptions& options) {
  if (path.empty()) return Status::InvalidArgument("database path is empty (pass --db FILE or --db postgresql://...)");
  auto impl = std::make_unique<Impl>();
  BATON_ASSIGN_OR_RETURN(impl->db, store::OpenConnection(path, options));
  store::Connection& d = *impl->db;
  const std::string& name = d.name();  // never the password
  BATON_ASSIGN_OR_RETURN(int version, d.SchemaVersion());
  auto newer = [&](int v) {
    return Status::FailedPrecondition(
        fmt::format("{}: schema version {} was written by a newer baton (this one reads up to {})", name, v,
                    store::kSchemaVersion));
  };
  if (version > store::kSchemaVersion) return newer(version);
  if (!options.read_only) {
    BATON_RETURN_IF_ERROR(d.ConfigureForWriting().WithContext(name));
    if (version < store::kSchemaVersion) {
      // Serialised against other processes opening the same database; the version is read again under the lock,
      // since another one may have migrated meanwhile.
      BATON_RETURN_IF_ERROR(d.BeginMigration().WithContext(name));
      StatusOr<int> locked = d.SchemaVersion();
      Status st = locked.ok() ? Status::Ok() : locked.status();
      if (st.ok() && *locked > store::kSchemaVersion) st = newer(*locked);
      const int from = locked.ok() ? *locked : 0;
      for (int v = from + 1; st.ok() && v <= store::kSchemaVersion; ++v) st = d.ExecDdl(store::kSchemaSteps[v - 1]);
      if (st.ok() && from < store::kSchemaVersion) st = d.SetSchemaVersion(store::kSchemaVersion);
      if (st.ok()) st = d.Commit();
      if (!st.ok()) {
        (void)d.Rollback();
        return st.code() == StatusCode::kFailedPrecondition ? st : st.WithContext(name);
      }
    }
  } else if (version == 0) {
    return Status::FailedPrecondition(fmt::format("{}: empty database (run `baton import` first)", name));
  }
  return std::unique_ptr<Store>(new Store(std::move(impl)));
}

StatusOr<Store::Transaction> Store::Begin() {
  BATON_RETURN_IF_ERROR(impl_->db->Begin());
  return Transaction(this);
}

Store::Transaction::~Transaction() {
  if (store_ && store_->impl_->db->in_transaction()) (void)store_->impl_->db->Rollback();
}

Status Store::Transaction::Commit() {
  if (!store_) return Status::FailedPrecondition("no open transaction");
  BATON_RETURN_IF_ERROR(store_->impl_->db->Commit());
  store_ = nullptr;
  return Status::Ok();
}

StatusOr<int64_t> Store::UpsertExpert(const ExpertRecord& e) {
  if (e.name.empty()) return Status::InvalidArgument("expert name is empty");
  BATON_ASSIGN_OR_RETURN(std::optional<int64_t> id, FindExpert(e.name));
  if (id) {
    BATON_ASSIGN_OR_RETURN(Statement * fill, impl_->Cached(impl_->fill_prices, R"sql(
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
  BATON_ASSIGN_OR_RETURN(Statement * s, impl_->Cached(impl_->insert_expert, R"sql(
    INSERT INTO experts(name, params_b, usd_per_mtok_in, usd_per_mtok_out, price_source, backend_json)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6) RETURNING id)sql"));
  s->Bind(1, e.name).Bind(2, e.params_b).Bind(3, e.usd_per_mtok_in).Bind(4, e.usd_per_mtok_out);
  s->Bind(5, e.price_source).Bind(6, e.backend_json);
  StatusOr<int64_t> inserted = InsertedId(*s);
  if (!inserted.ok()) return inserted.status().WithContext(fmt::format("expert '{}'", e.name));
  return inserted;
}

StatusOr<int64_t> Store::InsertQuery(const QueryRecord& q) {
  BATON_ASSIGN_OR_RETURN(Statement * s, impl_->Cached(impl_->insert_query, R"sql(
    INSERT INTO queries(external_id, dataset, domain, text, reference, source) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
    RETURNING id)sql"));
  s->Bind(1, q.external_id).Bind(2, q.dataset).Bind(3, q.domain).Bind(4, q.text).Bind(5, q.reference);
  s->Bind(6, q.source);
  StatusOr<int64_t> id = InsertedId(*s);
  if (id.status().code() == StatusCode::kAlreadyExists) {
    return Status::AlreadyExists(
        fmt::format("query id '{}' of dataset '{}' is already in the database", q.external_id, q.dataset));
  }
  return id;
}

Status Store::InsertOutcome(const OutcomeRecord& o) {
  return InsertOutcomeReturningId(o).status();
}

StatusOr<int64_t> Store::InsertOutcomeReturningId(const OutcomeRecord& o) {
  BATON_ASSIGN_OR_RETURN(Statement * s, impl_->Cached(impl_->insert_outcome, R"sql(
    INSERT INTO outcomes(query_id, expert_id, score, cost_usd, tokens_in, tokens_out, latency_ms, source, time_unix_ms)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) RETURNING id)sql"));
  s->Bind(1, o.query_id).Bind(2, o.expert_id).Bind(3, o.score).Bind(4, o.cost_usd).Bind(5, o.tokens_in);
  s->Bind(6, o.tokens_out).Bind(7, o.latency_ms).Bind(8, std::string_view(OutcomeSourceName(o.source)));
  s->Bind(9, o.time_unix_ms ? o.time_unix_ms : NowMs());
  return InsertedId(*s);
}

Status Store::PutResponse(int64_t query_id, int64_t expert_id, const std::string& text) {
  BATON_ASSIGN_OR_RETURN(Statement * s,
                         impl_->Cached(impl_->put_response,
                                       "INSERT INTO responses(query_id, expert_id, text) VALUES (?1, ?2, ?3) "
                                       "ON CONFLICT (query_id, expert_id) DO UPDATE SET text = excluded.text"));
  s->Bind(1, query_id).Bind(2, expert_id).Bind(3, text);
  return s->Run();
}

Status Store::LogRequest(const RequestLogRecord& r) {
  BATON_ASSIGN_OR_RETURN(Statement * s, impl_->Cached(impl_->log_request, R"sql(
    INSERT INTO requests(time_unix_ms, client_key_hash, requested_model, expert, http_status, tokens_in, tokens_out,
                         cost_usd, latency_ms, prompt, request_id, note)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
    ON CONFLICT DO NOTHING)sql"));  // a request id already logged: a retried batch (schema v7)
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
  BATON_ASSIGN_OR_RETURN(Statement * s, impl_->Cached(impl_->log_archon, R"sql(
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
  BATON_ASSIGN_OR_RETURN(StmtPtr s, impl_->db->Prepare(R"sql(
    SELECT time_unix_ms, run_id, architecture, layer, component_index, component, expert, prompt_tokens,
           completion_tokens, cost_usd, latency_ms, status, parse
    FROM archon_calls WHERE ?1 = '' OR run_id = ?1 ORDER BY id)sql"));
  s->Bind(1, run_id);
  std::vector<ArchonCallRecord> out;
  while (true) {
    BATON_ASSIGN_OR_RETURN(bool row, s->Step());
    if (!row) break;
    ArchonCallRecord r;
    r.time_unix_ms = s->Int(0);
    r.run_id = s->Text(1);
    r.architecture = s->Text(2);
    r.layer = static_cast<int>(s->Int(3));
    r.component_index = static_cast<int>(s->Int(4));
    r.component = s->Text(5);
    r.expert = s->Text(6);
    r.prompt_tokens = s->Int(7);
    r.completion_tokens = s->Int(8);
    r.cost_usd = s->Double(9);
    r.latency_ms = s->Double(10);
    r.status = s->Text(11);
    r.parse = s->Text(12);
    out.push_back(std::move(r));
  }
  return out;
}

namespace {
// Runs a prepared single-id lookup; resets the cached statement on every path so it can be reused.
StatusOr<std::optional<int64_t>> LookupId(Statement& s) {
  StatusOr<bool> row = s.Step();
  std::optional<int64_t> id;
  if (row.ok() && *row) id = s.Int(0);
  s.Reset();
  if (!row.ok()) return row.status();
  return id;
}
}  // namespace

StatusOr<std::optional<int64_t>> Store::FindExpert(const std::string& name) {
  BATON_ASSIGN_OR_RETURN(Statement * s, impl_->Cached(impl_->find_expert, "SELECT id FROM experts WHERE name = ?1"));
  s->Bind(1, name);
  return LookupId(*s);
}

StatusOr<std::optional<int64_t>> Store::FindQuery(const std::string& dataset, const std::string& external_id) {
  BATON_ASSIGN_OR_RETURN(
      Statement * s,
      impl_->Cached(impl_->find_query, "SELECT id FROM queries WHERE dataset = ?1 AND external_id = ?2"));
  s->Bind(1, dataset).Bind(2, external_id);
  return LookupId(*s);
}

StatusOr<std::vector<ExpertRecord>> Store::ListExperts() {
  BATON_ASSIGN_OR_RETURN(
      StmtPtr s,
      impl_->db->Prepare(
          "SELECT id, name, params_b, usd_per_mtok_in, usd_per_mtok_out, price_source, backend_json FROM experts "
          "ORDER BY id"));
  std::vector<ExpertRecord> out;
  while (true) {
    BATON_ASSIGN_OR_RETURN(bool row, s->Step());
    if (!row) break;
    out.push_back({s->Int(0), std::string(s->Text(1)), s->OptDouble(2), s->OptDouble(3), s->OptDouble(4),
                   std::string(s->Text(5)), std::string(s->Text(6))});
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
  BATON_ASSIGN_OR_RETURN(StmtPtr s, impl_->db->Prepare(sql));
  for (size_t i = 0; i < datasets.size(); ++i) s->Bind(static_cast<int>(i + 1), datasets[i]);
  std::vector<QueryRecord> out;
  while (true) {
    BATON_ASSIGN_OR_RETURN(bool row, s->Step());
    if (!row) break;
    out.push_back({s->Int(0), std::string(s->Text(1)), std::string(s->Text(2)), std::string(s->Text(3)),
                   std::string(s->Text(4)), std::string(s->Text(5)), std::string(s->Text(6))});
  }
  return out;
}

StatusOr<std::vector<std::string>> Store::ListDatasets() {
  BATON_ASSIGN_OR_RETURN(StmtPtr s, impl_->db->Prepare("SELECT DISTINCT dataset FROM queries ORDER BY dataset"));
  std::vector<std::string> out;
  while (true) {
    BATON_ASSIGN_OR_RETURN(bool row, s->Step());
    if (!row) break;
    out.emplace_back(s->Text(0));
  }
  return out;
}

StatusOr<std::vector<DatasetInfo>> Store::DescribeDatasets() {
  BATON_ASSIGN_OR_RETURN(StmtPtr s, impl_->db->Prepare(R"sql(
    SELECT q.dataset, COUNT(DISTINCT q.id), COUNT(o.query_id) FROM queries q LEFT JOIN outcomes o ON o.query_id = q.id
    GROUP BY q.dataset ORDER BY q.dataset)sql"));
  std::vector<DatasetInfo> out;
  while (true) {
    BATON_ASSIGN_OR_RETURN(bool row, s->Step());
    if (!row) break;
    out.push_back({std::string(s->Text(0)), s->Int(1), s->Int(2)});
  }
  return out;
}

StatusOr<int64_t> Store::DeleteDataset(const std::string& dataset) {
  // Children first: outcomes and responses reference queries (foreign keys are on).
  for (const char* table : {"outcomes", "responses"}) {
    BATON_ASSIGN_OR_RETURN(StmtPtr s,
                           impl_->db->Prepare(fmt::format(
                               "DELETE FROM {} WHERE query_id IN (SELECT id FROM queries WHERE dataset = ?1)", table)));
    s->Bind(1, dataset);
    BATON_RETURN_IF_ERROR(s->Run());
  }
  BATON_ASSIGN_OR_RETURN(StmtPtr s, impl_->db->Prepare("DELETE FROM queries WHERE dataset = ?1"));
  s->Bind(1, dataset);
  BATON_RETURN_IF_ERROR(s->Run());
  return s->Changes();
}

Status Store::ForEachOutcome(const std::function<void(const OutcomeRecord&)>& fn) {
  BATON_ASSIGN_OR_RETURN(
      StmtPtr s,
      impl_->db->Prepare(
          "SELECT query_id, expert_id, score, cost_usd, tokens_in, tokens_out, latency_ms, source, time_unix_ms "
          "FROM outcomes ORDER BY query_id, expert_id"));
  OutcomeRecord o;
  while (true) {
    BATON_ASSIGN_OR_RETURN(bool row, s->Step());
    if (!row) break;
    o.query_id = s->Int(0);
    o.expert_id = s->Int(1);
    o.score = s->Double(2);
    o.cost_usd = s->OptDouble(3);
    o.tokens_in = s->OptInt(4);
    o.tokens_out = s->OptInt(5);
    o.latency_ms = s->OptDouble(6);
    o.source = ParseSource(s->Text(7));
    o.time_unix_ms = s->Int(8);
    fn(o);
  }
  return Status::Ok();
}

StatusOr<std::string> Store::GetResponse(int64_t query_id, int64_t expert_id) {
  BATON_ASSIGN_OR_RETURN(StmtPtr s,
                         impl_->db->Prepare("SELECT text FROM responses WHERE query_id = ?1 AND expert_id = ?2"));
  s->Bind(1, query_id).Bind(2, expert_id);
  BATON_ASSIGN_OR_RETURN(bool row, s->Step());
  if (!row)
    return Status::NotFound(fmt::format("no recorded response for query {} and expert {}", query_id, expert_id));
  return std::string(s->Text(0));
}

Status Store::UpsertClientBudget(const ClientBudgetRecord& b) {
  BATON_ASSIGN_OR_RETURN(StmtPtr s, impl_->db->Prepare(R"sql(
    INSERT INTO client_budgets(key_hash, name, budget_usd, spent_usd, reserved_usd) VALUES (?1, ?2, ?3, ?4, ?5)
    ON CONFLICT(key_hash) DO UPDATE SET name = excluded.name, budget_usd = excluded.budget_usd)sql"));
  s->Bind(1, b.key_hash).Bind(2, b.name).Bind(3, b.budget_usd).Bind(4, b.spent_usd).Bind(5, b.reserved_usd);
  return s->Run();
}

Status Store::SetClientSpend(const std::string& key_hash, double spent_usd, double reserved_usd) {
  BATON_ASSIGN_OR_RETURN(
      Statement * s, impl_->Cached(impl_->set_spend,
                                   "UPDATE client_budgets SET spent_usd = ?2, reserved_usd = ?3 WHERE key_hash = ?1"));
  s->Bind(1, key_hash).Bind(2, spent_usd).Bind(3, reserved_usd);
  BATON_RETURN_IF_ERROR(s->Run());
  if (s->Changes() == 0) return Status::NotFound("no client budget for key hash " + key_hash.substr(0, 12));
  return Status::Ok();
}

StatusOr<std::vector<ClientBudgetRecord>> Store::ListClientBudgets() {
  BATON_ASSIGN_OR_RETURN(
      StmtPtr s, impl_->db->Prepare("SELECT key_hash, name, budget_usd, spent_usd, reserved_usd FROM client_budgets "
                                    "ORDER BY name, key_hash"));
  std::vector<ClientBudgetRecord> out;
  while (true) {
    BATON_ASSIGN_OR_RETURN(bool row, s->Step());
    if (!row) break;
    out.push_back({std::string(s->Text(0)), std::string(s->Text(1)), s->Double(2), s->Double(3), s->Double(4)});
  }
  return out;
}

StatusOr<std::optional<ClientBudgetRecord>> Store::GetClientBudget(const std::string& key_hash) {
  BATON_ASSIGN_OR_RETURN(StmtPtr s, impl_->db->Prepare("SELECT key_hash, name, budget_usd, spent_usd, reserved_usd "
                                                       "FROM client_budgets WHERE key_hash = ?1"));
  s->Bind(1, key_hash);
  BATON_ASSIGN_OR_RETURN(bool row, s->Step());
  if (!row) return std::optional<ClientBudgetRecord>();
  return std::optional<ClientBudgetRecord>(
      ClientBudgetRecord{std::string(s->Text(0)), std::string(s->Text(1)), s->Double(2), s->Double(3), s->Double(4)});
}

StatusOr<int64_t> Store::ReserveBudget(const std::string& key_hash, double amount_usd, int64_t ttl_ms,
                                       const std::string& holder) {
  if (!(amount_usd >= 0) || !std::isfinite(amount_usd)) {
    return Status::InvalidArgument(
        fmt::format("a reservation of {} USD: the amount must be finite and >= 0", amount_usd));
  }
  if (ttl_ms <= 0) return Status::InvalidArgument(fmt::format("a reservation's ttl must be > 0 ms, got {}", ttl_ms));
  int64_t id = 0;
  BATON_RETURN_IF_ERROR(Atomically([&]() -> Status {
    // The check and the reservation are one statement under the row's lock: two replicas cannot both fit.
    BATON_ASSIGN_OR_RETURN(Statement * up, impl_->Cached(impl_->reserve, R"sql(
      UPDATE client_budgets SET reserved_usd = reserved_usd + CAST(?2 AS DOUBLE PRECISION)
      WHERE key_hash = ?1 AND spent_usd + reserved_usd + CAST(?2 AS DOUBLE PRECISION) <= budget_usd)sql"));
    up->Bind(1, key_hash).Bind(2, amount_usd);
    BATON_RETURN_IF_ERROR(up->Run());
    if (up->Changes() == 0) {
      // Only to explain the refusal (the transaction is rolled back): unknown key, or what did not fit.
      BATON_ASSIGN_OR_RETURN(std::optional<ClientBudgetRecord> b, GetClientBudget(key_hash));
      if (!b) return Status::NotFound("no client budget for key hash " + key_hash.substr(0, 12));
      return Status::ResourceExhausted(fmt::format(
          "budget of key '{}' ({}) exhausted: spent {} USD + reserved {} USD + needed {} USD > budget {} USD", b->name,
          key_hash.substr(0, 12), b->spent_usd, b->reserved_usd, amount_usd, b->budget_usd));
    }
    BATON_ASSIGN_OR_RETURN(Statement * ins, impl_->Cached(impl_->reservation, R"sql(
      INSERT INTO budget_reservations(key_hash, amount_usd, holder, expires_unix_ms) VALUES (?1, ?2, ?3, ?4)
      RETURNING id)sql"));
    ins->Bind(1, key_hash).Bind(2, amount_usd).Bind(3, holder).Bind(4, NowMs() + ttl_ms);
    BATON_ASSIGN_OR_RETURN(id, InsertedId(*ins));
    return Status::Ok();
  }));
  return id;
}

StatusOr<double> Store::SettleBudget(int64_t reservation_id, const std::string& key_hash, double actual_usd) {
  if (!(actual_usd >= 0) || !std::isfinite(actual_usd)) {
    return Status::InvalidArgument(fmt::format("a charge of {} USD: the amount must be finite and >= 0", actual_usd));
  }
  double charged = 0;
  BATON_RETURN_IF_ERROR(Atomically([&]() -> Status {
    // Gone already when the sweeper released it (expired): then nothing is given back, the charge still applies.
    BATON_ASSIGN_OR_RETURN(Statement * del, impl_->Cached(impl_->release, R"sql(
      DELETE FROM budget_reservations WHERE id = ?1 AND key_hash = ?2 RETURNING amount_usd)sql"));
    del->Bind(1, reservation_id).Bind(2, key_hash);
    StatusOr<bool> row = del->Step();
    const double released = row.ok() && *row ? del->Double(0) : 0;
    del->Reset();
    if (!row.ok()) return row.status();
    BATON_ASSIGN_OR_RETURN(charged, impl_->ReleaseAndCharge(key_hash, released, actual_usd));
    return Status::Ok();
  }));
  return charged;
}

StatusOr<int64_t> Store::ReleaseExpiredReservations(int64_t now_unix_ms) {
  return ReleaseReservations("expires_unix_ms < ?1", [now_unix_ms](store::Statement& s) { s.Bind(1, now_unix_ms); });
}

StatusOr<int64_t> Store::ReleaseReservationsOf(const std::string& holder) {
  return ReleaseReservations("holder = ?1", [&holder](store::Statement& s) { s.Bind(1, holder); });
}

StatusOr<int64_t> Store::ReleaseReservations(const std::string& where,
                                             const std::function<void(store::Statement&)>& bind) {
  int64_t n = 0;
  BATON_RETURN_IF_ERROR(Atomically([&]() -> Status {
    n = 0;
    BATON_ASSIGN_OR_RETURN(StmtPtr del, impl_->db->Prepare("DELETE FROM budget_reservations WHERE " + where +
                                                           " RETURNING key_hash, amount_usd"));
    bind(*del);
    std::map<std::string, double> freed;  // ordered: rows are locked in one order by every sweeper
    while (true) {
      BATON_ASSIGN_OR_RETURN(bool row, del->Step());
      if (!row) break;
      freed[std::string(del->Text(0))] += del->Double(1);
      ++n;
    }
    for (const auto& [key, amount] : freed) {
      StatusOr<double> st = impl_->ReleaseAndCharge(key, amount, 0);
      if (!st.ok()) return st.status();
    }
    return Status::Ok();
  }));
  return n;
}

Status Store::Atomically(const std::function<Status()>& fn) {
  store::Connection& db = *impl_->db;
  // Inside a transaction a savepoint (names are per connection and nest: each level releases or rolls back its
  // own); outside one a transaction of its own, since PostgreSQL has no savepoint outside a transaction.
  const bool nested = db.in_transaction();
  BATON_RETURN_IF_ERROR(nested ? db.Exec("SAVEPOINT baton_atomically") : db.Begin());
  Status st;
  try {
    st = fn();
  } catch (const std::exception& e) {
    st = Status::Internal(std::string("exception inside Store::Atomically: ") + e.what());
  }
  if (!st.ok()) {
    if (nested) {
      (void)db.Exec("ROLLBACK TO SAVEPOINT baton_atomically");
      (void)db.Exec("RELEASE SAVEPOINT baton_atomically");
    } else {
      (void)db.Rollback();
    }
    return st;
  }
  return nested ? db.Exec("RELEASE SAVEPOINT baton_atomically") : db.Commit();
}

StatusOr<std::optional<RequestLogRecord>> Store::FindRequest(const std::string& request_id) {
  BATON_ASSIGN_OR_RETURN(StmtPtr s, impl_->db->Prepare(R"sql(
    SELECT time_unix_ms, client_key_hash, requested_model, expert, http_status, tokens_in, tokens_out, cost_usd,
           latency_ms, prompt, request_id, note
    FROM requests WHERE request_id = ?1 ORDER BY id DESC LIMIT 1)sql"));
  s->Bind(1, request_id);
  BATON_ASSIGN_OR_RETURN(bool row, s->Step());
  if (!row) return std::optional<RequestLogRecord>();
  RequestLogRecord r;
  r.time_unix_ms = s->Int(0);
  r.client_key_hash = std::string(s->Text(1));
  r.requested_model = std::string(s->Text(2));
  r.expert = std::string(s->Text(3));
  r.http_status = static_cast<int>(s->Int(4));
  r.tokens_in = s->OptInt(5);
  r.tokens_out = s->OptInt(6);
  r.cost_usd = s->OptDouble(7);
  r.latency_ms = s->OptDouble(8);
  if (!s->IsNull(9)) r.prompt = std::string(s->Text(9));
  r.request_id = std::string(s->Text(10));
  if (!s->IsNull(11)) r.note = std::string(s->Text(11));
  return std::optional<RequestLogRecord>(std::move(r));
}

Status Store::InsertFeedback(const FeedbackRecord& f) {
  BATON_ASSIGN_OR_RETURN(StmtPtr s, impl_->db->Prepare(R"sql(
    INSERT INTO feedback(request_id, client_key_hash, score, note, query_id, expert_id, outcome_id, time_unix_ms)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8))sql"));
  s->Bind(1, f.request_id).Bind(2, f.client_key_hash).Bind(3, f.score);
  if (f.note.empty())
    s->BindNull(4);
  else
    s->Bind(4, f.note);
  s->Bind(5, f.query_id).Bind(6, f.expert_id).Bind(7, f.outcome_id).Bind(8, f.time_unix_ms ? f.time_unix_ms : NowMs());
  Status st = s->Run();
  if (st.code() == StatusCode::kAlreadyExists) {
    return Status::AlreadyExists(fmt::format("request {} already has feedback", f.request_id.substr(0, 100)));
  }
  return st;
}

StatusOr<bool> Store::HasFeedback(const std::string& request_id) {
  BATON_ASSIGN_OR_RETURN(StmtPtr s, impl_->db->Prepare("SELECT 1 FROM feedback WHERE request_id = ?1"));
  s->Bind(1, request_id);
  return s->Step();
}

StatusOr<int64_t> Store::InsertOnboarding(const OnboardingRecord& r) {
  BATON_ASSIGN_OR_RETURN(StmtPtr s, impl_->db->Prepare(R"sql(
    INSERT INTO onboarding(time_unix_ms, expert, decision, replaces, evidence_json) VALUES (?1, ?2, ?3, ?4, ?5)
    RETURNING id)sql"));
  s->Bind(1, r.time_unix_ms ? r.time_unix_ms : NowMs()).Bind(2, r.expert).Bind(3, r.decision).Bind(4, r.replaces);
  s->Bind(5, r.evidence_json);
  return InsertedId(*s);
}

StatusOr<std::vector<OnboardingRecord>> Store::ListOnboarding() {
  BATON_ASSIGN_OR_RETURN(
      StmtPtr s,
      impl_->db->Prepare("SELECT id, time_unix_ms, expert, decision, replaces, evidence_json FROM onboarding "
                         "ORDER BY id"));
  std::vector<OnboardingRecord> out;
  while (true) {
    BATON_ASSIGN_OR_RETURN(bool row, s->Step());
    if (!row) break;
    out.push_back({s->Int(0), s->Int(1), std::string(s->Text(2)), std::string(s->Text(3)), std::string(s->Text(4)),
                   std::string(s->Text(5))});
  }
  return out;
}

StatusOr<int64_t> Store::CountRows(const std::string& table) {
  BATON_ASSIGN_OR_RETURN(StmtPtr s, impl_->db->Prepare(fmt::format("SELECT COUNT(*) FROM \"{}\"", table)));
  BATON_ASSIGN_OR_RETURN(bool row, s->Step());
  if (!row) return Status::Internal(fmt::format("COUNT(*) of {} returned no row", table));
  return s->Int(0);
}

}  // namespace baton
