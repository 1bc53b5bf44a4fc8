// A SQLite VFS that writes each commit to the write-ahead log with one system call.
//
// SQLite appends a commit to the WAL frame by frame, and each frame with two writes: its 24-byte
// header, then the page. Under load that is several thousand pwrite(2) calls a second, each a
// trip into the kernel (costly under a hypervisor) for a few KiB. This VFS wraps the default one
// and, for WAL files only, gathers writes that append to the log in a buffer, written out as one
// pwrite as soon as the commit frame (the one whose header carries the database size) is
// complete (frames are located by the page size in the log's header), so a commit is in the file
// before SQLite publishes it to other connections. Every other operation on the WAL (reads,
// rewrites in place, syncs, truncation, size queries, file controls, closing) sees the buffer
// written out first, and so do the connection's database file's wal-index barrier (just before a
// commit is published) and WAL locks (nothing buffered outlives the write lock, not even frames
// of a rolled-back transaction): what SQLite reads back is what it wrote, nothing it made visible
// is still in memory, and another connection writing the same log is never overwritten.
//
// Measured gain and history: added in 33416ee, it took Herald's end-to-end benchmark
// (bench/README.md) from 3.6 pwrite calls per trigger to 0.6 (most of the rest are the
// checkpoints' page writes); ab.sh, 6 pairs at 192 connections: -9.5 us of CPU per trigger
// (the writer -7.5 us), 1.066 times the triggers per second. Three fixes after reviews (b9c3ee4,
// a76c318, 7c93bfc) made it safe with padded commits, several writing connections and unknown
// page sizes, without changing Herald's write pattern. SqliteOptions::use_wal_vfs (on by
// default) opens the store's connections without it.
#pragma once

namespace herald::store::sqlite {

// The VFS's name for sqlite3_open_v2. Registers it (once, not as the default) on first use.
const char* WalCombiningVfs();

// Counters of the real writes made to WAL files through this VFS (for tests and diagnostics).
struct WalWriteStats {
  unsigned long long writes = 0;  // pwrite calls that reached the default VFS
  unsigned long long bytes = 0;
};
WalWriteStats WalCombiningStats();

}  // namespace herald::store::sqlite
