#include "store/sqlite/db.h"

#include <sqlite3.h>

#include <chrono>
#include <cstdlib>
#include <thread>

#include "core/log.h"
#include "store/sqlite/wal_vfs.h"

namespace herald::store::sqlite {

Stmt::~Stmt() {
  if (stmt_) {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
}

Stmt& Stmt::Bind(int index, std::string_view text) {
  sqlite3_bind_text(stmt_, index, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT);
  return *this;
}

Stmt& Stmt::Bind(int index, std::int64_t value) {
  sqlite3_bind_int64(stmt_, index, value);
  return *this;
}

Stmt& Stmt::Bind(int index, const std::optional<std::string>& text) {
  return text ? Bind(index, std::string_view(*text)) : BindNull(index);
}

Stmt& Stmt::Bind(int index, const std::optional<std::int64_t>& value) {
  return value ? Bind(index, *value) : BindNull(index);
}

Stmt& Stmt::BindRef(int index, const std::string& text) {
  sqlite3_bind_text(stmt_, index, text.data(), static_cast<int>(text.size()), SQLITE_STATIC);
  return *this;
}

Stmt& Stmt::BindRef(int index, const std::optional<std::string>& text) {
  return text ? BindRef(index, *text) : BindNull(index);
}

Stmt& Stmt::BindNull(int index) {
  sqlite3_bind_null(stmt_, index);
  return *this;
}

bool Stmt::Step() {
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  int extended = sqlite3_extended_errcode(db_);
  std::string message = sqlite3_errmsg(db_);
  if (extended == SQLITE_CONSTRAINT_UNIQUE || extended == SQLITE_CONSTRAINT_PRIMARYKEY) {
    status_ = Status::Conflict(message);
  } else {
    spdlog::error("sqlite step failed code={} message={}", extended, message);
    status_ = Status::Internal("database error");
  }
  return false;
}

Status Stmt::Exec() {
  while (Step()) {
  }
  return status_;
}

std::string Stmt::Text(int column) const {
  const unsigned char* text = sqlite3_column_text(stmt_, column);
  int size = sqlite3_column_bytes(stmt_, column);
  return text ? std::string(reinterpret_cast<const char*>(text), static_cast<std::size_t>(size))
              : std::string();
}

std::optional<std::string> Stmt::OptText(int column) const {
  if (IsNull(column)) return std::nullopt;
  return Text(column);
}

std::int64_t Stmt::Int(int column) const { return sqlite3_column_int64(stmt_, column); }

std::optional<std::int64_t> Stmt::OptInt(int column) const {
  if (IsNull(column)) return std::nullopt;
  return Int(column);
}

bool Stmt::IsNull(int column) const { return sqlite3_column_type(stmt_, column) == SQLITE_NULL; }

Result<std::unique_ptr<Db>> Db::Open(const std::string& path, bool read_only, bool use_wal_vfs) {
  // Before the first connection: no global memory statistics (they put every allocation of every
  // connection behind one mutex).
  static const bool configured = [] {
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    return true;
  }();
  (void)configured;
  sqlite3* handle = nullptr;
  int flags = read_only ? SQLITE_OPEN_READONLY : (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
  flags |= SQLITE_OPEN_NOMUTEX;  // each connection is used by one thread at a time
  // nullptr: SQLite's default VFS.
  int rc = sqlite3_open_v2(path.c_str(), &handle, flags, use_wal_vfs ? WalCombiningVfs() : nullptr);
  if (rc != SQLITE_OK) {
    std::string message = handle ? sqlite3_errmsg(handle) : sqlite3_errstr(rc);
    sqlite3_close(handle);
    return Status::Unavailable("cannot open database " + path + ": " + message);
  }
  std::unique_ptr<Db> db(new Db(handle));
  // Waits for a lock in steps of 0.2 ms for up to 10 s. (sqlite3_busy_timeout's sleeps grow to
  // 100 ms, so a writer held back by a short checkpoint would sleep far longer than it.)
  sqlite3_busy_handler(
      handle,
      [](void*, int attempt) -> int {
        constexpr int kMaxAttempts = 50000;  // 10 s
        if (attempt >= kMaxAttempts) return 0;
        std::this_thread::sleep_for(std::chrono::microseconds(200));
        return 1;
      },
      nullptr);
  // synchronous=NORMAL: a WAL commit does not wait for the disk; the store's Writer syncs the
  // log itself before it acknowledges a write (see writer.h), and checkpoints still sync.
  // A 4 MiB page cache: the writer's hot pages (the right edges of the tables and indexes it
  // appends to, recent messages) fit, and it is full within the first few thousand triggers,
  // after which SQLite reuses its pages instead of allocating new ones (a larger cache had a
  // fresh process fault in new memory for tens of thousands of triggers: bench/README.md,
  // "SQLite's page cache"). A reader in WAL mode drops its cache when it starts reading after
  // another connection committed, so on a busy store its cache stays small anyway.
  // secure_delete=FAST: Debian builds SQLite with secure delete on, which also overwrites every
  // page freed to the freelist and writes it to the log; FAST still zeroes deleted content on the
  // pages a delete writes anyway, and skips only those extra page writes (the inbox frees a page
  // every few dozen triggers; measured: bench/HISTORY.md).
  // (Debian's SQLite is also built without lookaside memory: its allocations all go to malloc.)
  std::string pragmas =
      "PRAGMA foreign_keys=ON; PRAGMA synchronous=NORMAL; PRAGMA temp_store=MEMORY;"
      "PRAGMA cache_size=-4096; PRAGMA secure_delete=FAST;";
  if (!read_only) pragmas = "PRAGMA journal_mode=WAL;" + pragmas;
  RETURN_IF_ERROR(db->ExecScript(pragmas));
  return db;
}

Db::~Db() {
  for (auto& [sql, stmt] : cache_) sqlite3_finalize(stmt);
  sqlite3_close(db_);
}

Stmt Db::Prepare(std::string_view sql) {
  auto it = cache_.find(sql);
  if (it == cache_.end()) {
    sqlite3_stmt* stmt = nullptr;
    int rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()),
                                SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
    if (rc != SQLITE_OK) {
      spdlog::critical("invalid SQL ({}): {}", sqlite3_errmsg(db_), sql);
      std::abort();
    }
    it = cache_.emplace(std::string(sql), stmt).first;
  }
  return Stmt(db_, it->second);
}

Status Db::ExecScript(std::string_view sql) {
  char* error = nullptr;
  std::string copy(sql);
  int rc = sqlite3_exec(db_, copy.c_str(), nullptr, nullptr, &error);
  if (rc != SQLITE_OK) {
    std::string message = error ? error : sqlite3_errstr(rc);
    sqlite3_free(error);
    int extended = sqlite3_extended_errcode(db_);
    if (extended == SQLITE_CONSTRAINT_UNIQUE) return Status::Conflict(message);
    spdlog::error("sqlite exec failed: {}", message);
    return Status::Internal("database error: " + message);
  }
  return Status::Ok();
}

std::int64_t Db::Changes() const { return sqlite3_changes64(db_); }

std::string Db::WalPath() const {
  const char* wal = sqlite3_filename_wal(sqlite3_db_filename(db_, "main"));
  return wal ? std::string(wal) : std::string();
}

bool Db::InTransaction() const { return sqlite3_get_autocommit(db_) == 0; }

}  // namespace herald::store::sqlite
