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
constexpr int kWalHeaderBytes = 32;                  // the log's header, at offset 0
constexpr int kFrameHeaderBytes = 24;                // a WAL frame header (then the page)
constexpr std::size_t kMaxBufferedBytes = 4u << 20;  // a larger append goes out in pieces
// The unix VFS cannot write 128 KiB or more in one call (it masks the length with 0x1ffff).
constexpr std::size_t kMaxWriteBytes = 128u * 1024u - 1u;

sqlite3_vfs* g_real = nullptr;  // the default VFS, which does the I/O
sqlite3_vfs g_vfs;
std::atomic<unsigned long long> g_writes{0};
std::atomic<unsigned long long> g_bytes{0};

// What both wrappers start with: SQLite's view, then the default VFS's file it wraps (which lives
// in the same allocation, at kRealOffset).
struct Wrapped {
  sqlite3_file base;  // first: SQLite hands us its address
  sqlite3_file* real = nullptr;
};

struct WalFile;

// A main database file: passes everything on, but first writes out its connection's WAL buffer
// when SQLite is about to publish a commit (xShmBarrier, called between the two copies of the
// wal-index header) or to take or drop a WAL lock (so that nothing buffered outlives the write
// lock, even frames of a transaction that was rolled back).
struct DbFile {
  Wrapped wrapped;
  WalFile* wal = nullptr;  // this connection's log while it is open
};

// A WAL file.
struct WalFile {
  Wrapped wrapped;
  DbFile* db = nullptr;  // the database file of the same connection, if it is ours
  std::string buffer;    // appended bytes not written yet, for buffer_offset on
  sqlite3_int64 buffer_offset = 0;
  // Where the next frame goes as far as this connection knows: the end of the furthest write
  // since the log last started over (a write there is appended to the buffer; any other is a
  // rewrite in place, or an append after another connection's, and goes straight through).
  sqlite3_int64 log_end = 0;
  int page_size = 0;  // from the log's header; 0 while unknown
  // The last frame header written was a commit frame's: when the rest of that frame is in,
  // the buffer goes out (and a failure reaches SQLite, which the barrier cannot report).
  bool commit_frame_pending = false;
};
static_assert(std::is_standard_layout_v<Wrapped>);
static_assert(std::is_standard_layout_v<DbFile>);
static_assert(std::is_standard_layout_v<WalFile>);
constexpr std::size_t kRealOffset = (std::max(sizeof(WalFile), sizeof(DbFile)) + 15) / 16 * 16;

Wrapped* W(sqlite3_file* file) { return reinterpret_cast<Wrapped*>(file); }
sqlite3_file* RealOf(sqlite3_file* file) { return W(file)->real; }
const sqlite3_io_methods& Real(sqlite3_file* file) { return *RealOf(file)->pMethods; }
WalFile* AsWal(sqlite3_file* file) { return reinterpret_cast<WalFile*>(file); }
DbFile* AsDb(sqlite3_file* file) { return reinterpret_cast<DbFile*>(file); }
sqlite3_file* Base(WalFile* f) { return &f->wrapped.base; }

std::uint32_t BigEndian32(const unsigned char* p) {
  return static_cast<std::uint32_t>(p[0]) << 24 | static_cast<std::uint32_t>(p[1]) << 16 |
         static_cast<std::uint32_t>(p[2]) << 8 | p[3];
}

// Page size from a WAL header (bytes 8..11); 0 if it is not a valid one.
int PageSizeOf(const unsigned char* header) {
  std::uint32_t size = BigEndian32(header + 8);
  if (size == 1) size = 65536;  // how the database header spells it; harmless to accept here
  if (size < 512 || size > 65536 || (size & (size - 1)) != 0) return 0;
  return static_cast<int>(size);
}

// Where `offset` lies within the log's frames: the offset from the start of its frame, or -1
// when the page size is unknown or `offset` is inside the log's header.
sqlite3_int64 FramePosition(const WalFile* f, sqlite3_int64 offset) {
  if (f->page_size == 0 || offset < kWalHeaderBytes) return -1;
  return (offset - kWalHeaderBytes) % (f->page_size + kFrameHeaderBytes);
}

