#include "store/sqlite/wal_vfs.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>

#include "core/ids.h"
#include "store/sqlite/db.h"

namespace herald::store::sqlite {
namespace {

namespace fs = std::filesystem;

class WalVfsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("herald-walvfs-" + RandomAlnum(10));
    fs::create_directories(dir_ / "copy");
    path_ = (dir_ / "w.db").string();
    writer_ = OpenDb(path_, false);
    // Checkpoints only when a test asks: the log keeps every commit.
    ASSERT_TRUE(writer_
                    ->ExecScript("PRAGMA wal_autocheckpoint=0;"
                                 "CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT NOT NULL);"
                                 "CREATE INDEX t_v ON t(v);")
                    .ok());
  }
  void TearDown() override {
    writer_.reset();
    fs::remove_all(dir_);
  }

  static std::unique_ptr<Db> OpenDb(const std::string& path, bool read_only) {
    auto db = Db::Open(path, read_only);
    EXPECT_TRUE(db.ok()) << db.status().message();
    return db.ok() ? std::move(*db) : nullptr;
  }

  // Inserts rows [from, from + n) in one transaction: many pages, so many frames.
  void Insert(int from, int n) {
    ASSERT_TRUE(writer_->Run("BEGIN").ok());
    for (int k = from; k < from + n; ++k) {
      ASSERT_TRUE(
          writer_->Prepare("INSERT INTO t (k, v) VALUES (?, ?)")
              .Bind(1, k)
              .Bind(2, std::string(200, static_cast<char>('a' + k % 26)) + std::to_string(k))
              .Exec()
              .ok());
    }
    ASSERT_TRUE(writer_->Run("COMMIT").ok());
  }

  static std::int64_t Count(Db& db) {
    Stmt s = db.Prepare("SELECT count(*) FROM t");
    EXPECT_TRUE(s.Step());
    return s.Int(0);
  }

  static std::string IntegrityCheck(Db& db) {
    Stmt s = db.Prepare("PRAGMA integrity_check");
    EXPECT_TRUE(s.Step());
    return s.Text(0);
  }

  // What a crash would leave: the database and its log as they are in the files now, opened
  // elsewhere (SQLite rebuilds the index from the log's frames and checksums).
  std::unique_ptr<Db> OpenCopy() {
    fs::path copy = dir_ / "copy" / ("c" + std::to_string(++copies_) + ".db");
    fs::copy_file(path_, copy);
    fs::copy_file(path_ + "-wal", copy.string() + "-wal");
    return OpenDb(copy.string(), false);
  }

  fs::path dir_;
  std::string path_;
  std::unique_ptr<Db> writer_;
  int copies_ = 0;
};

std::string Text(Db& db, const std::string& sql) {
  Stmt s = db.Prepare(sql);
  return s.Step() ? s.Text(0) : "error: " + s.status().message();
}

TEST_F(WalVfsTest, ACommitOfManyFramesIsOneWrite) {
  Insert(0, 10);  // the log's header and first frames
  WalWriteStats before = WalCombiningStats();
  Insert(10, 150);  // ~16 pages of rows and index: ~70 KB
  WalWriteStats after = WalCombiningStats();
  EXPECT_EQ(after.writes - before.writes, 1u);
  EXPECT_GT(after.bytes - before.bytes, 10u * 4096u);
  // Larger ones go out in pieces the default VFS accepts (under 128 KiB each).
  Insert(160, 2000);
  WalWriteStats large = WalCombiningStats();
  EXPECT_GT(large.bytes - after.bytes, 800u * 1024u);
  EXPECT_LE(large.writes - after.writes, (large.bytes - after.bytes) / (100u * 1024u) + 1);
}

