// Connections: opening the store (the writer, checkpointer and read connections, their pragmas,
// migrations) and the checkpointer's thread. The read pool is in connections.h.
#include "store/sqlite/connections.h"

#include <algorithm>
#include <filesystem>

#include "core/log.h"
#include "store/sqlite/migrations.h"
#include "store/sqlite/sqlite_store.h"

namespace herald::store {
namespace sqlite {

Checkpointer::Checkpointer(std::unique_ptr<Db> db, std::string wal_path)
    : db_(std::move(db)), wal_path_(std::move(wal_path)), thread_([this] { Loop(); }) {}

Checkpointer::~Checkpointer() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_one();
  thread_.join();
}

void Checkpointer::Loop() {
  SetThreadName("herald-ckpt");
  std::unique_lock lock(mu_);
  while (!stopping_) {
    cv_.wait_for(lock, std::chrono::milliseconds(200), [&] { return stopping_; });
    lock.unlock();
    // Best effort: ExecScript logs a failure, and the next pass checkpoints again.
    (void)db_->ExecScript("PRAGMA wal_checkpoint(PASSIVE)");
    std::error_code ec;
    std::uintmax_t size = std::filesystem::file_size(wal_path_, ec);
    if (!ec && size > kRestartAt) (void)db_->ExecScript("PRAGMA wal_checkpoint(RESTART)");
    lock.lock();
  }
}

}  // namespace sqlite

Result<std::unique_ptr<Store>> OpenSqliteStore(const SqliteOptions& options,
                                               const crypto::KeyRing& keys) {
  using sqlite::Db;
  ASSIGN_OR_RETURN(std::unique_ptr<Db> writer,
                   Db::Open(options.path, /*read_only=*/false, options.use_wal_vfs));
  RETURN_IF_ERROR(sqlite::Migrate(*writer));
  RETURN_IF_ERROR(
      writer->ExecScript("PRAGMA wal_autocheckpoint=0; PRAGMA journal_size_limit=67108864"));
  ASSIGN_OR_RETURN(std::unique_ptr<Db> checkpoint_db,
                   Db::Open(options.path, /*read_only=*/false, options.use_wal_vfs));
  std::string wal_path = writer->WalPath();
  auto store = std::make_unique<sqlite::SqliteStore>(
      std::move(writer), wal_path, std::move(checkpoint_db), keys, options.max_queued_triggers,
      options.render_event);
  for (int i = 0; i < std::max(1, options.read_connections); ++i) {
    ASSIGN_OR_RETURN(std::unique_ptr<Db> reader,
                     Db::Open(options.path, /*read_only=*/true, options.use_wal_vfs));
    store->AddReader(std::move(reader));
  }
  return std::unique_ptr<Store>(std::move(store));
}

}  // namespace herald::store
