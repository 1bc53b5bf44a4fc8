#include "store/sqlite/sqlite_store.h"

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "core/ids.h"
#include "core/time.h"
#include "store/sqlite/db.h"

namespace herald::store {
namespace {

class SqliteStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("herald-store-" + RandomAlnum(10));
    std::filesystem::create_directories(dir_);
    Open();
    Environment dev{NewObjectId(), "development", "org1", "hash-dev", "sealed", NowMs()};
    Environment prod{NewObjectId(), "production", "org1", "hash-prod", "sealed", NowMs()};
    ASSERT_TRUE(store_->EnsureEnvironments({dev, prod}).ok());
    auto envs = store_->ListEnvironments();
    ASSERT_TRUE(envs.ok());
    ASSERT_EQ(envs->size(), 2u);
    for (const Environment& e : *envs) (e.name == "development" ? dev_ : prod_) = e.id;
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }
  void Open() {
    store_.reset();
    auto opened = OpenSqliteStore({(dir_ / "herald.db").string(), 2}, keys_);
    ASSERT_TRUE(opened.ok()) << opened.status().message();
    store_ = std::move(*opened);
  }

  Integration MakeIntegration(const std::string& env, const std::string& identifier,
                              const std::string& provider = "push-webhook", bool active = true,
                              EpochMs created = NowMs()) {
    Integration i;
    i.id = NewObjectId();
    i.environment_id = env;
    i.identifier = identifier;
    i.name = identifier;
    i.provider_id = provider;
    i.credentials = {{"webhookUrl", "https://example.com/hook"}, {"secretKey", "TOP-SECRET-VALUE"}};
    i.active = active;
    i.created_at = i.updated_at = created;
    return i;
  }

  Subscriber MustUpsert(const std::string& env, const std::string& id) {
    bool created = false;
    SubscriberPatch p;
    p.first_name = std::optional<std::string>("Ann");
    auto sub = store_->UpsertSubscriber(env, id, p, false, &created);
    EXPECT_TRUE(sub.ok());
    return *sub;
  }

  // The active push-webhook integration "hook", and subscriber "u1" holding `tokens` on it.
  void HookSubscriber(std::initializer_list<const char*> tokens) {
    ASSERT_TRUE(store_->CreateIntegration(MakeIntegration(dev_, "hook")).ok());
    MustHoldTokens("u1", tokens);
  }

  // Subscriber `id` holding `tokens` on the push-webhook integration "hook" (created by the
  // caller).
  void MustHoldTokens(const std::string& id, std::initializer_list<const char*> tokens) {
    MustUpsert(dev_, id);
    CredentialsUpdate u{"push-webhook",           std::nullopt, Tokens(tokens), {}, {},
                        TokenWriteMode::kReplace, 100};
    ASSERT_TRUE(store_->UpdateCredentials(dev_, id, u).ok());
  }

  // A workflow without steps in the development environment (what the token planner needs).
  Workflow MustCreateWorkflow(const std::string& workflow_id) {
    Workflow w;
    w.id = NewObjectId();
    w.environment_id = dev_;
    w.workflow_id = workflow_id;
    w.name = workflow_id;
    w.created_at = w.updated_at = NowMs();
    EXPECT_TRUE(store_->CreateWorkflow(w).ok());
    return w;
  }

  static std::vector<DeviceToken> Tokens(std::initializer_list<const char*> values) {
    std::vector<DeviceToken> out;
    for (const char* v : values) out.push_back({v, v});
    return out;
  }

  static std::vector<std::string> ActiveTokens(const Subscriber& s, std::size_t channel = 0) {
    std::vector<std::string> out;
    for (const DeviceToken& t : s.channels.at(channel).tokens) out.push_back(t.token);
    return out;
  }

  // The development environment's messages of transaction `tx` (up to 100; none if unreadable).
  std::vector<Message> MessagesOf(const std::string& tx) {
    MessageQuery q;
    q.environment_id = dev_;
    q.transaction_ids = {tx};
    q.limit = 100;
    long long total = 0;
    auto messages = store_->ListMessages(q, &total);
    EXPECT_TRUE(messages.ok()) << messages.status().message();
    return messages.ok() ? *messages : std::vector<Message>{};
  }

