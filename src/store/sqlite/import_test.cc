// Bulk import of subscribers (import.cc): upserts with tokens and topic memberships, all or
// nothing, and what planning sees afterwards.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "store/sqlite/store_test_util.h"

namespace herald::store::sqlite {
namespace {

// A subscriber named Ann with `tokens` on the push-webhook integration (by identifier, if given)
// and the `topics` keys.
ImportedSubscriber Item(const std::string& id, std::vector<const char*> tokens = {},
                        std::vector<std::string> topics = {},
                        std::optional<std::string> integration = std::nullopt) {
  ImportedSubscriber item;
  item.where = "item " + id;
  item.subscriber_id = id;
  item.profile.first_name = std::optional<std::string>("Ann");
  if (!tokens.empty()) {
    JitChannel channel;
    channel.provider_id = "push-webhook";
    channel.integration_identifier = std::move(integration);
    for (const char* t : tokens) channel.tokens.push_back({t, t});
    item.channels.push_back(std::move(channel));
  }
  item.topics = std::move(topics);
  return item;
}

// A source yielding `items` in order.
SubscriberSource From(const std::vector<ImportedSubscriber>& items) {
  return [&items, next = std::size_t{0}](ImportedSubscriber& out) mutable -> Result<bool> {
    if (next == items.size()) return false;
    out = items[next++];
    return true;
  };
}

std::vector<std::string> TokenStrings(const Subscriber& sub) {
  std::vector<std::string> out;
  for (const SubscriberChannel& ch : sub.channels) {
    for (const DeviceToken& t : ch.tokens) {
      out.push_back(t.token + (t.status == TokenStatus::kActive ? "" : "(expired)"));
    }
  }
  return out;
}

TEST_P(SqliteStoreTest, ImportCreatesSubscribersTokensAndTopics) {
  ASSERT_TRUE(store_->CreateIntegration(MakeIntegration(dev_, "hook")).ok());
  std::vector<ImportedSubscriber> items{Item("u1", {"a"}, {"news"}),
                                        Item("u2", {"b", "c"}, {"news", "sports"}), Item("u3")};
  items[2].profile.email = std::optional<std::string>("u3@example.com");
  items[2].profile.data = std::optional<Json>(Json{{"plan", "pro"}});
  auto receipt = store_->ImportSubscribers(dev_, From(items), 100);
  ASSERT_TRUE(receipt.ok()) << receipt.status().message();
  EXPECT_EQ(receipt->created, 3u);
  EXPECT_EQ(receipt->updated, 0u);
  EXPECT_EQ(receipt->tokens_added, 3u);
  EXPECT_EQ(receipt->topic_subscriptions_added, 3u);
  EXPECT_EQ(receipt->topics_created, 2u);
  EXPECT_EQ(receipt->item_created, (std::vector<bool>{true, true, true}));

  auto u2 = store_->GetSubscriber(dev_, "u2");
  ASSERT_TRUE(u2.ok());
  EXPECT_EQ(u2->profile.first_name, std::optional<std::string>("Ann"));
  ASSERT_EQ(u2->channels.size(), 1u);
  EXPECT_EQ(u2->channels[0].integration_identifier, "hook");
  EXPECT_EQ(TokenStrings(*u2), (std::vector<std::string>{"b", "c"}));
  EXPECT_EQ(u2->topics, (std::vector<std::string>{"news", "sports"}));
  auto u3 = store_->GetSubscriber(dev_, "u3");
  ASSERT_TRUE(u3.ok());
  EXPECT_EQ(u3->profile.email, std::optional<std::string>("u3@example.com"));
  EXPECT_EQ((*u3->profile.data)["plan"], "pro");
  EXPECT_TRUE(u3->channels.empty());
  EXPECT_EQ(store_->GetSubscriber(prod_, "u1").status().code(), Code::kNotFound);

  auto news = store_->ListTopicSubscriptions(dev_, "news", std::nullopt, PageRequest{});
  ASSERT_TRUE(news.ok());
  EXPECT_EQ(news->total_count, 2);
  EXPECT_EQ(news->items[0].identifier.substr(0, 5), "news:");
}

TEST_P(SqliteStoreTest, ImportAgainUpdatesAndAddsNothingTwice) {
  ASSERT_TRUE(store_->CreateIntegration(MakeIntegration(dev_, "hook")).ok());
  std::vector<ImportedSubscriber> first{Item("u1", {"a"}, {"news"})};
  first[0].profile.last_name = std::optional<std::string>("Lee");
  first[0].profile.phone = std::optional<std::string>("+100");
  ASSERT_TRUE(store_->ImportSubscribers(dev_, From(first), 100).ok());
  EpochMs created_at = store_->GetSubscriber(dev_, "u1")->created_at;

  // Named twice in one import, with a new token the second time; a field given as null clears,
  // one left out keeps its value.
  ImportedSubscriber again = Item("u1", {"a"}, {"news"});
  again.profile.phone = std::optional<std::string>();
  std::vector<ImportedSubscriber> second{again, Item("u1", {"a", "b"}, {"news"})};
  second[1].profile.first_name = std::optional<std::string>("Bo");
  auto receipt = store_->ImportSubscribers(dev_, From(second), 100);
  ASSERT_TRUE(receipt.ok()) << receipt.status().message();
  EXPECT_EQ(receipt->created, 0u);
  EXPECT_EQ(receipt->updated, 2u);
  EXPECT_EQ(receipt->tokens_added, 1u);
  EXPECT_EQ(receipt->topic_subscriptions_added, 0u);
  EXPECT_EQ(receipt->topics_created, 0u);
  EXPECT_EQ(receipt->item_created, (std::vector<bool>{false, false}));

  auto u1 = store_->GetSubscriber(dev_, "u1");
  ASSERT_TRUE(u1.ok());
  EXPECT_EQ(u1->created_at, created_at);
  EXPECT_EQ(u1->profile.first_name, std::optional<std::string>("Bo"));
  EXPECT_EQ(u1->profile.last_name, std::optional<std::string>("Lee"));
  EXPECT_FALSE(u1->profile.phone.has_value());
  ASSERT_EQ(u1->channels.size(), 1u);
  EXPECT_EQ(TokenStrings(*u1), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(u1->topics, std::vector<std::string>{"news"});
}

// Subscribers are written in batches (of 64): new and existing ones mixed in one batch, a
// subscriber named twice in a batch and in two batches, and a short last batch.
TEST_P(SqliteStoreTest, ImportMixesNewAndExistingAcrossBatches) {
  ASSERT_TRUE(store_->CreateIntegration(MakeIntegration(dev_, "hook")).ok());
  std::vector<ImportedSubscriber> first;
  for (int i = 0; i < 100; ++i) first.push_back(Item("s" + std::to_string(i), {"old"}, {"t1"}));
  auto receipt = store_->ImportSubscribers(dev_, From(first), 100);
  ASSERT_TRUE(receipt.ok()) << receipt.status().message();
  EXPECT_EQ(receipt->created, 100u);

  // s50..s149, with s120 named again right after itself (same batch) and s60 named again at the
  // end (another batch); each brings a token of its own.
  std::vector<ImportedSubscriber> second;
  std::vector<bool> want_created;
  for (int i = 50; i < 150; ++i) {
    std::string id = "s" + std::to_string(i);
    second.push_back(Item(id, {id.c_str()}, {"t1", "t2"}));
    want_created.push_back(i >= 100);
    if (i == 120) {
      second.push_back(Item(id, {"again"}, {"t2"}));
      want_created.push_back(false);
    }
  }
  second.push_back(Item("s60", {"late"}, {}));
  want_created.push_back(false);
  receipt = store_->ImportSubscribers(dev_, From(second), 100);
  ASSERT_TRUE(receipt.ok()) << receipt.status().message();
  EXPECT_EQ(receipt->created, 50u);
  EXPECT_EQ(receipt->updated, 52u);
  EXPECT_EQ(receipt->item_created, want_created);
  EXPECT_EQ(receipt->tokens_added, 102u);               // one each, "again" and "late"
  EXPECT_EQ(receipt->topic_subscriptions_added, 150u);  // t1 for s100..149, t2 for all 100
  EXPECT_EQ(receipt->topics_created, 1u);

  auto tokens_of = [&](const std::string& id) {
    return TokenStrings(*store_->GetSubscriber(dev_, id));
  };
  EXPECT_EQ(tokens_of("s10"), std::vector<std::string>{"old"});
  EXPECT_EQ(tokens_of("s60"), (std::vector<std::string>{"old", "s60", "late"}));
  EXPECT_EQ(tokens_of("s99"), (std::vector<std::string>{"old", "s99"}));
  EXPECT_EQ(tokens_of("s120"), (std::vector<std::string>{"s120", "again"}));
  EXPECT_EQ(tokens_of("s149"), std::vector<std::string>{"s149"});
  EXPECT_EQ(store_->GetSubscriber(dev_, "s120")->topics, (std::vector<std::string>{"t1", "t2"}));
  auto t2 = store_->ListTopicSubscriptions(dev_, "t2", std::nullopt, PageRequest{});
  ASSERT_TRUE(t2.ok());
  EXPECT_EQ(t2->total_count, 100);
}

// Two channels of one subscriber may name the same integration (by identifier, and as the
// provider's newest): they are one channel.
TEST_P(SqliteStoreTest, ImportMergesChannelsOfOneIntegration) {
  ASSERT_TRUE(store_->CreateIntegration(MakeIntegration(dev_, "hook")).ok());
  ImportedSubscriber item = Item("u1", {"a", "b"}, {}, std::string("hook"));
  item.channels.push_back(Item("u1", {"b", "c"}).channels[0]);
  std::vector<ImportedSubscriber> items{item};
  auto receipt = store_->ImportSubscribers(dev_, From(items), 100);
  ASSERT_TRUE(receipt.ok()) << receipt.status().message();
  EXPECT_EQ(receipt->tokens_added, 3u);
  auto u1 = store_->GetSubscriber(dev_, "u1");
  ASSERT_TRUE(u1.ok());
  ASSERT_EQ(u1->channels.size(), 1u);
  EXPECT_EQ(TokenStrings(*u1), (std::vector<std::string>{"a", "b", "c"}));
}

// Tokens are added as PATCH credentials adds them: the channel's tokens stay first, and a dead
// token given again is active again.
TEST_P(SqliteStoreTest, ImportAppendsToExistingChannelsAndRevivesDeadTokens) {
  HookSubscriber({"a", "b"});
  {
    auto db = OpenDb(/*read_only=*/false);
    ASSERT_TRUE(db.ok());
    ASSERT_TRUE((*db)
                    ->ExecScript("UPDATE device_tokens SET status = 'expired', "
                                 "last_failure_reason = 'Unregistered' WHERE token = 'a'")
                    .ok());
  }
  std::vector<ImportedSubscriber> items{Item("u1", {"c", "a"})};
  auto receipt = store_->ImportSubscribers(dev_, From(items), 100);
  ASSERT_TRUE(receipt.ok()) << receipt.status().message();
  EXPECT_EQ(receipt->tokens_added, 1u);
  auto u1 = store_->GetSubscriber(dev_, "u1");
  ASSERT_TRUE(u1.ok());
  ASSERT_EQ(u1->channels.size(), 1u);
  EXPECT_EQ(TokenStrings(*u1), (std::vector<std::string>{"a", "b", "c"}));
  const DeviceToken& a = u1->channels[0].tokens[0];
  EXPECT_FALSE(a.last_failure_reason.has_value());
  EXPECT_TRUE(a.registered_at.has_value());
  EXPECT_TRUE(a.status_changed_at.has_value());
}

TEST_P(SqliteStoreTest, ImportIsAllOrNothing) {
  ASSERT_TRUE(store_->CreateIntegration(MakeIntegration(dev_, "hook")).ok());
  MustHoldTokens("full", {"x", "y"});

  // No active integration by that identifier: the subscribers before it are not kept either.
  std::vector<ImportedSubscriber> missing{Item("n1", {"a"}, {"news"}),
                                          Item("n2", {"b"}, {}, std::string("nope"))};
  auto failed = store_->ImportSubscribers(dev_, From(missing), 100);
  EXPECT_EQ(failed.status().code(), Code::kInvalidArgument);
  EXPECT_EQ(
      failed.status().message().rfind("item n2: channels[0]: Integration with identifier nope", 0),
      0u)
      << failed.status().message();

  // A channel that would hold more tokens than the limit.
  std::vector<ImportedSubscriber> over{Item("n1", {"a"}), Item("full", {"z", "w"})};
  failed = store_->ImportSubscribers(dev_, From(over), 3);
  EXPECT_EQ(failed.status().code(), Code::kInvalidArgument);
  EXPECT_EQ(
      failed.status().message().rfind("item full: channels[0]: Device tokens limit exceeded", 0),
      0u)
      << failed.status().message();
  EXPECT_EQ(failed.status().extra()["currentCount"], 4);

  // The source's own error.
  std::size_t calls = 0;
  failed = store_->ImportSubscribers(
      dev_,
      [&](ImportedSubscriber& out) -> Result<bool> {
        if (calls++ > 0) return Status::InvalidArgument("line 2: bad");
        out = Item("n1", {"a"}, {"news"});
        return true;
      },
      100);
  EXPECT_EQ(failed.status().message(), "line 2: bad");

  EXPECT_EQ(store_->GetSubscriber(dev_, "n1").status().code(), Code::kNotFound);
  EXPECT_EQ(store_->GetSubscriber(dev_, "n2").status().code(), Code::kNotFound);
  EXPECT_EQ(store_->GetTopic(dev_, "news").status().code(), Code::kNotFound);
  EXPECT_EQ(TokenStrings(*store_->GetSubscriber(dev_, "full")),
            (std::vector<std::string>{"x", "y"}));
}

// Planning keeps subscribers in a cache (subscriber_cache.h): an import must reach the next
// trigger, and a topic fan-out sees every imported member.
TEST_P(SqliteStoreTest, PlanningSeesImportedSubscribers) {
  HookSubscriber({"a"});
  TriggerRequest r;
  r.environment_id = dev_;
  r.workflow = TestWorkflow();
  r.transaction_id = "tx-1";
  r.subscribers.push_back({"u1", {}, {}});
  ASSERT_TRUE(AcceptSync(*store_, r).ok());
  EXPECT_EQ(MessagesOf("tx-1").size(), 1u);  // u1 is cached now

  std::vector<ImportedSubscriber> items{Item("u1", {"b"}, {"news"})};
  for (int i = 0; i < 30; ++i) {
    items.push_back(Item("m" + std::to_string(i), {"t"}, {"news"}));
  }
  ASSERT_TRUE(store_->ImportSubscribers(dev_, From(items), 100).ok());

  r.transaction_id = "tx-2";
  ASSERT_TRUE(AcceptSync(*store_, r).ok());
  EXPECT_EQ(MessagesOf("tx-2").size(), 2u);  // a and b

  TriggerRequest topic;
  topic.environment_id = dev_;
  topic.workflow = std::make_shared<const Workflow>(MustCreateWorkflow("news-flow"));
  topic.transaction_id = "tx-3";
  topic.topics.push_back({"news", {}});
  ASSERT_TRUE(AcceptSync(*store_, topic).ok());
  for (int i = 0; i < 10; ++i) {
    auto pending = store_->RunFanoutBatch(500, TokenPlanner());
    ASSERT_TRUE(pending.ok());
    if (*pending == 0) break;
  }
  MessageQuery q;
  q.environment_id = dev_;
  q.transaction_ids = {"tx-3"};
  q.limit = 100;
  long long total = 0;
  ASSERT_TRUE(store_->ListMessages(q, &total).ok());
  EXPECT_EQ(total, 32);  // u1's two tokens and one for each of the 30 others
}

}  // namespace
}  // namespace herald::store::sqlite
