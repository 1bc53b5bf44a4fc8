// The planning subscriber cache (subscriber_cache.h): planning sees every change to a
// subscriber, and nothing of a planning chunk that was rolled back.
#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "store/sqlite/store_test_util.h"

namespace herald::store::sqlite {
namespace {

// Trigger planning keeps subscribers in a cache: every way their planning data can change must
// reach the next trigger, and a subscriber that did not change is not read again.
TEST_P(SqliteStoreTest, PlanningSeesEveryChangeToItsSubscriber) {
  HookSubscriber({"a"});
  std::vector<Subscriber> seen;  // what the planner was given, one per trigger
  MessagePlanner recording = [&seen, inner = TokenPlanner()](const Workflow& w,
                                                             const Subscriber& sub,
                                                             const Notification& n, const Json& o) {
    seen.push_back(sub);
    return inner(w, sub, n, o);
  };
  int next_tx = 0;
  auto plan = [&](SubscriberTarget target) -> const Subscriber& {
    TriggerRequest r;
    r.environment_id = dev_;
    r.transaction_id = "tx-" + std::to_string(++next_tx);
    r.workflow = TestWorkflow();
    r.max_tokens = 100;
    r.subscribers.push_back(std::move(target));
    std::vector<PlannedTrigger> items(1);
    items[0].request = std::move(r);
    auto receipt = store_->PlanTriggers(std::move(items), recording, "", 0);
    EXPECT_TRUE(receipt.ok()) << receipt.status().message();
    EXPECT_FALSE(seen.empty());
    return seen.back();
  };
  auto tokens = [](const Subscriber& sub) {
    std::vector<std::string> out;
    for (const SubscriberChannel& ch : sub.channels) {
      for (const DeviceToken& t : ch.tokens) {
        out.push_back(t.token + (t.status == TokenStatus::kActive ? "" : "(expired)"));
      }
    }
    return out;
  };

  const Subscriber first = plan({"u1", {}, {}});
  EXPECT_EQ(first.profile.first_name, std::optional<std::string>("Ann"));
  EXPECT_EQ(tokens(first), std::vector<std::string>{"a"});
  EXPECT_NE(first.snapshot, 0u);
  EXPECT_EQ(plan({"u1", {}, {}}).snapshot, first.snapshot);  // unchanged: the same snapshot

  SubscriberPatch patch;
  patch.first_name = std::optional<std::string>("Bo");
  ASSERT_TRUE(store_->PatchSubscriber(dev_, "u1", patch).ok());
  const Subscriber patched = plan({"u1", {}, {}});
  EXPECT_EQ(patched.profile.first_name, std::optional<std::string>("Bo"));
  EXPECT_NE(patched.snapshot, first.snapshot);

  CredentialsUpdate add{"push-webhook",          std::nullopt, Tokens({"b"}), {}, {},
                        TokenWriteMode::kAppend, 100};
  ASSERT_TRUE(store_->UpdateCredentials(dev_, "u1", add).ok());
  EXPECT_EQ(tokens(plan({"u1", {}, {}})), (std::vector<std::string>{"a", "b"}));

  ASSERT_TRUE(store_->AddTopicSubscribers(dev_, "news", {"u1"}).ok());
  EXPECT_EQ(plan({"u1", {}, {}}).topics, std::vector<std::string>{"news"});

  // A delivery (its token's last-active time) leaves the cached subscriber as it was; a failure
  // that expires a token does not.
  MessageQuery q;
  q.environment_id = dev_;
  q.transaction_ids = {"tx-" + std::to_string(next_tx)};
  long long total = 0;
  auto planned = store_->ListMessages(q, &total);
  ASSERT_TRUE(planned.ok());
  ASSERT_EQ(planned->size(), 2u);
  auto claimed = store_->ClaimDueMessages("me", NowMs(), NowMs() + 60000, 10);
  ASSERT_TRUE(claimed.ok());
  std::map<std::string, Message> by_token;
  for (const Message& m : *claimed) by_token[m.device_token] = m;
  ASSERT_EQ(by_token.count("a") + by_token.count("b"), 2u);
  auto outcome = [&](const Message& m, MessageOutcome::Kind kind) {
    MessageOutcome o{m.id, kind, NowMs()};
    o.channel_pk = m.channel_pk;
    o.token_identity = m.token_identity;
    o.touch_token = true;
    return o;
  };
  const std::uint64_t before = plan({"u1", {}, {}}).snapshot;
  ASSERT_TRUE(
      CompleteSync(*store_, "me", {outcome(by_token["a"], MessageOutcome::Kind::kDelivered)}).ok());
  const Subscriber after_delivery = plan({"u1", {}, {}});
  EXPECT_EQ(after_delivery.snapshot, before);
  // Planning sees no token's last-active time or last failure, the fields a delivery rewrites.
  EXPECT_TRUE(store_->GetSubscriber(dev_, "u1")->channels.at(0).tokens.at(0).last_active_at);
  for (const DeviceToken& t : after_delivery.channels.at(0).tokens) {
    EXPECT_FALSE(t.last_active_at.has_value());
    EXPECT_FALSE(t.last_failure_reason.has_value());
  }
  MessageOutcome dead = outcome(by_token["b"], MessageOutcome::Kind::kFailed);
  dead.error_id = "UNREGISTERED";
  dead.retire_token = TokenStatus::kExpired;
  ASSERT_TRUE(CompleteSync(*store_, "me", {dead}).ok());
  const Subscriber reread = plan({"u1", {}, {}});
  EXPECT_EQ(tokens(reread), (std::vector<std::string>{"a", "b(expired)"}));
  // Read again after the delivery to "a" and the failure of "b": still without either field.
  for (const DeviceToken& t : reread.channels.at(0).tokens) {
    EXPECT_FALSE(t.last_active_at.has_value());
    EXPECT_FALSE(t.last_failure_reason.has_value());
  }

  // Just-in-time channels and profile in the trigger itself are written and seen at once, and
  // by the plain triggers after it.
  JitChannel jit{"push-webhook", std::nullopt, Tokens({"c"}), std::nullopt};
  SubscriberPatch cy;
  cy.first_name = std::optional<std::string>("Cy");
  const Subscriber jitted = plan({"u1", cy, {jit}});
  EXPECT_EQ(jitted.profile.first_name, std::optional<std::string>("Cy"));
  EXPECT_EQ(tokens(jitted), (std::vector<std::string>{"a", "b(expired)", "c"}));
  EXPECT_EQ(tokens(plan({"u1", {}, {}})), (std::vector<std::string>{"a", "b(expired)", "c"}));
  EXPECT_EQ(plan({"u1", {}, {}}).profile.first_name, std::optional<std::string>("Cy"));

  // The integration switched off, then the subscriber deleted: a plain trigger creates them anew.
  auto integrations = store_->ListIntegrations(dev_, false);
  ASSERT_TRUE(integrations.ok());
  ASSERT_EQ(integrations->size(), 1u);
  Integration off = integrations->front();
  off.active = false;
  ASSERT_TRUE(store_->UpdateIntegration(off).ok());
  EXPECT_FALSE(plan({"u1", {}, {}}).channels.at(0).integration_active);
  ASSERT_TRUE(store_->DeleteSubscriber(dev_, "u1").ok());
  const Subscriber fresh = plan({"u1", {}, {}});
  EXPECT_TRUE(fresh.channels.empty());
  EXPECT_FALSE(fresh.profile.first_name.has_value());
  EXPECT_NE(fresh.id, first.id);

  // Snapshot numbers are unique in the process, across stores: a planner that outlives one store
  // must not take another's snapshot for one it has seen.
  std::set<std::uint64_t> snapshots;
  for (const Subscriber& s : seen) snapshots.insert(s.snapshot);
  Open();
  EXPECT_EQ(snapshots.count(plan({"u1", {}, {}}).snapshot), 0u);
}

// A planning chunk that fails is rolled back, just-in-time channels and all: what the cache took
// in meanwhile (a subscriber read after a trigger of the chunk wrote to it) must go with it.
TEST_P(SqliteStoreTest, APlanningChunkRolledBackLeavesNothingOfItInTheSubscriberCache) {
  HookSubscriber({"a"});
  auto request = [&](const std::string& tx, SubscriberTarget target) {
    PlannedTrigger item;
    item.request = TriggerRequest{};
    item.request->environment_id = dev_;
    item.request->transaction_id = tx;
    item.request->workflow = TestWorkflow();
    item.request->max_tokens = 100;
    item.request->subscribers.push_back(std::move(target));
    return item;
  };
  JitChannel jit{"push-webhook", std::nullopt, Tokens({"jit"}), std::nullopt};
  // The JIT token is written, a plain trigger then reads (and caches) u1 with it, and a transient
  // failure rolls the chunk back: planned again one by one, then failed again, it stays queued.
  std::vector<PlannedTrigger> chunk = {request("jit", {"u1", {}, {jit}}),
                                       request("plain", {"u1", {}, {}}),
                                       request("busy", {"u1", {}, {}})};
  MessagePlanner planner = [inner = TokenPlanner()](
                               const Workflow& w, const Subscriber& sub, const Notification& n,
                               const Json& overrides) -> Result<std::vector<Message>> {
    if (n.transaction_id == "busy") return Status::Unavailable("busy");
    return inner(w, sub, n, overrides);
  };
  EXPECT_EQ(store_->PlanTriggers(chunk, planner, "", 0).status().code(), Code::kUnavailable);
  EXPECT_EQ(ActiveTokens(*store_->GetSubscriber(dev_, "u1")), std::vector<std::string>{"a"});

  std::vector<std::string> planned_tokens;
  MessagePlanner recording = [&planned_tokens, inner = TokenPlanner()](
                                 const Workflow& w, const Subscriber& sub, const Notification& n,
                                 const Json& o) {
    for (const SubscriberChannel& ch : sub.channels) {
      for (const DeviceToken& t : ch.tokens) planned_tokens.push_back(t.token);
    }
    return inner(w, sub, n, o);
  };
  ASSERT_TRUE(store_->PlanTriggers({request("after", {"u1", {}, {}})}, recording, "", 0).ok());
  EXPECT_EQ(planned_tokens, std::vector<std::string>{"a"});
}

}  // namespace
}  // namespace herald::store::sqlite
