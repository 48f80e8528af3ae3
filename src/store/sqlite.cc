// The SQLite engine of the store: one file in WAL mode (or ":memory:").
#include <sqlite3.h>

#include <fmt/format.h>

#include "store/backend.h"

namespace baton::store {
namespace {

struct DbCloser {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
struct StmtFinalizer {
  void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
};

// SQLite spells PostgreSQL's LEAST/GREATEST as the scalar MIN/MAX and has no row locks (BEGIN IMMEDIATE already
// serialises writers), so `FOR UPDATE` goes.
std::string TranslateSql(std::string_view sql) {
  std::string out(sql);
  auto replace_all = [&](std::string_view from, std::string_view to) {
    for (size_t p = out.find(from); p != std::string::npos; p = out.find(from, p + to.size())) {
      out.replace(p, from.size(), to);
    }
  };
  replace_all("LEAST(", "MIN(");
  replace_all("GREATEST(", "MAX(");
  replace_all(" FOR UPDATE", "");
  return out;
}

class SqliteStatement final : public Statement {
 public:
  SqliteStatement(std::unique_ptr<sqlite3_stmt, StmtFinalizer> stmt, sqlite3* db) : stmt_(std::move(stmt)), db_(db) {}

  Statement& Bind(int i, int64_t v) override { return Check(sqlite3_bind_int64(stmt_.get(), i, v)); }
  Statement& Bind(int i, double v) override { return Check(sqlite3_bind_double(stmt_.get(), i, v)); }
  Statement& Bind(int i, std::string_view v) override {
    return Check(sqlite3_bind_text(stmt_.get(), i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT));
  }
  Statement& BindNull(int i) override { return Check(sqlite3_bind_null(stmt_.get(), i)); }

  StatusOr<bool> Step() override {
    if (!bind_error_.ok()) return bind_error_;
    const int rc = sqlite3_step(stmt_.get());
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) {
      changes_ = sqlite3_changes(db_);
      return false;
    }
    const int primary = rc & 0xff;
    Status st = primary == SQLITE_CONSTRAINT ? Status::AlreadyExists(sqlite3_errmsg(db_))
                                             : Status::IoError(fmt::format("SQLite: {}", sqlite3_errmsg(db_)));
    sqlite3_reset(stmt_.get());
    return st;
  }
  void Reset() override {
    sqlite3_reset(stmt_.get());
    sqlite3_clear_bindings(stmt_.get());
    bind_error_ = Status::Ok();
  }
  int64_t Changes() const override { return changes_; }

  bool IsNull(int col) const override { return sqlite3_column_type(stmt_.get(), col) == SQLITE_NULL; }
  int64_t Int(int col) const override { return sqlite3_column_int64(stmt_.get(), col); }
  double Double(int col) const override { return sqlite3_column_double(stmt_.get(), col); }
  std::string_view Text(int col) const override {
    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_.get(), col));
    if (!p) return {};
    return {p, static_cast<size_t>(sqlite3_column_bytes(stmt_.get(), col))};
  }

 private:
  Statement& Check(int rc) {
    if (rc != SQLITE_OK) bind_error_ = Status::Internal(sqlite3_errmsg(db_));
    return *this;
  }
  std::unique_ptr<sqlite3_stmt, StmtFinalizer> stmt_;
  sqlite3* db_;
  Status bind_error_;
  int64_t changes_ = 0;
};

class SqliteConnection final : public Connection {
 public:
  SqliteConnection(std::unique_ptr<sqlite3, DbCloser> db, std::string path) : db_(std::move(db)), path_(std::move(path)) {}

  Dialect dialect() const override { return Dialect::kSqlite; }
  const std::string& name() const override { return path_; }

  Status Exec(std::string_view sql) override {
    char* err = nullptr;
    const std::string s = TranslateSql(sql);
    if (sqlite3_exec(db_.get(), s.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
      Status st = Status::IoError(fmt::format("SQL failed: {}", err ? err : "unknown error"));
      sqlite3_free(err);
      return st;
    }
    return Status::Ok();
  }

  StatusOr<StmtPtr> Prepare(std::string_view sql) override {
    const std::string s = TranslateSql(sql);
    sqlite3_stmt* raw = nullptr;
    if (sqlite3_prepare_v3(db_.get(), s.data(), static_cast<int>(s.size()), SQLITE_PREPARE_PERSISTENT, &raw,
                           nullptr) != SQLITE_OK) {
      return Status::IoError(fmt::format("cannot prepare `{}`: {}", s, sqlite3_errmsg(db_.get())));
    }
    return StmtPtr(new SqliteStatement(std::unique_ptr<sqlite3_stmt, StmtFinalizer>(raw), db_.get()));
  }

  Status Begin() override {
    if (in_transaction_) return Status::FailedPrecondition("a transaction is already open on this store");
    BATON_RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE"));
    in_transaction_ = true;
    return Status::Ok();
  }
  Status Commit() override {
    if (!in_transaction_) return Status::FailedPrecondition("no open transaction");
    BATON_RETURN_IF_ERROR(Exec("COMMIT"));
    in_transaction_ = false;
    return Status::Ok();
  }
  Status Rollback() override {
    if (!in_transaction_) return Status::Ok();
    in_transaction_ = false;
    return sqlite3_get_autocommit(db_.get()) ? Status::Ok() : Exec("ROLLBACK");
  }
  bool in_transaction() const override { return in_transaction_; }

  StatusOr<int> SchemaVersion() override {
    // A file that is not a database fails here, on the first read.
    BATON_ASSIGN_OR_RETURN(StmtPtr s, Prepare("PRAGMA user_version"));
    StatusOr<bool> has = s->Step();
    if (!has.ok()) {
      return Status::DataLoss(fmt::format("{}: not a baton database ({})", path_, has.status().message()));
    }
    const int v = static_cast<int>(s->Int(0));
    s->Reset();  // an active statement would keep a read transaction open
    return v;
  }
  Status ConfigureForWriting() override {
    if (path_ != ":memory:") BATON_RETURN_IF_ERROR(Exec("PRAGMA journal_mode=WAL"));
    // 64 MiB page cache: an import touches three B-trees per outcome row.
    return Exec("PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON; PRAGMA cache_size=-65536");
  }
  Status BeginMigration() override { return Begin(); }
  Status ExecDdl(std::string_view ddl) override { return Exec(ddl); }
  Status SetSchemaVersion(int version) override { return Exec(fmt::format("PRAGMA user_version={}", version)); }

 private:
  std::unique_ptr<sqlite3, DbCloser> db_;
  std::string path_;
  bool in_transaction_ = false;
};

}  // namespace

StatusOr<std::unique_ptr<Connection>> OpenSqlite(const std::string& path, const StoreOptions& options) {
  const bool create = options.create && !options.read_only;
  sqlite3* raw = nullptr;
  const int flags = SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0) | SQLITE_OPEN_NOMUTEX;
  const int rc = sqlite3_open_v2(path.c_str(), &raw, flags, nullptr);
  std::unique_ptr<sqlite3, DbCloser> db(raw);
  if (rc != SQLITE_OK) {
    if (!create && rc == SQLITE_CANTOPEN) return Status::NotFound(fmt::format("{}: no such database", path));
    return Status::IoError(fmt::format("{}: cannot open database: {}", path, raw ? sqlite3_errmsg(raw) : "no memory"));
  }
  sqlite3_extended_result_codes(raw, 1);
  sqlite3_busy_timeout(raw, 5000);
  return std::unique_ptr<Connection>(new SqliteConnection(std::move(db), path));
}

}  // namespace baton::store
