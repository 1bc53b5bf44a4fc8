// Messages, the activity feed and idempotency keys (messages.cc), and the migration of the
// notifications' indexes (migrations.cc).
#include <gtest/gtest.h>

#include <future>
#include <string>
#include <utility>
#include <vector>

#include "store/sqlite/store_test_util.h"

namespace herald::store::sqlite {
namespace {

TEST_P(SqliteStoreTest, NotificationsFindTheirMessagesBeforeAndAfterTheIndexMigration) {
  HookSubscriber({"a", "b"});
  for (const char* tx : {"tx-a", "tx-b"}) {
    TriggerRequest request;
    request.environment_id = dev_;
    request.transaction_id = tx;
    request.workflow = TestWorkflow();
    request.subscribers.push_back({"u1", {}, {}});
    ASSERT_TRUE(AcceptSync(*store_, request).ok());
  }
  auto check = [&] {
    NotificationQuery q;
    q.environment_id = dev_;
    long long total = 0;
    auto all = store_->ListNotifications(q, &total);
    ASSERT_TRUE(all.ok()) << all.status().message();
    ASSERT_EQ(all->size(), 2u);
    for (const NotificationWithMessages& n : *all) {
      ASSERT_EQ(n.messages.size(), 2u) << n.notification.transaction_id;
      for (const Message& m : n.messages) EXPECT_EQ(m.notification_id, n.notification.id);
    }
    q.transaction_ids = {"tx-b"};
    auto one = store_->ListNotifications(q, &total);
    ASSERT_TRUE(one.ok());
    ASSERT_EQ(one->size(), 1u);
    EXPECT_EQ((*one)[0].notification.transaction_id, "tx-b");
    EXPECT_EQ((*one)[0].messages.size(), 2u);
  };
  auto indexes = [&] {
    auto db = OpenDb(/*read_only=*/true);
    EXPECT_TRUE(db.ok());
    Stmt s = (*db)->Prepare(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'messages' AND "
        "sql IS NOT NULL ORDER BY name");
    std::vector<std::string> names;
    while (s.Step()) names.push_back(s.Text(0));
    return names;
  };
  check();
  // Back to schema version 4 (two lookup indexes, no severity or topics on notifications, no
  // token history or receipts, no event webhooks), with the rows in place; reopening migrates.
  store_.reset();
  {
    auto db = OpenDb(/*read_only=*/false);
    ASSERT_TRUE(db.ok());
    ASSERT_TRUE(
        (*db)
            ->ExecScript("DROP INDEX messages_by_tx_notification;"
                         "CREATE INDEX messages_by_tx ON messages(environment_id, transaction_id);"
                         "CREATE INDEX messages_by_notification ON messages(notification_id);"
                         "ALTER TABLE notifications DROP COLUMN severity;"
                         "ALTER TABLE notifications DROP COLUMN topics;"
                         "ALTER TABLE device_tokens DROP COLUMN registered_at;"
                         "ALTER TABLE device_tokens DROP COLUMN status_changed_at;"
                         "ALTER TABLE messages DROP COLUMN receipt;"
                         "DROP TABLE webhook_endpoints; DROP TABLE webhook_events;"
                         "DROP TABLE webhook_deliveries; DROP INDEX device_tokens_by_created;"
                         "DELETE FROM schema_migrations WHERE version >= 5;")
            .ok());
  }
  EXPECT_EQ(indexes(), (std::vector<std::string>{"messages_by_notification", "messages_by_tx",
                                                 "messages_due"}));
  Open();
  EXPECT_EQ(indexes(), (std::vector<std::string>{"messages_by_tx_notification", "messages_due"}));
  check();
}

// The activity feed's filters: each one narrows, the subscriber criteria (ids, emails, search)
// widen each other as Novu's do, and a notification records its severity and its topics.
TEST_P(SqliteStoreTest, NotificationFiltersMatchWhatEachNotificationRecords) {
  ASSERT_TRUE(store_->CreateIntegration(MakeIntegration(dev_, "hook")).ok());
  for (const auto& [id, email] : std::vector<std::pair<std::string, std::string>>{
           {"f0", "ann@x.io"}, {"f1", "bob@Y.io"}, {"f2", ""}}) {
    MustHoldTokens(id, {"tok"});
    SubscriberPatch patch;
    if (!email.empty()) patch.email = std::optional<std::string>(email);
    if (!patch.empty()) {
      ASSERT_TRUE(store_->PatchSubscriber(dev_, id, patch).ok());
    }
  }
  auto subscribed = store_->AddTopicSubscribers(dev_, "news", {"f0", "f1"});
  ASSERT_TRUE(subscribed.ok());
  ASSERT_EQ(subscribed->succeeded.size(), 2u);
  const TopicSubscription& f0_news = subscribed->succeeded[0].subscriber_id == "f0"
                                         ? subscribed->succeeded[0]
                                         : subscribed->succeeded[1];
  Workflow loud = MustCreateWorkflow("loud");
  loud.severity = "high";
  ASSERT_TRUE(store_->UpdateWorkflow(loud).ok());
  Workflow quiet = MustCreateWorkflow("quiet");
  auto trigger = [&](const Workflow& w, const std::string& tx, const char* to, Json overrides) {
    TriggerRequest r;
    r.environment_id = dev_;
    r.transaction_id = tx;
    r.workflow = std::make_shared<const Workflow>(w);
    r.overrides = std::move(overrides);
    if (to) {
      r.subscribers.push_back({to, {}, {}});
    } else {
      r.topics.push_back({"news", {}});
    }
    auto receipt = AcceptSync(*store_, r);
    ASSERT_TRUE(receipt.ok()) << receipt.status().message();
    while (*store_->RunFanoutBatch(10, TokenPlanner()) > 0) {
    }
  };
  trigger(loud, "tx-direct", "f2", Json::object());
  trigger(quiet, "tx-topic", nullptr, Json::object());
  trigger(quiet, "tx-low", "f0", {{"severity", "low"}});
  trigger(quiet, "tx-odd", "f1", {{"severity", "urgent"}});  // not a severity: the workflow's

  auto find = [&](auto&& set) {
    NotificationQuery q;
    q.environment_id = dev_;
    q.limit = 100;
    set(q);
    long long total = 0;
    auto found = store_->ListNotifications(q, &total);
    EXPECT_TRUE(found.ok()) << found.status().message();
    std::vector<std::string> out;
    for (const NotificationWithMessages& n : *found) {
      out.push_back(n.notification.transaction_id + "/" + n.notification.subscriber_id);
    }
    std::sort(out.begin(), out.end());
    EXPECT_EQ(total, static_cast<long long>(out.size()));
    return out;
  };
  using V = std::vector<std::string>;
  EXPECT_EQ(find([](auto&) {}).size(), 5u);
  EXPECT_EQ(find([&](auto& q) { q.workflow_pks = {loud.id}; }), V{"tx-direct/f2"});
  EXPECT_EQ(find([](auto& q) { q.severities = {"high"}; }), V{"tx-direct/f2"});
  EXPECT_EQ(find([](auto& q) {
              q.severities = {"low", "high"};
            }),
            (V{"tx-direct/f2", "tx-low/f0"}));
  EXPECT_EQ(find([](auto& q) { q.severities = {"none"}; }),
            (V{"tx-odd/f1", "tx-topic/f0", "tx-topic/f1"}));
  EXPECT_EQ(find([](auto& q) { q.topic_key = "news"; }), (V{"tx-topic/f0", "tx-topic/f1"}));
  EXPECT_EQ(find([](auto& q) { q.topic_key = "sport"; }), V{});
  EXPECT_EQ(find([&](auto& q) { q.subscription_id = f0_news.id; }), V{"tx-topic/f0"});
  EXPECT_EQ(find([](auto& q) { q.subscription_id = "nope"; }), V{});
  EXPECT_EQ(find([](auto& q) { q.emails = {"ann@x.io"}; }), (V{"tx-low/f0", "tx-topic/f0"}));
  EXPECT_EQ(find([](auto& q) { q.search = "Y.IO"; }), (V{"tx-odd/f1", "tx-topic/f1"}));
  EXPECT_EQ(find([](auto& q) { q.search = "f2"; }), V{"tx-direct/f2"});
  EXPECT_EQ(find([](auto& q) { q.search = "f"; }), V{});  // an id matches whole, an email in part
  EXPECT_EQ(find([](auto& q) {
              q.subscriber_ids = {"f2"};
              q.emails = {"bob@Y.io"};
              q.transaction_ids = {"tx-direct", "tx-odd"};
            }),
            (V{"tx-direct/f2", "tx-odd/f1"}));
  const EpochMs now = NowMs();
  EXPECT_EQ(find([&](auto& q) { q.after = now + 60000; }), V{});
  EXPECT_EQ(find([&](auto& q) { q.before = now - 60000; }), V{});
  EXPECT_EQ(find([&](auto& q) {
              q.after = now - 60000;
              q.before = now + 60000;
            }).size(),
            5u);

  NotificationQuery q;
  q.environment_id = dev_;
  q.transaction_ids = {"tx-direct", "tx-topic"};
  q.limit = 10;
  long long total = 0;
  auto listed = store_->ListNotifications(q, &total);
  ASSERT_TRUE(listed.ok());
  for (const NotificationWithMessages& n : *listed) {
    if (n.notification.transaction_id == "tx-direct") {
      EXPECT_EQ(n.notification.severity, "high");
      EXPECT_EQ(n.notification.topics, Json::array());
    } else {
      EXPECT_EQ(n.notification.severity, "none");
      ASSERT_EQ(n.notification.topics.size(), 1u);
      EXPECT_EQ(n.notification.topics[0]["topicKey"], "news");
      EXPECT_EQ(n.notification.topics[0]["_topicId"], f0_news.topic.id);
    }
  }
}

// Novu's idempotency (novu-api.md §2.0.1) as the store keeps it: a fresh key is held in progress
// until its reply is stored; the reply is replayed for the same body and refused for another;
// a key that expired (or a server error's, stored as expiring now) starts over. The API maps
// the states to 201-then-replay, 409 + Retry-After and 422.
TEST_P(SqliteStoreTest, IdempotencyKeysGoFromInProgressToReplayAndExpire) {
  const EpochMs now = NowMs();
  auto begin = [&](const std::string& env, const std::string& key, const std::string& hash,
                   EpochMs at) {
    std::promise<Result<IdempotencyRecord>> p;
    store_->BeginIdempotent(env, key, hash, at, at + 300000,
                            [&p](Result<IdempotencyRecord> r) { p.set_value(std::move(r)); });
    Result<IdempotencyRecord> r = p.get_future().get();
    EXPECT_TRUE(r.ok()) << r.status().message();
    return r.ok() ? *r : IdempotencyRecord{};
  };
  EXPECT_EQ(begin(dev_, "k1", "h1", now).state, IdempotencyState::kNew);
  // A second request while the first runs: in progress; with another body: a mismatch.
  EXPECT_EQ(begin(dev_, "k1", "h1", now + 10).state, IdempotencyState::kInProgress);
  EXPECT_EQ(begin(dev_, "k1", "h2", now + 10).state, IdempotencyState::kMismatch);
  // The same key in another environment is another key.
  EXPECT_EQ(begin(prod_, "k1", "h1", now).state, IdempotencyState::kNew);

  store_->FinishIdempotent(dev_, "k1", 201, R"({"data":{"acknowledged":true}})", now + 60000);
  ASSERT_TRUE(store_->Flush().ok());
  IdempotencyRecord replay = begin(dev_, "k1", "h1", now + 20);
  EXPECT_EQ(replay.state, IdempotencyState::kReplay);
  EXPECT_EQ(replay.status, 201);
  EXPECT_EQ(replay.body, R"({"data":{"acknowledged":true}})");
  EXPECT_EQ(begin(dev_, "k1", "h2", now + 20).state, IdempotencyState::kMismatch);
  // Survives a restart.
  Open();
  EXPECT_EQ(begin(dev_, "k1", "h1", now + 30).state, IdempotencyState::kReplay);

  // Past its expiry the key is new again, whatever the body.
  EXPECT_EQ(begin(dev_, "k1", "h2", now + 60001).state, IdempotencyState::kNew);
  EXPECT_EQ(begin(dev_, "k1", "h2", now + 60002).state, IdempotencyState::kInProgress);
  store_->FinishIdempotent(dev_, "k1", 503, "{}", now + 60002);  // a server error: not kept
  ASSERT_TRUE(store_->Flush().ok());
  EXPECT_EQ(begin(dev_, "k1", "h2", now + 60003).state, IdempotencyState::kNew);
  // Purging removes what expired and leaves the rest: prod's key was held until now + 300000,
  // dev's (begun again above) until now + 360003.
  auto records = [&] {
    auto db = OpenDb(/*read_only=*/true);
    EXPECT_TRUE(db.ok());
    Stmt s = (*db)->Prepare("SELECT COUNT(*) FROM idempotency_keys");
    EXPECT_TRUE(s.Step());
    return s.Int(0);
  };
  EXPECT_EQ(records(), 2);
  ASSERT_TRUE(store_->PurgeExpired(now + 300001).ok());
  EXPECT_EQ(records(), 1);
  EXPECT_EQ(begin(dev_, "k1", "h2", now + 300002).state, IdempotencyState::kInProgress);
}

}  // namespace
}  // namespace herald::store::sqlite
