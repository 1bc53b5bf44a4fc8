// Plain records the store reads and writes. No behaviour beyond small helpers (model.cc); JSON
// mapping for the API lives in api/.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/json.h"
#include "core/time.h"

namespace herald::store {

struct Environment {
  std::string id;    // ObjectId-like
  std::string name;  // "development" | "production"
  std::string organization_id;
  std::string api_key_hash;    // hex SHA-256 of the secret API key
  std::string api_key_sealed;  // the key itself, AEAD-sealed, for `herald keys`
  EpochMs created_at = 0;
};

struct Integration {
  std::string id;
  std::string environment_id;
  std::string identifier;  // unique per environment
  std::string name;
  std::string provider_id;  // "fcm", "web-push", ...
  std::string channel = "push";
  Json credentials = Json::object();  // plaintext in memory; sealed at rest
  bool active = false;
  Json conditions = Json::array();
  Json configurations = Json::object();
  EpochMs created_at = 0;
  EpochMs updated_at = 0;
};

enum class TokenStatus { kActive, kExpired, kUnsubscribed };
const char* TokenStatusName(TokenStatus status);
std::optional<TokenStatus> ParseTokenStatus(std::string_view name);

struct DeviceToken {
  std::string token;     // canonical form (web-push: the PushSubscription JSON)
  std::string identity;  // de-duplication key (web-push: the endpoint)
  TokenStatus status = TokenStatus::kActive;
  EpochMs created_at = 0;
  std::optional<EpochMs> last_active_at;
  std::optional<std::string> last_failure_reason;  // the provider's typed reason
  std::optional<EpochMs> registered_at;      // last (re-)registration; unset: created_at
  std::optional<EpochMs> status_changed_at;  // when it last left or rejoined `active`
};

// One (subscriber, integration) push channel: Novu's `subscriber.channels[]` item.
struct SubscriberChannel {
  std::string id;
  std::string integration_id;
  std::string integration_identifier;
  bool integration_active = true;
  std::string provider_id;
  std::optional<std::string> webhook_url;
  std::optional<std::string> channel;  // chat channel name; kept for Novu parity
  std::vector<DeviceToken> tokens;     // in registration order
};

// Profile fields a client may set; nullopt = SQL NULL.
struct SubscriberProfile {
  std::optional<std::string> first_name, last_name, email, phone, avatar, locale, timezone;
  std::optional<Json> data;
};

struct Subscriber {
  std::string id;  // internal _id
  std::string environment_id;
  std::string subscriber_id;  // the application's id
  SubscriberProfile profile;
  std::vector<SubscriberChannel> channels;
  std::vector<std::string> topics;  // topic keys
  EpochMs created_at = 0;
  EpochMs updated_at = 0;
  // Nonzero for a snapshot the store keeps unchanged (its planning cache): two Subscribers with
  // the same nonzero snapshot hold the same data, so what was derived from one (a planner's
  // documents) holds for the other. Zero says nothing.
  std::uint64_t snapshot = 0;
};

// A partial update: only engaged members change. An engaged member holding nullopt clears it.
struct SubscriberPatch {
  std::optional<std::optional<std::string>> first_name, last_name, email, phone, avatar, locale,
      timezone;
  std::optional<std::optional<Json>> data;
  bool empty() const {
    return !first_name && !last_name && !email && !phone && !avatar && !locale && !timezone &&
           !data;
  }
};

struct Topic {
  std::string id;
  std::string environment_id;
  std::string key;
  std::optional<std::string> name;
  std::optional<Json> data;
  EpochMs created_at = 0;
  EpochMs updated_at = 0;
};

struct TopicSubscription {
  std::string id;
  std::string identifier;  // Novu: "<topicKey>:<subscriberId>" unless given
  Topic topic;
  std::string subscriber_pk;
  std::string subscriber_id;
  SubscriberProfile subscriber_profile;
  EpochMs created_at = 0;
  EpochMs updated_at = 0;
};

struct WorkflowStep {
  std::string id;       // _id
  std::string step_id;  // stable id used in overrides.steps.<stepId>
  std::string name;
  std::string type;  // "push" (others stored as given)
  Json control_values = Json::object();
};

struct Workflow {
  std::string id;  // _id
  std::string environment_id;
  std::string workflow_id;  // the trigger identifier
  std::string name;
  std::string description;
  std::vector<std::string> tags;
  bool active = false;
  std::string severity = "none";
  Json payload_schema;  // null if none
  Json preferences;     // null if none
  std::vector<WorkflowStep> steps;
  EpochMs created_at = 0;
  EpochMs updated_at = 0;
};

// ---- delivery --------------------------------------------------------------------------------

// One notification per (trigger, subscriber).
struct Notification {
  std::string id;
  std::string environment_id;
  std::string transaction_id;
  std::string workflow_pk;
  std::string workflow_id;
  std::string workflow_name;
  std::string subscriber_pk;
  std::string subscriber_id;
  Json payload = Json::object();
  std::string payload_text;       // TriggerRequest::payload_text (not stored)
  std::string severity = "none";  // "high" | "medium" | "low" | "none": overrides, else workflow
  Json topics = Json::array();    // made by a topic fan-out: the trigger's [{_topicId, topicKey}]
  EpochMs created_at = 0;
};

enum class DeliveryState { kPending, kDelivered, kFailed, kCancelled };
const char* DeliveryStateName(DeliveryState state);
std::optional<DeliveryState> ParseDeliveryState(std::string_view name);

// One message per (notification, step, device token): the unit of delivery and of retry.
struct Message {
  std::string id;
  std::string environment_id;
  std::string notification_id;
  std::string transaction_id;
  std::string subscriber_pk;
  std::string subscriber_id;
  std::string workflow_pk;
  std::string workflow_id;
  std::string step_pk;
  std::string step_id;
  std::string integration_id;
  std::string provider_id;
  std::optional<std::string> channel_pk;  // unset when the token came from an override
  std::string device_token;
  std::string token_identity;
  std::string title;
  std::string content;
  // What the provider receives as `payload`, encoded once when the message is planned, in
  // Novu's key order: the trigger's payload, then `subscriber` and `step`.
  std::string payload_json = "{}";
  Json overrides = Json::object();  // the provider's merged overrides
  DeliveryState state = DeliveryState::kPending;
  int attempts = 0;
  std::optional<EpochMs> next_attempt_at;
  std::optional<EpochMs> last_attempt_at;
  std::optional<std::string> error_id;
  std::optional<std::string> error_text;
  std::optional<std::string> provider_response_id;
  // Set while the provider has accepted the message and its confirmation is awaited (what its
  // receipt service knows the message by); empty otherwise.
  std::string receipt;
  EpochMs created_at = 0;
  EpochMs updated_at = 0;
};

// ---- event webhooks (what the application is told) ---------------------------------------

// An endpoint the application registered for event webhooks.
struct WebhookEndpoint {
  std::string id;
  std::string environment_id;
  std::string url;
  std::vector<std::string> event_types;  // empty: every event type
  std::string secret;                    // "whsec_" + base64 of 32 bytes; sealed at rest
  EpochMs created_at = 0;
};

// The event types Herald sends, in the order the API lists them.
inline constexpr std::string_view kEventMessageSent = "message.sent";
inline constexpr std::string_view kEventMessageDelivered = "message.delivered";
inline constexpr std::string_view kEventMessageFailed = "message.failed";
inline constexpr std::string_view kEventDeviceRemoved = "device.removed";
bool IsEventType(std::string_view type);

// What happened, as the store saw it when it recorded it (the body is rendered from this once,
// in the same transaction, so a retry sends the same bytes).
struct DeliveryEvent {
  std::string id;    // "evt_" + an ObjectId; the webhook-id of every attempt
  std::string type;  // one of the kEvent* types
  std::string environment_id;
  EpochMs at = 0;
  // Message events: the message as the outcome left it. device.removed: the message whose
  // outcome retired the token (unset for the inactivity sweep).
  std::optional<Message> message;
  bool token_invalid = false;  // message.failed: the provider said the token is dead
  // device.removed
  std::string subscriber_id, integration_id, provider_id, device_token;
  TokenStatus token_status = TokenStatus::kExpired;
  std::string reason;  // typed: the provider's reason, or "INACTIVE" for the sweep
};

// One event on its way to one endpoint.
struct WebhookDelivery {
  std::int64_t seq = 0;
  std::string endpoint_id, url, secret;
  std::string event_id, event_type, body;
  int attempts = 0;  // made before this one
};

// What came of one attempt.
struct WebhookAttempt {
  std::int64_t seq = 0;
  bool delivered = false;
  EpochMs retry_at = 0;  // not delivered: the next attempt, or 0 = give up
  int status = 0;        // the HTTP status, 0 = none
  std::string error;     // typed: "HTTP_500", "TIMEOUT", ...
};

// ---- devices (every token of an environment) -----------------------------------------------

struct DeviceRecord {
  std::string id;  // an opaque cursor for this row
  std::string subscriber_id;
  std::string integration_id, integration_identifier, provider_id;
  DeviceToken token;
};

struct DeviceQuery {
  std::string environment_id;
  std::optional<TokenStatus> status;
  std::optional<std::string> provider_id, subscriber_id;
  int limit = 10;
  std::optional<std::string> after;  // DeviceRecord::id of the last row of the previous page
};

// Cursor pagination as Novu v2 lists do it.
struct PageRequest {
  int limit = 10;
  std::optional<std::string> after;   // an _id
  std::optional<std::string> before;  // an _id
  bool descending = true;
  std::string order_by = "createdAt";  // "createdAt" | "updatedAt" | "_id"
};

template <typename T>
struct Page {
  std::vector<T> items;
  std::optional<std::string> next;      // _id to pass as `after`
  std::optional<std::string> previous;  // _id to pass as `before`
  long long total_count = 0;
  bool total_count_capped = false;
};

}  // namespace herald::store
