// The single SQLite writer: one thread runs every write, committing whatever queued up meanwhile
// as one transaction (group commit), each write inside its own SAVEPOINT so that a failing one
// is rolled back alone (unless it undoes itself: see Undo). A second thread makes commits durable:
// the connection runs with synchronous=NORMAL (a commit does not wait for the disk), and the syncer
// fdatasync()s the WAL after each commit, for every commit that completed meanwhile at once. A
// write's `done` runs only after that sync, so nobody hears "written" before it is on disk, while
// the writer already runs the next batch instead of waiting for the disk. A batch of writes that
// asked only for kCommitted gets no sync of its own: the next one covers it (see Durability).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/status.h"
#include "store/sqlite/db.h"

namespace herald::store::sqlite {

using WriteFn = std::function<Status(Db&)>;

// What a write's caller is promised when `done` runs. kSynced: the write is on disk (fdatasync).
// kCommitted: it is committed, so it survives a crash of the process at once, and it reaches the
// disk with the next sync: a kSynced write's, or at the latest `lazy_sync_delay` after the
// commit. For writes whose loss the caller can replay anyway (delivery bookkeeping): under load
// they ride on the acknowledged writes' syncs instead of costing one of their own.
enum class Durability { kSynced, kCommitted };

// kForeground writes (someone waits for an answer) go first: a batch takes every foreground
// write waiting, and background writes only while it has run for less than the background
// budget (and at least one), so an acknowledgement waits for about a budget's worth of
// background writes, not for a queue of them. Each class keeps its own submission order.
enum class Priority { kForeground, kBackground };

// How a write that fails is undone. kSavepoint: the writer runs it inside a savepoint of its own
// and rolls that back. kSelf: the write leaves nothing behind when it fails, because it makes
// one change with one statement (SQLite undoes a failed statement) or rolls itself back; it then
// costs no savepoint.
enum class Undo { kSavepoint, kSelf };

class Writer {
 public:
  static constexpr std::chrono::milliseconds kDefaultLazySyncDelay{5};
  static constexpr std::chrono::microseconds kDefaultBackgroundBudget{1500};

  // `wal_path` is the database's write-ahead log (`<database>-wal`). `on_rollback` (if set) runs
  // on the writer thread whenever a batch's transaction is rolled back as a whole, before the
  // next write runs: for callers that keep what writes read (a cache) in step with the database.
  Writer(std::unique_ptr<Db> db, std::string wal_path,
         std::chrono::milliseconds lazy_sync_delay = kDefaultLazySyncDelay,
         std::chrono::microseconds background_budget = kDefaultBackgroundBudget,
         std::function<void()> on_rollback = {});
  ~Writer();  // runs every queued write, syncs, then stops
  Writer(const Writer&) = delete;
  Writer& operator=(const Writer&) = delete;

  // Queues `fn`; `done` runs on the syncer thread once the batch holding it is as durable as
  // asked (or failed), in the order the writes ran. `done` must not wait for another write.
  void Submit(WriteFn fn, std::function<void(Status)> done,
              Durability durability = Durability::kSynced,
              Priority priority = Priority::kForeground, Undo undo = Undo::kSavepoint);

  // Submit and wait.
  Status Run(WriteFn fn, Durability durability = Durability::kSynced,
             Priority priority = Priority::kForeground, Undo undo = Undo::kSavepoint);

  // How many times the log was synced, and how many batches were committed, so far.
  std::uint64_t SyncCount() const { return syncs_.load(std::memory_order_relaxed); }
  std::uint64_t CommitCount() const { return commits_.load(std::memory_order_relaxed); }

 private:
  struct Task {
    WriteFn fn;
    std::function<void(Status)> done;
    Durability durability = Durability::kSynced;
    Undo undo = Undo::kSavepoint;
  };
  struct Finished {
    std::function<void(Status)> done;
    Status status;
  };

  void WriteLoop();
  void SyncLoop();
  enum class Committed { kNothing, kLazily, kNeedsSync };
  // The next write for the running batch (started at `start`, `ran` writes so far), if any:
  // every foreground write waiting, then background ones while the batch is within its budget
  // (and one in any case).
  std::optional<Task> NextTask(std::chrono::steady_clock::time_point start, std::size_t ran,
                               bool* took_background);
  // Runs one batch in one transaction, taking writes from the queues as it goes; returns every
  // write's result. `*committed`: kNeedsSync if a write that asked for kSynced succeeded.
  std::vector<Finished> RunBatch(Committed* committed);
  void HandOff(std::vector<Finished> finished, Committed committed);
  void SyncWal();

  std::unique_ptr<Db> db_;
  const std::string wal_path_;
  const std::chrono::milliseconds lazy_sync_delay_;
  const std::chrono::microseconds background_budget_;
  const std::function<void()> on_rollback_;
  int wal_fd_ = -1;  // opened on the first sync (SQLite creates the file on the first write)

  std::mutex mu_;  // guards the queues and stopping_
  std::condition_variable cv_;
  std::deque<Task> foreground_, background_;
  bool stopping_ = false;

  std::mutex sync_mu_;  // guards to_sync_, pending_, unsynced_, lazy_since_, sync_stopping_
  std::condition_variable sync_cv_;
  std::vector<Finished> to_sync_;
  bool pending_ = false;   // to_sync_ is not empty
  bool unsynced_ = false;  // to_sync_ holds a batch that committed a kSynced write
  // When the oldest kCommitted-only batch that no sync has covered yet was handed off.
  std::optional<std::chrono::steady_clock::time_point> lazy_since_;
  bool sync_stopping_ = false;
  std::atomic<std::uint64_t> syncs_{0};
  std::atomic<std::uint64_t> commits_{0};

  std::thread sync_thread_;
  std::thread write_thread_;  // last: starts after the members it uses
};

}  // namespace herald::store::sqlite
