// The fixture and helpers the SqliteStore tests share (sqlite/*_test.cc). Every test of the
// fixture runs twice: with the WAL-combining VFS (wal_vfs.h) and with SQLite's default VFS.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/ids.h"
#include "core/time.h"
#include "store/sqlite/db.h"
#include "store/sqlite/sqlite_store.h"

namespace herald::store::sqlite {

// Runs each test twice: GetParam() says whether the store's connections open through the
// WAL-combining VFS (SqliteOptions::use_wal_vfs).
class SqliteStoreTest : public ::testing::TestWithParam<bool> {
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
  // The options of the test's store: its database, `read_connections` readers and the test's VFS.
  SqliteOptions Options(int read_connections = 2) const {
    SqliteOptions options;
    options.path = (dir_ / "herald.db").string();
    options.read_connections = read_connections;
    options.use_wal_vfs = GetParam();
    return options;
  }
  void Open() {
    store_.reset();
    auto opened = OpenSqliteStore(Options(), keys_);
    ASSERT_TRUE(opened.ok()) << opened.status().message();
    store_ = std::move(*opened);
  }
  // A connection of the test's own to the store's database, through the test's VFS.
  Result<std::unique_ptr<Db>> OpenDb(bool read_only) const {
    return Db::Open((dir_ / "herald.db").string(), read_only, GetParam());
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

// A planner that emits one message per active token, like delivery::MakePlanner but without
// templates (the store must not depend on the delivery layer).
MessagePlanner TokenPlanner();

std::shared_ptr<const Workflow> TestWorkflow();

// What the dispatcher would plan for inbox rows that each trigger the test workflow for `to`.
std::vector<PlannedTrigger> PlanEachFor(const std::vector<QueuedTrigger>& queued,
                                        const std::string& to);

// Plans one trigger that is not in the inbox, leaving its messages unleased.
Result<PlanReceipt> AcceptSync(Store& store, TriggerRequest request);

Status CompleteSync(Store& store, std::string owner, std::vector<MessageOutcome> outcomes);

// A trigger of workflow "wf" to subscriber "u1", as the API queues it.
QueuedTrigger QueuedFor(const std::string& env, const std::string& transaction_id);

Status Enqueue(Store& store, QueuedTrigger trigger);

void EnqueueSync(Store& store, QueuedTrigger trigger);

}  // namespace herald::store::sqlite
