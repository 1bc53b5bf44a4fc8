#include "store/sqlite/writer.h"

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/ids.h"

namespace herald::store::sqlite {
namespace {

class WriterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("herald-writer-" + RandomAlnum(10));
    std::filesystem::create_directories(dir_);
    path_ = (dir_ / "w.db").string();
    auto db = Db::Open(path_, false);
    ASSERT_TRUE(db.ok()) << db.status().message();
    ASSERT_TRUE((*db)->ExecScript("CREATE TABLE t (v INTEGER NOT NULL)").ok());
    Start(std::move(*db), std::chrono::minutes(10));  // lazy commits are not synced in a test
  }
  void Start(std::unique_ptr<Db> db, std::chrono::milliseconds lazy_sync_delay,
             std::chrono::microseconds background_budget = std::chrono::minutes(10)) {
    writer_ =
        std::make_unique<Writer>(std::move(db), path_ + "-wal", lazy_sync_delay, background_budget);
  }
  void Restart(std::chrono::milliseconds lazy_sync_delay,
               std::chrono::microseconds background_budget = std::chrono::minutes(10)) {
    writer_.reset();
    auto db = Db::Open(path_, false);
    ASSERT_TRUE(db.ok()) << db.status().message();
    Start(std::move(*db), lazy_sync_delay, background_budget);
  }

  // Holds the writer inside a write until the returned promise is set.
  std::promise<void> Block(Priority priority = Priority::kBackground) {
    std::promise<void> release;
    auto entered = std::make_shared<std::promise<void>>();  // outlives a late set_value
    std::future<void> in = entered->get_future();
    writer_->Submit(
        [entered, wait = release.get_future().share()](Db&) {
          entered->set_value();
          wait.wait();
          return Status::Ok();
        },
        [](Status) {}, Durability::kCommitted, priority);
    in.wait();
    return release;
  }
  void TearDown() override {
    writer_.reset();
    std::filesystem::remove_all(dir_);
  }

  static WriteFn Insert(int v) {
    return [v](Db& db) {
      Stmt s = db.Prepare("INSERT INTO t (v) VALUES (?)");
      s.Bind(1, v);
      return s.Exec();
    };
  }

  // The rows as another connection sees them.
  std::vector<int> Rows() {
    auto db = Db::Open(path_, true);
    EXPECT_TRUE(db.ok());
    std::vector<int> out;
    Stmt s = (*db)->Prepare("SELECT v FROM t ORDER BY rowid");
    while (s.Step()) out.push_back(static_cast<int>(s.Int(0)));
    return out;
  }

  std::filesystem::path dir_;
  std::string path_;
  std::unique_ptr<Writer> writer_;
};

TEST_F(WriterTest, CommittedWritesAreVisibleWithoutASyncAndSyncedOnesSync) {
  ASSERT_TRUE(writer_->Run(Insert(1), Durability::kCommitted).ok());
  ASSERT_TRUE(writer_->Run(Insert(2), Durability::kCommitted).ok());
  EXPECT_EQ(writer_->SyncCount(), 0u);
  EXPECT_EQ(Rows(), (std::vector<int>{1, 2}));

  ASSERT_TRUE(writer_->Run(Insert(3)).ok());  // kSynced by default
  EXPECT_EQ(writer_->SyncCount(), 1u);
  EXPECT_EQ(Rows(), (std::vector<int>{1, 2, 3}));
}