TEST_F(WalVfsTest, CommitsAfterTheLogStartsOverAreOneWriteEach) {
  // As the store does: once the log starts over, its file is trimmed to this size (smaller than
  // the file, larger than the new log).
  ASSERT_TRUE(writer_->ExecScript("PRAGMA journal_size_limit=524288;").ok());
  Insert(0, 2000);  // ~1 MB of log
  ASSERT_TRUE(writer_->ExecScript("PRAGMA wal_checkpoint(PASSIVE);").ok());
  Insert(2000, 10);  // the log starts over at its first frame
  for (int round = 0; round < 3; ++round) {
    WalWriteStats before = WalCombiningStats();
    Insert(3000 + round * 10, 10);  // a dozen frames at most
    EXPECT_EQ(WalCombiningStats().writes - before.writes, 1u) << "round " << round;
  }
  std::unique_ptr<Db> copy = OpenCopy();
  EXPECT_EQ(Count(*copy), 2040);
  EXPECT_EQ(IntegrityCheck(*copy), "ok");
}

TEST_F(WalVfsTest, ACommitIsInTheFileBeforeAnotherConnectionSeesIt) {
  std::unique_ptr<Db> reader = OpenDb(path_, true);
  for (int round = 0; round < 20; ++round) {
    Insert(round * 50, 50);
    EXPECT_EQ(Count(*reader), (round + 1) * 50);
    std::unique_ptr<Db> copy = OpenCopy();
    EXPECT_EQ(Count(*copy), (round + 1) * 50);
  }
  EXPECT_EQ(IntegrityCheck(*reader), "ok");
}

TEST_F(WalVfsTest, FramesRewrittenInPlaceAndAfterARestartAreIntact) {
  // A tiny page cache spills pages into the log before the commit; writing them again rewrites
  // those frames in place, and the commit then rewrites the frames' checksums.
  ASSERT_TRUE(writer_->ExecScript("PRAGMA cache_size=5;").ok());
  Insert(0, 300);
  ASSERT_TRUE(writer_->Run("BEGIN").ok());
  ASSERT_TRUE(writer_->Prepare("UPDATE t SET v = v || 'x'").Exec().ok());
  ASSERT_TRUE(writer_->Prepare("UPDATE t SET v = v || 'y' WHERE k % 2 = 0").Exec().ok());
  ASSERT_TRUE(writer_->Run("COMMIT").ok());
  {
    std::unique_ptr<Db> copy = OpenCopy();
    EXPECT_EQ(Count(*copy), 300);
    Stmt s = copy->Prepare("SELECT count(*) FROM t WHERE v LIKE '%xy'");
    ASSERT_TRUE(s.Step());
    EXPECT_EQ(s.Int(0), 150);
    EXPECT_EQ(IntegrityCheck(*copy), "ok");
  }
  // A transaction that spilled and rolled back leaves frames nobody may see.
  ASSERT_TRUE(writer_->Run("BEGIN").ok());
  ASSERT_TRUE(writer_->Prepare("DELETE FROM t").Exec().ok());
  ASSERT_TRUE(writer_->Run("ROLLBACK").ok());
  // Checkpoint everything: the next commit starts the log over from its first frame.
  ASSERT_TRUE(writer_->ExecScript("PRAGMA wal_checkpoint(PASSIVE);").ok());
  Insert(300, 100);
  std::unique_ptr<Db> copy = OpenCopy();
  EXPECT_EQ(Count(*copy), 400);
  EXPECT_EQ(IntegrityCheck(*copy), "ok");
  writer_.reset();  // closing checkpoints and removes the log
  std::unique_ptr<Db> reopened = OpenDb(path_, false);
  EXPECT_EQ(Count(*reopened), 400);
  EXPECT_EQ(IntegrityCheck(*reopened), "ok");
}

