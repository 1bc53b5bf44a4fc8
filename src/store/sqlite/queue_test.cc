// The delivery queue (queue.cc): claims, leases, outcomes, fan-out, and the unsent messages
// of what was deleted.
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "store/sqlite/store_test_util.h"

namespace herald::store::sqlite {
namespace {

TEST_P(SqliteStoreTest, TriggerQueueLeaseCompleteCancel) {
  HookSubscriber({"a", "b"});
  TriggerRequest request;
  request.environment_id = dev_;
  request.transaction_id = "tx-1";
  request.workflow = TestWorkflow();
  request.subscribers.push_back({"u1", {}, {}});
  auto receipt = AcceptSync(*store_, request);
  ASSERT_TRUE(receipt.ok()) << receipt.status().message();
  EXPECT_EQ(receipt->duplicates, 0u);
  EXPECT_EQ(receipt->messages, 2u);
  EXPECT_TRUE(receipt->leased.empty());       // no owner: left for a claim
  auto again = AcceptSync(*store_, request);  // same transactionId: nothing written
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->duplicates, 1u);
  EXPECT_EQ(again->messages, 0u);

  EpochMs now = NowMs();
  auto claimed = store_->ClaimDueMessages("owner-1", now, now + 60000, 10);
  ASSERT_TRUE(claimed.ok());
  ASSERT_EQ(claimed->size(), 2u);
  // Leased messages are not handed out again until the lease expires or is released; until then
  // they fall due when the lease ends.
  EXPECT_TRUE(store_->ClaimDueMessages("owner-2", now, now + 60000, 10)->empty());
  ASSERT_TRUE(store_->NextDueAt().ok());
  EXPECT_EQ(*store_->NextDueAt(), std::optional<EpochMs>(now + 60000));
  EXPECT_EQ(store_->ClaimDueMessages("owner-2", now + 60001, now + 120000, 10)->size(), 2u);
  ASSERT_TRUE(store_->ReleaseAllLeases().ok());
  claimed = store_->ClaimDueMessages("owner-1", now, now + 60000, 10);
  ASSERT_EQ(claimed->size(), 2u);

  MessageOutcome delivered{(*claimed)[0].id, MessageOutcome::Kind::kDelivered, now};
  delivered.channel_pk = (*claimed)[0].channel_pk;
  delivered.token_identity = (*claimed)[0].token_identity;
  MessageOutcome retry{(*claimed)[1].id, MessageOutcome::Kind::kRetry, now, now + 5000, "HTTP_503"};
  MessageOutcome stale{(*claimed)[1].id, MessageOutcome::Kind::kFailed, now};
  ASSERT_TRUE(CompleteSync(*store_, "someone-else", {stale}).ok());  // lease not held: ignored
  ASSERT_TRUE(CompleteSync(*store_, "owner-1", {delivered, retry}).ok());
  MessageQuery q;
  q.environment_id = dev_;
  q.transaction_ids = {"tx-1"};
  long long total = 0;
  auto messages = store_->ListMessages(q, &total);
  ASSERT_TRUE(messages.ok());
  ASSERT_EQ(total, 2);
  std::map<std::string, Message> by_id;
  for (const Message& m : *messages) by_id[m.id] = m;
  EXPECT_EQ(by_id[(*claimed)[0].id].state, DeliveryState::kDelivered);
  EXPECT_EQ(by_id[(*claimed)[1].id].state, DeliveryState::kPending);
  EXPECT_EQ(by_id[(*claimed)[1].id].attempts, 1);
  EXPECT_EQ(by_id[(*claimed)[1].id].next_attempt_at, now + 5000);
  EXPECT_EQ(by_id[(*claimed)[1].id].error_id, "HTTP_503");
  auto sub = store_->GetSubscriber(dev_, "u1");
  EXPECT_TRUE(sub->channels[0].tokens[0].last_active_at.has_value());  // "a" was delivered

