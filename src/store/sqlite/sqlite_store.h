// The embedded store: one SQLite file in WAL mode. Writes go through a single writer thread that
// commits concurrent callers together (group commit: one fsync for many requests), each caller
// inside its own SAVEPOINT so that one failing write never affects another. Reads use a small
// pool of connections and see every write whose call has returned.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "crypto/crypto.h"
#include "store/sqlite/connections.h"
#include "store/sqlite/db.h"
#include "store/sqlite/subscriber_cache.h"
#include "store/sqlite/writer.h"
#include "store/store.h"

namespace herald::store {

struct SqliteOptions {
  std::string path;  // database file
  int read_connections = 4;
  // Accepted triggers waiting to be planned, at most (then EnqueueTrigger answers Unavailable):
  // when planning falls behind for long, clients are slowed instead of the inbox growing without
  // bound.
  std::int64_t max_queued_triggers = 1'000'000;
  // Every connection opens through the WAL-combining VFS (sqlite/wal_vfs.h); false: through
  // SQLite's default VFS.
  bool use_wal_vfs = true;
  // Renders event webhook bodies (wire::EventJson in the server); unset: a minimal body.
  EventRenderer render_event;
};

// Opens (creating if needed) the database and applies pending migrations. `keys` seals
// integration credentials and API keys at rest; it must outlive the store.
Result<std::unique_ptr<Store>> OpenSqliteStore(const SqliteOptions& options,
                                               const crypto::KeyRing& keys);

namespace sqlite {

struct NewLease;  // internal.h

// The Store on SQLite. Its operations are defined by concern: integrations.cc (environments and
// integrations), subscribers.cc (subscribers and device tokens), import.cc (bulk import of
// subscribers), topics.cc, workflows.cc, planning.cc (the trigger inbox and planning), queue.cc
// (the delivery queue: claims, outcomes, leases, fan-out), devices.cc, events.cc (event
// webhooks), messages.cc (messages, the activity feed, idempotency keys). The write and
// read paths they share are the private members below (sqlite_store.cc: the constructor, AnyRow,
// Flush); connections.cc opens the store.
class SqliteStore final : public Store {
 public:
  SqliteStore(std::unique_ptr<Db> writer_db, std::string wal_path,
              std::unique_ptr<Db> checkpoint_db, const crypto::KeyRing& keys,
              std::int64_t max_queued_triggers, EventRenderer render_event);

  void AddReader(std::unique_ptr<Db> db) { readers_.Add(std::move(db)); }

  // ---- environments and integrations (integrations.cc) ----
  Status EnsureEnvironments(const std::vector<Environment>& wanted) override;
  Result<std::vector<Environment>> ListEnvironments() override;
  Result<Integration> CreateIntegration(const Integration& integration) override;
  Result<std::vector<Integration>> ListIntegrations(std::string_view env,
                                                    bool active_only) override;
  Result<Integration> GetIntegration(std::string_view env, std::string_view id) override;
  Result<Integration> UpdateIntegration(const Integration& integration) override;
  Status DeleteIntegration(std::string_view env, std::string_view id) override;

  // ---- subscribers and device tokens (subscribers.cc) ----
  Result<Subscriber> UpsertSubscriber(std::string_view env, std::string_view subscriber_id,
                                      const SubscriberPatch& profile, bool fail_if_exists,
                                      bool* created) override;
  Result<Subscriber> GetSubscriber(std::string_view env, std::string_view subscriber_id) override;
  Result<Subscriber> PatchSubscriber(std::string_view env, std::string_view subscriber_id,
                                     const SubscriberPatch& patch) override;
  Status DeleteSubscriber(std::string_view env, std::string_view subscriber_id) override;
  Result<Page<Subscriber>> SearchSubscribers(std::string_view env, const SubscriberFilter& filter,
                                             const PageRequest& request) override;
  Result<Subscriber> UpdateCredentials(std::string_view env, std::string_view subscriber_id,
                                       const CredentialsUpdate& update) override;
  Status DeleteCredentials(std::string_view env, std::string_view subscriber_id,
                           std::string_view provider_id) override;

  // ---- bulk import of subscribers (import.cc) ----
  Result<ImportReceipt> ImportSubscribers(std::string_view env, const SubscriberSource& next,
                                          std::size_t max_tokens) override;

