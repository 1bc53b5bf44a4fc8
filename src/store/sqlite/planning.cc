// Planning and the trigger inbox: queued triggers, the checks before one is accepted, planning
// into notifications, messages and fan-outs (writing them), and cancelling a transaction.
#include <algorithm>
#include <future>
#include <set>
#include <string>

#include "core/ids.h"
#include "core/log.h"
#include "store/sqlite/internal.h"
#include "store/sqlite/rows.h"
#include "store/sqlite/sqlite_store.h"

namespace herald::store::sqlite {
namespace {

// Records that `transaction_id` is taken in `env`: false if it already was (a repeat, which is
// never delivered again).
Result<bool> TakeTransactionId(Db& db, std::string_view env, std::string_view transaction_id,
                               std::string_view workflow_id, EpochMs now) {
  Stmt tx = db.Prepare(
      "INSERT INTO transactions (environment_id, transaction_id, workflow_id, created_at) "
      "VALUES (?, ?, ?, ?) ON CONFLICT (environment_id, transaction_id) DO NOTHING");
  tx.Bind(1, env).Bind(2, transaction_id).Bind(3, workflow_id);
  tx.Bind(4, static_cast<std::int64_t>(now));
  RETURN_IF_ERROR(tx.Exec());
  return db.Changes() > 0;
}

// Adds `part`'s counts and leased messages to `total`.
void Absorb(PlanReceipt& total, PlanReceipt&& part) {
  total.planned += part.planned;
  total.duplicates += part.duplicates;
  total.skipped += part.skipped;
  total.dropped += part.dropped;
  total.notifications += part.notifications;
  total.messages += part.messages;
  total.fanouts += part.fanouts;
  for (Message& m : part.leased) total.leased.push_back(std::move(m));
}

Status InsertMessage(Db& db, const Message& m, const NewLease& lease) {
  Stmt s = db.Prepare(
      "INSERT INTO messages (id, environment_id, notification_id, transaction_id, subscriber_pk, "
      "subscriber_id, workflow_pk, workflow_id, step_pk, step_id, integration_id, provider_id, "
      "channel_pk, device_token, token_identity, state, attempts, next_attempt_at, created_at, "
      "updated_at, lease_owner, lease_until) "
      "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', 0, ?, ?, ?, ?, ?)");
  s.BindRef(1, m.id).BindRef(2, m.environment_id).BindRef(3, m.notification_id);
  s.BindRef(4, m.transaction_id).BindRef(5, m.subscriber_pk).BindRef(6, m.subscriber_id);
  s.BindRef(7, m.workflow_pk).BindRef(8, m.workflow_id).BindRef(9, m.step_pk);
  s.BindRef(10, m.step_id).BindRef(11, m.integration_id).BindRef(12, m.provider_id);
  s.BindRef(13, m.channel_pk).BindRef(14, m.device_token).BindRef(15, m.token_identity);
  s.Bind(16, m.next_attempt_at);
  s.Bind(17, static_cast<std::int64_t>(m.created_at));
  s.Bind(18, static_cast<std::int64_t>(m.created_at));
  if (lease.owner.empty()) {
    s.Bind(19, std::optional<std::string>()).Bind(20, std::optional<std::int64_t>());
  } else {
    s.Bind(19, lease.owner).Bind(20, static_cast<std::int64_t>(lease.until));
  }
  RETURN_IF_ERROR(s.Exec());
  Stmt body = db.Prepare(
      "INSERT INTO message_bodies (message_id, title, content, payload, overrides) "
      "VALUES (?, ?, ?, ?, ?)");
  const std::string overrides = DumpJson(m.overrides);
  body.BindRef(1, m.id).BindRef(2, m.title).BindRef(3, m.content).BindRef(4, m.payload_json);
  body.BindRef(5, overrides);
  return body.Exec();
}

// A notification's severity: the trigger's `overrides.severity` if it names one, else the
// workflow's.
std::string NotificationSeverity(const Workflow& workflow, const Json& overrides) {
  auto it = overrides.find("severity");
  if (it != overrides.end() && it->is_string()) {
    const std::string& value = it->get_ref<const std::string&>();
    if (value == "high" || value == "medium" || value == "low" || value == "none") return value;
  }
  return workflow.severity;
}

// Upserts a trigger target and persists its JIT channels (PATCH semantics); returns it loaded.
Result<Subscriber> UpsertTarget(Db& db, std::string_view env, const SubscriberTarget& t,
                                std::size_t max_tokens, EpochMs now) {
  bool created = false;
  ASSIGN_OR_RETURN(Subscriber sub,
                   UpsertInTx(db, env, t.subscriber_id, t.profile, false, &created));
  if (t.channels.empty()) return sub;
  for (const JitChannel& ch : t.channels) {
    CredentialsUpdate update{ch.provider_id, ch.integration_identifier, ch.tokens, ch.webhook_url,
                             std::nullopt,   TokenWriteMode::kAppend,   max_tokens};
    RETURN_IF_ERROR(ApplyCredentials(db, env, sub.id, update, now));
  }
  return LoadSubscriber(db, env, t.subscriber_id);
}

// The topics of `r` that the environment has. Novu's worker logs the others and goes on: the
// subscribers named on their own and the topics that exist still get the trigger.
Result<std::vector<const TopicTarget*>> ExistingTopics(Db& db, const TriggerRequest& r) {
  std::vector<const TopicTarget*> found;
  for (const TopicTarget& topic : r.topics) {
    Result<Topic> loaded = LoadTopic(db, r.environment_id, topic.key);
    if (loaded.ok()) {
      found.push_back(&topic);
    } else if (loaded.status().code() == Code::kNotFound) {
      spdlog::warn("trigger_topic_not_found transaction_id={} topic_key={}", r.transaction_id,
                   topic.key);
    } else {
      return loaded.take_status();
    }
  }
  return found;
}

// A trigger's subscriber as planning needs it. A plain subscriberId comes from the cache, or is
// read (and cached) if it exists; a subscriber object with a profile or channels, or one that
// does not exist yet, is written first and not cached (and the cache is cleared: the write may
// have changed an entry).
Result<std::shared_ptr<const Subscriber>> PlanningTarget(Db& db, SubscriberCache& cache,
                                                         std::string_view env,
                                                         const SubscriberTarget& target,
                                                         std::size_t max_tokens, EpochMs now) {
  if (target.profile.empty() && target.channels.empty()) {
    if (std::shared_ptr<const Subscriber> hit = cache.Find(env, target.subscriber_id)) return hit;
    Result<Subscriber> stored = LoadSubscriber(db, env, target.subscriber_id);
    if (stored.ok()) return cache.Put(ForPlanning(std::move(stored.value())));
    if (stored.status().code() != Code::kNotFound) return stored.take_status();
  }
  ClearAfter clear(cache);
  ASSIGN_OR_RETURN(Subscriber written, UpsertTarget(db, env, target, max_tokens, now));
  return std::make_shared<const Subscriber>(ForPlanning(std::move(written)));
}

// Plans one trigger (see PlanTriggers); the caller holds a savepoint around it.
Status PlanOne(Db& db, SubscriberCache& cache, const TriggerRequest& r,
               const MessagePlanner& planner, const NewLease& lease, PlanReceipt& receipt) {
  if (!r.workflow) return Status::InvalidArgument("trigger without a workflow");
  EpochMs now = NowMs();
  ASSIGN_OR_RETURN(bool fresh, TakeTransactionId(db, r.environment_id, r.transaction_id,
                                                 r.workflow->workflow_id, now));
  if (!fresh) {
    receipt.duplicates += 1;
    return Status::Ok();
  }
  ASSIGN_OR_RETURN(std::vector<const TopicTarget*> topics_found, ExistingTopics(db, r));
  std::vector<std::string> exclude;
  if (r.actor) {
    Result<std::shared_ptr<const Subscriber>> actor =
        PlanningTarget(db, cache, r.environment_id, *r.actor, r.max_tokens, now);
    if (!actor.ok()) return actor.take_status();
    exclude.push_back(r.actor->subscriber_id);
  }
  std::vector<Message>* leased = lease.owner.empty() ? nullptr : &receipt.leased;
  for (const SubscriberTarget& target : r.subscribers) {
    ASSIGN_OR_RETURN(std::shared_ptr<const Subscriber> sub,
                     PlanningTarget(db, cache, r.environment_id, target, r.max_tokens, now));
    ASSIGN_OR_RETURN(std::size_t written,
                     WriteNotification(db, *r.workflow, *sub, r.transaction_id, r.payload,
                                       r.payload_text, r.overrides, planner, now, lease, leased));
    receipt.notifications += 1;
    receipt.messages += written;
    exclude.push_back(target.subscriber_id);
  }
  if (!topics_found.empty() || r.broadcast) {
    // Left out of the whole fan-out: the subscribers named on their own, the actor, and every
    // topic's `exclude` (Novu gathers them all into one list, whichever topic names them).
    Json topics = Json::array();
    Json excluded = exclude;
    for (const TopicTarget* topic : topics_found) {
      topics.push_back(topic->key);
      for (const std::string& id : topic->exclude) excluded.push_back(id);
    }
    Json fanout = {
        {"workflow", r.workflow->id}, {"payload", r.payload}, {"payload_text", r.payload_text},
        {"overrides", r.overrides},   {"topics", topics},     {"exclude", excluded},
        {"broadcast", r.broadcast}};
    Stmt s = db.Prepare(
        "INSERT INTO fanouts (id, environment_id, transaction_id, topic_key, request, "
        "cursor, created_at) VALUES (?, ?, ?, ?, ?, '', ?)");
    s.Bind(1, NewObjectId()).Bind(2, r.environment_id).Bind(3, r.transaction_id);
    s.Bind(4, topics_found.empty() ? std::optional<std::string>()
                                   : std::optional<std::string>(topics_found[0]->key));
    s.Bind(5, DumpJson(fanout)).Bind(6, static_cast<std::int64_t>(now));
    RETURN_IF_ERROR(s.Exec());
    receipt.fanouts += 1;
  }
  receipt.planned += 1;
  return Status::Ok();
}

}  // namespace

Result<std::size_t> WriteNotification(Db& db, const Workflow& workflow, const Subscriber& sub,
                                      const std::string& transaction_id, const Json& payload,
                                      const std::string& payload_text, const Json& overrides,
                                      const MessagePlanner& planner, EpochMs now,
                                      const NewLease& lease, std::vector<Message>* leased,
                                      const Json* topics) {
  Notification n;
  n.id = NewObjectId();
  n.environment_id = sub.environment_id;
  n.transaction_id = transaction_id;
  n.workflow_pk = workflow.id;
  n.workflow_id = workflow.workflow_id;
  n.workflow_name = workflow.name;
  n.subscriber_pk = sub.id;
  n.subscriber_id = sub.subscriber_id;
  n.payload = payload;
  n.payload_text = payload_text;
  n.severity = NotificationSeverity(workflow, overrides);
  if (topics) n.topics = *topics;
  n.created_at = now;
  const std::string stored_payload = DumpJson(payload);
  Stmt s = db.Prepare(
      "INSERT INTO notifications (id, environment_id, transaction_id, workflow_pk, workflow_id, "
      "workflow_name, subscriber_pk, subscriber_id, payload, created_at, severity, topics) "
      "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
  s.BindRef(1, n.id).BindRef(2, n.environment_id).BindRef(3, n.transaction_id);
  s.BindRef(4, n.workflow_pk).BindRef(5, n.workflow_id).BindRef(6, n.workflow_name);
  s.BindRef(7, n.subscriber_pk).BindRef(8, n.subscriber_id).BindRef(9, stored_payload);
  s.Bind(10, static_cast<std::int64_t>(now));
  // NULL for the common values: most rows are "none" and made by no topic.
  s.Bind(11, n.severity == "none" ? std::optional<std::string>() : n.severity);
  s.Bind(12, n.topics.empty() ? std::optional<std::string>() : DumpJson(n.topics));
  RETURN_IF_ERROR(s.Exec());
  ASSIGN_OR_RETURN(std::vector<Message> messages, planner(workflow, sub, n, overrides));
  for (Message& m : messages) {
    m.id = NewObjectId();
    m.environment_id = n.environment_id;
    m.notification_id = n.id;
    m.transaction_id = n.transaction_id;
    m.subscriber_pk = sub.id;
    m.subscriber_id = sub.subscriber_id;
    m.workflow_pk = workflow.id;
    m.workflow_id = workflow.workflow_id;
    m.created_at = now;
    m.updated_at = now;
    // A leased message falls due again when its lease runs out (see ClaimDueMessages).
    m.next_attempt_at = lease.owner.empty() ? now : lease.until;
    RETURN_IF_ERROR(InsertMessage(db, m, lease));
    if (leased) leased->push_back(std::move(m));
  }
  return messages.size();
}

void SqliteStore::EnqueueTrigger(QueuedTrigger trigger, std::function<void(Status)> done) {
  auto row = std::make_shared<QueuedTrigger>(std::move(trigger));
  std::string event = row->event_text.empty() ? DumpJson(row->event) : std::move(row->event_text);
  writer_.Submit(
      [this, row, event = std::move(event)](Db& db) -> Status {
        RETURN_IF_ERROR(CheckInboxRoom(db));
        Stmt s = db.Prepare(
            "INSERT INTO trigger_inbox (environment_id, transaction_id, broadcast, event, "
            "created_at) VALUES (?, ?, ?, ?, ?)");
        s.BindRef(1, row->environment_id).BindRef(2, row->transaction_id);
        s.Bind(3, row->broadcast).BindRef(4, event).Bind(5, static_cast<std::int64_t>(NowMs()));
        RETURN_IF_ERROR(s.Exec());
        inbox_estimate_ += 1;
        return Status::Ok();
      },
      // One INSERT (after reads): a failed one leaves nothing to undo.
      std::move(done), Durability::kSynced, Priority::kForeground, Undo::kSelf);
}

Status SqliteStore::CheckInboxRoom(Db& db) {
  if (++enqueues_since_count_ >= kInboxRecountEvery || inbox_estimate_ >= max_queued_triggers_) {
    Stmt depth = db.Prepare(
        "SELECT (SELECT MAX(seq) FROM trigger_inbox) - (SELECT MIN(seq) FROM trigger_inbox)");
    std::int64_t waiting = depth.Step() ? depth.OptInt(0).value_or(-1) + 1 : 0;
    RETURN_IF_ERROR(depth.status());
    while (depth.Step()) {
    }
    inbox_estimate_ = waiting;
    enqueues_since_count_ = 0;
  }
  if (inbox_estimate_ >= max_queued_triggers_) {
    return Status::Unavailable("the trigger queue is full (" + std::to_string(inbox_estimate_) +
                               " triggers waiting to be planned); retry later");
  }
  return Status::Ok();
}

Result<std::vector<QueuedTrigger>> SqliteStore::ReadQueuedTriggers(std::size_t limit) {
  return Read([&](Db& db) -> Result<std::vector<QueuedTrigger>> {
    Stmt s = db.Prepare(
        "SELECT seq, environment_id, transaction_id, broadcast, event, created_at "
        "FROM trigger_inbox ORDER BY seq LIMIT ?");
    s.Bind(1, static_cast<std::int64_t>(limit));
    std::vector<QueuedTrigger> out;
    while (s.Step()) {
      QueuedTrigger q;
      q.seq = s.Int(0);
      q.environment_id = s.Text(1);
      q.transaction_id = s.Text(2);
      q.broadcast = s.Int(3) != 0;
      q.event_text = s.Text(4);
      q.event = ParseColumn(q.event_text);
      q.created_at = s.Int(5);
      out.push_back(std::move(q));
    }
    RETURN_IF_ERROR(s.status());
    return out;
  });
}

Status SqliteStore::CheckTriggerTargets(const TriggerRequest& r) {
  return Read([&](Db& db) -> Status {
    std::vector<const SubscriberTarget*> targets;
    if (r.actor) targets.push_back(&*r.actor);
    for (const SubscriberTarget& t : r.subscribers) targets.push_back(&t);
    for (const SubscriberTarget* t : targets) {
      std::optional<std::string> subscriber_pk =
          t->channels.empty() ? std::nullopt
                              : FindSubscriberPk(db, r.environment_id, t->subscriber_id);
      for (const JitChannel& ch : t->channels) {
        Result<std::string> found =
            FindActiveIntegration(db, r.environment_id, ch.provider_id, ch.integration_identifier);
        if (!found.ok()) return found.take_status();
        // JIT tokens are appended: the channel must still fit the token limit afterwards.
        std::set<std::string> identities;
        for (const DeviceToken& token : ch.tokens) identities.insert(token.identity);
        if (subscriber_pk) {
          Stmt held = db.Prepare(
              "SELECT dt.identity FROM device_tokens dt JOIN subscriber_channels c ON "
              "c.id = dt.channel_pk WHERE c.subscriber_pk = ? AND c.integration_id = ?");
          held.Bind(1, *subscriber_pk).Bind(2, *found);
          while (held.Step()) identities.insert(held.Text(0));
          RETURN_IF_ERROR(held.status());
        }
        if (identities.size() > r.max_tokens) {
          return TokenLimitExceeded(identities.size(), r.max_tokens);
        }
      }
    }
    return Status::Ok();
  });
}

Result<PlanReceipt> SqliteStore::PlanChunk(Db& db, std::span<const PlannedTrigger> items,
                                           const MessagePlanner& planner, const NewLease& lease,
                                           std::size_t max_leased, PlanProgress& progress) {
  const PlanProgress before = progress;
  RETURN_IF_ERROR(db.Run("SAVEPOINT c"));
  Result<PlanReceipt> all =
      PlanItems(db, items, planner, lease, max_leased, progress, /*isolate=*/false);
  if (all.ok()) {
    RETURN_IF_ERROR(db.Run("RELEASE c"));
    return all;
  }
  // A chunk that could not be undone here (or whose transaction SQLite rolled back) fails: the
  // writer then rolls this whole write back. RELEASE only pops the savepoint.
  Status undone = db.Run("ROLLBACK TO c");
  (void)db.Run("RELEASE c");
  subscribers_.Clear();  // it may hold what the chunk wrote
  if (!undone.ok() || !db.InTransaction()) return all.status();
  progress = before;
  return PlanItems(db, items, planner, lease, max_leased, progress, /*isolate=*/true);
}

Result<PlanReceipt> SqliteStore::PlanItems(Db& db, std::span<const PlannedTrigger> items,
                                           const MessagePlanner& planner, const NewLease& lease,
                                           std::size_t max_leased, PlanProgress& progress,
                                           bool isolate) {
  PlanReceipt receipt;
  for (const PlannedTrigger& item : items) {
    // The first item is always planned; after it, stop once enough messages were leased.
    if (progress.started && progress.leased >= max_leased) break;  // the rest stays queued
    progress.started = true;
    if (item.seq > 0) {
      // Sequence numbers can be reused once the newest row is gone: the row must still be
      // the one that was read.
      Stmt del = db.Prepare(
          "DELETE FROM trigger_inbox WHERE seq = ? AND environment_id = ? AND "
          "transaction_id = ?");
      del.Bind(1, item.seq).Bind(2, item.environment_id).Bind(3, item.transaction_id);
      RETURN_IF_ERROR(del.Exec());
      if (db.Changes() == 0) {
        receipt.skipped += 1;
        continue;
      }
    }
    if (!item.request) {
      spdlog::warn("trigger dropped transaction_id={} reason=\"{}\"", item.transaction_id,
                   item.error);
      receipt.dropped += 1;
      continue;
    }
    if (isolate) RETURN_IF_ERROR(db.Run("SAVEPOINT t"));
    PlanReceipt attempt;
    Status st;
    try {
      st = PlanOne(db, subscribers_, *item.request, planner, lease, attempt);
    } catch (const std::exception& e) {  // a bug in planning this one: never retry it
      st = Status::InvalidArgument(std::string("planning threw: ") + e.what());
    }
    if (!st.ok() && !isolate) return st;
    if (!st.ok()) {
      Status undone = db.Run("ROLLBACK TO t");
      (void)db.Run("RELEASE t");  // only pops the savepoint
      subscribers_.Clear();
      if (!undone.ok() || !db.InTransaction() || !IsPermanentTriggerError(st.code()))
        return st;  // the whole chunk stays queued
      spdlog::warn("trigger dropped transaction_id={} reason=\"{}\"", item.request->transaction_id,
                   st.message());
      receipt.dropped += 1;
      continue;
    }
    if (isolate) RETURN_IF_ERROR(db.Run("RELEASE t"));
    progress.leased += attempt.leased.size();
    Absorb(receipt, std::move(attempt));
  }
  return receipt;
}

Result<PlanReceipt> SqliteStore::PlanTriggers(std::vector<PlannedTrigger> items,
                                              const MessagePlanner& planner, std::string_view owner,
                                              EpochMs lease_until, std::size_t max_leased) {
  if (items.empty()) return PlanReceipt{};
  const std::string lease_owner(owner);
  const NewLease lease{lease_owner, lease_until};
  PlanProgress progress;
  std::vector<std::optional<Result<PlanReceipt>>> parts((items.size() + kPlanChunk - 1) /
                                                        kPlanChunk);
  std::promise<void> all_done;
  std::size_t remaining = parts.size();  // counted down by the callbacks (one thread, in order)
  for (std::size_t c = 0; c < parts.size(); ++c) {
    std::span<const PlannedTrigger> chunk(items.data() + c * kPlanChunk,
                                          std::min(kPlanChunk, items.size() - c * kPlanChunk));
    writer_.Submit(
        [&, c, chunk](Db& db) -> Status {
          // A chunk that fails (or throws) is rolled back by the writer: what the cache took
          // in meanwhile goes too.
          ClearAfter clear_on_failure(subscribers_);
          parts[c] = PlanChunk(db, chunk, planner, lease, max_leased, progress);
          if (!parts[c]->ok()) return parts[c]->status();
          clear_on_failure.Keep();
          return Status::Ok();
        },
        [&, c](Status st) {
          // A chunk whose own work succeeded can still fail as part of its batch.
          if (!st.ok() && (!parts[c] || parts[c]->ok())) parts[c] = std::move(st);
          if (--remaining == 0) all_done.set_value();
        },
        // Replayable: a plan lost with a power failure puts its inbox rows back.
        Durability::kCommitted, Priority::kBackground);
  }
  all_done.get_future().wait();
  // Chunks that failed leave their triggers queued for the next pass; the others' messages are
  // leased and must be sent, so they are returned even then.
  PlanReceipt receipt;
  std::size_t leased = 0;
  for (const std::optional<Result<PlanReceipt>>& part : parts) {
    if (part->ok()) leased += part->value().leased.size();
  }
  receipt.leased.reserve(leased);  // one allocation, not a doubling per chunk
  std::optional<Status> first_error;
  bool any_ok = false;
  for (std::optional<Result<PlanReceipt>>& part : parts) {
    if (!part->ok()) {
      if (!first_error) first_error = part->status();
      continue;
    }
    any_ok = true;
    Absorb(receipt, std::move(part->value()));
  }
  if (!any_ok) return *first_error;
  if (first_error) spdlog::error("planning left triggers queued: {}", first_error->message());
  return receipt;
}

Result<bool> SqliteStore::CancelTransaction(std::string_view env, std::string_view transaction_id) {
  return Write<bool>([&](Db& db) -> Result<bool> {
    EpochMs now = NowMs();
    Stmt m = db.Prepare(
        "UPDATE messages SET state = 'cancelled', next_attempt_at = NULL, updated_at = ? "
        "WHERE environment_id = ? AND transaction_id = ? AND state = 'pending'");
    m.Bind(1, static_cast<std::int64_t>(now)).Bind(2, env).Bind(3, transaction_id);
    RETURN_IF_ERROR(m.Exec());
    std::int64_t changed = db.Changes();
    Stmt f = db.Prepare("DELETE FROM fanouts WHERE environment_id = ? AND transaction_id = ?");
    f.Bind(1, env).Bind(2, transaction_id);
    RETURN_IF_ERROR(f.Exec());
    changed += db.Changes();
    // Not planned yet: it never will be (the inbox is short, so a scan is fine), and its id
    // stays taken so that a repeat is not delivered either.
    Stmt q = db.Prepare(
        "DELETE FROM trigger_inbox WHERE environment_id = ? AND transaction_id = ? "
        "RETURNING json_extract(event, '$.name')");
    q.Bind(1, env).Bind(2, transaction_id);
    bool removed = false;
    std::string workflow;
    while (q.Step()) {
      removed = true;
      workflow = q.OptText(0).value_or("");
    }
    RETURN_IF_ERROR(q.status());
    if (removed) {
      changed += 1;
      Result<bool> taken = TakeTransactionId(db, env, transaction_id, workflow, now);
      if (!taken.ok()) return taken.take_status();
    }
    return changed > 0;
  });
}

}  // namespace herald::store::sqlite