  // Not due yet; cancelling stops it for good.
  EXPECT_TRUE(store_->ClaimDueMessages("owner-1", now + 10, now + 60000, 10)->empty());
  EXPECT_TRUE(*store_->CancelTransaction(dev_, "tx-1"));
  EXPECT_FALSE(*store_->CancelTransaction(dev_, "tx-1"));
  EXPECT_TRUE(store_->ClaimDueMessages("owner-1", now + 10000, now + 60000, 10)->empty());
  messages = store_->ListMessages(q, &total);
  for (const Message& m : *messages) {
    if (m.id == (*claimed)[1].id) {
      EXPECT_EQ(m.state, DeliveryState::kCancelled);
    }
  }
}

TEST_P(SqliteStoreTest, TopicFanoutRunsInBatchesAndExcludes) {
  ASSERT_TRUE(store_->CreateIntegration(MakeIntegration(dev_, "hook")).ok());
  std::vector<std::string> ids;
  for (int i = 0; i < 7; ++i) {
    std::string id = "f" + std::to_string(i);
    MustHoldTokens(id, {"tok"});
    ids.push_back(id);
  }
  ASSERT_TRUE(store_->AddTopicSubscribers(dev_, "news", ids).ok());
  Workflow w = MustCreateWorkflow("news-flow");
  TriggerRequest request;
  request.environment_id = dev_;
  request.transaction_id = "tx-topic";
  request.workflow = std::make_shared<const Workflow>(w);
  request.topics.push_back({"news", {"f1"}});
  request.actor = SubscriberTarget{"f2", {}, {}};
  auto receipt = AcceptSync(*store_, request);
  ASSERT_TRUE(receipt.ok()) << receipt.status().message();
  EXPECT_EQ(receipt->fanouts, 1u);
  EXPECT_EQ(receipt->messages, 0u);
  // Batches of 3: 7 members take 3 passes; the excluded subscriber and the actor get nothing.
  int passes = 0;
  for (;;) {
    auto remaining = store_->RunFanoutBatch(3, TokenPlanner());
    ASSERT_TRUE(remaining.ok());
    ++passes;
    if (*remaining == 0) break;
    ASSERT_LT(passes, 10);
  }
  EXPECT_EQ(passes, 3);
  EXPECT_EQ(*store_->RunFanoutBatch(3, TokenPlanner()), 0u);
  MessageQuery q;
  q.environment_id = dev_;
  q.transaction_ids = {"tx-topic"};
  q.limit = 100;
  long long total = 0;
  auto messages = store_->ListMessages(q, &total);
  ASSERT_TRUE(messages.ok());
  EXPECT_EQ(total, 5);
  for (const Message& m : *messages) {
    EXPECT_NE(m.subscriber_id, "f1");
    EXPECT_NE(m.subscriber_id, "f2");
  }
  // An unknown topic is accepted, as Novu does, and skipped when planned (Novu's worker logs it
  // and goes on): the trigger is planned, with nothing to fan out.
  request.transaction_id = "tx-missing";
  request.topics = {{"nope", {}}};
  EXPECT_TRUE(store_->CheckTriggerTargets(request).ok());
  auto planned = AcceptSync(*store_, request);
  ASSERT_TRUE(planned.ok());
  EXPECT_EQ(planned->planned, 1u);
  EXPECT_EQ(planned->dropped, 0u);
  EXPECT_EQ(planned->fanouts, 0u);
  EXPECT_EQ(planned->messages, 0u);
}

// Deleting a subscriber or an integration fails their messages not sent yet, so that no retry
// goes to them; a send already in flight still records what came of it.
TEST_P(SqliteStoreTest, DeletingASubscriberOrIntegrationFailsItsUnsentMessages) {
  Integration hook = MakeIntegration(dev_, "hook");
  ASSERT_TRUE(store_->CreateIntegration(hook).ok());
  MustHoldTokens("gone", {"t1"});
  MustHoldTokens("kept", {"t2"});
  Integration other = MakeIntegration(dev_, "other");
  ASSERT_TRUE(store_->CreateIntegration(other).ok());
  MustUpsert(dev_, "elsewhere");
  CredentialsUpdate u{"push-webhook",           "other", Tokens({"t3"}), {}, {},
                      TokenWriteMode::kReplace, 100};
  ASSERT_TRUE(store_->UpdateCredentials(dev_, "elsewhere", u).ok());
  auto trigger = [&](const std::string& tx, const std::string& to) {
    TriggerRequest r;
    r.environment_id = dev_;
    r.transaction_id = tx;
    r.workflow = TestWorkflow();
    r.subscribers.push_back({to, {}, {}});
    ASSERT_TRUE(AcceptSync(*store_, r).ok());
  };
  // One of "gone"'s messages is in flight (leased), the other waits to be sent.
  trigger("tx-gone", "gone");
  const EpochMs now = NowMs();
  auto leased = store_->ClaimDueMessages("sender", now, now + 60000, 10);
  ASSERT_TRUE(leased.ok());
  ASSERT_EQ(leased->size(), 1u);
  const Message in_flight = leased->front();
  trigger("tx-gone-2", "gone");
  trigger("tx-kept", "kept");
  trigger("tx-elsewhere", "elsewhere");
  auto state = [&](const std::string& tx) {
    std::vector<Message> messages = MessagesOf(tx);
    EXPECT_EQ(messages.size(), 1u) << tx;
    return messages.empty() ? Message{} : messages.front();
  };
  ASSERT_TRUE(store_->DeleteSubscriber(dev_, "gone").ok());
  ASSERT_TRUE(store_->DeleteIntegration(dev_, other.id).ok());
  for (const char* tx : {"tx-gone", "tx-gone-2", "tx-elsewhere"}) {
    Message m = state(tx);
    EXPECT_EQ(m.state, DeliveryState::kFailed) << tx;
    EXPECT_EQ(m.error_id.value_or(""),
              std::string(tx) == "tx-elsewhere" ? "integration_deleted" : "subscriber_deleted");
    EXPECT_FALSE(m.next_attempt_at.has_value());
  }
  EXPECT_EQ(state("tx-kept").state, DeliveryState::kPending);
  // Nothing of theirs can be claimed any more; the kept subscriber's message can.
  auto claimed = store_->ClaimDueMessages("other", NowMs(), NowMs() + 60000, 10);
  ASSERT_TRUE(claimed.ok());
  ASSERT_EQ(claimed->size(), 1u);
  EXPECT_EQ(claimed->front().transaction_id, "tx-kept");
  // The send that was in flight answers: it was delivered, and the record says so.
  MessageOutcome o;
  o.message_id = in_flight.id;
  o.kind = MessageOutcome::Kind::kDelivered;
  o.at = NowMs();
  ASSERT_TRUE(CompleteSync(*store_, "sender", {o}).ok());
  EXPECT_EQ(state("tx-gone").state, DeliveryState::kDelivered);
}

// A token removed by a credentials update (or with all of a provider's credentials) takes its
// messages not sent yet with it; the tokens kept keep theirs.
TEST_P(SqliteStoreTest, RemovingATokenFailsItsUnsentMessages) {
  HookSubscriber({"t1", "t2", "t3"});
  TriggerRequest r;
  r.environment_id = dev_;
  r.transaction_id = "tx-tokens";
  r.workflow = TestWorkflow();
  r.subscribers.push_back({"u1", {}, {}});
  ASSERT_TRUE(AcceptSync(*store_, r).ok());
  auto states = [&] {
    std::map<std::string, std::string> out;
    for (const Message& m : MessagesOf("tx-tokens")) {
      out[m.device_token] = std::string(DeliveryStateName(m.state)) + "/" + m.error_id.value_or("");
    }
    return out;
  };
  // Re-sending the same tokens removes nothing.
  CredentialsUpdate same{"push-webhook",           std::nullopt, Tokens({"t1", "t2", "t3"}), {}, {},
                         TokenWriteMode::kReplace, 100};
  ASSERT_TRUE(store_->UpdateCredentials(dev_, "u1", same).ok());
  EXPECT_EQ(states(), (std::map<std::string, std::string>{
                          {"t1", "pending/"}, {"t2", "pending/"}, {"t3", "pending/"}}));
  CredentialsUpdate fewer{"push-webhook",           std::nullopt, Tokens({"t2", "t3"}), {}, {},
                          TokenWriteMode::kReplace, 100};
  ASSERT_TRUE(store_->UpdateCredentials(dev_, "u1", fewer).ok());
  EXPECT_EQ(states(), (std::map<std::string, std::string>{
                          {"t1", "failed/token_removed"}, {"t2", "pending/"}, {"t3", "pending/"}}));
  ASSERT_TRUE(store_->DeleteCredentials(dev_, "u1", "push-webhook").ok());
  EXPECT_EQ(states(), (std::map<std::string, std::string>{{"t1", "failed/token_removed"},
                                                          {"t2", "failed/token_removed"},
                                                          {"t3", "failed/token_removed"}}));
  auto claimed = store_->ClaimDueMessages("x", NowMs(), NowMs() + 60000, 10);
  ASSERT_TRUE(claimed.ok());
  EXPECT_TRUE(claimed->empty());
}

// As in Novu, every topic's `exclude` holds for the whole fan-out, whichever topic names the
// subscriber; a subscriber in several topics gets the trigger once; unknown topics are skipped.
TEST_P(SqliteStoreTest, TopicExcludesHoldForTheWholeFanOut) {
  ASSERT_TRUE(store_->CreateIntegration(MakeIntegration(dev_, "hook")).ok());
  for (const char* id : {"u1", "u2", "u3"}) MustHoldTokens(id, {id});
  ASSERT_TRUE(store_->AddTopicSubscribers(dev_, "a", {"u1", "u2"}).ok());
  ASSERT_TRUE(store_->AddTopicSubscribers(dev_, "b", {"u1", "u3"}).ok());
  Workflow w = MustCreateWorkflow("two-topics");

  auto recipients = [&](const std::string& tx, std::vector<TopicTarget> topics) {
    TriggerRequest request;
    request.environment_id = dev_;
    request.transaction_id = tx;
    request.workflow = std::make_shared<const Workflow>(w);
    request.topics = std::move(topics);
    EXPECT_TRUE(AcceptSync(*store_, request).ok());
    for (int pass = 0; pass < 10; ++pass) {
      auto remaining = store_->RunFanoutBatch(2, TokenPlanner());
      EXPECT_TRUE(remaining.ok());
      if (!remaining.ok() || *remaining == 0) break;
    }
    std::multiset<std::string> got;
    for (const Message& m : MessagesOf(tx)) got.insert(m.subscriber_id);
    return got;
  };
  using Got = std::multiset<std::string>;
  EXPECT_EQ(recipients("tx-0", {{"a", {}}, {"b", {}}}), (Got{"u1", "u2", "u3"}));
  EXPECT_EQ(recipients("tx-1", {{"a", {"u1"}}, {"b", {}}}), (Got{"u2", "u3"}));
  EXPECT_EQ(recipients("tx-2", {{"a", {"u1"}}, {"b", {"u1"}}}), (Got{"u2", "u3"}));
  EXPECT_EQ(recipients("tx-3", {{"a", {"u1", "u2"}}}), (Got{}));
  EXPECT_EQ(recipients("tx-4", {{"a", {"u3"}}, {"b", {"u2"}}}), (Got{"u1"}));
  EXPECT_EQ(recipients("tx-5", {{"nope", {}}, {"b", {}}}), (Got{"u1", "u3"}));
}

// A dead token is retired once, however many of its messages fail at the same moment: status
// and time are those of the first failure; a provider's "invalid since" older than the token's
// registration keeps it; registering it again revives it.
TEST_P(SqliteStoreTest, DeadTokensAreRetiredOnceAndRevivedByRegistration) {
  HookSubscriber({"a", "b"});
  for (const char* tx : {"tx-1", "tx-2"}) {
    TriggerRequest request;
    request.environment_id = dev_;
    request.transaction_id = tx;
    request.workflow = TestWorkflow();
    request.subscribers.push_back({"u1", {}, {}});
    ASSERT_TRUE(AcceptSync(*store_, request).ok());
  }
  EpochMs now = NowMs();
  auto claimed = store_->ClaimDueMessages("me", now, now + 60000, 10);
  ASSERT_TRUE(claimed.ok());
  ASSERT_EQ(claimed->size(), 4u);
  std::vector<MessageOutcome> outcomes;
  for (const Message& m : *claimed) {
    MessageOutcome o{m.id, MessageOutcome::Kind::kFailed, now + (m.device_token == "a" ? 0 : 5)};
    o.channel_pk = m.channel_pk;
    o.token_identity = m.token_identity;
    if (m.device_token == "a") {
      o.error_id = "Unregistered";
      o.retire_token = TokenStatus::kUnsubscribed;
    } else {  // invalid only since after "b" was registered: kept
      o.error_id = "Unregistered";
      o.retire_token = TokenStatus::kUnsubscribed;
      o.token_invalid_since = now - 3600000;
    }
    outcomes.push_back(o);
  }
  // The second failure of "a" says expired, later: the first one stands.
  outcomes[0].at = now;
  ASSERT_TRUE(CompleteSync(*store_, "me", outcomes).ok());

  auto tokens = [&] {
    std::map<std::string, DeviceToken> out;
    Result<Subscriber> subscriber = store_->GetSubscriber(dev_, "u1");
    for (const DeviceToken& t : subscriber->channels.at(0).tokens) out[t.token] = t;
    return out;
  };
  std::map<std::string, DeviceToken> after = tokens();
  EXPECT_EQ(after["a"].status, TokenStatus::kUnsubscribed);
  EXPECT_EQ(after["a"].status_changed_at, std::optional<EpochMs>(now));
  EXPECT_EQ(after["a"].last_failure_reason, std::optional<std::string>("Unregistered"));
  EXPECT_EQ(after["b"].status, TokenStatus::kActive);
  EXPECT_FALSE(after["b"].status_changed_at.has_value());

  // Registered again (PATCH with the token): active, and its registration time moves on.
  CredentialsUpdate again{"push-webhook", std::nullopt, Tokens({"a"}), {}, {},
                          TokenWriteMode::kAppend, 100};
  ASSERT_TRUE(store_->UpdateCredentials(dev_, "u1", again).ok());
  std::map<std::string, DeviceToken> revived = tokens();
  EXPECT_EQ(revived["a"].status, TokenStatus::kActive);
  EXPECT_FALSE(revived["a"].last_failure_reason.has_value());
  ASSERT_TRUE(revived["a"].registered_at.has_value());
  EXPECT_GE(*revived["a"].registered_at, now);
  EXPECT_GE(*revived["a"].status_changed_at, now);
}

// A message the provider accepted waits with its receipt: pending, due at the check time,
// claimed with the receipt, and done once the confirmation is recorded.
TEST_P(SqliteStoreTest, AcceptedMessagesWaitWithTheirReceipt) {
  HookSubscriber({"a"});
  TriggerRequest request;
  request.environment_id = dev_;
  request.transaction_id = "tx-r";
  request.workflow = TestWorkflow();
  request.subscribers.push_back({"u1", {}, {}});
  ASSERT_TRUE(AcceptSync(*store_, request).ok());
  EpochMs now = NowMs();
  auto claimed = store_->ClaimDueMessages("me", now, now + 60000, 10);
  ASSERT_EQ(claimed->size(), 1u);
  EXPECT_TRUE(claimed->at(0).receipt.empty());
  MessageOutcome accepted{claimed->at(0).id, MessageOutcome::Kind::kAwaitingReceipt, now,
                          now + 1000};
  accepted.receipt = "ticket-1";
  accepted.provider_response_id = "ticket-1";
  accepted.channel_pk = claimed->at(0).channel_pk;
  accepted.token_identity = claimed->at(0).token_identity;
  ASSERT_TRUE(CompleteSync(*store_, "me", {accepted}).ok());

  Message waiting = MessagesOf("tx-r").at(0);
  EXPECT_EQ(waiting.state, DeliveryState::kPending);
  EXPECT_EQ(waiting.receipt, "ticket-1");
  EXPECT_EQ(waiting.provider_response_id, std::optional<std::string>("ticket-1"));
  EXPECT_EQ(waiting.attempts, 1);
  EXPECT_TRUE(store_->ClaimDueMessages("me", now + 999, now + 60000, 10)->empty());
  claimed = store_->ClaimDueMessages("me", now + 1000, now + 60000, 10);
  ASSERT_EQ(claimed->size(), 1u);
  EXPECT_EQ(claimed->at(0).receipt, "ticket-1");

  MessageOutcome confirmed{claimed->at(0).id, MessageOutcome::Kind::kDelivered, now + 1000};
  ASSERT_TRUE(CompleteSync(*store_, "me", {confirmed}).ok());
  Message done = MessagesOf("tx-r").at(0);
  EXPECT_EQ(done.state, DeliveryState::kDelivered);
  EXPECT_TRUE(done.receipt.empty());
  EXPECT_EQ(done.provider_response_id, std::optional<std::string>("ticket-1"));
}

}  // namespace
}  // namespace herald::store::sqlite
