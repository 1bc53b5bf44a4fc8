#include "store/sqlite/writer.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <future>

#include "core/log.h"

namespace herald::store::sqlite {
namespace {

constexpr std::size_t kMaxBatch = 512;

void Finish(std::function<void(Status)>& done, Status status) {
  try {
    done(std::move(status));
  } catch (const std::exception& e) {
    spdlog::error("store completion threw: {}", e.what());
  }
}

}  // namespace

Writer::Writer(std::unique_ptr<Db> db, std::string wal_path,
               std::chrono::milliseconds lazy_sync_delay,
               std::chrono::microseconds background_budget, std::function<void()> on_rollback)
    : db_(std::move(db)),
      wal_path_(std::move(wal_path)),
      lazy_sync_delay_(lazy_sync_delay),
      background_budget_(background_budget),
      on_rollback_(std::move(on_rollback)),
      sync_thread_([this] { SyncLoop(); }),
      write_thread_([this] { WriteLoop(); }) {}

Writer::~Writer() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_one();
  write_thread_.join();  // every queued write has run and been handed to the syncer
  {
    std::lock_guard lock(sync_mu_);
    sync_stopping_ = true;
  }
  sync_cv_.notify_one();
  sync_thread_.join();
  if (wal_fd_ >= 0) ::close(wal_fd_);
}

void Writer::Submit(WriteFn fn, std::function<void(Status)> done, Durability durability,
                    Priority priority, Undo undo) {
  {
    std::lock_guard lock(mu_);
    (priority == Priority::kForeground ? foreground_ : background_)
        .push_back(Task{std::move(fn), std::move(done), durability, undo});
  }
  cv_.notify_one();
}

Status Writer::Run(WriteFn fn, Durability durability, Priority priority, Undo undo) {
  std::promise<Status> result;
  std::future<Status> future = result.get_future();
  Submit(
      std::move(fn), [&result](Status st) { result.set_value(std::move(st)); }, durability,
      priority, undo);
  return future.get();
}

void Writer::WriteLoop() {
  SetThreadName("herald-writer");
  for (;;) {
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || !foreground_.empty() || !background_.empty(); });
      if (foreground_.empty() && background_.empty()) return;  // stopping and drained
    }
    Committed committed = Committed::kNothing;
    std::vector<Finished> finished = RunBatch(&committed);
    HandOff(std::move(finished), committed);
  }
}

std::optional<Writer::Task> Writer::NextTask(std::chrono::steady_clock::time_point start,
                                             std::size_t ran, bool* took_background) {
  if (ran >= kMaxBatch) return std::nullopt;
  std::lock_guard lock(mu_);
  std::deque<Task>* from = nullptr;
  if (!foreground_.empty()) {
    from = &foreground_;
  } else if (!background_.empty() &&
             // At least one per batch, so that a stream of foreground writes cannot starve them.
             (!*took_background || std::chrono::steady_clock::now() - start < background_budget_)) {
    from = &background_;
    *took_background = true;
  }
  if (!from) return std::nullopt;
  Task task = std::move(from->front());
  from->pop_front();
  return task;
}