int RealWrite(WalFile* f, const void* data, int amount, sqlite3_int64 offset) {
  g_writes.fetch_add(1, std::memory_order_relaxed);
  g_bytes.fetch_add(static_cast<unsigned long long>(amount), std::memory_order_relaxed);
  return Real(Base(f)).xWrite(RealOf(Base(f)), data, amount, offset);
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
  WalFile* f = AsWal(file);
  const auto* bytes = static_cast<const unsigned char*>(data);
  if (offset == 0) {  // the WAL header: the log starts over from the beginning
    if (int rc = Flush(f); rc != SQLITE_OK) return rc;
    f->log_end = 0;
    f->commit_frame_pending = false;
    if (amount >= kWalHeaderBytes) f->page_size = PageSizeOf(bytes);
  }
  if (f->page_size == 0 && offset >= kWalHeaderBytes) {
    // Another connection started this log: its header is in the file.
    if (int rc = Flush(f); rc != SQLITE_OK) return rc;
    unsigned char header[kWalHeaderBytes] = {};
    if (Real(file).xRead(RealOf(file), header, kWalHeaderBytes, 0) == SQLITE_OK) {
      f->page_size = PageSizeOf(header);
    }
  }
  if (amount == kFrameHeaderBytes && FramePosition(f, offset) == 0) {
    // Bytes 4..7 of a frame header: the database size in pages for a commit frame, else 0.
    f->commit_frame_pending = (bytes[4] | bytes[5] | bytes[6] | bytes[7]) != 0;
  }
  const auto size = static_cast<std::size_t>(amount);
  bool buffered = false;
  // Only where frames can be told apart, so that a commit's own write reports its failures.
  if (offset == f->log_end && f->page_size != 0) {
    if (f->buffer.size() + size > kMaxBufferedBytes) {
      if (int rc = Flush(f); rc != SQLITE_OK) return rc;
    }
    if (f->buffer.empty()) f->buffer_offset = offset;
    try {
      f->buffer.append(reinterpret_cast<const char*>(bytes), size);
      buffered = true;
    } catch (...) {  // out of memory: no exception may cross into SQLite; write it through
    }
  }
  if (!buffered) {
    if (int rc = Flush(f); rc != SQLITE_OK) return rc;
    if (int rc = RealWrite(f, data, amount, offset); rc != SQLITE_OK) return rc;
  }
  f->log_end = std::max(f->log_end, offset + amount);
  // The end of a commit frame: the commit goes to the file now, before SQLite publishes it.
  if (f->commit_frame_pending && FramePosition(f, offset + amount) == 0) return Flush(f);
  return SQLITE_OK;
}

int WalClose(sqlite3_file* file) {
  WalFile* f = AsWal(file);
  int rc = Flush(f);
  if (f->db != nullptr) f->db->wal = nullptr;
  int closed = Real(file).xClose(RealOf(file));
  f->~WalFile();
  return rc != SQLITE_OK ? rc : closed;
}