  std::filesystem::path dir_;
  crypto::KeyRing keys_{"k1", {{"k1", std::string(32, 'k')}}};
  std::unique_ptr<Store> store_;
  std::string dev_, prod_;
};

TEST_F(SqliteStoreTest, IntegrationsAreScopedSealedAndUnique) {
  ASSERT_TRUE(store_->CreateIntegration(MakeIntegration(dev_, "hook")).ok());
  auto dup = store_->CreateIntegration(MakeIntegration(dev_, "hook"));
  EXPECT_EQ(dup.status().code(), Code::kConflict);
  // The same identifier in another environment is fine; lists never cross environments.
  ASSERT_TRUE(store_->CreateIntegration(MakeIntegration(prod_, "hook")).ok());
  auto dev_list = store_->ListIntegrations(dev_, false);
  ASSERT_TRUE(dev_list.ok());
  ASSERT_EQ(dev_list->size(), 1u);
  EXPECT_EQ((*dev_list)[0].credentials["secretKey"], "TOP-SECRET-VALUE");
  EXPECT_EQ((*dev_list)[0].environment_id, dev_);

  // The database file never holds the secret in clear.
  store_.reset();
  for (const char* name : {"herald.db", "herald.db-wal"}) {
    std::ifstream in(dir_ / name, std::ios::binary);
    std::stringstream bytes;
    bytes << in.rdbuf();
    EXPECT_EQ(bytes.str().find("TOP-SECRET-VALUE"), std::string::npos) << name;
  }
  Open();
  auto reopened = store_->ListIntegrations(dev_, false);
  ASSERT_TRUE(reopened.ok());
  EXPECT_EQ((*reopened)[0].credentials["secretKey"], "TOP-SECRET-VALUE");
}

TEST_F(SqliteStoreTest, WrongKeyCannotOpenCredentials) {
  ASSERT_TRUE(store_->CreateIntegration(MakeIntegration(dev_, "hook")).ok());
  crypto::KeyRing other{"k2", {{"k2", std::string(32, 'z')}}};
  store_.reset();
  auto opened = OpenSqliteStore({(dir_ / "herald.db").string(), 1}, other);
  ASSERT_TRUE(opened.ok());
  EXPECT_EQ((*opened)->ListIntegrations(dev_, false).status().code(), Code::kInternal);
}

TEST_F(SqliteStoreTest, UpdateAndDeleteIntegration) {
  Integration i = MakeIntegration(dev_, "hook");
  ASSERT_TRUE(store_->CreateIntegration(i).ok());
  i.name = "renamed";
  i.active = false;
  ASSERT_TRUE(store_->UpdateIntegration(i).ok());
  auto got = store_->GetIntegration(dev_, i.id);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->name, "renamed");
  EXPECT_FALSE(got->active);
  EXPECT_EQ(store_->GetIntegration(prod_, i.id).status().code(), Code::kNotFound);
  EXPECT_EQ(store_->DeleteIntegration(prod_, i.id).code(), Code::kNotFound);
  EXPECT_TRUE(store_->DeleteIntegration(dev_, i.id).ok());
  EXPECT_EQ(store_->GetIntegration(dev_, i.id).status().code(), Code::kNotFound);
}

TEST_F(SqliteStoreTest, SubscriberUpsertPatchDelete) {
  bool created = false;
  SubscriberPatch p;
  p.email = std::optional<std::string>("a@example.com");
  p.data = std::optional<Json>(Json{{"plan", "pro"}});
  auto sub = store_->UpsertSubscriber(dev_, "u1", p, false, &created);
  ASSERT_TRUE(sub.ok());
  EXPECT_TRUE(created);
  EXPECT_EQ(store_->UpsertSubscriber(dev_, "u1", {}, true, &created).status().code(),
            Code::kConflict);
  SubscriberPatch patch;
  patch.email = std::optional<std::string>();  // clear
  patch.last_name = std::optional<std::string>("Lee");
  auto patched = store_->PatchSubscriber(dev_, "u1", patch);
  ASSERT_TRUE(patched.ok());
  EXPECT_FALSE(patched->profile.email.has_value());
  EXPECT_EQ(patched->profile.last_name, "Lee");
  EXPECT_EQ((*patched->profile.data)["plan"], "pro");
  EXPECT_EQ(store_->GetSubscriber(prod_, "u1").status().code(), Code::kNotFound);
  EXPECT_TRUE(store_->DeleteSubscriber(dev_, "u1").ok());
  EXPECT_EQ(store_->DeleteSubscriber(dev_, "u1").code(), Code::kNotFound);
}

