// SqliteStore's constructor and the write and read paths that every operation goes through (see
// sqlite_store.h for which file holds which operations).
#include "store/sqlite/sqlite_store.h"

namespace herald::store::sqlite {

SqliteStore::SqliteStore(std::unique_ptr<Db> writer_db, std::string wal_path,
                         std::unique_ptr<Db> checkpoint_db, const crypto::KeyRing& keys,
                         std::int64_t max_queued_triggers, EventRenderer render_event)
    : keys_(keys),
      max_queued_triggers_(max_queued_triggers),
      render_event_(std::move(render_event)),
      writer_(std::move(writer_db), wal_path, Writer::kDefaultLazySyncDelay,
              Writer::kDefaultBackgroundBudget, [this] { subscribers_.Clear(); }),
      checkpointer_(std::move(checkpoint_db), wal_path) {}

Result<bool> SqliteStore::AnyRow(std::string_view sql, std::optional<std::int64_t> param) {
  return Read([&](Db& db) -> Result<bool> {
    Stmt s = db.Prepare(sql);
    if (param) s.Bind(1, *param);
    bool found = s.Step();
    RETURN_IF_ERROR(s.status());
    return found;
  });
}

// The writer runs writes and their callbacks in submission order, so an empty write is a
// barrier behind everything queued before it.
Status SqliteStore::Flush() {
  // Background (each class runs in order, foreground ahead), so it runs after every write of
  // both classes submitted before it; synced, so its sync covers them all.
  return writer_.Run([](Db&) { return Status::Ok(); }, Durability::kSynced, Priority::kBackground);
}

}  // namespace herald::store::sqlite
