// Store: baton's database of experts, queries, recorded outcomes, recorded answers, request logs and budgets.
//
// Two engines behind one API: an SQLite file in WAL mode (the embedded default), or a PostgreSQL database named by a
// postgresql:// URL (shared by several processes, e.g. `baton serve` replicas). Everything baton learns from lives
// here: outcomes come from imports (`imported`), from the gateway's live traffic (`live`) and from the self-play loop
// (`selfplay`). Writers group their work in a Transaction, which rolls back unless committed, so a failed import leaves
// the database exactly as it was.
//
// Example:
//   BATON_ASSIGN_OR_RETURN(std::unique_ptr<Store> store, Store::Open("baton.db"));
//   BATON_ASSIGN_OR_RETURN(Store::Transaction tx, store->Begin());
//   BATON_ASSIGN_OR_RETURN(int64_t e, store->UpsertExpert({.name = "gpt-4"}));
//   ...
//   BATON_RETURN_IF_ERROR(tx.Commit());
//
// Thread-safety: a Store (one database connection) is used by one thread at a time; open one Store per thread for
// concurrent access. Many Stores, in one process or many, may share a database: SQLite's WAL lets readers and one
// writer proceed together (writers queue on its lock); on PostgreSQL writers lock only the rows they change. The
// budget operations (ReserveBudget, SettleBudget, ReleaseExpiredReservations) are atomic in the database itself, so
// any number of processes sharing one PostgreSQL database never together overspend a key's budget.
//
// PostgreSQL connection loss: a statement that fails because the connection dropped is retried after reconnecting,
// with exponential backoff (StoreOptions::retry_*), but never inside an open transaction: then the transaction is
// lost, every later call in it and its Commit fail with Unavailable, and the caller retries the whole transaction.
// When the database stays down, calls return Unavailable naming the database (never its password) and the cause.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "baton/status.h"

namespace baton {
namespace store {
class Statement;  // src/store/backend.h
}  // namespace store

// An expert: one LLM (or pipeline) baton can send a query to.
struct ExpertRecord {
  int64_t id = 0;  // assigned by the store
  std::string name;
  std::optional<double> params_b;          // parameter count in billions, when known
  std::optional<double> usd_per_mtok_in;   // list price per 1M input tokens, when known
  std::optional<double> usd_per_mtok_out;  // list price per 1M output tokens, when known
  std::string price_source;                // where the prices come from
  std::string backend_json = "{}";         // backend settings (kind, endpoint, ...), a JSON object
};

struct QueryRecord {
  int64_t id = 0;           // assigned by the store
  std::string external_id;  // the dataset's id, unique within its dataset
  std::string dataset;      // which dataset (folder name) it came from
  std::string domain;       // subject or task
  std::string text;         // the prompt as the models saw it
  std::string reference;    // gold answer, "" when unknown
  std::string source;       // the dataset's own provenance field
};

enum class OutcomeSource { kImported, kLive, kSelfPlay };
const char* OutcomeSourceName(OutcomeSource s);

// One observation: how well `expert` answered `query`, and what it cost.
struct OutcomeRecord {
  int64_t query_id = 0;   // QueryRecord::id
  int64_t expert_id = 0;  // ExpertRecord::id
  double score = 0;       // in [0, 1]
  std::optional<double> cost_usd;
  std::optional<int64_t> tokens_in;
  std::optional<int64_t> tokens_out;
  std::optional<double> latency_ms;
  OutcomeSource source = OutcomeSource::kImported;
  int64_t time_unix_ms = 0;  // 0 = now
};

// One request the gateway served.
struct RequestLogRecord {
  int64_t time_unix_ms = 0;  // 0 = now
  std::string client_key_hash;
  std::string requested_model;
  std::string expert;
  int http_status = 0;
  std::optional<int64_t> tokens_in;
  std::optional<int64_t> tokens_out;
  std::optional<double> cost_usd;
  std::optional<double> latency_ms;
  std::optional<std::string> prompt;  // only when the configuration allows recording prompts
  std::string request_id;             // the id the gateway answered with (x-request-id); schema v3
  std::string note;                   // how it ended when not plainly, e.g. "client_cancelled"; "" = nothing to say
};

// A gateway client key's budget (schema v2). The key itself is never stored, only its SHA-256.
struct ClientBudgetRecord {
  std::string key_hash;  // SHA-256 of the key, lowercase hex
  std::string name;
  double budget_usd = 0;
  double spent_usd = 0;
  double reserved_usd = 0;  // reserved by calls in flight when last persisted
};

// One inference call of an Archon architecture run (schema v4), or one component that makes no call (vote,
// predicted ranker; expert "" and no tokens).
struct ArchonCallRecord {
  int64_t time_unix_ms = 0;  // 0 = now (when stored)
  std::string run_id;        // groups the calls of one run
  std::string architecture;  // Architecture::name
  int layer = 0;             // 0-based
  int component_index = 0;   // 0-based within the layer
  std::string component;     // its type name, with the stage for two-stage components ("verifier:verdict")
  std::string expert;
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
  double cost_usd = 0;
  double latency_ms = 0;
  std::string status = "ok";  // "ok" or the call's error
  std::string parse = "n/a";  // how its output parsed: "ok", "n/a" (nothing to parse), "failed: ...", "partial: ..."
};

// A client's judgement of a request the gateway answered (POST /v1/feedback; schema v5). At most one per request.
struct FeedbackRecord {
  std::string request_id;       // the request's x-request-id
  std::string client_key_hash;  // the key that sent the feedback (always the request's own key)
  double score = 0;             // in [0, 1]
  std::string note;             // the client's free text, "" = none
  int64_t query_id = 0;         // the query the request's prompt became
  int64_t expert_id = 0;        // the expert that answered
  int64_t outcome_id = 0;       // the outcome row (source 'live') the feedback became
  int64_t time_unix_ms = 0;     // 0 = now
};

// What `baton onboard` decided about a candidate expert (schema v5).
struct OnboardingRecord {
  int64_t id = 0;            // assigned by the store
  int64_t time_unix_ms = 0;  // 0 = now
  std::string expert;
  std::string decision;       // "join", "replace" or "reject"
  std::string replaces;       // the member it replaces ("replace" only)
  std::string evidence_json;  // the figures behind the decision, a JSON object
};

// One dataset as `baton datasets` lists it.
struct DatasetInfo {
  std::string name;
  int64_t queries = 0;
  int64_t outcomes = 0;
};

struct StoreOptions {
  bool create = true;      // create the file and schema when missing (PostgreSQL: the schema only). Default: true
  bool read_only = false;  // Default: false
  // PostgreSQL: reconnect after a lost connection waiting retry_initial_ms, doubling up to retry_max_ms between
  // tries, for at most retry_total_ms in all before the call returns Unavailable.
  int retry_initial_ms = 50;
  int retry_max_ms = 1000;
  int retry_total_ms = 5000;
  int connect_timeout_s = 5;  // PostgreSQL: per connection attempt (libpq connect_timeout) unless the URL sets it
};

// Whether `target` names a PostgreSQL database (a postgresql:// or postgres:// URL) rather than an SQLite file.
bool IsDatabaseUrl(const std::string& target);
// `target` as messages may show it: a URL with its password replaced by ***; a file path unchanged.
std::string DatabaseDisplayName(const std::string& target);

class Store {
 public:
  class Transaction;

