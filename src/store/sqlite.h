// Small RAII wrappers over SQLite's C API: a connection (Db) and a prepared statement (Stmt).
// Every call returns a Status carrying SQLite's own message. Internal to the store stage.
//
// Thread-safety: a Db and its Stmts belong to one thread at a time (SQLite "multi-thread" mode).
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "baton/status.h"

namespace baton::store {

struct DbCloser {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
struct StmtFinalizer {
  void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
};

class Stmt;

class Db {
 public:
  // Opens (creating when `create`) the database at `path`; ":memory:" for an in-memory one.
  static StatusOr<Db> Open(const std::string& path, bool create);

  // Runs one or more statements that return no rows.
  Status Exec(std::string_view sql);
  StatusOr<Stmt> Prepare(std::string_view sql);

  int64_t LastInsertRowId() const { return sqlite3_last_insert_rowid(db_.get()); }
  int Changes() const { return sqlite3_changes(db_.get()); }
  sqlite3* get() const { return db_.get(); }
  Status Error(std::string_view what) const;

 private:
  std::unique_ptr<sqlite3, DbCloser> db_;
};

class Stmt {
 public:
  Stmt(std::unique_ptr<sqlite3_stmt, StmtFinalizer> stmt, sqlite3* db) : stmt_(std::move(stmt)), db_(db) {}

  // Binds are 1-based like SQLite's. A nullopt binds NULL.
  Stmt& Bind(int i, int64_t v);
  Stmt& Bind(int i, double v);
  Stmt& Bind(int i, std::string_view v);
  Stmt& Bind(int i, const std::optional<double>& v);
  Stmt& Bind(int i, const std::optional<int64_t>& v);
  Stmt& BindNull(int i);

  // Steps once: true when a row is available, false when done.
  StatusOr<bool> Step();
  // Steps to completion (for INSERT/UPDATE) and resets for the next use.
  Status Run();
  void Reset();

  bool IsNull(int col) const { return sqlite3_column_type(stmt_.get(), col) == SQLITE_NULL; }
  int64_t Int(int col) const { return sqlite3_column_int64(stmt_.get(), col); }
  double Double(int col) const { return sqlite3_column_double(stmt_.get(), col); }
  std::string_view Text(int col) const;
  std::optional<double> OptDouble(int col) const;
  std::optional<int64_t> OptInt(int col) const;

 private:
  std::unique_ptr<sqlite3_stmt, StmtFinalizer> stmt_;
  sqlite3* db_;
  Status bind_error_;
};

}  // namespace baton::store
