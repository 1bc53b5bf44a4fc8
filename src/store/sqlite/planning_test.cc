// The trigger inbox and planning (planning.cc).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "store/sqlite/store_test_util.h"

namespace herald::store::sqlite {
namespace {

TEST_P(SqliteStoreTest, AFullInboxRefusesTriggersUntilPlanned) {
  store_.reset();
  SqliteOptions options;
  options.path = (dir_ / "herald.db").string();
  options.max_queued_triggers = 2;
  options.use_wal_vfs = GetParam();
  auto opened = OpenSqliteStore(options, keys_);
  ASSERT_TRUE(opened.ok()) << opened.status().message();
  store_ = std::move(*opened);
  auto enqueue = [&](const std::string& tx) { return Enqueue(*store_, QueuedFor(dev_, tx)); };
  EXPECT_TRUE(enqueue("f-1").ok());
  EXPECT_TRUE(enqueue("f-2").ok());
  Status full = enqueue("f-3");
  EXPECT_EQ(full.code(), Code::kUnavailable);
  EXPECT_EQ(store_->ReadQueuedTriggers(10)->size(), 2u);  // the refused one left no row
  // Planning (here: dropping) the waiting rows makes room again.
  auto waiting = store_->ReadQueuedTriggers(10);
  ASSERT_TRUE(waiting.ok());
  std::vector<PlannedTrigger> items = PlanEachFor(waiting.value(), "u1");
  for (PlannedTrigger& item : items) {
    item.request.reset();
    item.error = "test";
  }
  ASSERT_TRUE(store_->PlanTriggers(items, TokenPlanner(), "", 0).ok());
  EXPECT_TRUE(enqueue("f-3").ok());
}

TEST_P(SqliteStoreTest, AReusedInboxSequenceNumberIsNotTakenForTheRowThatWasRead) {
  HookSubscriber({"a"});
  auto enqueue = [&](const std::string& tx) { EnqueueSync(*store_, QueuedFor(dev_, tx)); };
  enqueue("old");
  auto read = store_->ReadQueuedTriggers(10);
  ASSERT_TRUE(read.ok());
  ASSERT_EQ(read->size(), 1u);
  // Cancelled after it was read; a new trigger then gets the freed sequence number.
  EXPECT_TRUE(*store_->CancelTransaction(dev_, "old"));
  enqueue("new");
  auto again = store_->ReadQueuedTriggers(10);
  ASSERT_EQ(again->size(), 1u);
  EXPECT_EQ((*again)[0].seq, (*read)[0].seq);
  PlannedTrigger stale = PlanEachFor(read.value(), "u1")[0];  // "old", as it was read
  auto receipt = store_->PlanTriggers({stale}, TokenPlanner(), "me", NowMs() + 60000);
  ASSERT_TRUE(receipt.ok());
  EXPECT_EQ(receipt->skipped, 1u);                        // the row read is gone
  EXPECT_EQ(store_->ReadQueuedTriggers(10)->size(), 1u);  // and "new" is still queued
}

TEST_P(SqliteStoreTest, PlanningStopsOnceEnoughMessagesAreLeased) {
  HookSubscriber({"a", "b", "c"});
  for (const char* tx : {"m-1", "m-2", "m-3"}) EnqueueSync(*store_, QueuedFor(dev_, tx));
  auto queued = store_->ReadQueuedTriggers(10);
  ASSERT_TRUE(queued.ok());
  std::vector<PlannedTrigger> items = PlanEachFor(queued.value(), "u1");
  // Room for 4: the first trigger makes 3, the second 3 more, the third waits.
  auto receipt = store_->PlanTriggers(items, TokenPlanner(), "me", NowMs() + 60000, 4);
  ASSERT_TRUE(receipt.ok());
  EXPECT_EQ(receipt->planned, 2u);
  EXPECT_EQ(receipt->leased.size(), 6u);
  auto left = store_->ReadQueuedTriggers(10);
  ASSERT_EQ(left->size(), 1u);
  EXPECT_EQ((*left)[0].transaction_id, "m-3");
}

TEST_P(SqliteStoreTest, PlanningManyTriggersRunsInChunksAndKeepsTheirOrderAndTheLimit) {
  HookSubscriber({"a"});
  constexpr int kTriggers = 30;  // several planning chunks
  for (int i = 0; i < kTriggers; ++i)
    EnqueueSync(*store_, QueuedFor(dev_, "c-" + std::to_string(i)));
  auto queued = store_->ReadQueuedTriggers(100);
  ASSERT_TRUE(queued.ok());
  ASSERT_EQ(queued->size(), static_cast<std::size_t>(kTriggers));
  std::vector<PlannedTrigger> items = PlanEachFor(queued.value(), "u1");
  items[11].request.reset();  // a dropped one in the middle of a chunk
  items[11].error = "workflow deleted";
  // Room for 20 messages: triggers 0..20 (one of them dropped) are planned, the rest wait.
  auto receipt = store_->PlanTriggers(items, TokenPlanner(), "me", NowMs() + 60000, 20);
  ASSERT_TRUE(receipt.ok()) << receipt.status().message();
  EXPECT_EQ(receipt->planned, 20u);
  EXPECT_EQ(receipt->dropped, 1u);
  ASSERT_EQ(receipt->leased.size(), 20u);
  for (std::size_t i = 0; i < receipt->leased.size(); ++i) {
    int trigger = static_cast<int>(i < 11 ? i : i + 1);
    EXPECT_EQ(receipt->leased[i].transaction_id, "c-" + std::to_string(trigger));
  }
  auto left = store_->ReadQueuedTriggers(100);
  ASSERT_EQ(left->size(), 9u);
  EXPECT_EQ((*left)[0].transaction_id, "c-21");
}

TEST_P(SqliteStoreTest, APlanningChunkThatFailsLeavesItsTriggersQueuedAndTheOthersAreReturned) {
  HookSubscriber({"a"});
  constexpr int kTriggers = 20;  // chunks of 8: [0, 8), [8, 16), [16, 20)
  for (int i = 0; i < kTriggers; ++i) {
    EnqueueSync(*store_, QueuedFor(dev_, "f-" + std::to_string(i)));
  }
  auto queued = store_->ReadQueuedTriggers(100);
  ASSERT_TRUE(queued.ok());
  std::vector<PlannedTrigger> items = PlanEachFor(queued.value(), "u1");
  // A transient failure (not a reason to drop the trigger) while planning trigger 10; a
  // permanent one for trigger 3, which is dropped alone (its chunk's others are planned).
  MessagePlanner planner = [inner = TokenPlanner()](
                               const Workflow& w, const Subscriber& sub, const Notification& n,
                               const Json& overrides) -> Result<std::vector<Message>> {
    if (n.transaction_id == "f-10") return Status::Unavailable("busy");
    if (n.transaction_id == "f-3") return Status::InvalidArgument("cannot render");
    return inner(w, sub, n, overrides);
  };
  auto receipt = store_->PlanTriggers(items, planner, "me", NowMs() + 60000);
  ASSERT_TRUE(receipt.ok()) << receipt.status().message();
  EXPECT_EQ(receipt->planned, 11u);
  EXPECT_EQ(receipt->dropped, 1u);
  ASSERT_EQ(receipt->leased.size(), 11u);
  EXPECT_EQ(receipt->leased[2].transaction_id, "f-2");
  EXPECT_EQ(receipt->leased[3].transaction_id, "f-4");
  EXPECT_EQ(receipt->leased[6].transaction_id, "f-7");
  EXPECT_EQ(receipt->leased[7].transaction_id, "f-16");
  // The dropped trigger wrote nothing, not even its transactionId; the planned ones did.
  MessageQuery dropped_query;
  dropped_query.environment_id = dev_;
  dropped_query.transaction_ids = {"f-3", "f-2"};
  dropped_query.limit = 10;
  long long found = 0;
  auto found_messages = store_->ListMessages(dropped_query, &found);
  ASSERT_TRUE(found_messages.ok());
  ASSERT_EQ(found, 1);
  EXPECT_EQ(found_messages->front().transaction_id, "f-2");
  auto left = store_->ReadQueuedTriggers(100);
  ASSERT_EQ(left->size(), 8u);  // the failed chunk, whole
  EXPECT_EQ(left->front().transaction_id, "f-8");
  EXPECT_EQ(left->back().transaction_id, "f-15");

  // When every chunk fails, the call fails and nothing is planned.
  std::vector<PlannedTrigger> again = PlanEachFor(left.value(), "u1");
  MessagePlanner failing = [](const Workflow&, const Subscriber&, const Notification&,
                              const Json&) -> Result<std::vector<Message>> {
    return Status::Unavailable("busy");
  };
  EXPECT_EQ(store_->PlanTriggers(again, failing, "me", NowMs() + 60000).status().code(),
            Code::kUnavailable);
  EXPECT_EQ(store_->ReadQueuedTriggers(100)->size(), 8u);
}

TEST_P(SqliteStoreTest, InboxPlansLeasesAndHonoursCancel) {
  HookSubscriber({"a"});
  for (const char* tx : {"q-1", "q-2", "q-3"}) EnqueueSync(*store_, QueuedFor(dev_, tx));
  auto queued = store_->ReadQueuedTriggers(10);
  ASSERT_TRUE(queued.ok());
  ASSERT_EQ(queued->size(), 3u);
  EXPECT_LT((*queued)[0].seq, (*queued)[1].seq);
  EXPECT_EQ((*queued)[1].transaction_id, "q-2");
  EXPECT_EQ((*queued)[1].event["to"], "u1");
  EXPECT_EQ(store_->ReadQueuedTriggers(2)->size(), 2u);

  // Cancelled before it was planned: never planned, and its id stays taken.
  EXPECT_TRUE(*store_->CancelTransaction(dev_, "q-2"));
  EXPECT_FALSE(*store_->CancelTransaction(dev_, "q-2"));

  std::vector<PlannedTrigger> items = PlanEachFor(queued.value(), "u1");
  items[2].request.reset();  // could not be decoded any more
  items[2].error = "workflow deleted";
  EpochMs now = NowMs();
  auto receipt = store_->PlanTriggers(items, TokenPlanner(), "me", now + 60000);
  ASSERT_TRUE(receipt.ok()) << receipt.status().message();
  EXPECT_EQ(receipt->planned, 1u);
  EXPECT_EQ(receipt->skipped, 1u);
  EXPECT_EQ(receipt->dropped, 1u);
  ASSERT_EQ(receipt->leased.size(), 1u);
  const Message& m = receipt->leased[0];
  EXPECT_EQ(m.transaction_id, "q-1");
  EXPECT_EQ(m.device_token, "a");
  EXPECT_FALSE(m.id.empty());
  EXPECT_TRUE(store_->ReadQueuedTriggers(10)->empty());
  // Leased to "me": nobody else claims it until the leases are taken back (a restart).
  EpochMs later = NowMs() + 1;  // after the message was created, however slow planning was
  EXPECT_TRUE(store_->ClaimDueMessages("other", later, later + 60000, 10)->empty());
  ASSERT_TRUE(store_->ReleaseAllLeases().ok());
  auto claimed = store_->ClaimDueMessages("other", later, later + 60000, 10);
  ASSERT_EQ(claimed->size(), 1u);
  EXPECT_EQ((*claimed)[0].id, m.id);
  // Planning the same rows again does nothing: they are gone.
  receipt = store_->PlanTriggers(items, TokenPlanner(), "me", now + 60000);
  ASSERT_TRUE(receipt.ok());
  EXPECT_EQ(receipt->skipped, 3u);
  EXPECT_EQ(receipt->planned, 0u);
  // JIT channels need an active integration of their provider before a trigger is accepted.
  TriggerRequest jit;
  jit.environment_id = dev_;
  jit.subscribers.push_back({"new-one", {}, {JitChannel{"push-webhook", std::nullopt, {}, {}}}});
  EXPECT_TRUE(store_->CheckTriggerTargets(jit).ok());
  jit.subscribers[0].channels[0].integration_identifier = "no-such-integration";
  EXPECT_EQ(store_->CheckTriggerTargets(jit).code(), Code::kInvalidArgument);
  jit.subscribers[0].channels[0] = JitChannel{"fcm", std::nullopt, {}, {}};
  EXPECT_EQ(store_->CheckTriggerTargets(jit).code(), Code::kInvalidArgument);
  // u1 holds "a": appending two more to a channel limited to 2 would exceed it.
  jit.subscribers[0] = {"u1", {}, {JitChannel{"push-webhook", std::nullopt, Tokens({"b"}), {}}}};
  jit.max_tokens = 2;
  EXPECT_TRUE(store_->CheckTriggerTargets(jit).ok());
  jit.subscribers[0].channels[0].tokens = Tokens({"a", "b", "c"});
  Status over = store_->CheckTriggerTargets(jit);
  EXPECT_EQ(over.code(), Code::kInvalidArgument);
  EXPECT_NE(over.message().find("limit exceeded"), std::string::npos);
  // A trigger repeating the cancelled id is a duplicate.
  items[1].seq = 0;
  receipt = store_->PlanTriggers({items[1]}, TokenPlanner(), "me", now + 60000);
  ASSERT_TRUE(receipt.ok());
  EXPECT_EQ(receipt->duplicates, 1u);
}

}  // namespace
}  // namespace herald::store::sqlite
