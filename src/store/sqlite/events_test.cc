// Event webhooks in the store (events.cc): events recorded with the outcomes that cause them, the
// outbox's order and retries; and the devices list and inactivity sweep (devices.cc).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "store/sqlite/store_test_util.h"

namespace herald::store::sqlite {
namespace {

class EventsTest : public SqliteStoreTest {
 protected:
  void SetUp() override {
    SqliteStoreTest::SetUp();
    // The body says what the store handed the renderer.
    SqliteOptions options = Options();
    options.render_event = [](const DeliveryEvent& e) {
      Json body = {{"id", e.id}, {"type", e.type}, {"env", e.environment_id}};
      if (e.message) {
        body["message"] = e.message->id;
        body["state"] = DeliveryStateName(e.message->state);
      }
      if (e.type == kEventDeviceRemoved) {
        body["token"] = e.device_token;
        body["status"] = TokenStatusName(e.token_status);
        body["reason"] = e.reason;
      }
      if (e.type == kEventMessageFailed) body["tokenInvalid"] = e.token_invalid;
      return DumpJson(body);
    };
    store_.reset();
    auto opened = OpenSqliteStore(options, keys_);
    ASSERT_TRUE(opened.ok()) << opened.status().message();
    store_ = std::move(*opened);
  }

  WebhookEndpoint MustAddEndpoint(std::vector<std::string> types = {}) {
    WebhookEndpoint e;
    e.id = NewObjectId();
    e.environment_id = dev_;
    e.url = "https://example.com/events";
    e.event_types = std::move(types);
    e.secret = "whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3I=";
    e.created_at = NowMs();
    auto created = store_->CreateWebhookEndpoint(e);
    EXPECT_TRUE(created.ok()) << created.status().message();
    return e;
  }

  // `count` messages to subscriber u1's tokens (one trigger each), claimed by "owner".
  std::vector<Message> MustClaim(int count) {
    for (int i = 0; i < count; ++i) {
      TriggerRequest request;
      request.environment_id = dev_;
      request.transaction_id = "tx-" + RandomAlnum(8);
      request.workflow = TestWorkflow();
      request.subscribers.push_back({"u1", {}, {}});
      EXPECT_TRUE(AcceptSync(*store_, request).ok());
    }
    EpochMs now = NowMs();
    auto claimed = store_->ClaimDueMessages("owner", now, now + 60000, 1000);
    EXPECT_TRUE(claimed.ok());
    return claimed.ok() ? *claimed : std::vector<Message>{};
  }

  static MessageOutcome Outcome(const Message& m, MessageOutcome::Kind kind) {
    MessageOutcome o{m.id, kind, NowMs()};
    o.channel_pk = m.channel_pk;
    o.token_identity = m.token_identity;
    return o;
  }

  std::vector<WebhookDelivery> Due(std::size_t limit = 100, EpochMs at = NowMs()) {
    auto claimed = store_->ClaimWebhookDeliveries("sender", at, at + 60000, limit);
    EXPECT_TRUE(claimed.ok()) << claimed.status().message();
    return claimed.ok() ? *claimed : std::vector<WebhookDelivery>{};
  }

