#include "store/sqlite/wal_vfs.h"

#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <new>
#include <string>
#include <type_traits>

namespace herald::store::sqlite {
namespace {

constexpr const char* kVfsName = "herald-wal";
constexpr int kFrameHeaderBytes = 24;                // a WAL frame header (then the page)
constexpr std::size_t kMaxBufferedBytes = 4u << 20;  // a larger append goes out in pieces
// The unix VFS cannot write 128 KiB or more in one call (it masks the length with 0x1ffff).
constexpr std::size_t kMaxWriteBytes = 128u * 1024u - 1u;

sqlite3_vfs* g_real = nullptr;  // the default VFS, which does the I/O
sqlite3_vfs g_vfs;
std::atomic<unsigned long long> g_writes{0};
std::atomic<unsigned long long> g_bytes{0};

// A WAL file: our state, then (at kRealOffset) the default VFS's file it wraps.
struct WalFile {
  sqlite3_file base;  // first: SQLite sees this
  sqlite3_file* real = nullptr;
  std::string buffer;  // appended bytes not written yet, for buffer_offset on
  sqlite3_int64 buffer_offset = 0;
  // Where the next frame goes: the end of the furthest write since the log last started over
  // (a write there is appended to the buffer; any other is a rewrite in place).
  sqlite3_int64 log_end = 0;
  // The last frame header appended was a commit frame's: what follows it (its page, or the rest
  // of it after a sync in the middle) goes to the file at once.
  bool commit_frame_pending = false;
};
// SQLite hands us `&base`: it must be the struct's address.
static_assert(std::is_standard_layout_v<WalFile>);
constexpr std::size_t kRealOffset = (sizeof(WalFile) + 15) / 16 * 16;

WalFile* Self(sqlite3_file* file) { return reinterpret_cast<WalFile*>(file); }
const sqlite3_io_methods& Real(WalFile* f) { return *f->real->pMethods; }

int RealWrite(WalFile* f, const void* data, int amount, sqlite3_int64 offset) {
  g_writes.fetch_add(1, std::memory_order_relaxed);
  g_bytes.fetch_add(static_cast<unsigned long long>(amount), std::memory_order_relaxed);
  return Real(f).xWrite(f->real, data, amount, offset);
}

// Writes the buffer out. The buffer is dropped even if that fails: SQLite then fails the
// operation that needed it and never relies on those bytes.
int Flush(WalFile* f) {
  int rc = SQLITE_OK;
  for (std::size_t done = 0; done < f->buffer.size() && rc == SQLITE_OK;) {
    const std::size_t piece = std::min(kMaxWriteBytes, f->buffer.size() - done);
    rc = RealWrite(f, f->buffer.data() + done, static_cast<int>(piece),
                   f->buffer_offset + static_cast<sqlite3_int64>(done));
    done += piece;
  }
  f->buffer.clear();
  return rc;
}

int WalWrite(sqlite3_file* file, const void* data, int amount, sqlite3_int64 offset) {
  WalFile* f = Self(file);
  if (offset == 0) {  // the WAL header: the log starts over from the beginning
    if (int rc = Flush(f); rc != SQLITE_OK) return rc;
    f->log_end = 0;
    f->commit_frame_pending = false;
  }
  const auto size = static_cast<std::size_t>(amount);
  if (offset != f->log_end) {  // a rewrite in place (a frame or checksums): straight through
    if (int rc = Flush(f); rc != SQLITE_OK) return rc;
    f->log_end = std::max(f->log_end, offset + amount);
    return RealWrite(f, data, amount, offset);
  }
  if (f->buffer.size() + size > kMaxBufferedBytes) {
    if (int rc = Flush(f); rc != SQLITE_OK) return rc;
  }
  if (f->buffer.empty()) f->buffer_offset = offset;
  const auto* bytes = static_cast<const unsigned char*>(data);
  const bool frame_header = amount == kFrameHeaderBytes;
  if (frame_header) {
    // Bytes 4..7 of a frame header: the database size in pages for the commit frame, else 0.
    f->commit_frame_pending = (bytes[4] | bytes[5] | bytes[6] | bytes[7]) != 0;
  }
  try {
    f->buffer.append(reinterpret_cast<const char*>(bytes), size);
  } catch (...) {  // out of memory: no exception may cross into SQLite; write it unbuffered
    if (int rc = Flush(f); rc != SQLITE_OK) return rc;
    f->log_end = offset + amount;
    return RealWrite(f, data, amount, offset);
  }
  f->log_end = offset + amount;
  if (frame_header) return SQLITE_OK;
  // The page of the commit frame: the commit goes to the file before SQLite publishes it.
  return f->commit_frame_pending ? Flush(f) : SQLITE_OK;
}

int WalClose(sqlite3_file* file) {
  WalFile* f = Self(file);
  int rc = Flush(f);
  int closed = Real(f).xClose(f->real);
  f->~WalFile();
  return rc != SQLITE_OK ? rc : closed;
}

int WalRead(sqlite3_file* file, void* out, int amount, sqlite3_int64 offset) {
  WalFile* f = Self(file);
  if (int rc = Flush(f); rc != SQLITE_OK) return rc;
  return Real(f).xRead(f->real, out, amount, offset);
}

int WalTruncate(sqlite3_file* file, sqlite3_int64 size) {
  WalFile* f = Self(file);
  if (int rc = Flush(f); rc != SQLITE_OK) return rc;
  int rc = Real(f).xTruncate(f->real, size);
  // journal_size_limit trims the file to a size that may lie past the log's end.
  if (rc == SQLITE_OK) f->log_end = std::min(f->log_end, size);
  return rc;
}

int WalSync(sqlite3_file* file, int flags) {
  WalFile* f = Self(file);
  if (int rc = Flush(f); rc != SQLITE_OK) return rc;
  return Real(f).xSync(f->real, flags);
}

int WalFileSize(sqlite3_file* file, sqlite3_int64* size) {
  WalFile* f = Self(file);
  if (int rc = Flush(f); rc != SQLITE_OK) return rc;
  return Real(f).xFileSize(f->real, size);
}

int WalLock(sqlite3_file* file, int lock) { return Real(Self(file)).xLock(Self(file)->real, lock); }
int WalUnlock(sqlite3_file* file, int lock) {
  return Real(Self(file)).xUnlock(Self(file)->real, lock);
}
int WalCheckReservedLock(sqlite3_file* file, int* out) {
  return Real(Self(file)).xCheckReservedLock(Self(file)->real, out);
}

int WalFileControl(sqlite3_file* file, int op, void* arg) {
  WalFile* f = Self(file);
  if (int rc = Flush(f); rc != SQLITE_OK) return rc;
  return Real(f).xFileControl(f->real, op, arg);
}

int WalSectorSize(sqlite3_file* file) { return Real(Self(file)).xSectorSize(Self(file)->real); }
int WalDeviceCharacteristics(sqlite3_file* file) {
  return Real(Self(file)).xDeviceCharacteristics(Self(file)->real);
}

// Shared memory and memory mapping belong to database files; a WAL file passes them on.
int WalShmMap(sqlite3_file* file, int region, int size, int extend, void volatile** out) {
  WalFile* f = Self(file);
  if (Real(f).iVersion < 2 || Real(f).xShmMap == nullptr) return SQLITE_IOERR;
  return Real(f).xShmMap(f->real, region, size, extend, out);
}
int WalShmLock(sqlite3_file* file, int offset, int n, int flags) {
  WalFile* f = Self(file);
  if (Real(f).iVersion < 2 || Real(f).xShmLock == nullptr) return SQLITE_IOERR;
  return Real(f).xShmLock(f->real, offset, n, flags);
}
void WalShmBarrier(sqlite3_file* file) {
  WalFile* f = Self(file);
  if (Real(f).iVersion >= 2 && Real(f).xShmBarrier != nullptr) Real(f).xShmBarrier(f->real);
}
int WalShmUnmap(sqlite3_file* file, int delete_flag) {
  WalFile* f = Self(file);
  if (Real(f).iVersion < 2 || Real(f).xShmUnmap == nullptr) return SQLITE_OK;
  return Real(f).xShmUnmap(f->real, delete_flag);
}
int WalFetch(sqlite3_file* file, sqlite3_int64 offset, int amount, void** out) {
  WalFile* f = Self(file);
  *out = nullptr;
  if (int rc = Flush(f); rc != SQLITE_OK) return rc;
  if (Real(f).iVersion < 3 || Real(f).xFetch == nullptr) return SQLITE_OK;  // no mapping
  return Real(f).xFetch(f->real, offset, amount, out);
}
int WalUnfetch(sqlite3_file* file, sqlite3_int64 offset, void* page) {
  WalFile* f = Self(file);
  if (Real(f).iVersion < 3 || Real(f).xUnfetch == nullptr) return SQLITE_OK;
  return Real(f).xUnfetch(f->real, offset, page);
}

const sqlite3_io_methods kWalMethods = {
    3,
    WalClose,
    WalRead,
    WalWrite,
    WalTruncate,
    WalSync,
    WalFileSize,
    WalLock,
    WalUnlock,
    WalCheckReservedLock,
    WalFileControl,
    WalSectorSize,
    WalDeviceCharacteristics,
    WalShmMap,
    WalShmLock,
    WalShmBarrier,
    WalShmUnmap,
    WalFetch,
    WalUnfetch,
};

// Database and journal files are the default VFS's own (opened in place, no wrapper); WAL
// files get the wrapper.
int Open(sqlite3_vfs*, sqlite3_filename name, sqlite3_file* file, int flags, int* out_flags) {
  if ((flags & SQLITE_OPEN_WAL) == 0) return g_real->xOpen(g_real, name, file, flags, out_flags);
  auto* f = new (file) WalFile();
  f->base.pMethods = nullptr;
  f->real = reinterpret_cast<sqlite3_file*>(reinterpret_cast<char*>(file) + kRealOffset);
  f->real->pMethods = nullptr;
  int rc = g_real->xOpen(g_real, name, f->real, flags, out_flags);
  sqlite3_int64 size = 0;
  if (rc == SQLITE_OK) rc = f->real->pMethods->xFileSize(f->real, &size);
  if (rc != SQLITE_OK) {
    if (f->real->pMethods != nullptr) f->real->pMethods->xClose(f->real);
    f->~WalFile();
    file->pMethods = nullptr;
    return rc;
  }
  f->log_end = size;
  f->base.pMethods = &kWalMethods;
  return SQLITE_OK;
}

// Everything else is the default VFS's.
int Delete(sqlite3_vfs*, const char* name, int sync_dir) {
  return g_real->xDelete(g_real, name, sync_dir);
}
int Access(sqlite3_vfs*, const char* name, int flags, int* out) {
  return g_real->xAccess(g_real, name, flags, out);
}
int FullPathname(sqlite3_vfs*, const char* name, int size, char* out) {
  return g_real->xFullPathname(g_real, name, size, out);
}
void* DlOpen(sqlite3_vfs*, const char* name) { return g_real->xDlOpen(g_real, name); }
void DlError(sqlite3_vfs*, int size, char* out) { g_real->xDlError(g_real, size, out); }
void (*DlSym(sqlite3_vfs*, void* handle, const char* symbol))(void) {
  return g_real->xDlSym(g_real, handle, symbol);
}
void DlClose(sqlite3_vfs*, void* handle) { g_real->xDlClose(g_real, handle); }
int Randomness(sqlite3_vfs*, int size, char* out) { return g_real->xRandomness(g_real, size, out); }
int Sleep(sqlite3_vfs*, int micros) { return g_real->xSleep(g_real, micros); }
int CurrentTime(sqlite3_vfs*, double* out) { return g_real->xCurrentTime(g_real, out); }
int GetLastError(sqlite3_vfs*, int size, char* out) {
  return g_real->xGetLastError(g_real, size, out);
}
int CurrentTimeInt64(sqlite3_vfs*, sqlite3_int64* out) {
  return g_real->xCurrentTimeInt64(g_real, out);
}

}  // namespace

const char* WalCombiningVfs() {
  static std::once_flag once;
  std::call_once(once, [] {
    g_real = sqlite3_vfs_find(nullptr);
    g_vfs = sqlite3_vfs{};
    g_vfs.iVersion = 2;
    g_vfs.szOsFile = static_cast<int>(kRealOffset) + g_real->szOsFile;
    g_vfs.mxPathname = g_real->mxPathname;
    g_vfs.zName = kVfsName;
    g_vfs.xOpen = Open;
    g_vfs.xDelete = Delete;
    g_vfs.xAccess = Access;
    g_vfs.xFullPathname = FullPathname;
    g_vfs.xDlOpen = DlOpen;
    g_vfs.xDlError = DlError;
    g_vfs.xDlSym = DlSym;
    g_vfs.xDlClose = DlClose;
    g_vfs.xRandomness = Randomness;
    g_vfs.xSleep = Sleep;
    g_vfs.xCurrentTime = CurrentTime;
    g_vfs.xGetLastError = GetLastError;
    g_vfs.xCurrentTimeInt64 = g_real->iVersion >= 2 ? CurrentTimeInt64 : nullptr;
    if (g_vfs.xCurrentTimeInt64 == nullptr) g_vfs.iVersion = 1;
    sqlite3_vfs_register(&g_vfs, /*makeDflt=*/0);
  });
  return kVfsName;
}

WalWriteStats WalCombiningStats() {
  return {g_writes.load(std::memory_order_relaxed), g_bytes.load(std::memory_order_relaxed)};
}

}  // namespace herald::store::sqlite
