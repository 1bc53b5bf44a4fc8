// The single SQLite writer: one thread runs every write, committing whatever queued up meanwhile
// as one transaction (group commit), each write inside its own SAVEPOINT so that a failing one
// is rolled back alone. A second thread makes commits durable: the connection runs with
// synchronous=NORMAL (a commit does not wait for the disk), and the syncer fdatasync()s the WAL
// after each commit, for every commit that completed meanwhile at once. A write's `done` runs
// only after that sync, so nobody hears "written" before it is on disk, while the writer
// already runs the next batch instead of waiting for the disk.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/status.h"
#include "store/sqlite/db.h"

namespace herald::store::sqlite {

using WriteFn = std::function<Status(Db&)>;

class Writer {
 public:
  // `wal_path` is the database's write-ahead log (`<database>-wal`).
  Writer(std::unique_ptr<Db> db, std::string wal_path);
  ~Writer();  // runs every queued write, syncs, then stops
  Writer(const Writer&) = delete;
  Writer& operator=(const Writer&) = delete;

  // Queues `fn`; `done` runs on the syncer thread once the batch holding it is durable (or
  // failed), in submission order. `done` must not wait for another write.
  void Submit(WriteFn fn, std::function<void(Status)> done);

  // Submit and wait.
  Status Run(WriteFn fn);

 private:
  struct Task {
    WriteFn fn;
    std::function<void(Status)> done;
  };
  struct Finished {
    std::function<void(Status)> done;
    Status status;
  };

  void WriteLoop();
  void SyncLoop();
  // Runs one batch in one transaction; returns every task's result.
  std::vector<Finished> RunBatch(std::vector<Task>& batch, bool* committed);
  void HandOff(std::vector<Finished> finished, bool needs_sync);
  void SyncWal();

  std::unique_ptr<Db> db_;
  const std::string wal_path_;
  int wal_fd_ = -1;  // opened on the first sync (SQLite creates the file on the first write)

  std::mutex mu_;  // guards queue_ and stopping_
  std::condition_variable cv_;
  std::deque<Task> queue_;
  bool stopping_ = false;

  std::mutex sync_mu_;  // guards to_sync_, pending_, unsynced_ and sync_stopping_
  std::condition_variable sync_cv_;
  std::vector<Finished> to_sync_;
  bool pending_ = false;   // to_sync_ is not empty
  bool unsynced_ = false;  // to_sync_ holds a committed batch
  bool sync_stopping_ = false;

  std::thread sync_thread_;
  std::thread write_thread_;  // last: starts after the members it uses
};

}  // namespace herald::store::sqlite