TEST_F(WriterTest, ALazyCommitIsSyncedAfterTheDelay) {
  Restart(std::chrono::milliseconds(20));
  ASSERT_TRUE(writer_->Run(Insert(1), Durability::kCommitted).ok());
  for (int i = 0; i < 500 && writer_->SyncCount() == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(writer_->SyncCount(), 1u);
}

TEST_F(WriterTest, ForegroundWritesGoAheadOfQueuedBackgroundOnes) {
  std::vector<std::string> ran;  // appended on the writer thread only
  auto step = [&ran](std::string name) {
    return [&ran, name](Db&) {
      ran.push_back(name);
      return Status::Ok();
    };
  };
  std::promise<void> release = Block();
  writer_->Submit(
      step("b1"), [](Status) {}, Durability::kCommitted, Priority::kBackground);
  writer_->Submit(
      step("b2"), [](Status) {}, Durability::kCommitted, Priority::kBackground);
  writer_->Submit(step("f1"), [](Status) {});
  writer_->Submit(step("f2"), [](Status) {});
  release.set_value();
  ASSERT_TRUE(
      writer_->Run([](Db&) { return Status::Ok(); }, Durability::kSynced,
                   Priority::kBackground)
          .ok());  // behind everything
  EXPECT_EQ(ran, (std::vector<std::string>{"f1", "f2", "b1", "b2"}));
}

TEST_F(WriterTest, ABatchTakesBackgroundWritesOnlyWithinItsBudget) {
  auto commits_for = [&](std::chrono::microseconds budget) {
    Restart(std::chrono::minutes(10), budget);
    std::promise<void> release = Block();  // batch 1
    std::vector<std::future<Status>> results;
    for (int i = 0; i < 3; ++i) {
      auto done = std::make_shared<std::promise<Status>>();
      results.push_back(done->get_future());
      writer_->Submit(
          Insert(i), [done](Status st) { done->set_value(std::move(st)); }, Durability::kCommitted,
          Priority::kBackground);
    }
    release.set_value();
    for (auto& r : results) EXPECT_TRUE(r.get().ok());
    return writer_->CommitCount();
  };
  // The blocked write ran past any small budget: each later background write gets a batch.
  EXPECT_EQ(commits_for(std::chrono::microseconds(0)), 4u);
  // A budget it did not use up: the waiting writes join the blocked write's batch.
  EXPECT_EQ(commits_for(std::chrono::minutes(10)), 1u);
}

TEST_F(WriterTest, ABatchOfForegroundWritesTakesOneBackgroundWritePastItsBudget) {
  Restart(std::chrono::minutes(10), std::chrono::microseconds(0));
  std::promise<void> release = Block(Priority::kForeground);
  std::vector<std::future<Status>> results;
  for (Priority p : {Priority::kBackground, Priority::kBackground, Priority::kForeground}) {
    auto done = std::make_shared<std::promise<Status>>();
    results.push_back(done->get_future());
    writer_->Submit(
        Insert(1), [done](Status st) { done->set_value(std::move(st)); }, Durability::kCommitted,
        p);
  }
  release.set_value();
  for (auto& r : results) EXPECT_TRUE(r.get().ok());
  // [blocker, foreground, first background], then the second background write alone.
  EXPECT_EQ(writer_->CommitCount(), 2u);
}

TEST_F(WriterTest, CallbacksRunInSubmissionOrderWhateverTheDurability) {
  std::mutex mu;
  std::vector<int> order;
  std::promise<void> all_done;
  constexpr int kWrites = 200;
  for (int i = 0; i < kWrites; ++i) {
    writer_->Submit(
        Insert(i),
        [&, i](Status st) {
          EXPECT_TRUE(st.ok());
          std::lock_guard lock(mu);
          order.push_back(i);
          if (order.size() == kWrites) all_done.set_value();
        },
        i % 3 == 0 ? Durability::kSynced : Durability::kCommitted);
  }
  all_done.get_future().wait();
  std::vector<int> expected(kWrites);
  for (int i = 0; i < kWrites; ++i) expected[static_cast<std::size_t>(i)] = i;
  EXPECT_EQ(order, expected);
  EXPECT_GE(writer_->SyncCount(), 1u);
  EXPECT_EQ(Rows().size(), static_cast<std::size_t>(kWrites));
}

TEST_F(WriterTest, AWriteThatUndoesItselfRunsWithoutASavepoint) {
  ASSERT_TRUE(writer_->Run(Insert(1)).ok());
  // A failing statement is undone by SQLite alone (here: the first of its two rows too); the
  // batch goes on and commits.
  auto two_rows = [](int v) -> WriteFn {
    return [v](Db& db) {
      Stmt s = db.Prepare("INSERT INTO t (v) VALUES (?), (?)");
      s.Bind(1, v);
      if (v < 0)
        s.BindNull(2);
      else
        s.Bind(2, v);  // NULL breaks NOT NULL: the statement fails
      return s.Exec();
    };
  };
  std::promise<void> release = Block(Priority::kForeground);
  std::vector<std::future<Status>> results;
  for (int v : {2, -1, 3}) {
    auto done = std::make_shared<std::promise<Status>>();
    results.push_back(done->get_future());
    writer_->Submit(
        two_rows(v), [done](Status st) { done->set_value(std::move(st)); }, Durability::kSynced,
        Priority::kForeground, Undo::kSelf);
  }
  release.set_value();
  EXPECT_TRUE(results[0].get().ok());
  EXPECT_EQ(results[1].get().code(), Code::kInternal);
  EXPECT_TRUE(results[2].get().ok());
  EXPECT_EQ(Rows(), (std::vector<int>{1, 2, 2, 3, 3}));
  // Without a savepoint of its own, nothing undoes a write's earlier statements: that is why
  // only writes that leave nothing behind when they fail may ask for kSelf.
  Status partial = writer_->Run(
      [](Db& db) -> Status {
        if (Status st = Insert(4)(db); !st.ok()) return st;
        return Status::InvalidArgument("no");
      },
      Durability::kSynced, Priority::kForeground, Undo::kSelf);
  EXPECT_EQ(partial.code(), Code::kInvalidArgument);
  EXPECT_EQ(Rows(), (std::vector<int>{1, 2, 2, 3, 3, 4}));
}

TEST_F(WriterTest, AFailedWriteIsRolledBackAloneAndNeedsNoSync) {
  Status failed = writer_->Run(
      [](Db& db) -> Status {
        if (Status st = Insert(7)(db); !st.ok()) return st;
        return Status::InvalidArgument("no");
      },
      Durability::kSynced);
  EXPECT_EQ(failed.code(), Code::kInvalidArgument);
  EXPECT_TRUE(Rows().empty());
  EXPECT_EQ(writer_->SyncCount(), 0u);
}

TEST_F(WriterTest, TheRollbackHookRunsWhenABatchIsRolledBackAsAWhole) {
  writer_.reset();
  auto db = Db::Open(path_, false);
  ASSERT_TRUE(db.ok()) << db.status().message();
  std::atomic<int> rollbacks{0};
  writer_ = std::make_unique<Writer>(std::move(*db), path_ + "-wal", std::chrono::minutes(10),
                                     std::chrono::minutes(10), [&rollbacks] { ++rollbacks; });
  ASSERT_TRUE(writer_->Run(Insert(1)).ok());
  // A write that fails is rolled back alone: its batch commits.
  EXPECT_FALSE(writer_->Run([](Db&) { return Status::InvalidArgument("no"); }).ok());
  EXPECT_EQ(rollbacks.load(), 0);

  // A write in the same batch as one that ends the transaction is lost with it, and the hook
  // runs before the next batch.
  std::promise<void> release = Block(Priority::kForeground);
  std::promise<Status> lost, aborting;
  writer_->Submit(Insert(2), [&](Status st) { lost.set_value(std::move(st)); });
  writer_->Submit([](Db& db) { return db.Run("ROLLBACK"); },
                  [&](Status st) { aborting.set_value(std::move(st)); });
  writer_->Submit(
      [&rollbacks](Db&) {
        return rollbacks.load() == 1 ? Status::Ok() : Status::Internal("hook did not run first");
      },
      [](Status st) { EXPECT_TRUE(st.ok()) << st.message(); }, Durability::kCommitted,
      Priority::kBackground);
  release.set_value();
  EXPECT_EQ(lost.get_future().get().code(), Code::kInternal);
  EXPECT_EQ(aborting.get_future().get().code(), Code::kInternal);
  ASSERT_TRUE(writer_->Run(Insert(3)).ok());
  EXPECT_EQ(rollbacks.load(), 1);
  EXPECT_EQ(Rows(), (std::vector<int>{1, 3}));
}

}  // namespace
}  // namespace herald::store::sqlite