// Passed on unchanged, for either kind of file.
int PassRead(sqlite3_file* file, void* out, int amount, sqlite3_int64 offset) {
  return Real(file).xRead(RealOf(file), out, amount, offset);
}
int PassWrite(sqlite3_file* file, const void* data, int amount, sqlite3_int64 offset) {
  return Real(file).xWrite(RealOf(file), data, amount, offset);
}
int PassTruncate(sqlite3_file* file, sqlite3_int64 size) {
  return Real(file).xTruncate(RealOf(file), size);
}
int PassSync(sqlite3_file* file, int flags) { return Real(file).xSync(RealOf(file), flags); }
int PassFileSize(sqlite3_file* file, sqlite3_int64* size) {
  return Real(file).xFileSize(RealOf(file), size);
}
int PassLock(sqlite3_file* file, int lock) { return Real(file).xLock(RealOf(file), lock); }
int PassUnlock(sqlite3_file* file, int lock) { return Real(file).xUnlock(RealOf(file), lock); }
int PassCheckReservedLock(sqlite3_file* file, int* out) {
  return Real(file).xCheckReservedLock(RealOf(file), out);
}
int PassFileControl(sqlite3_file* file, int op, void* arg) {
  return Real(file).xFileControl(RealOf(file), op, arg);
}
int PassSectorSize(sqlite3_file* file) { return Real(file).xSectorSize(RealOf(file)); }
int PassDeviceCharacteristics(sqlite3_file* file) {
  return Real(file).xDeviceCharacteristics(RealOf(file));
}
int PassShmMap(sqlite3_file* file, int region, int size, int extend, void volatile** out) {
  if (Real(file).iVersion < 2 || Real(file).xShmMap == nullptr) return SQLITE_IOERR;
  return Real(file).xShmMap(RealOf(file), region, size, extend, out);
}
int PassShmLock(sqlite3_file* file, int offset, int n, int flags) {
  if (Real(file).iVersion < 2 || Real(file).xShmLock == nullptr) return SQLITE_IOERR;
  return Real(file).xShmLock(RealOf(file), offset, n, flags);
}
void PassShmBarrier(sqlite3_file* file) {
  if (Real(file).iVersion >= 2 && Real(file).xShmBarrier != nullptr) {
    Real(file).xShmBarrier(RealOf(file));
  }
}
int PassShmUnmap(sqlite3_file* file, int delete_flag) {
  if (Real(file).iVersion < 2 || Real(file).xShmUnmap == nullptr) return SQLITE_OK;
  return Real(file).xShmUnmap(RealOf(file), delete_flag);
}
int PassFetch(sqlite3_file* file, sqlite3_int64 offset, int amount, void** out) {
  *out = nullptr;
  if (Real(file).iVersion < 3 || Real(file).xFetch == nullptr) return SQLITE_OK;
  return Real(file).xFetch(RealOf(file), offset, amount, out);
}
int PassUnfetch(sqlite3_file* file, sqlite3_int64 offset, void* page) {
  if (Real(file).iVersion < 3 || Real(file).xUnfetch == nullptr) return SQLITE_OK;
  return Real(file).xUnfetch(RealOf(file), offset, page);
}

// The WAL's own: the buffer goes out first, then the call is passed on.
int WalRead(sqlite3_file* file, void* out, int amount, sqlite3_int64 offset) {
  if (int rc = Flush(AsWal(file)); rc != SQLITE_OK) return rc;
  return PassRead(file, out, amount, offset);
}

int WalTruncate(sqlite3_file* file, sqlite3_int64 size) {
  WalFile* f = AsWal(file);
  if (int rc = Flush(f); rc != SQLITE_OK) return rc;
  int rc = PassTruncate(file, size);
  // journal_size_limit trims the file to a size that may lie past the log's end.
  if (rc == SQLITE_OK) f->log_end = std::min(f->log_end, size);
  return rc;
}

int WalSync(sqlite3_file* file, int flags) {
  if (int rc = Flush(AsWal(file)); rc != SQLITE_OK) return rc;
  return PassSync(file, flags);
}

int WalFileSize(sqlite3_file* file, sqlite3_int64* size) {
  if (int rc = Flush(AsWal(file)); rc != SQLITE_OK) return rc;
  return PassFileSize(file, size);
}

int WalFileControl(sqlite3_file* file, int op, void* arg) {
  if (int rc = Flush(AsWal(file)); rc != SQLITE_OK) return rc;
  return PassFileControl(file, op, arg);
}

int WalFetch(sqlite3_file* file, sqlite3_int64 offset, int amount, void** out) {
  *out = nullptr;
  if (int rc = Flush(AsWal(file)); rc != SQLITE_OK) return rc;
  return PassFetch(file, offset, amount, out);
}

int DbClose(sqlite3_file* file) {
  DbFile* f = AsDb(file);
  if (f->wal != nullptr) f->wal->db = nullptr;
  int rc = Real(file).xClose(RealOf(file));
  f->~DbFile();
  return rc;
}

