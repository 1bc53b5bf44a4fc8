// The write path every operation shares: group commit, durability across a reopen, Flush, a
// failed write rolled back alone; and SqliteOptions::use_wal_vfs.
#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "store/sqlite/store_test_util.h"
#include "store/sqlite/wal_vfs.h"

namespace herald::store::sqlite {
namespace {

TEST_P(SqliteStoreTest, ConcurrentWritesAreGroupCommittedAndAllDurable) {
  constexpr int kThreads = 8, kPerThread = 50;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        bool created = false;
        auto r = store_->UpsertSubscriber(dev_, "c" + std::to_string(t) + "-" + std::to_string(i),
                                          {}, true, &created);
        EXPECT_TRUE(r.ok());
      }
    });
  }
  for (auto& th : threads) th.join();
  Open();  // reopen: everything acknowledged is there
  auto page = store_->SearchSubscribers(dev_, {}, {});
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->total_count, kThreads * kPerThread);
}

TEST_P(SqliteStoreTest, FlushReturnsAfterEveryEarlierWriteCalledBack) {
  std::atomic<int> called{0};
  for (int i = 0; i < 50; ++i) {
    QueuedTrigger q;
    q.environment_id = dev_;
    q.transaction_id = "flush-" + std::to_string(i);
    q.event = {{"name", "wf"}, {"to", "u1"}};
    store_->EnqueueTrigger(std::move(q), [&](Status st) {
      EXPECT_TRUE(st.ok()) << st.message();
      called.fetch_add(1);
    });
  }
  ASSERT_TRUE(store_->Flush().ok());
  EXPECT_EQ(called.load(), 50);
}

TEST_P(SqliteStoreTest, FailedWriteInABatchLeavesNothingAndOthersCommit) {
  ASSERT_TRUE(store_->CreateIntegration(MakeIntegration(dev_, "hook")).ok());
  MustUpsert(dev_, "u1");
  // Over the limit: the channel row created inside this write must be rolled back too.
  CredentialsUpdate u{
      "push-webhook", std::nullopt, Tokens({"a", "b"}), {}, {}, TokenWriteMode::kReplace, 1};
  EXPECT_FALSE(store_->UpdateCredentials(dev_, "u1", u).ok());
  EXPECT_TRUE(store_->GetSubscriber(dev_, "u1")->channels.empty());
}

// The WAL-combining VFS writes the store's commits only when the options ask for it.
TEST_P(SqliteStoreTest, CommitsGoThroughTheWalVfsOnlyWhenAsked) {
  const WalWriteStats before = WalCombiningStats();
  MustUpsert(dev_, "u1");
  EXPECT_EQ(WalCombiningStats().writes > before.writes, GetParam());
}

}  // namespace
}  // namespace herald::store::sqlite