TEST_F(SqliteStoreTest, CredentialsReplaceAppendDedupeAndLimit) {
  ASSERT_TRUE(store_->CreateIntegration(MakeIntegration(dev_, "hook")).ok());
  MustUpsert(dev_, "u1");
  CredentialsUpdate put{"push-webhook",
                        std::nullopt,
                        Tokens({"a", "b"}),
                        std::nullopt,
                        std::nullopt,
                        TokenWriteMode::kReplace,
                        3};
  auto s1 = store_->UpdateCredentials(dev_, "u1", put);
  ASSERT_TRUE(s1.ok()) << s1.status().message();
  EXPECT_EQ(ActiveTokens(*s1), (std::vector<std::string>{"a", "b"}));
  EpochMs a_created = s1->channels[0].tokens[0].created_at;

  CredentialsUpdate patch = put;
  patch.mode = TokenWriteMode::kAppend;
  patch.tokens = Tokens({"b", "c"});
  auto s2 = store_->UpdateCredentials(dev_, "u1", patch);
  ASSERT_TRUE(s2.ok());
  EXPECT_EQ(ActiveTokens(*s2), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(s2->channels[0].tokens[0].created_at, a_created);

  patch.tokens = Tokens({"d"});  // would make 4 > limit 3: rejected, nothing changes
  auto over = store_->UpdateCredentials(dev_, "u1", patch);
  EXPECT_EQ(over.status().code(), Code::kInvalidArgument);
  EXPECT_EQ(ActiveTokens(*store_->GetSubscriber(dev_, "u1")),
            (std::vector<std::string>{"a", "b", "c"}));

  put.tokens = Tokens({"z"});
  auto s3 = store_->UpdateCredentials(dev_, "u1", put);
  ASSERT_TRUE(s3.ok());
  EXPECT_EQ(ActiveTokens(*s3), (std::vector<std::string>{"z"}));

  EXPECT_TRUE(store_->DeleteCredentials(dev_, "u1", "push-webhook").ok());
  EXPECT_TRUE(store_->GetSubscriber(dev_, "u1")->channels.empty());
}

TEST_F(SqliteStoreTest, ChannelsLoadInCreationOrderWithTokensInPositionOrder) {
  ASSERT_TRUE(store_->CreateIntegration(MakeIntegration(dev_, "hook")).ok());
  ASSERT_TRUE(store_->CreateIntegration(MakeIntegration(dev_, "other", "push-webhook")).ok());
  MustUpsert(dev_, "u1");
  CredentialsUpdate first{"push-webhook",
                          std::string("hook"),
                          Tokens({"t3", "t1", "t2"}),
                          std::nullopt,
                          std::nullopt,
                          TokenWriteMode::kReplace,
                          10};
  ASSERT_TRUE(store_->UpdateCredentials(dev_, "u1", first).ok());
  // A channel with no tokens at all (only a webhook URL) still loads, after the first one.
  CredentialsUpdate second{"push-webhook",
                           std::string("other"),
                           std::vector<DeviceToken>{},
                           std::string("https://example.com/chat"),
                           std::nullopt,
                           TokenWriteMode::kReplace,
                           10};
  ASSERT_TRUE(store_->UpdateCredentials(dev_, "u1", second).ok());
  auto sub = store_->GetSubscriber(dev_, "u1");
  ASSERT_TRUE(sub.ok());
  ASSERT_EQ(sub->channels.size(), 2u);
  EXPECT_EQ(sub->channels[0].integration_identifier, "hook");
  EXPECT_EQ(ActiveTokens(*sub, 0), (std::vector<std::string>{"t3", "t1", "t2"}));
  EXPECT_EQ(sub->channels[1].integration_identifier, "other");
  EXPECT_TRUE(sub->channels[1].tokens.empty());
  EXPECT_EQ(sub->channels[1].webhook_url, std::optional<std::string>("https://example.com/chat"));
}

TEST_F(SqliteStoreTest, CredentialsResolveNewestActiveOrIdentifier) {
  ASSERT_TRUE(
      store_->CreateIntegration(MakeIntegration(dev_, "old", "push-webhook", true, 1000)).ok());
  ASSERT_TRUE(
      store_->CreateIntegration(MakeIntegration(dev_, "new", "push-webhook", true, 2000)).ok());
  ASSERT_TRUE(
      store_->CreateIntegration(MakeIntegration(dev_, "off", "push-webhook", false, 3000)).ok());
  MustUpsert(dev_, "u1");
  CredentialsUpdate u{"push-webhook",           std::nullopt, Tokens({"t"}), {}, {},
                      TokenWriteMode::kReplace, 100};
  auto s = store_->UpdateCredentials(dev_, "u1", u);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->channels[0].integration_identifier, "new");
  u.integration_identifier = "old";
  s = store_->UpdateCredentials(dev_, "u1", u);
  ASSERT_TRUE(s.ok());
  ASSERT_EQ(s->channels.size(), 2u);
  u.integration_identifier = "off";
  EXPECT_EQ(store_->UpdateCredentials(dev_, "u1", u).status().code(), Code::kInvalidArgument);
  u.integration_identifier.reset();
  u.provider_id = "fcm";
  EXPECT_EQ(store_->UpdateCredentials(dev_, "u1", u).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(store_->UpdateCredentials(dev_, "nobody", u).status().code(), Code::kInvalidArgument);
  // Deleting an integration removes the channels bound to it.
  auto ints = store_->ListIntegrations(dev_, false);
  for (const Integration& i : *ints) {
    if (i.identifier == "new") {
      ASSERT_TRUE(store_->DeleteIntegration(dev_, i.id).ok());
    }
  }
  EXPECT_EQ(store_->GetSubscriber(dev_, "u1")->channels.size(), 1u);
}

TEST_F(SqliteStoreTest, SearchPagesWithCursors) {
  for (int i = 0; i < 5; ++i) MustUpsert(dev_, "s" + std::to_string(i));
  MustUpsert(prod_, "other");
  PageRequest page;
  page.limit = 2;
  page.descending = false;
  std::vector<std::string> seen;
  for (int guard = 0; guard < 10; ++guard) {
    auto result = store_->SearchSubscribers(dev_, {}, page);
    ASSERT_TRUE(result.ok());
    EXPECT_EQ(result->total_count, 5);
    for (const Subscriber& s : result->items) seen.push_back(s.subscriber_id);
    if (!result->next) break;
    page.after = result->next;
  }
  EXPECT_EQ(seen.size(), 5u);
  std::set<std::string> unique(seen.begin(), seen.end());
  EXPECT_EQ(unique.size(), 5u);

  // A `before` page walks back: the two items just before the last cursor (seen[3]).
  PageRequest back;
  back.limit = 2;
  back.descending = false;
  back.before = page.after;
  auto previous = store_->SearchSubscribers(dev_, {}, back);
  ASSERT_TRUE(previous.ok());
  ASSERT_EQ(previous->items.size(), 2u);
  EXPECT_EQ(previous->items[0].subscriber_id, seen[1]);
  EXPECT_EQ(previous->items[1].subscriber_id, seen[2]);
  EXPECT_TRUE(previous->next.has_value());

  SubscriberFilter f;
  f.subscriber_id = "s3";
  auto one = store_->SearchSubscribers(dev_, f, {});
  ASSERT_TRUE(one.ok());
  ASSERT_EQ(one->items.size(), 1u);
  EXPECT_FALSE(one->next.has_value());
}

TEST_F(SqliteStoreTest, TopicSubscriptions) {
  MustUpsert(dev_, "u1");
  MustUpsert(dev_, "u2");
  auto added = store_->AddTopicSubscribers(dev_, "news", {"u1", "u2", "ghost"});
  ASSERT_TRUE(added.ok());
  EXPECT_EQ(added->succeeded.size(), 2u);
  EXPECT_EQ(added->missing_subscribers, std::vector<std::string>{"ghost"});
  EXPECT_TRUE(store_->GetTopic(dev_, "news").ok());
  EXPECT_EQ(store_->GetTopic(prod_, "news").status().code(), Code::kNotFound);
  // Idempotent.
  ASSERT_TRUE(store_->AddTopicSubscribers(dev_, "news", {"u1"}).ok());
  auto list = store_->ListTopicSubscriptions(dev_, "news", std::nullopt, {});
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(list->total_count, 2);
  EXPECT_EQ(store_->GetSubscriber(dev_, "u1")->topics, std::vector<std::string>{"news"});
  auto removed = store_->RemoveTopicSubscribers(dev_, "news", {"u1"});
  ASSERT_TRUE(removed.ok());
  EXPECT_EQ(removed->succeeded.size(), 1u);
  list = store_->ListTopicSubscriptions(dev_, "news", std::nullopt, {});
  EXPECT_EQ(list->total_count, 1);
  bool created = true;
  Topic t;
  t.environment_id = dev_;
  t.key = "news";
  EXPECT_EQ(store_->UpsertTopic(t, true, &created).status().code(), Code::kConflict);
}

TEST_F(SqliteStoreTest, WorkflowsCrud) {
  Workflow w;
  w.id = NewObjectId();
  w.environment_id = dev_;
  w.workflow_id = "order-shipped";
  w.name = "Order shipped";
  w.active = true;
  w.steps.push_back(
      {NewObjectId(), "push", "Push", "push", {{"title", "Hi {{subscriber.firstName}}"}}});
  w.created_at = w.updated_at = NowMs();
  ASSERT_TRUE(store_->CreateWorkflow(w).ok());
  EXPECT_EQ(store_->CreateWorkflow(w).status().code(), Code::kConflict);
  auto got = store_->GetWorkflow(dev_, "order-shipped");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->steps[0].control_values["title"], "Hi {{subscriber.firstName}}");
  EXPECT_TRUE(store_->GetWorkflow(dev_, w.id).ok());
  long long total = 0;
  auto list = store_->ListWorkflows(dev_, 0, 10, std::string("shipped"), &total);
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(total, 1);
  w.name = "Renamed";
  ASSERT_TRUE(store_->UpdateWorkflow(w).ok());
  EXPECT_EQ(store_->GetWorkflow(dev_, "order-shipped")->name, "Renamed");
  EXPECT_TRUE(store_->DeleteWorkflow(dev_, "order-shipped").ok());
  EXPECT_EQ(store_->GetWorkflow(dev_, "order-shipped").status().code(), Code::kNotFound);
}