int DbShmLock(sqlite3_file* file, int offset, int n, int flags) {
  if (WalFile* wal = AsDb(file)->wal) {
    int rc = Flush(wal);
    // An unlock goes ahead whatever happened (SQLite does not look at its result).
    if (rc != SQLITE_OK && (flags & SQLITE_SHM_UNLOCK) == 0) return rc;
  }
  return PassShmLock(file, offset, n, flags);
}

void DbShmBarrier(sqlite3_file* file) {
  // SQLite is about to publish a commit. The commit frame's own flush, which can report a
  // failure, normally left nothing to write; this one covers whatever else is buffered.
  if (WalFile* wal = AsDb(file)->wal) (void)Flush(wal);
  PassShmBarrier(file);
}

const sqlite3_io_methods kWalMethods = {
    3,
    WalClose,
    WalRead,
    WalWrite,
    WalTruncate,
    WalSync,
    WalFileSize,
    PassLock,
    PassUnlock,
    PassCheckReservedLock,
    WalFileControl,
    PassSectorSize,
    PassDeviceCharacteristics,
    PassShmMap,
    PassShmLock,
    PassShmBarrier,
    PassShmUnmap,
    WalFetch,
    PassUnfetch,
};

const sqlite3_io_methods kDbMethods = {
    3,
    DbClose,
    PassRead,
    PassWrite,
    PassTruncate,
    PassSync,
    PassFileSize,
    PassLock,
    PassUnlock,
    PassCheckReservedLock,
    PassFileControl,
    PassSectorSize,
    PassDeviceCharacteristics,
    PassShmMap,
    DbShmLock,
    DbShmBarrier,
    PassShmUnmap,
    PassFetch,
    PassUnfetch,
};

// Opens the default VFS's file behind `w` (at kRealOffset); on failure leaves nothing open.
int OpenReal(Wrapped* w, sqlite3_filename name, int flags, int* out_flags) {
  w->base.pMethods = nullptr;
  w->real = reinterpret_cast<sqlite3_file*>(reinterpret_cast<char*>(w) + kRealOffset);
  w->real->pMethods = nullptr;
  int rc = g_real->xOpen(g_real, name, w->real, flags, out_flags);
  if (rc != SQLITE_OK && w->real->pMethods != nullptr) {
    w->real->pMethods->xClose(w->real);
    w->real->pMethods = nullptr;
  }
  return rc;
}

// Main databases and WAL files get a wrapper; journals and temporary files are the default
// VFS's own (opened in place).
int Open(sqlite3_vfs*, sqlite3_filename name, sqlite3_file* file, int flags, int* out_flags) {
  if (flags & SQLITE_OPEN_MAIN_DB) {
    auto* f = new (file) DbFile();
    if (int rc = OpenReal(&f->wrapped, name, flags, out_flags); rc != SQLITE_OK) {
      f->~DbFile();
      file->pMethods = nullptr;
      return rc;
    }
    file->pMethods = &kDbMethods;
    return SQLITE_OK;
  }
  if ((flags & SQLITE_OPEN_WAL) == 0) return g_real->xOpen(g_real, name, file, flags, out_flags);
  auto* f = new (file) WalFile();
  int rc = OpenReal(&f->wrapped, name, flags, out_flags);
  sqlite3_int64 size = 0;
  if (rc == SQLITE_OK) rc = Real(file).xFileSize(RealOf(file), &size);
  unsigned char header[kWalHeaderBytes] = {};
  if (rc == SQLITE_OK && size >= kWalHeaderBytes) {
    rc = Real(file).xRead(RealOf(file), header, kWalHeaderBytes, 0);
  }
  if (rc != SQLITE_OK) {
    if (RealOf(file)->pMethods != nullptr) Real(file).xClose(RealOf(file));
    f->~WalFile();
    file->pMethods = nullptr;
    return rc;
  }
  f->log_end = size;
  if (size >= kWalHeaderBytes) f->page_size = PageSizeOf(header);
  // The database file of the same connection (always opened before its log).
  sqlite3_file* db = name != nullptr ? sqlite3_database_file_object(name) : nullptr;
  if (db != nullptr && db->pMethods == &kDbMethods) {
    f->db = AsDb(db);
    f->db->wal = f;
  }
  file->pMethods = &kWalMethods;
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