  // Opens or creates the database at `path` and brings its schema up to the current version: a
  // postgresql://[user[:password]@][host][:port]/dbname[?param=value...] URL (also postgres://; libpq's syntax, the
  // database must exist) opens PostgreSQL, anything else is an SQLite file (":memory:" for a private in-memory one).
  // A database written by a newer baton is refused with FailedPrecondition; a PostgreSQL server that cannot be
  // reached is Unavailable. Concurrent Opens of one database (several processes) migrate it once.
  static StatusOr<std::unique_ptr<Store>> Open(const std::string& path, const StoreOptions& options = {});
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // Starts a write transaction (SQLite: BEGIN IMMEDIATE). REQUIRES: no transaction is open on this Store.
  StatusOr<Transaction> Begin();

  // Inserts the expert or, when the name exists, returns the existing id; prices given here fill in unknown ones.
  StatusOr<int64_t> UpsertExpert(const ExpertRecord& expert);
  // Inserts the query. AlreadyExists when its (dataset, external_id) is taken.
  StatusOr<int64_t> InsertQuery(const QueryRecord& query);
  // Inserts the outcome. For imported outcomes, AlreadyExists when the (query, expert) pair already has one.
  Status InsertOutcome(const OutcomeRecord& outcome);
  // Inserts or replaces the recorded answer text of `expert` to `query`.
  Status PutResponse(int64_t query_id, int64_t expert_id, const std::string& text);
  // Logs the request; a request id already logged is left as it is (a retried batch), so each id is logged once.
  Status LogRequest(const RequestLogRecord& request);
  // Appends Archon call traces (in one statement each; wrap many in a Transaction for speed).
  Status LogArchonCall(const ArchonCallRecord& call);
  // The traces of one run (all runs when run_id is ""), in insertion order.
  StatusOr<std::vector<ArchonCallRecord>> ListArchonCalls(const std::string& run_id = "");
  // InsertOutcome, returning the new row's id.
  StatusOr<int64_t> InsertOutcomeReturningId(const OutcomeRecord& outcome);
  // The latest logged request with this id (x-request-id), nullopt when none.
  StatusOr<std::optional<RequestLogRecord>> FindRequest(const std::string& request_id);
  // Inserts the feedback row. AlreadyExists when the request already has feedback (a UNIQUE key: never two).
  Status InsertFeedback(const FeedbackRecord& feedback);
  StatusOr<bool> HasFeedback(const std::string& request_id);
  StatusOr<int64_t> InsertOnboarding(const OnboardingRecord& record);
  StatusOr<std::vector<OnboardingRecord>> ListOnboarding();

