// The delivery queue: claims, outcomes and leases of messages, topic and broadcast fan-out, and
// failing the messages not sent yet whose subscriber, integration or token is gone.
#include <set>
#include <string>
#include <utility>

#include "store/sqlite/internal.h"
#include "store/sqlite/rows.h"
#include "store/sqlite/sqlite_store.h"

namespace herald::store::sqlite {
namespace {

// The message's row after one outcome (only while `owner` holds its lease).
Status RecordOutcome(Db& db, const MessageOutcome& o, const std::string& owner, EpochMs now) {
  using Kind = MessageOutcome::Kind;
  const char* sql = nullptr;
  switch (o.kind) {
    case Kind::kDelivered:
      sql = "UPDATE messages SET state = 'delivered', next_attempt_at = NULL, "
            "provider_response_id = COALESCE(?, provider_response_id), error_id = NULL, "
            "error_text = NULL, receipt = NULL, attempts = attempts + 1, last_attempt_at = ?, "
            "lease_owner = NULL, lease_until = NULL, updated_at = ? WHERE id = ? AND "
            "lease_owner = ?";
      break;
    case Kind::kAwaitingReceipt:
      sql = "UPDATE messages SET next_attempt_at = CASE WHEN state = 'pending' THEN ? ELSE "
            "NULL END, receipt = ?, provider_response_id = COALESCE(?, provider_response_id), "
            "error_id = NULL, error_text = NULL, attempts = attempts + 1, last_attempt_at = ?, "
            "lease_owner = NULL, lease_until = NULL, updated_at = ? WHERE id = ? AND "
            "lease_owner = ?";
      break;
    case Kind::kRetry:
      sql = "UPDATE messages SET next_attempt_at = CASE WHEN state = 'pending' THEN ? "
            "ELSE NULL END, error_id = ?, error_text = ?, receipt = NULL, "
            "attempts = attempts + 1, last_attempt_at = ?, lease_owner = NULL, "
            "lease_until = NULL, updated_at = ? WHERE id = ? AND lease_owner = ?";
      break;
    case Kind::kFailed:
      sql = "UPDATE messages SET state = CASE WHEN state IN ('cancelled', 'failed') "
            "THEN state ELSE 'failed' END, next_attempt_at = NULL, receipt = NULL, "
            "error_id = CASE WHEN state = 'failed' THEN error_id ELSE ? END, "
            "error_text = CASE WHEN state = 'failed' THEN error_text ELSE ? END, "
            "attempts = attempts + ?, last_attempt_at = COALESCE(?, last_attempt_at), "
            "lease_owner = NULL, lease_until = NULL, updated_at = ? "
            "WHERE id = ? AND lease_owner = ?";
      break;
  }
  Stmt s = db.Prepare(sql);
  int i = 1;
  switch (o.kind) {
    case Kind::kDelivered:
      s.Bind(i++, o.provider_response_id);
      break;
    case Kind::kAwaitingReceipt:
      s.Bind(i++, static_cast<std::int64_t>(o.retry_at));
      s.Bind(i++, o.receipt);
      s.Bind(i++, o.provider_response_id);
      break;
    case Kind::kRetry:
      s.Bind(i++, static_cast<std::int64_t>(o.retry_at));
      s.Bind(i++, o.error_id);
      s.Bind(i++, o.error_text);
      break;
    case Kind::kFailed:
      s.Bind(i++, o.error_id);
      s.Bind(i++, o.error_text);
      break;
  }
  if (o.kind == Kind::kFailed) {
    s.Bind(i++, o.attempted ? 1 : 0);
    s.Bind(i++, o.attempted ? std::optional<std::int64_t>(o.at) : std::nullopt);
  } else {
    s.Bind(i++, static_cast<std::int64_t>(o.at));
  }
  s.Bind(i++, static_cast<std::int64_t>(now));
  s.Bind(i++, o.message_id);
  s.Bind(i++, owner);
  return s.Exec();
}

// The device token after one outcome: its last-active time, or its last failure and, when the
// provider says it is dead, its retirement (once: only an active token changes status).
// `*retired` tells whether this outcome retired it.
Status RecordTokenOutcome(Db& db, const MessageOutcome& o, bool* retired) {
  *retired = false;
  if (o.kind == MessageOutcome::Kind::kDelivered) {
    // Last-active has second precision: a token that keeps receiving is not rewritten on every
    // delivery.
    Stmt t = db.Prepare(
        "UPDATE device_tokens SET last_active_at = ?1, last_failure_reason = NULL "
        "WHERE channel_pk = ?2 AND identity = ?3 AND (last_active_at IS NULL OR "
        "last_active_at < ?1 - 1000 OR last_failure_reason IS NOT NULL)");
    t.Bind(1, static_cast<std::int64_t>(o.at)).Bind(2, *o.channel_pk).Bind(3, o.token_identity);
    return t.Exec();
  }
  Stmt t = db.Prepare(
      "UPDATE device_tokens SET last_failure_reason = ? WHERE channel_pk = ? AND identity = ?");
  t.Bind(1, o.error_id).Bind(2, *o.channel_pk).Bind(3, o.token_identity);
  RETURN_IF_ERROR(t.Exec());
  if (!o.retire_token) return Status::Ok();
  // A token registered again after the provider's "invalid since" stays.
  Stmt r = db.Prepare(
      "UPDATE device_tokens SET status = ?1, status_changed_at = ?2 WHERE channel_pk = ?3 AND "
      "identity = ?4 AND status = 'active' AND (?5 IS NULL OR "
      "COALESCE(registered_at, created_at) < ?5)");
  r.Bind(1, TokenStatusName(*o.retire_token)).Bind(2, static_cast<std::int64_t>(o.at));
  r.Bind(3, *o.channel_pk).Bind(4, o.token_identity);
  r.Bind(5, o.token_invalid_since ? std::optional<std::int64_t>(*o.token_invalid_since)
                                  : std::nullopt);
  RETURN_IF_ERROR(r.Exec());
  *retired = db.Changes() > 0;
  return Status::Ok();
}

// The events one recorded outcome causes (only asked for when an endpoint exists): the message
// read back as the outcome left it.
Status RecordOutcomeEvents(EventRecorder& events, Db& db, const MessageOutcome& o, bool retired) {
  using Kind = MessageOutcome::Kind;
  std::string_view type;
  switch (o.kind) {
    case Kind::kDelivered:
      type = o.confirmed ? kEventMessageDelivered : kEventMessageSent;
      break;
    case Kind::kAwaitingReceipt:
      if (o.accepted) type = kEventMessageSent;  // not when a receipt is asked for again
      break;
    case Kind::kFailed:
      type = kEventMessageFailed;
      break;
    case Kind::kRetry:
      break;
  }
  if (type.empty() && !retired) return Status::Ok();
  std::optional<Message> message = LoadMessage(db, o.message_id);
  if (!message) return Status::Ok();
  // A failure recorded for a message cancelled meanwhile is no news.
  if (type == kEventMessageFailed && message->state != DeliveryState::kFailed) type = {};
  if (!type.empty()) {
    DeliveryEvent e;
    e.type = type;
    e.environment_id = message->environment_id;
    e.at = o.at;
    e.token_invalid = o.token_invalid;
    e.message = *message;
    RETURN_IF_ERROR(events.Record(std::move(e), o.message_id));
  }
  if (retired) {
    DeliveryEvent e;
    e.type = kEventDeviceRemoved;
    e.environment_id = message->environment_id;
    e.at = o.at;
    e.subscriber_id = message->subscriber_id;
    e.integration_id = message->integration_id;
    e.provider_id = message->provider_id;
    e.device_token = message->device_token;
    e.token_status = *o.retire_token;
    e.reason = o.error_id;
    e.message = std::move(*message);
    RETURN_IF_ERROR(events.Record(std::move(e), o.message_id));
  }
  return Status::Ok();
}

}  // namespace


Status FailUnsent(Db& db, std::string_view where, const std::vector<std::string>& params,
                  std::string_view reason, std::string_view text) {
  // Every message not sent yet has a next_attempt_at (its due time or its lease end): the
  // partial index messages_due holds exactly those, so only they are visited (the planner
  // would otherwise walk every message of the environment).
  Stmt s = db.Prepare(
      "UPDATE messages INDEXED BY messages_due SET state = 'failed', next_attempt_at = NULL, "
      "error_id = ?, error_text = ?, updated_at = ? WHERE next_attempt_at IS NOT NULL AND "
      "state = 'pending' AND " +
      std::string(where));
  s.Bind(1, reason).Bind(2, text).Bind(3, static_cast<std::int64_t>(NowMs()));
  for (std::size_t i = 0; i < params.size(); ++i) s.Bind(static_cast<int>(i) + 4, params[i]);
  return s.Exec();
}

Result<std::vector<Message>> SqliteStore::ClaimDueMessages(std::string_view owner, EpochMs now,
                                                           EpochMs lease_until, std::size_t limit) {
  // A leased message's next_attempt_at is the end of its lease, so the due range of the index
  // holds only what can be claimed. Most passes find nothing: ask a reader first.
  Result<bool> any = AnyRow(
      "SELECT 1 FROM messages WHERE next_attempt_at IS NOT NULL AND next_attempt_at <= ? LIMIT 1",
      now);
  if (!any.ok()) return any.take_status();
  if (!*any) return std::vector<Message>{};
  return WriteBackground<std::vector<Message>>([&](Db& db) -> Result<std::vector<Message>> {
    Stmt s = db.Prepare("SELECT " + std::string(kMessageColumns) + std::string(kMessageFrom) +
                        " WHERE m.next_attempt_at IS NOT NULL AND m.next_attempt_at <= ? AND "
                        "(m.lease_until IS NULL OR m.lease_until < ?) "
                        "ORDER BY m.next_attempt_at LIMIT ?");
    s.Bind(1, static_cast<std::int64_t>(now)).Bind(2, static_cast<std::int64_t>(now));
    s.Bind(3, static_cast<std::int64_t>(limit));
    std::vector<Message> out;
    while (s.Step()) out.push_back(ReadMessageRow(s));
    RETURN_IF_ERROR(s.status());
    for (const Message& m : out) {
      Stmt lease = db.Prepare(
          "UPDATE messages SET lease_owner = ?, lease_until = ?2, next_attempt_at = ?2 "
          "WHERE id = ?3");
      lease.Bind(1, owner).Bind(2, static_cast<std::int64_t>(lease_until)).Bind(3, m.id);
      RETURN_IF_ERROR(lease.Exec());
    }
    return out;
  });
}

void SqliteStore::CompleteMessages(std::string owner_id, std::vector<MessageOutcome> outcome_list,
                                   std::function<void(Status)> done) {
  auto work = [this, owner = std::move(owner_id),
               outcomes = std::move(outcome_list)](Db& db) -> Status {
    EpochMs now = NowMs();
    EventRecorder events(db, render_event_);
    for (const MessageOutcome& o : outcomes) {
      using Kind = MessageOutcome::Kind;
      RETURN_IF_ERROR(RecordOutcome(db, o, owner, now));
      if (db.Changes() == 0) continue;  // lease lost: someone else owns the outcome
      bool retired = false;
      const bool token_news = o.channel_pk && o.kind != Kind::kAwaitingReceipt &&
                              (o.kind != Kind::kDelivered || o.touch_token);
      if (token_news) {
        if (o.kind != Kind::kDelivered) {
          // A failure can retire the token, which planning then skips. (A delivery's last-active
          // time is not what planning reads.)
          subscribers_.Clear();
        }
        RETURN_IF_ERROR(RecordTokenOutcome(db, o, &retired));
      }
      ASSIGN_OR_RETURN(bool wanted, events.Wanted());
      if (wanted) RETURN_IF_ERROR(RecordOutcomeEvents(events, db, o, retired));
    }
    return Status::Ok();
  };
  // Replayable: an outcome lost with a power failure leaves its message leased, so it is sent
  // again after the restart (at least once).
  writer_.Submit(std::move(work), std::move(done), Durability::kCommitted, Priority::kBackground);
}

Status SqliteStore::ReleaseAllLeases() {
  return WriteStatus([](Db& db) {
    // Due at once (a leased message was due when it was leased).
    return db.ExecScript(
        "UPDATE messages SET lease_owner = NULL, lease_until = NULL, next_attempt_at = CASE "
        "WHEN next_attempt_at IS NULL THEN NULL ELSE MIN(next_attempt_at, created_at) END "
        "WHERE lease_owner IS NOT NULL; "
        "UPDATE webhook_deliveries SET lease_owner = NULL, lease_until = NULL, "
        "next_attempt_at = updated_at WHERE lease_owner IS NOT NULL");
  });
}

Result<std::optional<EpochMs>> SqliteStore::NextDueAt() {
  return Read([](Db& db) -> Result<std::optional<EpochMs>> {
    Stmt s =
        db.Prepare("SELECT MIN(next_attempt_at) FROM messages WHERE next_attempt_at IS NOT NULL");
    if (!s.Step())
      return s.status().ok() ? Result<std::optional<EpochMs>>(std::nullopt) : s.status();
    return s.OptInt(0);
  });
}

Result<std::size_t> SqliteStore::RunFanoutBatch(std::size_t batch, const MessagePlanner& planner) {
  // Most passes find nothing to do: answer those from a reader, without a write transaction.
  Result<bool> any = AnyRow("SELECT 1 FROM fanouts LIMIT 1");
  if (!any.ok()) return any.take_status();
  if (!*any) return std::size_t{0};
  return WriteBackground<std::size_t>([&](Db& db) -> Result<std::size_t> {
    Stmt pick = db.Prepare(
        "SELECT id, environment_id, transaction_id, request, cursor FROM fanouts "
        "ORDER BY created_at, id LIMIT 1");
    if (!pick.Step()) {
      RETURN_IF_ERROR(pick.status());
      return std::size_t{0};
    }
    std::string id = pick.Text(0), env = pick.Text(1), tx = pick.Text(2);
    Json request = ParseColumn(pick.Text(3));
    std::string cursor = pick.Text(4);
    while (pick.Step()) {
    }
    std::set<std::string> exclude;
    for (const Json& e : request.value("exclude", Json::array())) {
      if (e.is_string()) exclude.insert(e.get<std::string>());
    }
    const std::string payload_text = request.value("payload_text", "");
    Result<Workflow> workflow = LoadWorkflow(db, env, request.value("workflow", ""));
    std::vector<std::pair<std::string, std::string>> members;  // (pk, subscriber_id)
    if (workflow.ok()) {
      const Json& topics = request.value("topics", Json::array());
      // The batch is a range of the id index from the cursor on: `+environment_id` keeps SQLite
      // from walking the (environment_id, subscriber_id) index instead, which read every
      // subscriber of the environment and sorted them for each batch (a fan-out then cost
      // O(subscribers^2 / batch)).
      std::string sql;
      if (topics.empty()) {
        sql =
            "SELECT id, subscriber_id FROM subscribers WHERE +environment_id = ? AND id > ? "
            "ORDER BY id LIMIT ?";
      } else {
        std::string marks;
        for (std::size_t i = 0; i < topics.size(); ++i) marks += i ? ", ?" : "?";
        sql =
            "SELECT s.id, s.subscriber_id FROM subscribers s WHERE +s.environment_id = ? AND "
            "s.id > ? AND EXISTS (SELECT 1 FROM topic_subscriptions ts JOIN topics t ON "
            "t.id = ts.topic_id WHERE ts.subscriber_pk = s.id AND t.topic_key IN (" +
            marks + ")) ORDER BY s.id LIMIT ?";
      }
      Stmt s = db.Prepare(sql);
      int i = 1;
      s.Bind(i++, env);
      s.Bind(i++, cursor);
      for (const Json& key : topics) s.Bind(i++, key.get<std::string>());
      s.Bind(i, static_cast<std::int64_t>(batch));
      while (s.Step()) members.emplace_back(s.Text(0), s.Text(1));
      RETURN_IF_ERROR(s.status());
      Json topic_refs = Json::array();  // what the notifications record: [{_topicId, topicKey}]
      if (!topics.empty() && !members.empty()) {
        Stmt t = db.Prepare("SELECT id, topic_key FROM topics WHERE environment_id = ? AND " +
                            std::string("topic_key IN (SELECT value FROM json_each(?)) ") +
                            "ORDER BY topic_key");
        t.Bind(1, env).Bind(2, DumpJson(topics));
        while (t.Step()) topic_refs.push_back({{"_topicId", t.Text(0)}, {"topicKey", t.Text(1)}});
        RETURN_IF_ERROR(t.status());
      }
      EpochMs now = NowMs();
      for (const auto& [pk, subscriber_id] : members) {
        if (exclude.count(subscriber_id)) continue;
        ASSIGN_OR_RETURN(Subscriber sub, LoadSubscriber(db, env, subscriber_id));
        ASSIGN_OR_RETURN(
            std::size_t written,
            WriteNotification(db, *workflow, ForPlanning(std::move(sub)), tx, request["payload"],
                              payload_text, request["overrides"], planner, now, {}, nullptr,
                              topic_refs.empty() ? nullptr : &topic_refs));
        (void)written;
      }
    }
    if (!workflow.ok() || members.size() < batch) {
      Stmt del = db.Prepare("DELETE FROM fanouts WHERE id = ?");
      del.Bind(1, id);
      RETURN_IF_ERROR(del.Exec());
    } else {
      Stmt upd = db.Prepare("UPDATE fanouts SET cursor = ? WHERE id = ?");
      upd.Bind(1, members.back().first).Bind(2, id);
      RETURN_IF_ERROR(upd.Exec());
    }
    Stmt count = db.Prepare("SELECT COUNT(*) FROM fanouts");
    std::size_t remaining = count.Step() ? static_cast<std::size_t>(count.Int(0)) : 0;
    while (count.Step()) {
    }
    return remaining;
  });
}

}  // namespace herald::store::sqlite
