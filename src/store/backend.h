// The store's database engines behind one small interface: a Connection that prepares Statements and runs
// transactions, implemented for SQLite (sqlite.cc) and PostgreSQL through libpq (postgres.cc). store.cc is written
// once over it. Internal to the store stage.
//
// SQL is written once, in the common subset of both dialects, with SQLite-style numbered placeholders (?1, ?2, ...)
// and RETURNING for generated ids. Each Connection translates it in one place (PostgresPlaceholders, PostgresDdl, sqlite.cc's TranslateSql):
// PostgreSQL gets $1, $2, ..., LEAST/GREATEST and BIGINT/DOUBLE PRECISION/identity columns; SQLite gets MIN/MAX and
// loses `FOR UPDATE`. Schema steps (schema.h) are written in SQLite's DDL and translated for PostgreSQL.
//
// Thread-safety: a Connection and its Statements belong to one thread at a time.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "baton/status.h"
#include "baton/store.h"

namespace baton::store {

enum class Dialect { kSqlite, kPostgres };

// A prepared statement. Bind, then Step through the rows (or Run to completion), then Reset for the next use.
class Statement {
 public:
  virtual ~Statement() = default;

  // Binds are 1-based like the placeholders. A nullopt binds NULL.
  virtual Statement& Bind(int i, int64_t v) = 0;
  virtual Statement& Bind(int i, double v) = 0;
  virtual Statement& Bind(int i, std::string_view v) = 0;
  virtual Statement& BindNull(int i) = 0;
  Statement& Bind(int i, const std::optional<double>& v) { return v ? Bind(i, *v) : BindNull(i); }
  Statement& Bind(int i, const std::optional<int64_t>& v) { return v ? Bind(i, *v) : BindNull(i); }
  Statement& Bind(int i, const std::string& v) { return Bind(i, std::string_view(v)); }
  Statement& Bind(int i, const char* v) { return Bind(i, std::string_view(v)); }

  // Steps once: true when a row is available, false when done. A constraint violation is AlreadyExists (unique) or
  // InvalidArgument (other checks, PostgreSQL only); a lost database connection is Unavailable.
  virtual StatusOr<bool> Step() = 0;
  // Steps to completion (for INSERT/UPDATE/DELETE) and resets for the next use.
  Status Run() {
    StatusOr<bool> r = Step();
    while (r.ok() && *r) r = Step();
    Reset();
    return r.ok() ? Status::Ok() : r.status();
  }
  // Forgets the current execution and the bindings; Changes() stays.
  virtual void Reset() = 0;
  // Rows inserted, updated or deleted by the last completed execution.
  virtual int64_t Changes() const = 0;

  virtual bool IsNull(int col) const = 0;
  virtual int64_t Int(int col) const = 0;
  virtual double Double(int col) const = 0;
  virtual std::string_view Text(int col) const = 0;
  std::optional<double> OptDouble(int col) const { return IsNull(col) ? std::nullopt : std::optional(Double(col)); }
  std::optional<int64_t> OptInt(int col) const { return IsNull(col) ? std::nullopt : std::optional(Int(col)); }
};

using StmtPtr = std::unique_ptr<Statement>;

class Connection {
 public:
  virtual ~Connection() = default;
  virtual Dialect dialect() const = 0;
  // The database for messages: the file path, or the URL without its password.
  virtual const std::string& name() const = 0;

  // Runs one or more statements that return no rows (no placeholders; translated like Prepare's SQL).
  virtual Status Exec(std::string_view sql) = 0;
  virtual StatusOr<StmtPtr> Prepare(std::string_view sql) = 0;

  // Write transactions: BEGIN IMMEDIATE on SQLite (takes the write lock now), BEGIN on PostgreSQL (row locks are
  // taken by the statements). Rollback always ends the transaction, even when the connection is gone.
  virtual Status Begin() = 0;
  virtual Status Commit() = 0;
  virtual Status Rollback() = 0;
  virtual bool in_transaction() const = 0;

  // Schema bookkeeping. SchemaVersion: 0 for an empty database; DataLoss when the file is not a database.
  virtual StatusOr<int> SchemaVersion() = 0;
  // Sets the connection up for writing (SQLite: WAL, foreign keys, cache).
  virtual Status ConfigureForWriting() = 0;
  // Begins the migration transaction, serialised against other processes opening the same database (SQLite: the
  // write lock; PostgreSQL: an advisory lock held until the transaction ends).
  virtual Status BeginMigration() = 0;
  // Runs one schema step written in SQLite's DDL.
  virtual Status ExecDdl(std::string_view sqlite_ddl) = 0;
  virtual Status SetSchemaVersion(int version) = 0;
};

// Opens `target`: a postgresql:// or postgres:// URL (PostgreSQL), anything else an SQLite path.
StatusOr<std::unique_ptr<Connection>> OpenConnection(const std::string& target, const StoreOptions& options);
StatusOr<std::unique_ptr<Connection>> OpenSqlite(const std::string& path, const StoreOptions& options);
StatusOr<std::unique_ptr<Connection>> OpenPostgres(const std::string& url, const StoreOptions& options);

// Whether `target` names a PostgreSQL database (postgresql:// or postgres://, any case).
bool IsPostgresUrl(std::string_view target);
// The URL with any password replaced by "***" (user:***@host), for messages; other text unchanged.
std::string RedactUrl(std::string_view url);

// SQLite's DDL (schema.h) as PostgreSQL spells it: INTEGER PRIMARY KEY -> identity column, INTEGER -> BIGINT,
// REAL -> DOUBLE PRECISION, WITHOUT ROWID dropped.
std::string PostgresDdl(std::string_view sqlite_ddl);

// Rewrites SQLite-style ?N placeholders to PostgreSQL's $N, outside quoted strings and identifiers.
std::string PostgresPlaceholders(std::string_view sql);

}  // namespace baton::store
