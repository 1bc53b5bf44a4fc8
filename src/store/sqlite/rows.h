// Row readers: the column lists the store selects, the functions that turn a statement row into
// a model struct, and the helpers for JSON columns. Used only inside store/sqlite/.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/json.h"
#include "core/status.h"
#include "crypto/crypto.h"
#include "store/model.h"
#include "store/sqlite/db.h"

namespace herald::store::sqlite {

// ---- JSON columns ------------------------------------------------------------------------------

// A JSON document as a nullable TEXT column (SQL NULL for nullopt).
std::optional<std::string> JsonColumn(const std::optional<Json>& value);
// A TEXT column's JSON document; null if the text does not parse.
Json ParseColumn(const std::string& text);
std::optional<Json> ParseOptColumn(const std::optional<std::string>& text);

// ---- subscribers and their device tokens -------------------------------------------------------

inline constexpr std::string_view kSubscriberColumns =
    "id, environment_id, subscriber_id, first_name, last_name, email, phone, avatar, locale, "
    "timezone, data, created_at, updated_at";

// The eight profile columns (first_name ... data) from column `first` on.
SubscriberProfile ReadProfile(const Stmt& s, int first);
// A row of kSubscriberColumns: the subscriber without its channels and topics.
Subscriber ReadSubscriberRow(const Stmt& s);

inline constexpr std::string_view kTokenColumns =
    "token, identity, status, created_at, last_active_at, last_failure_reason, registered_at, "
    "status_changed_at";

// The kTokenColumns from column `first` on.
DeviceToken ReadTokenRow(const Stmt& s, int first);

// ---- integrations ------------------------------------------------------------------------------

inline constexpr std::string_view kIntegrationColumns =
    "id, environment_id, identifier, name, provider_id, channel, credentials_sealed, active, "
    "conditions, configurations, created_at, updated_at";

// A row of kIntegrationColumns, its credentials opened with `keys`; Internal if they cannot be.
Result<Integration> ReadIntegrationRow(const Stmt& s, const crypto::KeyRing& keys);

// ---- topics ------------------------------------------------------------------------------------

inline constexpr std::string_view kTopicColumns =
    "id, environment_id, topic_key, name, data, created_at, updated_at";

// The kTopicColumns from column `first` on.
Topic ReadTopicRow(const Stmt& s, int first = 0);

// A topic's subscriptions with their subscribers; a WHERE clause follows.
inline constexpr std::string_view kSubscriptionSelect =
    "SELECT ts.id, ts.identifier, ts.created_at, ts.updated_at, s.id, s.subscriber_id, "
    "s.first_name, s.last_name, s.email, s.phone, s.avatar, s.locale, s.timezone, s.data "
    "FROM topic_subscriptions ts JOIN subscribers s ON s.id = ts.subscriber_pk ";

// A row of kSubscriptionSelect, a subscription of `topic`.
TopicSubscription ReadSubscriptionRow(const Stmt& s, const Topic& topic);

// ---- workflows ---------------------------------------------------------------------------------

inline constexpr std::string_view kWorkflowColumns =
    "id, environment_id, workflow_id, name, description, tags, active, severity, payload_schema, "
    "preferences, steps, created_at, updated_at";

// Workflow steps as stored in the `steps` column.
Json StepsToJson(const std::vector<WorkflowStep>& steps);
// A row of kWorkflowColumns.
Workflow ReadWorkflowRow(const Stmt& s);

// ---- notifications and messages ----------------------------------------------------------------

// Messages are always read joined with their bodies: "FROM messages m JOIN message_bodies b".
inline constexpr std::string_view kMessageColumns =
    "m.id, m.environment_id, m.notification_id, m.transaction_id, m.subscriber_pk, "
    "m.subscriber_id, m.workflow_pk, m.workflow_id, m.step_pk, m.step_id, m.integration_id, "
    "m.provider_id, m.channel_pk, m.device_token, m.token_identity, b.title, b.content, "
    "b.payload, b.overrides, m.state, m.attempts, m.next_attempt_at, m.last_attempt_at, "
    "m.error_id, m.error_text, m.provider_response_id, m.created_at, m.updated_at, m.receipt";
inline constexpr std::string_view kMessageFrom =
    " FROM messages m JOIN message_bodies b ON b.message_id = m.id";

// A row of kMessageColumns (from kMessageFrom).
Message ReadMessageRow(const Stmt& s);

inline constexpr std::string_view kNotificationColumns =
    "id, environment_id, transaction_id, workflow_pk, workflow_id, workflow_name, subscriber_pk, "
    "subscriber_id, payload, created_at, severity, topics";

// A row of kNotificationColumns.
Notification ReadNotificationRow(const Stmt& s);

}  // namespace herald::store::sqlite
