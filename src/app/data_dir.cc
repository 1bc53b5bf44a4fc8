#include "app/data_dir.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/ids.h"
#include "core/log.h"
#include "core/time.h"

namespace herald::app {
namespace {

std::string Errno() { return std::strerror(errno); }

std::string Trim(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  std::size_t start = 0;
  while (start < s.size() && std::isspace(static_cast<unsigned char>(s[start]))) ++start;
  return s.substr(start);
}

Result<std::string> DecodeKey(const std::string& text, const std::string& origin) {
  std::optional<std::string> raw = crypto::Base64Decode(Trim(text));
  if (!raw || raw->size() != 32) {
    return Status::InvalidArgument(origin + " must be 32 bytes encoded in base64");
  }
  return *raw;
}

const char* Env(const char* name) {
  const char* value = std::getenv(name);
  return value && *value ? value : nullptr;
}

}  // namespace

Status EnsureDataDir(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Status::Unavailable("cannot create data directory " + dir + ": " + ec.message());
  ::chmod(dir.c_str(), 0700);
  return Status::Ok();
}

Result<std::unique_ptr<DataDirLock>> DataDirLock::Acquire(const std::string& dir) {
  return AcquireFile(dir + "/herald.lock", "data directory " + dir);
}

Result<std::unique_ptr<DataDirLock>> DataDirLock::AcquireForDatabase(const std::string& db_path,
                                                                     const std::string& data_dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::path db = fs::weakly_canonical(db_path, ec);
  if (ec) db = fs::absolute(db_path);
  fs::path lock = db.filename() == "herald.db" ? db.parent_path() / "herald.lock"
                                               : fs::path(db.string() + ".lock");
  fs::path own = fs::weakly_canonical(fs::path(data_dir) / "herald.lock", ec);
  if (!ec && lock == own) return std::unique_ptr<DataDirLock>();
  return AcquireFile(lock.string(), "database " + db.string());
}

Result<std::unique_ptr<DataDirLock>> DataDirLock::AcquireFile(const std::string& path,
                                                              const std::string& what) {
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return Status::Unavailable("cannot open " + path + ": " + Errno());
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    ::close(fd);
    return Status::Unavailable(what + " is in use by another herald process (lock " + path + ")");
  }
  std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd, 0) == 0) (void)!::write(fd, pid.data(), pid.size());
  return std::unique_ptr<DataDirLock>(new DataDirLock(fd));
}

DataDirLock::~DataDirLock() {
  ::flock(fd_, LOCK_UN);
  ::close(fd_);
}

Result<std::unique_ptr<crypto::KeyRing>> LoadKeyRing(const std::string& dir, bool create) {
  std::string path = dir + "/secret.key";
  std::optional<std::string> file_key;
  if (std::ifstream in(path); in) {
    std::stringstream text;
    text << in.rdbuf();
    ASSIGN_OR_RETURN(std::string key, DecodeKey(text.str(), path));
    file_key = key;
  }
  std::string primary;
  if (const char* env = Env("HERALD_SECRET_KEY")) {
    ASSIGN_OR_RETURN(primary, DecodeKey(env, "HERALD_SECRET_KEY"));
  } else if (file_key) {
    primary = *file_key;
  } else if (create) {
    primary = RandomBytes(32);
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) return Status::Unavailable("cannot create " + path + ": " + Errno());
    std::string text = crypto::Base64Encode(primary) + "\n";
    bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
              ::fsync(fd) == 0;
    ::close(fd);
    if (!ok) return Status::Unavailable("cannot write " + path + ": " + Errno());
    spdlog::info("generated credential encryption key path={}", path);
  } else {
    return Status::Unavailable("no secret key: set HERALD_SECRET_KEY or start `herald serve` once");
  }
  std::map<std::string, std::string> keys{{crypto::KeyIdOf(primary), primary}};
  if (file_key) keys.emplace(crypto::KeyIdOf(*file_key), *file_key);
  if (const char* previous = Env("HERALD_PREVIOUS_SECRET_KEYS")) {
    std::stringstream list(previous);
    for (std::string item; std::getline(list, item, ',');) {
      if (Trim(item).empty()) continue;
      ASSIGN_OR_RETURN(std::string key, DecodeKey(item, "HERALD_PREVIOUS_SECRET_KEYS"));
      keys.emplace(crypto::KeyIdOf(key), key);
    }
  }
  return std::make_unique<crypto::KeyRing>(crypto::KeyIdOf(primary), std::move(keys));
}

Result<std::vector<NewKey>> BootstrapEnvironments(store::Store& store,
                                                  const crypto::KeyRing& keys) {
  ASSIGN_OR_RETURN(std::vector<store::Environment> existing, store.ListEnvironments());
  std::string organization_id = existing.empty() ? NewObjectId() : existing[0].organization_id;
  std::vector<store::Environment> wanted;
  std::vector<NewKey> generated;
  struct Spec {
    const char* name;
    const char* env_var;
  };
  for (Spec spec : {Spec{"development", "HERALD_DEVELOPMENT_API_KEY"},
                    Spec{"production", "HERALD_PRODUCTION_API_KEY"}}) {
    bool present = false;
    for (const store::Environment& e : existing) present = present || e.name == spec.name;
    if (present) continue;
    std::string key;
    if (const char* fixed = Env(spec.env_var)) {
      key = fixed;
      if (key.size() < 16) {
        return Status::InvalidArgument(std::string(spec.env_var) +
                                       " must be at least 16 characters");
      }
    } else {
      key = crypto::Hex(RandomBytes(16));
      generated.push_back({spec.name, key});
    }
    store::Environment env;
    env.id = NewObjectId();
    env.name = spec.name;
    env.organization_id = organization_id;
    env.api_key_hash = crypto::Hex(crypto::Sha256(key));
    env.api_key_sealed = keys.Seal(key, env.id);
    env.created_at = NowMs();
    wanted.push_back(std::move(env));
  }
  if (!wanted.empty()) RETURN_IF_ERROR(store.EnsureEnvironments(wanted));
  return generated;
}

}  // namespace herald::app