TEST_F(SqliteStoreTest, ConcurrentWritesAreGroupCommittedAndAllDurable) {
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

TEST_F(SqliteStoreTest, FlushReturnsAfterEveryEarlierWriteCalledBack) {
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

TEST_F(SqliteStoreTest, FailedWriteInABatchLeavesNothingAndOthersCommit) {
  ASSERT_TRUE(store_->CreateIntegration(MakeIntegration(dev_, "hook")).ok());
  MustUpsert(dev_, "u1");
  // Over the limit: the channel row created inside this write must be rolled back too.
  CredentialsUpdate u{
      "push-webhook", std::nullopt, Tokens({"a", "b"}), {}, {}, TokenWriteMode::kReplace, 1};
  EXPECT_FALSE(store_->UpdateCredentials(dev_, "u1", u).ok());
  EXPECT_TRUE(store_->GetSubscriber(dev_, "u1")->channels.empty());
}

// A planner that emits one message per active token, like delivery::MakePlanner but without
// templates (the store must not depend on the delivery layer).
MessagePlanner TokenPlanner() {
  return [](const Workflow&, const Subscriber& sub, const Notification&,
            const Json&) -> Result<std::vector<Message>> {
    std::vector<Message> out;
    for (const SubscriberChannel& ch : sub.channels) {
      for (const DeviceToken& t : ch.tokens) {
        Message m;
        m.step_pk = "st";
        m.step_id = "push";
        m.integration_id = ch.integration_id;
        m.provider_id = ch.provider_id;
        m.channel_pk = ch.id;
        m.device_token = t.token;
        m.token_identity = t.identity;
        m.title = "t";
        m.content = "c";
        out.push_back(std::move(m));
      }
    }
    return out;
  };
}

std::shared_ptr<const Workflow> TestWorkflow() {
  auto w = std::make_shared<Workflow>();
  w->id = "wf";
  w->workflow_id = "wf";
  return w;
}

// What the dispatcher would plan for inbox rows that each trigger the test workflow for `to`.
std::vector<PlannedTrigger> PlanEachFor(const std::vector<QueuedTrigger>& queued,
                                        const std::string& to) {
  std::vector<PlannedTrigger> items;
  for (const QueuedTrigger& q : queued) {
    PlannedTrigger item;
    item.seq = q.seq;
    item.environment_id = q.environment_id;
    item.transaction_id = q.transaction_id;
    TriggerRequest r;
    r.environment_id = q.environment_id;
    r.transaction_id = q.transaction_id;
    r.workflow = TestWorkflow();
    r.subscribers.push_back({to, {}, {}});
    item.request = std::move(r);
    items.push_back(std::move(item));
  }
  return items;
}

// Plans one trigger that is not in the inbox, leaving its messages unleased.
Result<PlanReceipt> AcceptSync(Store& store, TriggerRequest request) {
  std::vector<PlannedTrigger> items(1);
  items[0].request = std::move(request);
  return store.PlanTriggers(std::move(items), TokenPlanner(), "", 0);
}

Status CompleteSync(Store& store, std::string owner, std::vector<MessageOutcome> outcomes) {
  std::promise<Status> done;
  store.CompleteMessages(std::move(owner), std::move(outcomes),
                         [&](Status st) { done.set_value(std::move(st)); });
  return done.get_future().get();
}

// A trigger of workflow "wf" to subscriber "u1", as the API queues it.
QueuedTrigger QueuedFor(const std::string& env, const std::string& transaction_id) {
  QueuedTrigger q;
  q.environment_id = env;
  q.transaction_id = transaction_id;
  q.event = {{"name", "wf"}, {"to", "u1"}, {"transactionId", transaction_id}};
  return q;
}

Status Enqueue(Store& store, QueuedTrigger trigger) {
  std::promise<Status> done;
  store.EnqueueTrigger(std::move(trigger), [&](Status st) { done.set_value(std::move(st)); });
  return done.get_future().get();
}

void EnqueueSync(Store& store, QueuedTrigger trigger) {
  Status st = Enqueue(store, std::move(trigger));
  ASSERT_TRUE(st.ok()) << st.message();
}

// Trigger planning keeps subscribers in a cache: every way their planning data can change must
// reach the next trigger, and a subscriber that did not change is not read again.
TEST_F(SqliteStoreTest, PlanningSeesEveryChangeToItsSubscriber) {
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
  dead.expire_token = true;
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
TEST_F(SqliteStoreTest, APlanningChunkRolledBackLeavesNothingOfItInTheSubscriberCache) {
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

TEST_F(SqliteStoreTest, NotificationsFindTheirMessagesBeforeAndAfterTheIndexMigration) {
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
    auto db = sqlite::Db::Open((dir_ / "herald.db").string(), true);
    EXPECT_TRUE(db.ok());
    sqlite::Stmt s = (*db)->Prepare(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'messages' AND "
        "sql IS NOT NULL ORDER BY name");
    std::vector<std::string> names;
    while (s.Step()) names.push_back(s.Text(0));
    return names;
  };
  check();
  // Back to schema version 4 (two lookup indexes, no severity or topics on notifications), with
  // the rows in place; reopening migrates.
  store_.reset();
  {
    auto db = sqlite::Db::Open((dir_ / "herald.db").string(), false);
    ASSERT_TRUE(db.ok());
    ASSERT_TRUE(
        (*db)
            ->ExecScript("DROP INDEX messages_by_tx_notification;"
                         "CREATE INDEX messages_by_tx ON messages(environment_id, transaction_id);"
                         "CREATE INDEX messages_by_notification ON messages(notification_id);"
                         "ALTER TABLE notifications DROP COLUMN severity;"
                         "ALTER TABLE notifications DROP COLUMN topics;"
                         "DELETE FROM schema_migrations WHERE version >= 5;")
            .ok());
  }
  EXPECT_EQ(indexes(), (std::vector<std::string>{"messages_by_notification", "messages_by_tx",
                                                 "messages_due"}));
  Open();
  EXPECT_EQ(indexes(), (std::vector<std::string>{"messages_by_tx_notification", "messages_due"}));
  check();
}

TEST_F(SqliteStoreTest, TriggerQueueLeaseCompleteCancel) {
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

TEST_F(SqliteStoreTest, TopicFanoutRunsInBatchesAndExcludes) {
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
TEST_F(SqliteStoreTest, DeletingASubscriberOrIntegrationFailsItsUnsentMessages) {
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
TEST_F(SqliteStoreTest, RemovingATokenFailsItsUnsentMessages) {
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

// The activity feed's filters: each one narrows, the subscriber criteria (ids, emails, search)
// widen each other as Novu's do, and a notification records its severity and its topics.
TEST_F(SqliteStoreTest, NotificationFiltersMatchWhatEachNotificationRecords) {
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

// As in Novu, every topic's `exclude` holds for the whole fan-out, whichever topic names the
// subscriber; a subscriber in several topics gets the trigger once; unknown topics are skipped.
TEST_F(SqliteStoreTest, TopicExcludesHoldForTheWholeFanOut) {
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

TEST_F(SqliteStoreTest, AFullInboxRefusesTriggersUntilPlanned) {
  store_.reset();
  SqliteOptions options;
  options.path = (dir_ / "herald.db").string();
  options.max_queued_triggers = 2;
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

TEST_F(SqliteStoreTest, AReusedInboxSequenceNumberIsNotTakenForTheRowThatWasRead) {
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

TEST_F(SqliteStoreTest, PlanningStopsOnceEnoughMessagesAreLeased) {
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

TEST_F(SqliteStoreTest, PlanningManyTriggersRunsInChunksAndKeepsTheirOrderAndTheLimit) {
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

TEST_F(SqliteStoreTest, APlanningChunkThatFailsLeavesItsTriggersQueuedAndTheOthersAreReturned) {
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

TEST_F(SqliteStoreTest, InboxPlansLeasesAndHonoursCancel) {
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

// Novu's idempotency (novu-api.md §2.0.1) as the store keeps it: a fresh key is held in progress
// until its reply is stored; the reply is replayed for the same body and refused for another;
// a key that expired (or a server error's, stored as expiring now) starts over. The API maps
// the states to 201-then-replay, 409 + Retry-After and 422.
TEST_F(SqliteStoreTest, IdempotencyKeysGoFromInProgressToReplayAndExpire) {
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
    auto db = sqlite::Db::Open((dir_ / "herald.db").string(), true);
    EXPECT_TRUE(db.ok());
    sqlite::Stmt s = (*db)->Prepare("SELECT COUNT(*) FROM idempotency_keys");
    EXPECT_TRUE(s.Step());
    return s.Int(0);
  };
  EXPECT_EQ(records(), 2);
  ASSERT_TRUE(store_->PurgeExpired(now + 300001).ok());
  EXPECT_EQ(records(), 1);
  EXPECT_EQ(begin(dev_, "k1", "h2", now + 300002).state, IdempotencyState::kInProgress);
}
}  // namespace
}  // namespace herald::store
