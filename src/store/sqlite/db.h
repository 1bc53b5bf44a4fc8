// A thin RAII layer over the SQLite C API: a connection with a prepared-statement cache, and a
// statement cursor with typed bind/column helpers. Used only inside store/sqlite/.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "core/status.h"

struct sqlite3;
struct sqlite3_stmt;

namespace herald::store::sqlite {

class Stmt {
 public:
  Stmt(sqlite3* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}
  Stmt(Stmt&& other) noexcept : db_(other.db_), stmt_(other.stmt_) { other.stmt_ = nullptr; }
  Stmt(const Stmt&) = delete;
  ~Stmt();  // resets (the statement itself stays cached in its Db)

  // Binds are 1-based and chainable.
  Stmt& Bind(int index, std::string_view text);
  Stmt& Bind(int index, const char* text) { return Bind(index, std::string_view(text)); }
  Stmt& Bind(int index, const std::string& text) { return Bind(index, std::string_view(text)); }
  Stmt& Bind(int index, std::int64_t value);
  Stmt& Bind(int index, int value) { return Bind(index, static_cast<std::int64_t>(value)); }
  Stmt& Bind(int index, bool value) { return Bind(index, static_cast<std::int64_t>(value)); }
  Stmt& Bind(int index, const std::optional<std::string>& text);
  Stmt& Bind(int index, const std::optional<std::int64_t>& value);
  Stmt& BindNull(int index);
  // Binds without a copy: `text` must stay alive and unchanged until this Stmt is destroyed
  // (which resets the statement). For the large values of the hot write paths.
  Stmt& BindRef(int index, const std::string& text);
  Stmt& BindRef(int index, const std::optional<std::string>& text);
  Stmt& BindRef(int index, std::string&& text) = delete;  // a temporary would dangle
  Stmt& BindRef(int index, std::optional<std::string>&& text) = delete;

  // Advances; true while a row is available. Errors become Internal/Conflict via status().
  bool Step();
  // Runs to completion; Conflict on a UNIQUE violation, Internal otherwise.
  Status Exec();
  const Status& status() const { return status_; }

  std::string Text(int column) const;
  std::optional<std::string> OptText(int column) const;
  std::int64_t Int(int column) const;
  std::optional<std::int64_t> OptInt(int column) const;
  bool IsNull(int column) const;

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_;
  Status status_;
};

class Db {
 public:
  // Opens (creating if needed) `path`, applies connection pragmas. Unavailable on failure.
  // `use_wal_vfs`: through the WAL-combining VFS (wal_vfs.h); false: through SQLite's default VFS.
  static Result<std::unique_ptr<Db>> Open(const std::string& path, bool read_only,
                                          bool use_wal_vfs = true);
  ~Db();
  Db(const Db&) = delete;

  // A cached prepared statement; the SQL must be valid (a bug otherwise: aborts).
  Stmt Prepare(std::string_view sql);
  // Runs one or more statements without results (parsed each time: for scripts).
  Status ExecScript(std::string_view sql);
  // Runs one statement through the statement cache (for hot statements such as COMMIT).
  Status Run(std::string_view sql) { return Prepare(sql).Exec(); }
  std::int64_t Changes() const;
  // The write-ahead log's file name, as SQLite resolves it (next to the real database file).
  std::string WalPath() const;
  // True inside BEGIN ... COMMIT (false once SQLite rolled a transaction back on its own).
  bool InTransaction() const;

 private:
  explicit Db(sqlite3* db) : db_(db) {}
  sqlite3* db_;
  struct SqlHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view sql) const noexcept {
      return std::hash<std::string_view>{}(sql);
    }
  };
  // Prepared statements by SQL text (looked up on every statement run: hashed, not ordered).
  std::unordered_map<std::string, sqlite3_stmt*, SqlHash, std::equal_to<>> cache_;
};

}  // namespace herald::store::sqlite
