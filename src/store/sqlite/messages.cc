// Messages, the activity feed (notifications with their messages) and idempotency keys.
#include <string>
#include <variant>

#include "core/log.h"
#include "store/sqlite/paging.h"
#include "store/sqlite/rows.h"
#include "store/sqlite/sqlite_store.h"

namespace herald::store::sqlite {

Result<std::vector<Message>> SqliteStore::ListMessages(const MessageQuery& q, long long* total) {
  return Read([&](Db& db) -> Result<std::vector<Message>> {
    std::string from = std::string(kMessageFrom) + " WHERE m.environment_id = ?";
    if (q.subscriber_id) from += " AND m.subscriber_id = ?";
    if (!q.transaction_ids.empty()) {
      from += " AND m.transaction_id IN (";
      for (std::size_t i = 0; i < q.transaction_ids.size(); ++i) from += i ? ", ?" : "?";
      from += ")";
    }
    auto bind = [&](Stmt& s) {
      int i = 1;
      s.Bind(i++, q.environment_id);
      if (q.subscriber_id) s.Bind(i++, *q.subscriber_id);
      for (const std::string& tx : q.transaction_ids) s.Bind(i++, tx);
      return i;
    };
    bool capped = false;
    *total = CountCapped(
        db, from, [&](Stmt& s) { bind(s); }, &capped);
    Stmt s = db.Prepare("SELECT " + std::string(kMessageColumns) + from +
                        " ORDER BY m.id DESC LIMIT ? OFFSET ?");  // ids are time-ordered
    int i = bind(s);
    s.Bind(i, q.limit).Bind(i + 1, static_cast<std::int64_t>(q.page) * q.limit);
    std::vector<Message> out;
    while (s.Step()) out.push_back(ReadMessageRow(s));
    RETURN_IF_ERROR(s.status());
    return out;
  });
}

Status SqliteStore::DeleteMessage(std::string_view env, std::string_view id) {
  return WriteStatus([&](Db& db) -> Status {
    Stmt s = db.Prepare("DELETE FROM messages WHERE environment_id = ? AND id = ?");
    s.Bind(1, env).Bind(2, id);
    RETURN_IF_ERROR(s.Exec());
    if (db.Changes() == 0)
      return Status::NotFound("Message with id " + std::string(id) + " not found");
    return Status::Ok();
  });
}

Result<std::vector<NotificationWithMessages>> SqliteStore::ListNotifications(
    const NotificationQuery& q, long long* total) {
  return Read([&](Db& db) -> Result<std::vector<NotificationWithMessages>> {
    // The filters as SQL, with their parameters in order.
    std::string from = " FROM notifications WHERE environment_id = ?";
    std::vector<std::variant<std::string, std::int64_t>> params{q.environment_id};
    auto in_list = [&](const std::vector<std::string>& values) {
      std::string sql = " IN (";
      for (std::size_t i = 0; i < values.size(); ++i) sql += i ? ", ?" : "?";
      params.insert(params.end(), values.begin(), values.end());
      return sql + ")";
    };
    if (!q.transaction_ids.empty()) from += " AND transaction_id" + in_list(q.transaction_ids);
    if (!q.workflow_pks.empty()) from += " AND workflow_pk" + in_list(q.workflow_pks);
    if (!q.severities.empty()) from += " AND coalesce(severity, 'none')" + in_list(q.severities);
    std::vector<std::string> who;  // the subscriber criteria: any of them
    if (!q.subscriber_ids.empty()) who.push_back("subscriber_id" + in_list(q.subscriber_ids));
    if (!q.emails.empty()) {
      params.push_back(q.environment_id);
      who.push_back(
          "subscriber_pk IN (SELECT id FROM subscribers WHERE environment_id = ? AND email" +
          in_list(q.emails) + ")");
    }
    if (q.search) {
      params.insert(params.end(), {q.environment_id, *q.search, *q.search});
      who.push_back(
          "subscriber_pk IN (SELECT id FROM subscribers WHERE environment_id = ? AND "
          "(instr(lower(coalesce(email, '')), lower(?)) > 0 OR subscriber_id = ?))");
    }
    for (std::size_t i = 0; i < who.size(); ++i) {
      from += (i ? " OR " : " AND (") + who[i] + (i + 1 == who.size() ? ")" : "");
    }
    if (q.topic_key) {
      params.push_back(*q.topic_key);
      from +=
          " AND EXISTS (SELECT 1 FROM json_each(notifications.topics) "
          "WHERE json_extract(value, '$.topicKey') = ?)";
    }
    if (q.subscription_id) {
      params.push_back(*q.subscription_id);
      from +=
          " AND EXISTS (SELECT 1 FROM topic_subscriptions ts, json_each(notifications.topics) t "
          "WHERE ts.id = ? AND ts.subscriber_pk = notifications.subscriber_pk AND "
          "json_extract(t.value, '$._topicId') = ts.topic_id)";
    }
    if (q.after) {
      from += " AND created_at >= ?";
      params.push_back(*q.after);
    }
    if (q.before) {
      from += " AND created_at <= ?";
      params.push_back(*q.before);
    }
    auto bind = [&](Stmt& s) {
      int i = 1;
      for (const auto& p : params) std::visit([&](const auto& v) { s.Bind(i++, v); }, p);
      return i;
    };
    bool capped = false;
    *total = CountCapped(
        db, from, [&](Stmt& s) { bind(s); }, &capped);
    Stmt s = db.Prepare("SELECT " + std::string(kNotificationColumns) + from +
                        " ORDER BY id DESC LIMIT ? OFFSET ?");  // ids are time-ordered
    int i = bind(s);
    s.Bind(i, q.limit).Bind(i + 1, static_cast<std::int64_t>(q.page) * q.limit);
    std::vector<NotificationWithMessages> out;
    while (s.Step()) out.push_back({ReadNotificationRow(s), {}});
    RETURN_IF_ERROR(s.status());
    for (NotificationWithMessages& n : out) {
      Stmt m = db.Prepare("SELECT " + std::string(kMessageColumns) + std::string(kMessageFrom) +
                          " WHERE m.environment_id = ? AND m.transaction_id = ? AND "
                          "m.notification_id = ? ORDER BY m.created_at, m.id");
      m.Bind(1, n.notification.environment_id).Bind(2, n.notification.transaction_id);
      m.Bind(3, n.notification.id);
      while (m.Step()) n.messages.push_back(ReadMessageRow(m));
      RETURN_IF_ERROR(m.status());
    }
    return out;
  });
}

// ---- idempotency keys ----

void SqliteStore::BeginIdempotent(std::string env, std::string key, std::string body_hash,
                                  EpochMs now, EpochMs in_progress_until,
                                  std::function<void(Result<IdempotencyRecord>)> done) {
  WriteAsync<IdempotencyRecord>(
      [env = std::move(env), key = std::move(key), body_hash = std::move(body_hash), now,
       in_progress_until](Db& db) -> Result<IdempotencyRecord> {
        Stmt s = db.Prepare(
            "SELECT body_hash, status, body, expires_at FROM idempotency_keys "
            "WHERE environment_id = ? AND idem_key = ?");
        s.Bind(1, env).Bind(2, key);
        if (s.Step() && s.Int(3) > now) {
          IdempotencyRecord record;
          if (s.Text(0) != body_hash) {
            record.state = IdempotencyState::kMismatch;
          } else if (s.IsNull(1)) {
            record.state = IdempotencyState::kInProgress;
          } else {
            record.state = IdempotencyState::kReplay;
            record.status = static_cast<int>(s.Int(1));
            record.body = s.Text(2);
          }
          return record;
        }
        RETURN_IF_ERROR(s.status());
        Stmt put = db.Prepare(
            "INSERT INTO idempotency_keys (environment_id, idem_key, body_hash, status, body, "
            "expires_at) VALUES (?, ?, ?, NULL, NULL, ?) ON CONFLICT (environment_id, idem_key) "
            "DO UPDATE SET body_hash = excluded.body_hash, status = NULL, body = NULL, "
            "expires_at = excluded.expires_at");
        put.Bind(1, env).Bind(2, key).Bind(3, body_hash);
        put.Bind(4, static_cast<std::int64_t>(in_progress_until));
        RETURN_IF_ERROR(put.Exec());
        return IdempotencyRecord{};
      },
      std::move(done), Touches::kNothingCached);
}

void SqliteStore::FinishIdempotent(std::string env, std::string key, int status, std::string body,
                                   EpochMs expires_at) {
  writer_.Submit(
      [env = std::move(env), key = std::move(key), status, body = std::move(body),
       expires_at](Db& db) -> Status {
        Stmt s = db.Prepare(
            "UPDATE idempotency_keys SET status = ?, body = ?, expires_at = ? "
            "WHERE environment_id = ? AND idem_key = ?");
        s.Bind(1, status).Bind(2, body).Bind(3, static_cast<std::int64_t>(expires_at));
        s.Bind(4, env).Bind(5, key);
        return s.Exec();
      },
      [](Status st) {
        if (!st.ok()) spdlog::warn("idempotency record not saved: {}", st.message());
      });
}

Status SqliteStore::PurgeExpired(EpochMs now) {
  return WriteStatus([now](Db& db) -> Status {
    Stmt s = db.Prepare("DELETE FROM idempotency_keys WHERE expires_at < ?");
    s.Bind(1, static_cast<std::int64_t>(now));
    RETURN_IF_ERROR(s.Exec());
    // Event webhooks given up on stay a month (for whoever looks into the database), then go
    // with the events no delivery needs any more.
    constexpr std::int64_t kKeepFailedMs = 30LL * 24 * 3600 * 1000;
    Stmt f = db.Prepare("DELETE FROM webhook_deliveries WHERE state = 'failed' AND updated_at < ?");
    f.Bind(1, static_cast<std::int64_t>(now) - kKeepFailedMs);
    RETURN_IF_ERROR(f.Exec());
    return db.ExecScript(
        "DELETE FROM webhook_events WHERE NOT EXISTS (SELECT 1 FROM webhook_deliveries d "
        "WHERE d.event_id = webhook_events.id)");
  });
}

}  // namespace herald::store::sqlite
