#include "store/sqlite/migrations.h"

#include <string>

#include "core/log.h"
#include "core/time.h"

namespace herald::store::sqlite {
namespace {

// Portable SQL where possible (PostgreSQL gets its own copy later): TEXT ids, INTEGER epoch
// milliseconds, INTEGER 0/1 booleans, JSON documents as TEXT.
constexpr Migration kMigrations[] = {
    {1, "init", R"sql(
CREATE TABLE environments (
  id              TEXT PRIMARY KEY,
  name            TEXT NOT NULL UNIQUE,
  organization_id TEXT NOT NULL,
  api_key_hash    TEXT NOT NULL UNIQUE,
  api_key_sealed  TEXT NOT NULL,
  created_at      INTEGER NOT NULL
);

CREATE TABLE integrations (
  id                 TEXT PRIMARY KEY,
  environment_id     TEXT NOT NULL REFERENCES environments(id),
  identifier         TEXT NOT NULL,
  name               TEXT NOT NULL,
  provider_id        TEXT NOT NULL,
  channel            TEXT NOT NULL,
  credentials_sealed TEXT NOT NULL,
  active             INTEGER NOT NULL,
  conditions         TEXT NOT NULL,
  configurations     TEXT NOT NULL,
  created_at         INTEGER NOT NULL,
  updated_at         INTEGER NOT NULL,
  UNIQUE (environment_id, identifier)
);
CREATE INDEX integrations_by_provider ON integrations(environment_id, provider_id, active, created_at);

CREATE TABLE subscribers (
  id             TEXT PRIMARY KEY,
  environment_id TEXT NOT NULL REFERENCES environments(id),
  subscriber_id  TEXT NOT NULL,
  first_name     TEXT,
  last_name      TEXT,
  email          TEXT,
  phone          TEXT,
  avatar         TEXT,
  locale         TEXT,
  timezone       TEXT,
  data           TEXT,
  created_at     INTEGER NOT NULL,
  updated_at     INTEGER NOT NULL,
  UNIQUE (environment_id, subscriber_id)
);
CREATE INDEX subscribers_by_created ON subscribers(environment_id, created_at, id);

CREATE TABLE subscriber_channels (
  id             TEXT PRIMARY KEY,
  subscriber_pk  TEXT NOT NULL REFERENCES subscribers(id) ON DELETE CASCADE,
  integration_id TEXT NOT NULL REFERENCES integrations(id) ON DELETE CASCADE,
  provider_id    TEXT NOT NULL,
  webhook_url    TEXT,
  chat_channel   TEXT,
  created_at     INTEGER NOT NULL,
  updated_at     INTEGER NOT NULL,
  UNIQUE (subscriber_pk, integration_id)
);
CREATE INDEX subscriber_channels_by_integration ON subscriber_channels(integration_id);

CREATE TABLE device_tokens (
  channel_pk          TEXT NOT NULL REFERENCES subscriber_channels(id) ON DELETE CASCADE,
  position            INTEGER NOT NULL,
  token               TEXT NOT NULL,
  identity            TEXT NOT NULL,
  status              TEXT NOT NULL,
  created_at          INTEGER NOT NULL,
  last_active_at      INTEGER,
  last_failure_reason TEXT,
  PRIMARY KEY (channel_pk, identity)
);

CREATE TABLE topics (
  id             TEXT PRIMARY KEY,
  environment_id TEXT NOT NULL REFERENCES environments(id),
  topic_key      TEXT NOT NULL,
  name           TEXT,
  data           TEXT,
  created_at     INTEGER NOT NULL,
  updated_at     INTEGER NOT NULL,
  UNIQUE (environment_id, topic_key)
);

CREATE TABLE topic_subscriptions (
  id            TEXT PRIMARY KEY,
  topic_id      TEXT NOT NULL REFERENCES topics(id) ON DELETE CASCADE,
  subscriber_pk TEXT NOT NULL REFERENCES subscribers(id) ON DELETE CASCADE,
  identifier    TEXT NOT NULL,
  created_at    INTEGER NOT NULL,
  updated_at    INTEGER NOT NULL,
  UNIQUE (topic_id, subscriber_pk)
);
CREATE INDEX topic_subscriptions_by_subscriber ON topic_subscriptions(subscriber_pk);

CREATE TABLE workflows (
  id             TEXT PRIMARY KEY,
  environment_id TEXT NOT NULL REFERENCES environments(id),
  workflow_id    TEXT NOT NULL,
  name           TEXT NOT NULL,
  description    TEXT NOT NULL,
  tags           TEXT NOT NULL,
  active         INTEGER NOT NULL,
  severity       TEXT NOT NULL,
  payload_schema TEXT,
  preferences    TEXT,
  steps          TEXT NOT NULL,
  created_at     INTEGER NOT NULL,
  updated_at     INTEGER NOT NULL,
  UNIQUE (environment_id, workflow_id)
);
)sql"},
    {2, "delivery", R"sql(
CREATE TABLE transactions (
  environment_id TEXT NOT NULL,
  transaction_id TEXT NOT NULL,
  workflow_id    TEXT NOT NULL,
  created_at     INTEGER NOT NULL,
  PRIMARY KEY (environment_id, transaction_id)
);

CREATE TABLE notifications (
  id             TEXT PRIMARY KEY,
  environment_id TEXT NOT NULL,
  transaction_id TEXT NOT NULL,
  workflow_pk    TEXT NOT NULL,
  workflow_id    TEXT NOT NULL,
  workflow_name  TEXT NOT NULL,
  subscriber_pk  TEXT NOT NULL,
  subscriber_id  TEXT NOT NULL,
  payload        TEXT NOT NULL,
  created_at     INTEGER NOT NULL
);
CREATE INDEX notifications_by_tx ON notifications(environment_id, transaction_id);
CREATE INDEX notifications_by_created ON notifications(environment_id, created_at, id);

CREATE TABLE messages (
  id                   TEXT PRIMARY KEY,
  environment_id       TEXT NOT NULL,
  notification_id      TEXT NOT NULL,
  transaction_id       TEXT NOT NULL,
  subscriber_pk        TEXT NOT NULL,
  subscriber_id        TEXT NOT NULL,
  workflow_pk          TEXT NOT NULL,
  workflow_id          TEXT NOT NULL,
  step_pk              TEXT NOT NULL,
  step_id              TEXT NOT NULL,
  integration_id       TEXT NOT NULL,
  provider_id          TEXT NOT NULL,
  channel_pk           TEXT,
  device_token         TEXT NOT NULL,
  token_identity       TEXT NOT NULL,
  state                TEXT NOT NULL,
  attempts             INTEGER NOT NULL,
  next_attempt_at      INTEGER,
  lease_owner          TEXT,
  lease_until          INTEGER,
  last_attempt_at      INTEGER,
  error_id             TEXT,
  error_text           TEXT,
  provider_response_id TEXT,
  created_at           INTEGER NOT NULL,
  updated_at           INTEGER NOT NULL
);
-- What a message says, written once. Kept apart from `messages` so that leasing and recording
-- outcomes rewrite only the small queue row, never the rendered payload.
CREATE TABLE message_bodies (
  message_id TEXT PRIMARY KEY REFERENCES messages(id) ON DELETE CASCADE,
  title      TEXT NOT NULL,
  content    TEXT NOT NULL,
  payload    TEXT NOT NULL,
  overrides  TEXT NOT NULL
);
CREATE INDEX messages_due ON messages(next_attempt_at) WHERE next_attempt_at IS NOT NULL;
CREATE INDEX messages_by_tx ON messages(environment_id, transaction_id);
CREATE INDEX messages_by_notification ON messages(notification_id);
CREATE INDEX messages_by_created ON messages(environment_id, created_at, id);

CREATE TABLE fanouts (
  id             TEXT PRIMARY KEY,
  environment_id TEXT NOT NULL,
  transaction_id TEXT NOT NULL,
  topic_key      TEXT,
  request        TEXT NOT NULL,
  cursor         TEXT NOT NULL,
  created_at     INTEGER NOT NULL
);
CREATE INDEX fanouts_by_tx ON fanouts(environment_id, transaction_id);

CREATE TABLE idempotency_keys (
  environment_id  TEXT NOT NULL,
  idem_key        TEXT NOT NULL,
  body_hash       TEXT NOT NULL,
  status          INTEGER,
  body            TEXT,
  expires_at      INTEGER NOT NULL,
  PRIMARY KEY (environment_id, idem_key)
);
)sql"},
    {3, "trigger_inbox", R"sql(
-- Accepted triggers, as accepted: a trigger is acknowledged once its row is durable, and the
-- dispatcher turns rows into notifications and messages in large batches (then deletes them).
CREATE TABLE trigger_inbox (
  seq            INTEGER PRIMARY KEY,
  environment_id TEXT NOT NULL,
  transaction_id TEXT NOT NULL,
  broadcast      INTEGER NOT NULL,
  event          TEXT NOT NULL,
  created_at     INTEGER NOT NULL
);
)sql"},
    {4, "lean_indexes", R"sql(
-- Lists are ordered by id (ObjectIds are time-ordered), so these cost every insert for nothing.
DROP INDEX IF EXISTS messages_by_created;
DROP INDEX IF EXISTS notifications_by_created;
)sql"},
    {5, "messages_one_lookup_index", R"sql(
-- A notification's messages are found under its transaction: one index serves both lookups, and
-- every message insert updates one index fewer.
CREATE INDEX messages_by_tx_notification ON messages(environment_id, transaction_id, notification_id);
DROP INDEX IF EXISTS messages_by_tx;
DROP INDEX IF EXISTS messages_by_notification;
)sql"},
    {6, "notification_severity_topics", R"sql(
-- What the activity feed filters on: the notification's severity (NULL = "none") and, for one
-- made by a topic fan-out, the trigger's topics as a JSON array of {_topicId, topicKey}.
ALTER TABLE notifications ADD COLUMN severity TEXT;
ALTER TABLE notifications ADD COLUMN topics TEXT;
)sql"},
    {7, "dead_tokens_and_receipts", R"sql(
-- A dead token keeps its record: when it left `active` (status_changed_at) and when it was last
-- registered (registered_at, NULL = created_at: a provider's "invalid since" older than that does
-- not retire it). A message a provider accepted and confirms later waits with its receipt.
ALTER TABLE device_tokens ADD COLUMN registered_at INTEGER;
ALTER TABLE device_tokens ADD COLUMN status_changed_at INTEGER;
ALTER TABLE messages ADD COLUMN receipt TEXT;
)sql"},
    {8, "event_webhooks_and_devices", R"sql(
-- Event webhooks: the application's endpoints (secret sealed), each event rendered once, and
-- an outbox row per (event, endpoint) that the sender leases, retries and finally deletes
-- (delivered) or keeps as failed for a while. A row waits while an earlier pending row of the
-- same endpoint and order key (the message) exists.
CREATE TABLE webhook_endpoints (
  id             TEXT PRIMARY KEY,
  environment_id TEXT NOT NULL,
  url            TEXT NOT NULL,
  event_types    TEXT NOT NULL,
  secret_sealed  TEXT NOT NULL,
  created_at     INTEGER NOT NULL
);
CREATE INDEX webhook_endpoints_by_env ON webhook_endpoints(environment_id, created_at);
CREATE TABLE webhook_events (
  id             TEXT PRIMARY KEY,
  environment_id TEXT NOT NULL,
  type           TEXT NOT NULL,
  body           TEXT NOT NULL,
  created_at     INTEGER NOT NULL
);
CREATE TABLE webhook_deliveries (
  seq             INTEGER PRIMARY KEY AUTOINCREMENT,
  event_id        TEXT NOT NULL,
  endpoint_id     TEXT NOT NULL,
  order_key       TEXT NOT NULL,
  state           TEXT NOT NULL,
  attempts        INTEGER NOT NULL DEFAULT 0,
  next_attempt_at INTEGER,
  lease_owner     TEXT,
  lease_until     INTEGER,
  last_status     INTEGER,
  last_error      TEXT,
  updated_at      INTEGER NOT NULL
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries(next_attempt_at)
  WHERE next_attempt_at IS NOT NULL;
CREATE INDEX webhook_deliveries_in_order ON webhook_deliveries(endpoint_id, order_key, seq)
  WHERE state = 'pending';
CREATE INDEX webhook_deliveries_by_event ON webhook_deliveries(event_id);
-- The environment's devices, newest first.
CREATE INDEX device_tokens_by_created ON device_tokens(created_at);
)sql"},
};

}  // namespace

std::span<const Migration> Migrations() { return kMigrations; }

Status Migrate(Db& db) {
  RETURN_IF_ERROR(
      db.ExecScript("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
                    "name TEXT NOT NULL, applied_at INTEGER NOT NULL)"));
  int current = 0;
  {
    Stmt s = db.Prepare("SELECT COALESCE(MAX(version), 0) FROM schema_migrations");
    if (s.Step()) current = static_cast<int>(s.Int(0));
  }
  for (const Migration& m : Migrations()) {
    if (m.version <= current) continue;
    RETURN_IF_ERROR(db.ExecScript("BEGIN IMMEDIATE"));
    Status st = db.ExecScript(m.sql);
    if (st.ok()) {
      Stmt s =
          db.Prepare("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)");
      s.Bind(1, m.version).Bind(2, m.name).Bind(3, static_cast<std::int64_t>(NowMs()));
      st = s.Exec();
    }
    if (!st.ok()) {
      // The migration's own error is the one to report (ExecScript logs a failed rollback).
      (void)db.ExecScript("ROLLBACK");
      return Status::Internal("migration " + std::to_string(m.version) +
                              " failed: " + st.message());
    }
    RETURN_IF_ERROR(db.ExecScript("COMMIT"));
    spdlog::info("schema migrated version={} name={}", m.version, m.name);
  }
  return Status::Ok();
}

}  // namespace herald::store::sqlite
