// The embedded store: one SQLite file in WAL mode. Writes go through a single writer thread that
// commits concurrent callers together (group commit: one fsync for many requests), each caller
// inside its own SAVEPOINT so that one failing write never affects another. Reads use a small
// pool of connections and see every write whose call has returned.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "crypto/crypto.h"
#include "store/store.h"

namespace herald::store {

struct SqliteOptions {
  std::string path;  // database file
  int read_connections = 4;
  // Accepted triggers waiting to be planned, at most (then EnqueueTrigger answers Unavailable):
  // when planning falls behind for long, clients are slowed instead of the inbox growing without
  // bound.
  std::int64_t max_queued_triggers = 1'000'000;
};

// Opens (creating if needed) the database and applies pending migrations. `keys` seals
// integration credentials and API keys at rest; it must outlive the store.
Result<std::unique_ptr<Store>> OpenSqliteStore(const SqliteOptions& options,
                                               const crypto::KeyRing& keys);

// Schema version the database at `path` is at after opening (for `herald migrate`/tests).
Result<int> SqliteSchemaVersion(const std::string& path);

}  // namespace herald::store