  // ---- topics (topics.cc) ----
  Result<Topic> UpsertTopic(const Topic& topic, bool fail_if_exists, bool* created) override;
  Result<Topic> GetTopic(std::string_view env, std::string_view key) override;
  Result<Page<Topic>> ListTopics(std::string_view env, std::optional<std::string> key,
                                 std::optional<std::string> name,
                                 const PageRequest& request) override;
  Result<TopicSubscriptionResult> AddTopicSubscribers(
      std::string_view env, std::string_view key,
      const std::vector<std::string>& subscriber_ids) override;
  Result<TopicSubscriptionResult> RemoveTopicSubscribers(
      std::string_view env, std::string_view key,
      const std::vector<std::string>& subscriber_ids) override;
  Result<Page<TopicSubscription>> ListTopicSubscriptions(std::string_view env, std::string_view key,
                                                         std::optional<std::string> subscriber_id,
                                                         const PageRequest& request) override;

  // ---- workflows (workflows.cc) ----
  Result<Workflow> CreateWorkflow(const Workflow& workflow) override;
  Result<Workflow> GetWorkflow(std::string_view env, std::string_view id) override;
  Result<std::vector<Workflow>> ListWorkflows(std::string_view env, int offset, int limit,
                                              std::optional<std::string> query,
                                              long long* total) override;
  Result<Workflow> UpdateWorkflow(const Workflow& workflow) override;
  Status DeleteWorkflow(std::string_view env, std::string_view id) override;

  // ---- the trigger inbox and planning (planning.cc) ----
  void EnqueueTrigger(QueuedTrigger trigger, std::function<void(Status)> done) override;
  Result<std::vector<QueuedTrigger>> ReadQueuedTriggers(std::size_t limit) override;
  Status CheckTriggerTargets(const TriggerRequest& r) override;
  Result<PlanReceipt> PlanTriggers(std::vector<PlannedTrigger> items, const MessagePlanner& planner,
                                   std::string_view owner, EpochMs lease_until,
                                   std::size_t max_leased) override;
  Result<bool> CancelTransaction(std::string_view env, std::string_view transaction_id) override;

  // ---- the delivery queue (queue.cc) ----
  Result<std::vector<Message>> ClaimDueMessages(std::string_view owner, EpochMs now,
                                                EpochMs lease_until, std::size_t limit) override;
  void CompleteMessages(std::string owner_id, std::vector<MessageOutcome> outcome_list,
                        std::function<void(Status)> done) override;
  Status ReleaseAllLeases() override;
  Result<std::optional<EpochMs>> NextDueAt() override;
  Result<std::size_t> RunFanoutBatch(std::size_t batch, const MessagePlanner& planner) override;

  // ---- devices (devices.cc) ----
  Result<Page<DeviceRecord>> ListDevices(const DeviceQuery& q) override;
  Result<std::size_t> ExpireInactiveTokens(EpochMs inactive_since, EpochMs now) override;

  // ---- event webhooks (events.cc) ----
  Result<WebhookEndpoint> CreateWebhookEndpoint(const WebhookEndpoint& endpoint) override;
  Result<std::vector<WebhookEndpoint>> ListWebhookEndpoints(std::string_view env) override;
  Status DeleteWebhookEndpoint(std::string_view env, std::string_view id) override;
  Result<std::vector<WebhookDelivery>> ClaimWebhookDeliveries(std::string_view owner, EpochMs now,
                                                               EpochMs lease_until,
                                                               std::size_t limit) override;
  Status RecordWebhookAttempts(std::string_view owner,
                               const std::vector<WebhookAttempt>& attempts) override;
  Result<std::optional<EpochMs>> NextWebhookDueAt() override;

  // ---- messages, the activity feed and idempotency keys (messages.cc) ----
  Result<std::vector<Message>> ListMessages(const MessageQuery& q, long long* total) override;
  Status DeleteMessage(std::string_view env, std::string_view id) override;
  Result<std::vector<NotificationWithMessages>> ListNotifications(const NotificationQuery& q,
                                                                  long long* total) override;
  void BeginIdempotent(std::string env, std::string key, std::string body_hash, EpochMs now,
                       EpochMs in_progress_until,
                       std::function<void(Result<IdempotencyRecord>)> done) override;
  void FinishIdempotent(std::string env, std::string key, int status, std::string body,
                        EpochMs expires_at) override;
  Status PurgeExpired(EpochMs now) override;

  // ---- a barrier behind every earlier write (sqlite_store.cc) ----
  Status Flush() override;

 private:
  // ---- the write and read paths every operation goes through ----

  // Whether a write may change what the subscriber cache holds (subscribers, their channels and
  // tokens, integrations, topics): then the cache is cleared after it runs.
  enum class Touches { kSubscribers, kNothingCached };

