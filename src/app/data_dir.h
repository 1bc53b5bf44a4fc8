// The data directory: its creation, the single-owner lock, the credential-encryption key ring
// and the environments with their API keys.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "crypto/crypto.h"
#include "store/store.h"

namespace herald::app {

// Creates `dir` (mode 0700) if needed.
Status EnsureDataDir(const std::string& dir);

// Holds an exclusive flock on DIR/herald.lock for its lifetime: one process owns a data dir.
class DataDirLock {
 public:
  static Result<std::unique_ptr<DataDirLock>> Acquire(const std::string& dir);
  // The same for an SQLite database kept outside the data directory (--database): its lock is
  // herald.lock beside it if it is named herald.db (so that it is the lock of the data directory
  // it belongs to), else DB.lock. Null when that is `data_dir`'s own lock (already held).
  static Result<std::unique_ptr<DataDirLock>> AcquireForDatabase(const std::string& db_path,
                                                                 const std::string& data_dir);
  ~DataDirLock();

 private:
  static Result<std::unique_ptr<DataDirLock>> AcquireFile(const std::string& path,
                                                          const std::string& what);
  explicit DataDirLock(int fd) : fd_(fd) {}
  int fd_;
};

// The key ring for secrets at rest: HERALD_SECRET_KEY (base64, 32 bytes) if set, else
// DIR/secret.key (generated once, mode 0600). Keys in HERALD_PREVIOUS_SECRET_KEYS (comma-
// separated base64) and an existing secret.key that differs from HERALD_SECRET_KEY can still
// open old values, so a key can be rotated without losing data.
Result<std::unique_ptr<crypto::KeyRing>> LoadKeyRing(const std::string& dir, bool create);

struct NewKey {
  std::string environment;
  std::string key;  // shown once
};

// Creates the `development` and `production` environments on first start with the keys from
// HERALD_DEVELOPMENT_API_KEY / HERALD_PRODUCTION_API_KEY or random ones. Returns the keys
// generated now (to print once); existing environments are left as they are.
Result<std::vector<NewKey>> BootstrapEnvironments(store::Store& store, const crypto::KeyRing& keys);

}  // namespace herald::app