std::vector<Writer::Finished> Writer::RunBatch(Committed* committed) {
  std::vector<Task> batch;
  std::vector<Status> results;
  std::vector<Finished> out;
  auto fail_all = [&](const Status& status) {
    if (on_rollback_) on_rollback_();
    out.clear();
    for (Task& task : batch) out.push_back({std::move(task.done), status});
    return std::move(out);
  };
  auto start = std::chrono::steady_clock::now();
  bool took_background = false;
  std::optional<Task> next = NextTask(start, 0, &took_background);
  if (!next) return out;
  batch.push_back(std::move(*next));
  if (Status begin = db_->Run("BEGIN IMMEDIATE"); !begin.ok()) return fail_all(begin);
  for (std::size_t i = 0;; ++i) {
    // A write whose savepoint could not be opened does not run: nothing could undo it alone.
    const bool savepoint = batch[i].undo == Undo::kSavepoint;
    Status result = savepoint ? db_->Run("SAVEPOINT w") : Status::Ok();
    if (result.ok()) {
      try {
        result = batch[i].fn(*db_);
      } catch (const std::exception& e) {
        spdlog::error("store write threw: {}", e.what());
        result = Status::Internal("store write failed");
      }
      if (savepoint) {
        if (!result.ok()) {
          Status undone = db_->Run("ROLLBACK TO w");
          if (!undone.ok() && db_->InTransaction()) {
            // The failed write's changes are still in the transaction: none of the batch commits.
            (void)db_->ExecScript("ROLLBACK");  // ExecScript logs a failure
            return fail_all(Status::Internal("write could not be rolled back"));
          }
        }
        // Only pops the savepoint (its changes stay in the transaction); it fails only where
        // SQLite already ended the transaction, which the check below tells.
        (void)db_->Run("RELEASE w");
      }
    }
    results.push_back(std::move(result));
    if (!db_->InTransaction()) {
      // SQLite rolled the whole transaction back (disk full, I/O error, out of memory): no
      // write of this batch survived, so every caller hears it.
      return fail_all(Status::Internal("write transaction aborted"));
    }
    next = NextTask(start, batch.size(), &took_background);
    if (!next) break;
    batch.push_back(std::move(*next));
  }
  if (Status commit = db_->Run("COMMIT"); !commit.ok()) {
    // Fails where SQLite already rolled back (ExecScript logs it); every caller hears it anyway.
    (void)db_->ExecScript("ROLLBACK");
    return fail_all(Status::Internal("commit failed"));
  }
  commits_.fetch_add(1, std::memory_order_relaxed);
  *committed = Committed::kLazily;
  out.reserve(batch.size());
  for (std::size_t i = 0; i < batch.size(); ++i) {
    // A failed write left nothing to make durable.
    if (results[i].ok() && batch[i].durability == Durability::kSynced) {
      *committed = Committed::kNeedsSync;
    }
    out.push_back({std::move(batch[i].done), std::move(results[i])});
  }
  return out;
}

void Writer::HandOff(std::vector<Finished> finished, Committed committed) {
  // Through the syncer even when nothing needs the disk (a failed or kCommitted batch):
  // completions then run in the order of the writes, so a later write's caller never hears back
  // before an earlier one.
  {
    std::lock_guard lock(sync_mu_);
    for (Finished& f : finished) to_sync_.push_back(std::move(f));
    pending_ = true;
    if (committed == Committed::kNeedsSync) {
      unsynced_ = true;
    } else if (committed == Committed::kLazily && !lazy_since_) {
      lazy_since_ = std::chrono::steady_clock::now();
    }
  }
  sync_cv_.notify_one();
}

void Writer::SyncLoop() {
  SetThreadName("herald-sync");
  std::vector<Finished> batch;
  for (;;) {
    bool sync = false;
    {
      std::unique_lock lock(sync_mu_);
      // Lazy commits are synced once they waited lazy_sync_delay_ (or on stopping), unless a
      // sync for a kSynced write covers them first.
      auto lazy_due = [&] {
        return lazy_since_ && (sync_stopping_ ||
                               std::chrono::steady_clock::now() >= *lazy_since_ + lazy_sync_delay_);
      };
      while (!pending_ && !sync_stopping_ && !lazy_due()) {
        if (lazy_since_) {
          sync_cv_.wait_until(lock, *lazy_since_ + lazy_sync_delay_);
        } else {
          sync_cv_.wait(lock);
        }
      }
      if (!pending_ && !lazy_since_) return;  // stopping and drained
      batch.swap(to_sync_);
      sync = unsynced_ || lazy_due();
      pending_ = unsynced_ = false;
      // fdatasync covers every commit handed off before the call.
      if (sync) lazy_since_.reset();
    }
    if (sync) SyncWal();
    for (Finished& f : batch) Finish(f.done, std::move(f.status));
    batch.clear();
  }
}

void Writer::SyncWal() {
  if (wal_fd_ < 0) {
    wal_fd_ = ::open(wal_path_.c_str(), O_RDONLY | O_CLOEXEC);
    if (wal_fd_ < 0) {
      spdlog::critical("cannot open {} to sync it: {}", wal_path_, std::strerror(errno));
      std::abort();
    }
  }
  if (::fdatasync(wal_fd_) != 0) {
    // After a failed sync the kernel may have dropped the dirty pages: what was committed can no
    // longer be promised durable, so stop rather than acknowledge it (as PostgreSQL does).
    spdlog::critical("fdatasync({}) failed: {}", wal_path_, std::strerror(errno));
    std::abort();
  }
  syncs_.fetch_add(1, std::memory_order_relaxed);
}

}  // namespace herald::store::sqlite
