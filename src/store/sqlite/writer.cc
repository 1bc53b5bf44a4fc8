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

Writer::Writer(std::unique_ptr<Db> db, std::string wal_path)
    : db_(std::move(db)),
      wal_path_(std::move(wal_path)),
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

void Writer::Submit(WriteFn fn, std::function<void(Status)> done) {
  {
    std::lock_guard lock(mu_);
    queue_.push_back(Task{std::move(fn), std::move(done)});
  }
  cv_.notify_one();
}

Status Writer::Run(WriteFn fn) {
  std::promise<Status> result;
  std::future<Status> future = result.get_future();
  Submit(std::move(fn), [&result](Status st) { result.set_value(std::move(st)); });
  return future.get();
}

void Writer::WriteLoop() {
  SetThreadName("herald-writer");
  std::vector<Task> batch;
  for (;;) {
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping and drained
      while (!queue_.empty() && batch.size() < kMaxBatch) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    bool committed = false;
    std::vector<Finished> finished = RunBatch(batch, &committed);
    batch.clear();
    HandOff(std::move(finished), committed);
  }
}

std::vector<Writer::Finished> Writer::RunBatch(std::vector<Task>& batch, bool* committed) {
  std::vector<Finished> out;
  out.reserve(batch.size());
  auto fail_all = [&](const Status& status) {
    out.clear();
    for (Task& task : batch) out.push_back({std::move(task.done), status});
    return std::move(out);
  };
  if (Status begin = db_->Run("BEGIN IMMEDIATE"); !begin.ok()) return fail_all(begin);
  std::vector<Status> results(batch.size());
  for (std::size_t i = 0; i < batch.size(); ++i) {
    (void)db_->Run("SAVEPOINT w");
    try {
      results[i] = batch[i].fn(*db_);
    } catch (const std::exception& e) {
      spdlog::error("store write threw: {}", e.what());
      results[i] = Status::Internal("store write failed");
    }
    if (!results[i].ok()) (void)db_->Run("ROLLBACK TO w");
    (void)db_->Run("RELEASE w");
    if (!db_->InTransaction()) {
      // SQLite rolled the whole transaction back (disk full, I/O error, out of memory): no
      // write of this batch survived, so every caller hears it.
      return fail_all(Status::Internal("write transaction aborted"));
    }
  }
  if (Status commit = db_->Run("COMMIT"); !commit.ok()) {
    (void)db_->ExecScript("ROLLBACK");
    return fail_all(Status::Internal("commit failed"));
  }
  *committed = true;
  for (std::size_t i = 0; i < batch.size(); ++i) {
    out.push_back({std::move(batch[i].done), std::move(results[i])});
  }
  return out;
}

void Writer::HandOff(std::vector<Finished> finished, bool needs_sync) {
  // Through the syncer even when nothing reached the log (a failed batch): completions then run
  // in the order of the writes, so a later write's caller never hears back before an earlier one.
  {
    std::lock_guard lock(sync_mu_);
    for (Finished& f : finished) to_sync_.push_back(std::move(f));
    pending_ = true;
    unsynced_ = unsynced_ || needs_sync;
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
      sync_cv_.wait(lock, [&] { return sync_stopping_ || pending_; });
      if (!pending_) return;  // stopping and drained
      batch.swap(to_sync_);
      sync = unsynced_;
      pending_ = unsynced_ = false;
    }
    if (sync) SyncWal();  // covers every commit handed off before the swap
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
}

}  // namespace herald::store::sqlite