  // Runs `fn` as one all-or-nothing unit (a savepoint inside a Transaction, a transaction of its own outside one): its
  // writes stay when it returns OK and are undone when it returns an error (returned as is) or throws (Internal).
  Status Atomically(const std::function<Status()>& fn);

  // Inserts the key's budget or, when the key exists, updates its name and budget and keeps what it has spent.
  Status UpsertClientBudget(const ClientBudgetRecord& budget);
  // Sets the key's spent and reserved amounts. NotFound when the key has no budget row.
  Status SetClientSpend(const std::string& key_hash, double spent_usd, double reserved_usd);
  StatusOr<std::vector<ClientBudgetRecord>> ListClientBudgets();
  StatusOr<std::optional<ClientBudgetRecord>> GetClientBudget(const std::string& key_hash);

  // Shared budgets (schema v6). Each is one transaction whose checks are in its SQL statements (a conditional UPDATE
  // under the key's row lock), never a read-modify-write in C++; inside an open Transaction they run in a savepoint.
  //
  // Reserves amount_usd (>= 0) on the key, atomically in the database: succeeds only when
  // spent + reserved + amount <= budget, and returns the reservation's id. ResourceExhausted (the message says
  // spent/budget/reserved/needed) when it does not fit; NotFound for an unknown key; Unavailable when the database
  // is down. The reservation expires ttl_ms (> 0) from now; `holder` says who holds it (e.g. a replica's name).
  StatusOr<int64_t> ReserveBudget(const std::string& key_hash, double amount_usd, int64_t ttl_ms,
                                  const std::string& holder);
  // Ends the reservation: releases its amount and charges min(actual_usd, what the key has left), in one
  // transaction; returns what was charged. A reservation that already expired (released by the sweeper) still
  // charges min(actual, room). NotFound for an unknown key.
  StatusOr<double> SettleBudget(int64_t reservation_id, const std::string& key_hash, double actual_usd);
  // Deletes reservations whose expires_unix_ms < now_unix_ms and gives their amounts back; returns how many.
  StatusOr<int64_t> ReleaseExpiredReservations(int64_t now_unix_ms);
  // Deletes every reservation `holder` holds and gives the amounts back; returns how many. For a replica starting
  // again under the same id: what its previous incarnation held is no longer in flight.
  StatusOr<int64_t> ReleaseReservationsOf(const std::string& holder);

  // The id, nullopt when no such row exists, or the database's error (never turned into "not found").
  StatusOr<std::optional<int64_t>> FindExpert(const std::string& name);
  StatusOr<std::optional<int64_t>> FindQuery(const std::string& dataset, const std::string& external_id);

  StatusOr<std::vector<ExpertRecord>> ListExperts();
  // Queries of the given datasets (all when empty), in insertion order.
  StatusOr<std::vector<QueryRecord>> ListQueries(const std::vector<std::string>& datasets = {});
  StatusOr<std::vector<std::string>> ListDatasets();
  // Every dataset with its query and outcome counts, by name.
  StatusOr<std::vector<DatasetInfo>> DescribeDatasets();
  // Deletes the dataset's queries with their outcomes and responses; returns how many queries went (0 when none).
  // Experts stay: they are shared by datasets. Call it inside a Transaction to make it part of an all-or-nothing
  // change (e.g. a re-import).
  StatusOr<int64_t> DeleteDataset(const std::string& dataset);
  // Calls `fn` for every outcome, ordered by query then expert.
  Status ForEachOutcome(const std::function<void(const OutcomeRecord&)>& fn);
  // The recorded answer, or NotFound.
  StatusOr<std::string> GetResponse(int64_t query_id, int64_t expert_id);

  // Rows in `table`; the database's error (e.g. no such table) as a Status.
  StatusOr<int64_t> CountRows(const std::string& table);

 private:
  struct Impl;
  explicit Store(std::unique_ptr<Impl> impl);
  // Deletes the reservations matching `where` (SQL over budget_reservations, parameters bound by `bind`) and gives
  // their amounts back, in one all-or-nothing unit; returns how many.
  StatusOr<int64_t> ReleaseReservations(const std::string& where, const std::function<void(store::Statement&)>& bind);
  std::unique_ptr<Impl> impl_;
};

// RAII write transaction: rolls back on destruction unless Commit() succeeded.
class Store::Transaction {
 public:
  Transaction(Transaction&& other) noexcept : store_(other.store_) { other.store_ = nullptr; }
  Transaction& operator=(Transaction&&) = delete;
  ~Transaction();
  Status Commit();

 private:
  friend class Store;
  explicit Transaction(Store* store) : store_(store) {}
  Store* store_;
};

}  // namespace baton