// Commits are gathered (and report their own write's failure) only where frames can be located:
// with the largest page size too, and for a connection that did not write the log's header.
TEST_F(WalVfsTest, FramesAreFoundWithLargePagesAndInALogAnotherConnectionStarted) {
  const std::string path = (dir_ / "large.db").string();
  {  // A database of 64 KiB pages (the size is fixed once the file exists).
    sqlite3* raw = nullptr;
    ASSERT_EQ(sqlite3_open_v2(path.c_str(), &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                              WalCombiningVfs()),
              SQLITE_OK);
    std::unique_ptr<sqlite3, decltype(&sqlite3_close)> db(raw, &sqlite3_close);
    ASSERT_EQ(sqlite3_exec(raw,
                           "PRAGMA page_size=65536; CREATE TABLE u (k INTEGER PRIMARY KEY, v TEXT);"
                           "PRAGMA journal_mode=WAL;",
                           nullptr, nullptr, nullptr),
              SQLITE_OK);
  }
  std::unique_ptr<Db> a = OpenDb(path, false);
  std::unique_ptr<Db> b = OpenDb(path, false);  // both opened before the log has a header
  EXPECT_EQ(Text(*a, "PRAGMA page_size"), "65536");
  ASSERT_TRUE(a->ExecScript("PRAGMA wal_autocheckpoint=0;").ok());
  ASSERT_TRUE(b->ExecScript("PRAGMA wal_autocheckpoint=0;").ok());
  ASSERT_TRUE(a->ExecScript("INSERT INTO u (v) VALUES ('a'), ('b');").ok());
  const std::string update = "UPDATE u SET v = v || 'x' WHERE k = 1;";
  for (Db* db : {b.get(), a.get()}) {
    // The first commit after the other connection's finds the log longer than it knew, and goes
    // out unbuffered; the next one is one page (the table is its root): a frame of 24 + 65536
    // bytes, written as one.
    ASSERT_TRUE(db->ExecScript(update).ok());
    WalWriteStats before = WalCombiningStats();
    ASSERT_TRUE(db->ExecScript(update).ok());
    EXPECT_EQ(WalCombiningStats().writes - before.writes, 1u);
  }
  std::unique_ptr<Db> c = OpenDb(path, true);
  EXPECT_EQ(Text(*c, "SELECT v FROM u WHERE k = 1"), "axxxx");
  EXPECT_EQ(IntegrityCheck(*c), "ok");
}

// Two connections that write the same log: each one's idea of where the log ends goes stale when
// the other appends.
TEST_F(WalVfsTest, AOneFrameCommitAfterAnotherWritersIsComplete) {
  const std::string path = (dir_ / "two.db").string();
  std::unique_ptr<Db> b = OpenDb(path, false);
  ASSERT_TRUE(b->ExecScript("PRAGMA wal_autocheckpoint=0;"
                            "CREATE TABLE u (k INTEGER PRIMARY KEY, v TEXT);"
                            "INSERT INTO u VALUES (1, 'a');")
                  .ok());
  std::unique_ptr<Db> a = OpenDb(path, false);
  ASSERT_TRUE(a->ExecScript("PRAGMA wal_autocheckpoint=0;").ok());
  EXPECT_EQ(Text(*a, "SELECT count(*) FROM u"), "1");
  ASSERT_TRUE(b->ExecScript("INSERT INTO u VALUES (2, 'b');").ok());
  // One page: its frame header lands past where `a` thought the log ended.
  ASSERT_TRUE(a->ExecScript("UPDATE u SET v = 'zzz' WHERE k = 1;").ok());
  std::unique_ptr<Db> c = OpenDb(path, true);
  EXPECT_EQ(Text(*c, "SELECT v FROM u WHERE k = 1"), "zzz");
}