  // Runs `f(db)` inside the writer's batch; `f` returns Result<T>.
  template <typename T, typename F>
  Result<T> Write(F&& f, Durability durability = Durability::kSynced,
                  Priority priority = Priority::kForeground,
                  Touches touches = Touches::kSubscribers) {
    std::optional<T> out;
    Status st = writer_.Run(
        [&](Db& db) -> Status {
          ClearAfter clear(subscribers_, touches == Touches::kSubscribers);
          Result<T> r = f(db);
          if (!r.ok()) return r.take_status();
          out = std::move(r.value());
          return Status::Ok();
        },
        durability, priority);
    if (!st.ok()) return st;
    return std::move(*out);
  }

  // Delivery bookkeeping that a restart can replay: behind waiting API writes, not synced alone.
  // It leaves subscribers alone.
  template <typename T, typename F>
  Result<T> WriteBackground(F&& f) {
    return Write<T>(std::forward<F>(f), Durability::kCommitted, Priority::kBackground,
                    Touches::kNothingCached);
  }

  Status WriteStatus(WriteFn f) {
    return writer_.Run([this, f = std::move(f)](Db& db) {
      ClearAfter clear(subscribers_);
      return f(db);
    });
  }

  // Like Write, but returns at once; `done` runs on the writer thread after the commit.
  template <typename T, typename F>
  void WriteAsync(F f, std::function<void(Result<T>)> done,
                  Touches touches = Touches::kSubscribers) {
    auto out = std::make_shared<std::optional<T>>();
    writer_.Submit(
        [this, f = std::move(f), out, touches](Db& db) -> Status {
          ClearAfter clear(subscribers_, touches == Touches::kSubscribers);
          Result<T> r = f(db);
          if (!r.ok()) return r.take_status();
          *out = std::move(r.value());
          return Status::Ok();
        },
        [out, done = std::move(done)](Status st) {
          if (!st.ok()) {
            done(std::move(st));
          } else {
            done(std::move(**out));
          }
        });
  }

  template <typename F>
  auto Read(F&& f) {
    return readers_.Run(std::forward<F>(f));
  }

  // Whether `sql` finds a row, asked of a reader (so a pass with nothing to do costs no write
  // transaction); `param`, if set, is its one parameter.
  Result<bool> AnyRow(std::string_view sql, std::optional<std::int64_t> param = std::nullopt);

  // ---- integrations (integrations.cc) ----
  Result<Integration> LoadIntegration(Db& db, std::string_view env, std::string_view id);
  Status WriteIntegration(Db& db, const Integration& i, bool insert);

  // ---- planning (planning.cc) ----
  // Unavailable when max_queued_triggers_ rows wait in the inbox. Runs on the writer. The count
  // is taken (two lookups at the ends of the rowid tree: an upper bound when rows in the middle
  // were cancelled) every kInboxRecountEvery enqueues and whenever the estimate, which only
  // grows in between, says the inbox may be full.
  Status CheckInboxRoom(Db& db);

  // Planning runs as background writes of kPlanChunk triggers each, all queued at once: a
  // trigger's acknowledgement waits behind one chunk at most, not behind a whole batch.
  static constexpr std::size_t kPlanChunk = 8;

  // Shared by the chunks of one PlanTriggers call (touched on the writer thread only).
  struct PlanProgress {
    bool started = false;    // an item was planned (or skipped)
    std::size_t leased = 0;  // messages leased by the items planned so far
  };

  // Plans a chunk under one savepoint. Only if a trigger fails does the chunk run again with a
  // savepoint per trigger, so that the failing one alone is dropped or left queued (a savepoint per
  // trigger has its cost, see Undo in writer.h; failures are rare).
  Result<PlanReceipt> PlanChunk(Db& db, std::span<const PlannedTrigger> items,
                                const MessagePlanner& planner, const NewLease& lease,
                                std::size_t max_leased, PlanProgress& progress);

  // Plans `items` in order. With `isolate`, each trigger runs inside its own savepoint: one that
  // fails for good is dropped, one that fails transiently fails the call (the chunk stays
  // queued). Without, the first failure fails the call and leaves the rollback to the caller.
  Result<PlanReceipt> PlanItems(Db& db, std::span<const PlannedTrigger> items,
                                const MessagePlanner& planner, const NewLease& lease,
                                std::size_t max_leased, PlanProgress& progress, bool isolate);

  const crypto::KeyRing& keys_;
  const std::int64_t max_queued_triggers_;
  const EventRenderer render_event_;
  // Writer-thread only: see CheckInboxRoom.
  static constexpr int kInboxRecountEvery = 64;
  std::int64_t inbox_estimate_ = 0;
  int enqueues_since_count_ = kInboxRecountEvery;
  SubscriberCache subscribers_;  // writer thread only; before writer_, which uses it
  Writer writer_;
  Checkpointer checkpointer_;
  ReaderPool readers_;
};

}  // namespace sqlite
}  // namespace herald::store
