#include "store/sqlite.h"

#include <fmt/format.h>

namespace baton::store {

StatusOr<Db> Db::Open(const std::string& path, bool create) {
  sqlite3* raw = nullptr;
  const int flags = SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0) | SQLITE_OPEN_NOMUTEX;
  const int rc = sqlite3_open_v2(path.c_str(), &raw, flags, nullptr);
  Db db;
  db.db_.reset(raw);
  if (rc != SQLITE_OK) {
    if (!create && rc == SQLITE_CANTOPEN) return Status::NotFound(fmt::format("{}: no such database", path));
    return Status::IoError(fmt::format("{}: cannot open database: {}", path, raw ? sqlite3_errmsg(raw) : "no memory"));
  }
  sqlite3_extended_result_codes(raw, 1);
  sqlite3_busy_timeout(raw, 5000);
  return db;
}

Status Db::Error(std::string_view what) const {
  return Status::IoError(fmt::format("{}: {}", what, sqlite3_errmsg(db_.get())));
}

Status Db::Exec(std::string_view sql) {
  char* err = nullptr;
  const std::string s(sql);
  if (sqlite3_exec(db_.get(), s.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    Status st = Status::IoError(fmt::format("SQL failed: {}", err ? err : "unknown error"));
    sqlite3_free(err);
    return st;
  }
  return Status::Ok();
}

StatusOr<Stmt> Db::Prepare(std::string_view sql) {
  sqlite3_stmt* raw = nullptr;
  if (sqlite3_prepare_v3(db_.get(), sql.data(), static_cast<int>(sql.size()), SQLITE_PREPARE_PERSISTENT, &raw,
                         nullptr) != SQLITE_OK) {
    return Error(fmt::format("cannot prepare `{}`", sql));
  }
  return Stmt(std::unique_ptr<sqlite3_stmt, StmtFinalizer>(raw), db_.get());
}

Stmt& Stmt::Bind(int i, int64_t v) {
  if (sqlite3_bind_int64(stmt_.get(), i, v) != SQLITE_OK) bind_error_ = Status::Internal(sqlite3_errmsg(db_));
  return *this;
}
Stmt& Stmt::Bind(int i, double v) {
  if (sqlite3_bind_double(stmt_.get(), i, v) != SQLITE_OK) bind_error_ = Status::Internal(sqlite3_errmsg(db_));
  return *this;
}
Stmt& Stmt::Bind(int i, std::string_view v) {
  if (sqlite3_bind_text(stmt_.get(), i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT) != SQLITE_OK) {
    bind_error_ = Status::Internal(sqlite3_errmsg(db_));
  }
  return *this;
}
Stmt& Stmt::Bind(int i, const std::optional<double>& v) {
  return v ? Bind(i, *v) : BindNull(i);
}
Stmt& Stmt::Bind(int i, const std::optional<int64_t>& v) {
  return v ? Bind(i, *v) : BindNull(i);
}
Stmt& Stmt::BindNull(int i) {
  if (sqlite3_bind_null(stmt_.get(), i) != SQLITE_OK) bind_error_ = Status::Internal(sqlite3_errmsg(db_));
  return *this;
}

StatusOr<bool> Stmt::Step() {
  if (!bind_error_.ok()) return bind_error_;
  const int rc = sqlite3_step(stmt_.get());
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  const int primary = rc & 0xff;
  Status st = primary == SQLITE_CONSTRAINT ? Status::AlreadyExists(sqlite3_errmsg(db_))
                                           : Status::IoError(fmt::format("SQLite: {}", sqlite3_errmsg(db_)));
  sqlite3_reset(stmt_.get());
  return st;
}

Status Stmt::Run() {
  StatusOr<bool> r = Step();
  Reset();
  return r.ok() ? Status::Ok() : r.status();
}

void Stmt::Reset() {
  sqlite3_reset(stmt_.get());
  sqlite3_clear_bindings(stmt_.get());
  bind_error_ = Status::Ok();
}

std::string_view Stmt::Text(int col) const {
  const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_.get(), col));
  if (!p) return {};
  return {p, static_cast<size_t>(sqlite3_column_bytes(stmt_.get(), col))};
}
std::optional<double> Stmt::OptDouble(int col) const {
  if (IsNull(col)) return std::nullopt;
  return Double(col);
}
std::optional<int64_t> Stmt::OptInt(int col) const {
  if (IsNull(col)) return std::nullopt;
  return Int(col);
}

}  // namespace baton::store
