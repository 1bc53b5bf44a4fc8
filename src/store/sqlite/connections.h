// Connections beside the writer's (sqlite/writer.h): the checkpointer's, with its own thread, and
// the pool of read connections. Used only inside store/sqlite/.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/log.h"
#include "store/sqlite/db.h"

namespace herald::store::sqlite {

// Copies the WAL back into the database from its own connection and thread, so that the
// writer's commits never pay for checkpoints (the writer runs with wal_autocheckpoint=0).
// PASSIVE checkpoints never block the writer or readers.
class Checkpointer {
 public:
  Checkpointer(std::unique_ptr<Db> db, std::string wal_path);
  ~Checkpointer();

 private:
  // Under a steady stream of commits a passive checkpoint never catches up with the end of the
  // log, so the log would never start over and would grow without bound. Past this size a
  // RESTART checkpoint holds new writes back for the (short) rest of the copy, and the next
  // commit writes the log from its start again (journal_size_limit then trims the file).
  static constexpr std::uintmax_t kRestartAt = 64u << 20;
  void Loop();

  std::unique_ptr<Db> db_;
  const std::string wal_path_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;
};

// Read connections, each used by one caller at a time inside a read transaction.
class ReaderPool {
 public:
  void Add(std::unique_ptr<Db> db) { free_.push_back(std::move(db)); }

  template <typename F>
  auto Run(F&& f) {
    std::unique_ptr<Db> db;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return !free_.empty(); });
      db = std::move(free_.back());
      free_.pop_back();
    }
    // Without its transaction, each read below sees its own snapshot: still correct row by row.
    if (Status st = db->Run("BEGIN"); !st.ok()) {
      spdlog::warn("read transaction did not start: {}", st.message());
    }
    auto result = f(*db);
    if (db->InTransaction()) {
      if (Status st = db->Run("COMMIT"); !st.ok()) {
        // A reader left inside its transaction would keep reading this snapshot and hold back
        // every checkpoint; a read-only transaction has nothing to lose.
        spdlog::error("read transaction did not commit: {}", st.message());
        (void)db->ExecScript("ROLLBACK");  // ExecScript logs a failure; nothing else to do
      }
    }
    {
      std::lock_guard lock(mu_);
      free_.push_back(std::move(db));
    }
    cv_.notify_one();
    return result;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<Db>> free_;
};

}  // namespace herald::store::sqlite