  static std::vector<std::string> Types(const std::vector<WebhookDelivery>& deliveries) {
    std::vector<std::string> out;
    for (const WebhookDelivery& d : deliveries) out.push_back(d.event_type);
    return out;
  }
};

TEST_P(EventsTest, NothingIsRecordedWithoutAnEndpoint) {
  HookSubscriber({"a"});
  std::vector<Message> m = MustClaim(1);
  ASSERT_EQ(m.size(), 1u);
  ASSERT_TRUE(CompleteSync(*store_, "owner", {Outcome(m[0], MessageOutcome::Kind::kDelivered)}).ok());
  EXPECT_TRUE(Due().empty());
  EXPECT_EQ(*store_->NextWebhookDueAt(), std::nullopt);
}

TEST_P(EventsTest, OutcomesBecomeEventsWithTheMessageAsRecorded) {
  HookSubscriber({"a", "b", "c"});
  WebhookEndpoint endpoint = MustAddEndpoint();
  std::vector<Message> m = MustClaim(1);
  ASSERT_EQ(m.size(), 3u);
  MessageOutcome sent = Outcome(m[0], MessageOutcome::Kind::kDelivered);
  MessageOutcome accepted = Outcome(m[1], MessageOutcome::Kind::kAwaitingReceipt);
  accepted.accepted = true;
  accepted.receipt = "r-1";
  accepted.retry_at = NowMs();
  MessageOutcome dead = Outcome(m[2], MessageOutcome::Kind::kFailed);
  dead.error_id = "UNREGISTERED";
  dead.token_invalid = true;
  dead.retire_token = TokenStatus::kUnsubscribed;
  ASSERT_TRUE(CompleteSync(*store_, "owner", {sent, accepted, dead}).ok());

  // device.removed waits behind the message.failed of the same message (in order per message).
  std::vector<WebhookDelivery> due = Due();
  ASSERT_EQ(Types(due),
            (std::vector<std::string>{"message.sent", "message.sent", "message.failed"}));
  EXPECT_EQ(due[0].url, endpoint.url);
  EXPECT_EQ(due[0].secret, endpoint.secret);
  EXPECT_EQ(due[0].attempts, 0);
  EXPECT_EQ(Json::parse(due[0].body).at("state"), "delivered");
  EXPECT_EQ(Json::parse(due[0].body).at("id"), due[0].event_id);
  EXPECT_EQ(Json::parse(due[2].body).at("state"), "failed");
  EXPECT_EQ(Json::parse(due[2].body).at("tokenInvalid"), true);
  ASSERT_TRUE(store_->RecordWebhookAttempts("sender", {{due[2].seq, true}}).ok());
  std::vector<WebhookDelivery> next = Due();
  ASSERT_EQ(Types(next), std::vector<std::string>{"device.removed"});
  Json removed = Json::parse(next[0].body);
  EXPECT_EQ(removed["token"], "c");
  EXPECT_EQ(removed["status"], "unsubscribed");
  EXPECT_EQ(removed["reason"], "UNREGISTERED");
  due.pop_back();  // recorded
  due.push_back(next[0]);

  // The receipt asked for again is no news; its confirmation is message.delivered.
  auto again = store_->ClaimDueMessages("owner", NowMs() + 1, NowMs() + 60000, 10);
  ASSERT_EQ(again->size(), 1u);
  MessageOutcome pending = Outcome((*again)[0], MessageOutcome::Kind::kAwaitingReceipt);
  pending.receipt = "r-1";
  pending.retry_at = NowMs();
  ASSERT_TRUE(CompleteSync(*store_, "owner", {pending}).ok());
  again = store_->ClaimDueMessages("owner", NowMs() + 1, NowMs() + 60000, 10);
  ASSERT_EQ(again->size(), 1u);
  MessageOutcome confirmed = Outcome((*again)[0], MessageOutcome::Kind::kDelivered);
  confirmed.confirmed = true;
  ASSERT_TRUE(CompleteSync(*store_, "owner", {confirmed}).ok());
  // Behind the first message.sent of the same message, which is still leased.
  EXPECT_TRUE(Due().empty());
  std::vector<WebhookAttempt> done;
  for (const WebhookDelivery& d : due) done.push_back({d.seq, true});
  ASSERT_TRUE(store_->RecordWebhookAttempts("sender", done).ok());
  EXPECT_EQ(Types(Due()), std::vector<std::string>{"message.delivered"});
}

TEST_P(EventsTest, EndpointsGetOnlyTheTypesTheyAskedFor) {
  HookSubscriber({"a", "b"});
  MustAddEndpoint({"message.failed"});
  MustAddEndpoint({"device.removed", "message.sent"});
  std::vector<Message> m = MustClaim(1);
  ASSERT_EQ(m.size(), 2u);
  MessageOutcome failed = Outcome(m[1], MessageOutcome::Kind::kFailed);
  failed.error_id = "HTTP_400";
  ASSERT_TRUE(
      CompleteSync(*store_, "owner", {Outcome(m[0], MessageOutcome::Kind::kDelivered), failed})
          .ok());
  std::vector<std::string> types = Types(Due());
  std::sort(types.begin(), types.end());
  EXPECT_EQ(types, (std::vector<std::string>{"message.failed", "message.sent"}));
}

// Many failures on one dead token at once retire it once: one device.removed.
TEST_P(EventsTest, ManyFailuresOnOneDeadTokenRemoveItOnce) {
  HookSubscriber({"dead"});
  MustAddEndpoint({"device.removed"});
  std::vector<Message> m = MustClaim(20);
  ASSERT_EQ(m.size(), 20u);
  std::vector<MessageOutcome> outcomes;
  for (const Message& message : m) {
    MessageOutcome o = Outcome(message, MessageOutcome::Kind::kFailed);
    o.error_id = "UNREGISTERED";
    o.token_invalid = true;
    o.retire_token = TokenStatus::kExpired;
    outcomes.push_back(o);
  }
  // Recorded in two writes, as two batches of replies would be.
  std::vector<MessageOutcome> first(outcomes.begin(), outcomes.begin() + 10);
  std::vector<MessageOutcome> second(outcomes.begin() + 10, outcomes.end());
  ASSERT_TRUE(CompleteSync(*store_, "owner", first).ok());
  ASSERT_TRUE(CompleteSync(*store_, "owner", second).ok());
  EXPECT_EQ(Due().size(), 1u);
  EXPECT_EQ(store_->GetSubscriber(dev_, "u1")->channels[0].tokens[0].status,
            TokenStatus::kExpired);
}

TEST_P(EventsTest, AttemptsRetryGiveUpAndSurviveARestart) {
  HookSubscriber({"a"});
  WebhookEndpoint endpoint = MustAddEndpoint();
  std::vector<Message> m = MustClaim(2);
  ASSERT_EQ(m.size(), 2u);
  ASSERT_TRUE(CompleteSync(*store_, "owner",
                           {Outcome(m[0], MessageOutcome::Kind::kDelivered),
                            Outcome(m[1], MessageOutcome::Kind::kDelivered)})
                  .ok());
  std::vector<WebhookDelivery> due = Due();
  ASSERT_EQ(due.size(), 2u);
  EpochMs later = NowMs() + 5000;
  ASSERT_TRUE(store_
                  ->RecordWebhookAttempts("sender", {{due[0].seq, false, later, 503, "HTTP_503"},
                                                     {due[1].seq, false, 0, 0, "TIMEOUT"}})
                  .ok());
  EXPECT_TRUE(Due().empty());  // one waits for its retry, the other was given up
  EXPECT_EQ(*store_->NextWebhookDueAt(), std::optional<EpochMs>(later));
  std::vector<WebhookDelivery> retried = Due(100, later);
  ASSERT_EQ(retried.size(), 1u);
  EXPECT_EQ(retried[0].attempts, 1);
  // A restart frees the lease: due again at once.
  Open();
  ASSERT_TRUE(store_->ReleaseAllLeases().ok());
  retried = Due();
  ASSERT_EQ(retried.size(), 1u);
  // A deleted endpoint's deliveries go with it.
  ASSERT_TRUE(store_->DeleteWebhookEndpoint(dev_, endpoint.id).ok());
  EXPECT_EQ(store_->DeleteWebhookEndpoint(dev_, endpoint.id).code(), Code::kNotFound);
  EXPECT_EQ(*store_->NextWebhookDueAt(), std::nullopt);
}

TEST_P(EventsTest, EndpointSecretsAreSealedAtRest) {
  WebhookEndpoint endpoint = MustAddEndpoint({"message.sent"});
  auto listed = store_->ListWebhookEndpoints(dev_);
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].secret, endpoint.secret);
  EXPECT_EQ((*listed)[0].event_types, std::vector<std::string>{"message.sent"});
  EXPECT_TRUE(store_->ListWebhookEndpoints(prod_)->empty());
  auto db = OpenDb(/*read_only=*/true);
  ASSERT_TRUE(db.ok());
  Stmt s = (*db)->Prepare("SELECT secret_sealed FROM webhook_endpoints");
  ASSERT_TRUE(s.Step());
  EXPECT_EQ(s.Text(0).find(endpoint.secret), std::string::npos);
}