// A transaction that spilled frames into the log and rolled back must not write them later, over
// what another connection committed meanwhile.
TEST_F(WalVfsTest, FramesOfARolledBackTransactionNeverOverwriteAnotherCommit) {
  const std::string path = (dir_ / "spill.db").string();
  std::unique_ptr<Db> b = OpenDb(path, false);
  ASSERT_TRUE(b->ExecScript("PRAGMA wal_autocheckpoint=0;"
                            "CREATE TABLE u (k INTEGER PRIMARY KEY, v TEXT);"
                            "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c "
                            "WHERE i < 2000) INSERT INTO u SELECT i, printf('%.*c', 200, 'a') "
                            "FROM c;"
                            "PRAGMA wal_checkpoint(TRUNCATE);")
                  .ok());
  std::unique_ptr<Db> a = OpenDb(path, false);
  ASSERT_TRUE(a->ExecScript("PRAGMA wal_autocheckpoint=0; PRAGMA cache_size=5;").ok());
  EXPECT_EQ(Text(*a, "SELECT count(*) FROM u"), "2000");
  ASSERT_TRUE(a->ExecScript("BEGIN; UPDATE u SET v = printf('%.*c', 200, 'X');").ok());
  ASSERT_TRUE(a->ExecScript("ROLLBACK;").ok());
  ASSERT_TRUE(b->ExecScript("UPDATE u SET v = 'kept';").ok());
  EXPECT_EQ(Text(*a, "SELECT count(*) FROM u WHERE v = 'kept'"), "2000");
  std::unique_ptr<Db> c = OpenDb(path, true);
  EXPECT_EQ(Text(*c, "SELECT count(*) FROM u WHERE v = 'kept'"), "2000");
  EXPECT_EQ(IntegrityCheck(*c), "ok");
}

// synchronous=FULL on a file without powersafe overwrite: SQLite pads each commit to a sector
// boundary with copies of its last frame and syncs in the middle of one of them.
TEST_F(WalVfsTest, CommitsPaddedToASectorAreVisibleAtOnce) {
  const std::string path = (dir_ / "full.db").string();
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open_v2(("file:" + path + "?psow=0").c_str(), &raw,
                            SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_URI,
                            WalCombiningVfs()),
            SQLITE_OK);
  std::unique_ptr<sqlite3, decltype(&sqlite3_close)> db(raw, &sqlite3_close);
  ASSERT_EQ(sqlite3_exec(raw,
                         "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
                         "PRAGMA wal_autocheckpoint=0; CREATE TABLE t (v TEXT NOT NULL);",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  std::unique_ptr<Db> reader = OpenDb(path, true);
  for (int round = 1; round <= 30; ++round) {
    std::string sql = "BEGIN;";
    for (int i = 0; i < round; ++i) sql += "INSERT INTO t (v) VALUES (printf('%.*c', 300, 'x'));";
    sql += "COMMIT;";
    ASSERT_EQ(sqlite3_exec(raw, sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK);
    ASSERT_EQ(Count(*reader), round * (round + 1) / 2) << "round " << round;
  }
  EXPECT_EQ(IntegrityCheck(*reader), "ok");
}

// Deleted rows do not stay readable in the database file: content is zeroed on the pages a delete
// writes (secure_delete=FAST; the freed pages themselves are not rewritten).
TEST_F(WalVfsTest, DeletedContentIsOverwritten) {
  for (bool read_only : {false, true}) {
    std::unique_ptr<Db> db = OpenDb(path_, read_only);
    Stmt mode = db->Prepare("PRAGMA secure_delete");
    ASSERT_TRUE(mode.Step());
    EXPECT_EQ(mode.Int(0), 2) << "read_only=" << read_only;  // 2 = FAST
  }
  const std::string secret = "deleted-token-" + RandomAlnum(24);
  ASSERT_TRUE(writer_->Prepare("INSERT INTO t (k, v) VALUES (1, 'kept-1'), (2, ?), (3, 'kept-3')")
                  .Bind(1, secret)
                  .Exec()
                  .ok());
  ASSERT_TRUE(writer_->Run("DELETE FROM t WHERE k = 2").ok());
  ASSERT_TRUE(writer_->ExecScript("PRAGMA wal_checkpoint(TRUNCATE)").ok());
  EXPECT_EQ(Count(*writer_), 2);
  std::ifstream in(path_, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(bytes.find("kept-3"), std::string::npos);
  EXPECT_EQ(bytes.find(secret), std::string::npos);
}

}  // namespace
}  // namespace herald::store::sqlite
