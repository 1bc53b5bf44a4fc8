// Event webhooks inside the store: events recorded in the transaction that causes them, the
// application's endpoints, and the outbox the sender leases deliveries from.
#include <string>
#include <utility>

#include "core/ids.h"
#include "store/sqlite/internal.h"
#include "store/sqlite/rows.h"
#include "store/sqlite/sqlite_store.h"

namespace herald::store::sqlite {
namespace {

constexpr std::string_view kEndpointColumns =
    "id, environment_id, url, event_types, secret_sealed, created_at";

Result<WebhookEndpoint> ReadEndpointRow(const Stmt& s, const crypto::KeyRing& keys) {
  WebhookEndpoint e;
  e.id = s.Text(0);
  e.environment_id = s.Text(1);
  e.url = s.Text(2);
  for (const Json& type : ParseColumn(s.Text(3))) {
    if (type.is_string()) e.event_types.push_back(type.get<std::string>());
  }
  Result<std::string> secret = keys.Open(s.Text(4), e.id);
  if (!secret.ok()) return Status::Internal("cannot open the secret of webhook endpoint " + e.id);
  e.secret = std::move(*secret);
  e.created_at = s.Int(5);
  return e;
}

Status StatusOf(Result<bool> result) { return result.ok() ? Status::Ok() : result.take_status(); }

bool Wants(const Json& event_types, std::string_view type) {
  if (!event_types.is_array() || event_types.empty()) return true;
  for (const Json& t : event_types) {
    if (t.is_string() && t.get_ref<const std::string&>() == type) return true;
  }
  return false;
}

}  // namespace

std::optional<Message> LoadMessage(Db& db, std::string_view id) {
  Stmt s = db.Prepare("SELECT " + std::string(kMessageColumns) + std::string(kMessageFrom) +
                      " WHERE m.id = ?");
  s.Bind(1, id);
  if (!s.Step()) return std::nullopt;
  return ReadMessageRow(s);
}

Result<bool> EventRecorder::Wanted() {
  if (!wanted_) {
    Stmt s = db_.Prepare("SELECT 1 FROM webhook_endpoints LIMIT 1");
    bool any = s.Step();
    RETURN_IF_ERROR(s.status());
    wanted_ = any;
  }
  return *wanted_;
}

Status EventRecorder::Record(DeliveryEvent event, std::string_view order_key) {
  ASSIGN_OR_RETURN(bool wanted, Wanted());
  if (!wanted) return Status::Ok();
  std::vector<std::string> endpoints;
  {
    Stmt s = db_.Prepare("SELECT id, event_types FROM webhook_endpoints WHERE environment_id = ?");
    s.Bind(1, event.environment_id);
    while (s.Step()) {
      if (Wants(ParseColumn(s.Text(1)), event.type)) endpoints.push_back(s.Text(0));
    }
    RETURN_IF_ERROR(s.status());
  }
  if (endpoints.empty()) return Status::Ok();
  if (event.id.empty()) event.id = "evt_" + NewObjectId();
  std::string body = render_ ? render_(event)
                             : DumpJson(Json{{"id", event.id},
                                             {"type", event.type},
                                             {"timestamp", IsoTime(event.at)}});
  Stmt e = db_.Prepare(
      "INSERT INTO webhook_events (id, environment_id, type, body, created_at) "
      "VALUES (?, ?, ?, ?, ?)");
  e.Bind(1, event.id).Bind(2, event.environment_id).Bind(3, event.type).BindRef(4, body);
  e.Bind(5, static_cast<std::int64_t>(event.at));
  RETURN_IF_ERROR(e.Exec());
  for (const std::string& endpoint : endpoints) {
    Stmt d = db_.Prepare(
        "INSERT INTO webhook_deliveries (event_id, endpoint_id, order_key, state, "
        "next_attempt_at, updated_at) VALUES (?, ?, ?, 'pending', ?5, ?5)");
    d.Bind(1, event.id).Bind(2, endpoint).Bind(3, order_key);
    d.Bind(5, static_cast<std::int64_t>(event.at));
    RETURN_IF_ERROR(d.Exec());
  }
  return Status::Ok();
}

Result<WebhookEndpoint> SqliteStore::CreateWebhookEndpoint(const WebhookEndpoint& endpoint) {
  return Write<WebhookEndpoint>(
      [&](Db& db) -> Result<WebhookEndpoint> {
        Stmt s = db.Prepare("INSERT INTO webhook_endpoints (" + std::string(kEndpointColumns) +
                            ") VALUES (?, ?, ?, ?, ?, ?)");
        Json types = endpoint.event_types;
        s.Bind(1, endpoint.id).Bind(2, endpoint.environment_id).Bind(3, endpoint.url);
        s.Bind(4, DumpJson(types)).Bind(5, keys_.Seal(endpoint.secret, endpoint.id));
        s.Bind(6, static_cast<std::int64_t>(endpoint.created_at));
        RETURN_IF_ERROR(s.Exec());
        return endpoint;
      },
      Durability::kSynced, Priority::kForeground, Touches::kNothingCached);
}

Result<std::vector<WebhookEndpoint>> SqliteStore::ListWebhookEndpoints(std::string_view env) {
  return Read([&](Db& db) -> Result<std::vector<WebhookEndpoint>> {
    Stmt s = db.Prepare("SELECT " + std::string(kEndpointColumns) +
                        " FROM webhook_endpoints WHERE environment_id = ? ORDER BY created_at, id");
    s.Bind(1, env);
    std::vector<WebhookEndpoint> out;
    while (s.Step()) {
      ASSIGN_OR_RETURN(WebhookEndpoint e, ReadEndpointRow(s, keys_));
      out.push_back(std::move(e));
    }
    RETURN_IF_ERROR(s.status());
    return out;
  });
}

Status SqliteStore::DeleteWebhookEndpoint(std::string_view env, std::string_view id) {
  return StatusOf(Write<bool>(
             [&](Db& db) -> Result<bool> {
               Stmt s = db.Prepare(
                   "DELETE FROM webhook_endpoints WHERE environment_id = ? AND id = ?");
               s.Bind(1, env).Bind(2, id);
               RETURN_IF_ERROR(s.Exec());
               if (db.Changes() == 0) return Status::NotFound("webhook endpoint not found");
               Stmt d = db.Prepare("DELETE FROM webhook_deliveries WHERE endpoint_id = ?");
               d.Bind(1, id);
               RETURN_IF_ERROR(d.Exec());
               return true;
             },
             Durability::kSynced, Priority::kForeground, Touches::kNothingCached));
}

Result<std::vector<WebhookDelivery>> SqliteStore::ClaimWebhookDeliveries(std::string_view owner,
                                                                         EpochMs now,
                                                                         EpochMs lease_until,
                                                                         std::size_t limit) {
  Result<bool> any = AnyRow(
      "SELECT 1 FROM webhook_deliveries WHERE next_attempt_at IS NOT NULL AND "
      "next_attempt_at <= ? LIMIT 1",
      now);
  if (!any.ok()) return any.take_status();
  if (!*any) return std::vector<WebhookDelivery>{};
  return WriteBackground<std::vector<WebhookDelivery>>(
      [&](Db& db) -> Result<std::vector<WebhookDelivery>> {
        // A leased delivery's next_attempt_at is its lease end (as for messages), and it stays
        // pending, so it holds back the later ones of its message until its attempt is recorded.
        Stmt s = db.Prepare(
            "SELECT d.seq, d.endpoint_id, w.url, w.secret_sealed, d.event_id, e.type, e.body, "
            "d.attempts FROM webhook_deliveries d INDEXED BY webhook_deliveries_due "
            "JOIN webhook_endpoints w ON w.id = d.endpoint_id "
            "JOIN webhook_events e ON e.id = d.event_id "
            "WHERE d.next_attempt_at IS NOT NULL AND d.next_attempt_at <= ?1 AND "
            "NOT EXISTS (SELECT 1 FROM webhook_deliveries p WHERE p.endpoint_id = d.endpoint_id "
            "AND p.order_key = d.order_key AND p.state = 'pending' AND p.seq < d.seq) "
            "ORDER BY d.next_attempt_at, d.seq LIMIT ?2");
        s.Bind(1, static_cast<std::int64_t>(now)).Bind(2, static_cast<std::int64_t>(limit));
        std::vector<WebhookDelivery> out;
        while (s.Step()) {
          WebhookDelivery d;
          d.seq = s.Int(0);
          d.endpoint_id = s.Text(1);
          d.url = s.Text(2);
          Result<std::string> secret = keys_.Open(s.Text(3), d.endpoint_id);
          if (!secret.ok()) {
            return Status::Internal("cannot open the secret of webhook endpoint " +
                                    d.endpoint_id);
          }
          d.secret = std::move(*secret);
          d.event_id = s.Text(4);
          d.event_type = s.Text(5);
          d.body = s.Text(6);
          d.attempts = static_cast<int>(s.Int(7));
          out.push_back(std::move(d));
        }
        RETURN_IF_ERROR(s.status());
        for (const WebhookDelivery& d : out) {
          Stmt lease = db.Prepare(
              "UPDATE webhook_deliveries SET lease_owner = ?, lease_until = ?2, "
              "next_attempt_at = ?2 WHERE seq = ?3");
          lease.Bind(1, owner).Bind(2, static_cast<std::int64_t>(lease_until)).Bind(3, d.seq);
          RETURN_IF_ERROR(lease.Exec());
        }
        return out;
      });
}

Status SqliteStore::RecordWebhookAttempts(std::string_view owner,
                                          const std::vector<WebhookAttempt>& attempts) {
  return StatusOf(WriteBackground<bool>([&](Db& db) -> Result<bool> {
           EpochMs now = NowMs();
           for (const WebhookAttempt& a : attempts) {
             if (a.delivered) {
               Stmt s = db.Prepare(
                   "DELETE FROM webhook_deliveries WHERE seq = ? AND lease_owner = ?");
               s.Bind(1, a.seq).Bind(2, owner);
               RETURN_IF_ERROR(s.Exec());
               continue;
             }
             Stmt s = db.Prepare(
                 "UPDATE webhook_deliveries SET attempts = attempts + 1, state = ?1, "
                 "next_attempt_at = ?2, last_status = ?3, last_error = ?4, lease_owner = NULL, "
                 "lease_until = NULL, updated_at = ?5 WHERE seq = ?6 AND lease_owner = ?7");
             const bool give_up = a.retry_at == 0;
             s.Bind(1, give_up ? "failed" : "pending");
             s.Bind(2, give_up ? std::nullopt : std::optional<std::int64_t>(a.retry_at));
             s.Bind(3, a.status ? std::optional<std::int64_t>(a.status) : std::nullopt);
             s.Bind(4, a.error).Bind(5, static_cast<std::int64_t>(now)).Bind(6, a.seq);
             s.Bind(7, owner);
             RETURN_IF_ERROR(s.Exec());
           }
           return true;
         }));
}

Result<std::optional<EpochMs>> SqliteStore::NextWebhookDueAt() {
  return Read([](Db& db) -> Result<std::optional<EpochMs>> {
    Stmt s = db.Prepare(
        "SELECT MIN(next_attempt_at) FROM webhook_deliveries WHERE next_attempt_at IS NOT NULL");
    if (!s.Step()) {
      return s.status().ok() ? Result<std::optional<EpochMs>>(std::nullopt) : s.status();
    }
    return s.OptInt(0);
  });
}

}  // namespace herald::store::sqlite