TEST_P(EventsTest, InactiveTokensExpireOnceWithAnEvent) {
  HookSubscriber({"old", "fresh"});
  MustAddEndpoint({"device.removed"});
  std::vector<Message> m = MustClaim(1);
  ASSERT_EQ(m.size(), 2u);
  const Message& fresh = m[0].device_token == "fresh" ? m[0] : m[1];
  ASSERT_TRUE(CompleteSync(*store_, "owner", {Outcome(fresh, MessageOutcome::Kind::kDelivered)}).ok());
  // "old" was registered before the cut-off and never delivered to; "fresh" was delivered to
  // after it.
  EpochMs cutoff = NowMs() + 1;
  auto db = OpenDb(/*read_only=*/false);
  ASSERT_TRUE(db.ok());
  ASSERT_TRUE((*db)->ExecScript("UPDATE device_tokens SET last_active_at = " +
                                std::to_string(cutoff + 1000) + " WHERE token = 'fresh'").ok());
  auto expired = store_->ExpireInactiveTokens(cutoff, cutoff);
  ASSERT_TRUE(expired.ok()) << expired.status().message();
  EXPECT_EQ(*expired, 1u);
  EXPECT_EQ(*store_->ExpireInactiveTokens(cutoff, cutoff), 0u);
  std::vector<WebhookDelivery> due = Due(100, cutoff);
  ASSERT_EQ(due.size(), 1u);
  Json body = Json::parse(due[0].body);
  EXPECT_EQ(body["token"], "old");
  EXPECT_EQ(body["reason"], "INACTIVE");
  EXPECT_EQ(body["status"], "expired");
  Subscriber sub = *store_->GetSubscriber(dev_, "u1");
  for (const DeviceToken& t : sub.channels[0].tokens) {
    EXPECT_EQ(t.status, t.token == "old" ? TokenStatus::kExpired : TokenStatus::kActive);
  }
}

TEST_P(EventsTest, DevicesListFiltersAndPages) {
  ASSERT_TRUE(store_->CreateIntegration(MakeIntegration(dev_, "hook")).ok());
  MustHoldTokens("u1", {"t1", "t2", "t3"});
  MustHoldTokens("u2", {"t4"});
  DeviceQuery q;
  q.environment_id = dev_;
  q.limit = 3;
  auto page = store_->ListDevices(q);
  ASSERT_TRUE(page.ok()) << page.status().message();
  EXPECT_EQ(page->total_count, 4);
  ASSERT_EQ(page->items.size(), 3u);
  ASSERT_TRUE(page->next.has_value());
  EXPECT_EQ(page->items[0].provider_id, "push-webhook");
  EXPECT_EQ(page->items[0].integration_identifier, "hook");
  q.after = page->next;
  auto rest = store_->ListDevices(q);
  ASSERT_TRUE(rest.ok());
  ASSERT_EQ(rest->items.size(), 1u);
  EXPECT_FALSE(rest->next.has_value());
  std::vector<std::string> seen;
  for (const auto* p : {&*page, &*rest}) {
    for (const DeviceRecord& d : p->items) seen.push_back(d.token.token);
  }
  std::sort(seen.begin(), seen.end());
  EXPECT_EQ(seen, (std::vector<std::string>{"t1", "t2", "t3", "t4"}));

  DeviceQuery only_u2;
  only_u2.environment_id = dev_;
  only_u2.subscriber_id = "u2";
  EXPECT_EQ(store_->ListDevices(only_u2)->items.size(), 1u);
  only_u2.status = TokenStatus::kExpired;
  EXPECT_TRUE(store_->ListDevices(only_u2)->items.empty());
  DeviceQuery other;
  other.environment_id = dev_;
  other.provider_id = "fcm";
  EXPECT_TRUE(store_->ListDevices(other)->items.empty());
  other.provider_id.reset();
  other.after = "not-a-cursor";
  EXPECT_EQ(store_->ListDevices(other).status().code(), Code::kInvalidArgument);
  DeviceQuery prod;
  prod.environment_id = prod_;
  EXPECT_TRUE(store_->ListDevices(prod)->items.empty());
}

INSTANTIATE_TEST_SUITE_P(Vfs, EventsTest, ::testing::Bool());

}  // namespace
}  // namespace herald::store::sqlite
