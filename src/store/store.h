// What the service needs from a database, as whole, task-shaped operations. Every write is one
// transaction: it either happens completely or not at all. Implementations: sqlite/ (now),
// postgres/ (later); both must pass the same tests.
//
// Thread-safety: every method may be called from any thread concurrently.
// Scoping: every method taking `env` touches only that environment's rows.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "store/model.h"

namespace herald::store {

struct SubscriberFilter {
  std::optional<std::string> email, name, phone, subscriber_id;  // name: first or last, prefix
};

enum class TokenWriteMode { kReplace, kAppend };

struct CredentialsUpdate {
  std::string provider_id;
  std::optional<std::string> integration_identifier;  // else: newest active of provider_id
  std::optional<std::vector<DeviceToken>> tokens;     // canonical, de-duplicated by caller
  std::optional<std::string> webhook_url;
  std::optional<std::string> channel;
  TokenWriteMode mode = TokenWriteMode::kReplace;
  std::size_t max_tokens = 100;
};

struct TopicSubscriptionResult {
  std::vector<TopicSubscription> succeeded;
  std::vector<std::string> missing_subscribers;  // ids that do not exist in the environment
};

// Credentials given just in time in a trigger's `to` (persisted with PATCH semantics), or with a
// subscriber of a bulk import.
struct JitChannel {
  std::string provider_id;
  std::optional<std::string> integration_identifier;
  std::vector<DeviceToken> tokens;  // canonical, de-duplicated by identity
  std::optional<std::string> webhook_url;
};

// ---- bulk import -------------------------------------------------------------------------------

// One subscriber of a bulk import (POST /v1/subscribers/bulk and /v1/subscribers/import).
struct ImportedSubscriber {
  std::string where;  // how the caller names it in errors ("line 17"): "<where>: channels[0]: ..."
  std::string subscriber_id;
  SubscriberPatch profile;  // a new subscriber gets these; an existing one is patched
  // Each channel's tokens are added to the subscriber's channel of that integration (created if
  // needed), as PATCH credentials and a trigger's just-in-time channels add them: tokens already
  // there stay, and one given again is registered again (active, its failure cleared).
  std::vector<JitChannel> channels;
  // Topic keys it joins (a topic is created if missing, as POST /v2/topics/{key}/subscriptions
  // creates it); joining a topic twice is a no-op.
  std::vector<std::string> topics;
};

// Puts the next subscriber of an import into `out` (overwriting every member) and answers true,
// or answers false at the end. Runs inside the store's write transaction: it must be fast and
// must not call the store.
using SubscriberSource = std::function<Result<bool>(ImportedSubscriber& out)>;

struct ImportReceipt {
  std::size_t created = 0;       // subscribers that did not exist
  std::size_t updated = 0;       // subscribers that existed (one named twice counts again)
  std::size_t tokens_added = 0;  // device tokens new to their channel
  std::size_t topic_subscriptions_added = 0;  // memberships that did not exist
  std::size_t topics_created = 0;
  std::vector<bool> item_created;  // per subscriber, in order: created (true) or updated
};

struct SubscriberTarget {
  std::string subscriber_id;
  SubscriberPatch profile;  // applied as an upsert
  std::vector<JitChannel> channels;
};

struct TopicTarget {
  std::string key;
  std::vector<std::string> exclude;  // subscriber ids
};

struct TriggerRequest {
  std::string environment_id;
  std::string transaction_id;
  std::shared_ptr<const Workflow> workflow;  // shared: cached by the API, never modified
  Json payload = Json::object();
  // `payload` as the trigger sent it, for push bodies that must read as Novu's: members in the
  // trigger's order, printed as JSON.stringify does, the values of `subscriber` and `step` (which
  // Novu's push payload replaces in place) written as kSubscriberSlot / kStepSlot. Empty when
  // unknown (then `payload` is used).
  std::string payload_text;
  static constexpr char kSubscriberSlot = '\x01';
  static constexpr char kStepSlot = '\x02';
  Json overrides = Json::object();
  std::vector<SubscriberTarget> subscribers;  // de-duplicated by the caller
  std::vector<TopicTarget> topics;
  bool broadcast = false;                 // every subscriber of the environment
  std::optional<SubscriberTarget> actor;  // upserted; never a recipient of fan-out
  std::size_t max_tokens = 100;
};

// An accepted trigger waiting in the inbox to be planned.
struct QueuedTrigger {
  std::int64_t seq = 0;  // arrival order, assigned by the store
  std::string environment_id;
  std::string transaction_id;
  bool broadcast = false;
  Json event = Json::object();  // the event as accepted (read back)
  std::string event_text;       // the event's JSON text (enqueued, and read back)
  EpochMs created_at = 0;
};

// One trigger to plan: its inbox row (0 = none) and the decoded request, or why it could not be
// decoded any more (its workflow was deleted meanwhile, say): such a trigger is dropped.
struct PlannedTrigger {
  std::int64_t seq = 0;
  std::string environment_id, transaction_id;  // of the inbox row (it must still match)
  std::optional<TriggerRequest> request;
  std::string error;
};

// Errors that decoding or planning the same queued trigger again would meet again: such a
// trigger is dropped; any other error leaves it queued.
inline bool IsPermanentTriggerError(Code code) {
  return code == Code::kNotFound || code == Code::kInvalidArgument ||
         code == Code::kFailedPrecondition || code == Code::kUnprocessable;
}

struct PlanReceipt {
  std::size_t planned = 0;     // triggers turned into notifications, messages and fan-outs
  std::size_t duplicates = 0;  // transactionId seen before: nothing written
  std::size_t skipped = 0;     // inbox row gone (cancelled meanwhile)
  std::size_t dropped = 0;     // could not be planned (logged)
  std::size_t notifications = 0;
  std::size_t messages = 0;
  std::size_t fanouts = 0;
  std::vector<Message> leased;  // new messages leased to the caller, ready to send
};

// Plans the messages of one notification (fills every Message field but ids, state and times).
// Runs inside the store's write transaction: it must be fast and must not call the store. The
// subscriber's tokens carry no last-active time or last failure (deliveries rewrite those all the
// time; planning has no use for them).
using MessagePlanner = std::function<Result<std::vector<Message>>(
    const Workflow& workflow, const Subscriber& subscriber, const Notification& notification,
    const Json& overrides)>;

struct MessageOutcome {
  // kAwaitingReceipt: accepted by the provider, whose confirmation is asked for at retry_at
  // (the message stays pending, with `receipt`).
  enum class Kind { kDelivered, kRetry, kFailed, kAwaitingReceipt };
  std::string message_id;
  Kind kind = Kind::kDelivered;
  EpochMs at = 0;                    // attempt time
  EpochMs retry_at = 0;              // kRetry, kAwaitingReceipt
  std::string error_id, error_text;  // kRetry / kFailed (last reason)
  std::optional<std::string> provider_response_id;
  // kFailed: the token is dead; its new status (expired or unsubscribed). Applied once, to a
  // token that is still active and was not registered again after `token_invalid_since`.
  std::optional<TokenStatus> retire_token;
  std::optional<EpochMs> token_invalid_since;
  // The device token the message went to (Message::channel_pk / token_identity; no channel:
  // the token came from an override and is not recorded anywhere).
  std::optional<std::string> channel_pk;
  std::string token_identity;
  bool touch_token = true;  // kDelivered: false = its last-active was written very recently
  bool attempted = true;    // kFailed: false = taken back before it was sent (no attempt counted)
  std::string receipt;      // kAwaitingReceipt
  // kDelivered: the provider's receipt confirmed it (message.delivered), rather than the
  // provider accepting it (message.sent).
  bool confirmed = false;
  // kAwaitingReceipt: the provider took it just now (message.sent), rather than a receipt being
  // asked for again.
  bool accepted = false;
  // kFailed: the provider said the token is dead (even when the integration keeps dead tokens).
  bool token_invalid = false;
};

// Renders an event's webhook body (JSON text). Runs inside the store's write transaction: fast,
// and must not call the store.
using EventRenderer = std::function<std::string(const DeliveryEvent&)>;

// Messages that must not be sent any more: every field that is set must match (the environment
// always). The dispatcher takes back such sends still waiting for a connection (see
// Dispatcher::Withdraw); the store has already failed or cancelled their rows.
struct UnwantedSends {
  std::string environment_id;
  std::optional<std::string> transaction_id, subscriber_id, integration_id;
  std::string reason, text;  // recorded as the message's errorId / errorText
};

struct MessageQuery {
  std::string environment_id;
  std::optional<std::string> subscriber_id;
  std::vector<std::string> transaction_ids;
  int page = 0;
  int limit = 10;
};

// The activity feed's filters (novu-api.md §2.1); every one that is set must match. The
// subscriber is matched as Novu does: its subscriberId is in `subscriber_ids`, or its email in
// `emails`, or `search` is in its email (any case) or is its subscriberId.
struct NotificationQuery {
  std::string environment_id;
  std::vector<std::string> transaction_ids;
  std::vector<std::string> subscriber_ids;
  std::vector<std::string> emails;
  std::optional<std::string> search;
  std::vector<std::string> workflow_pks;  // `templates`: workflow _ids
  std::vector<std::string> severities;
  std::optional<std::string> topic_key;        // made by a fan-out to this topic
  std::optional<std::string> subscription_id;  // ... through this topic subscription
  std::optional<EpochMs> after, before;        // created_at, inclusive
  int page = 0;
  int limit = 10;
};

struct NotificationWithMessages {
  Notification notification;
  std::vector<Message> messages;
};

enum class IdempotencyState { kNew, kReplay, kInProgress, kMismatch };
struct IdempotencyRecord {
  IdempotencyState state = IdempotencyState::kNew;
  int status = 0;    // kReplay
  std::string body;  // kReplay
};

class Store {
 public:
  virtual ~Store() = default;

  // ---- environments --------------------------------------------------------------------------
  // Creates the environments that do not exist yet (by name). Existing ones are untouched.
  virtual Status EnsureEnvironments(const std::vector<Environment>& wanted) = 0;
  virtual Result<std::vector<Environment>> ListEnvironments() = 0;

  // ---- integrations --------------------------------------------------------------------------
  // Conflict if the identifier exists in the environment.
  virtual Result<Integration> CreateIntegration(const Integration& integration) = 0;
  virtual Result<std::vector<Integration>> ListIntegrations(std::string_view env,
                                                            bool active_only) = 0;
  // NotFound if absent.
  virtual Result<Integration> GetIntegration(std::string_view env, std::string_view id) = 0;
  // Replaces the stored record with `integration` (matched by env + id). NotFound / Conflict.
  virtual Result<Integration> UpdateIntegration(const Integration& integration) = 0;
  // Deletes it and every subscriber channel bound to it, and fails its messages not sent yet.
  // NotFound if absent.
  virtual Status DeleteIntegration(std::string_view env, std::string_view id) = 0;

  // ---- subscribers ---------------------------------------------------------------------------
  // Creates the subscriber; if it exists: Conflict when `fail_if_exists`, else applies `profile`
  // fields that are set (an upsert). `*created` tells which happened.
  virtual Result<Subscriber> UpsertSubscriber(std::string_view env, std::string_view subscriber_id,
                                              const SubscriberPatch& profile, bool fail_if_exists,
                                              bool* created) = 0;
  virtual Result<Subscriber> GetSubscriber(std::string_view env,
                                           std::string_view subscriber_id) = 0;
  // NotFound if absent.
  virtual Result<Subscriber> PatchSubscriber(std::string_view env, std::string_view subscriber_id,
                                             const SubscriberPatch& patch) = 0;
  // NotFound if absent. Removes its channels, tokens and topic subscriptions too, and fails its
  // messages not sent yet.
  virtual Status DeleteSubscriber(std::string_view env, std::string_view subscriber_id) = 0;
  virtual Result<Page<Subscriber>> SearchSubscribers(std::string_view env,
                                                     const SubscriberFilter& filter,
                                                     const PageRequest& page) = 0;

  // Sets one push channel's credentials (Novu §4): resolves the integration, creates the channel
  // if needed, replaces or appends tokens. InvalidArgument if the subscriber or an active
  // integration is missing, or the token limit would be exceeded.
  virtual Result<Subscriber> UpdateCredentials(std::string_view env, std::string_view subscriber_id,
                                               const CredentialsUpdate& update) = 0;
  // Removes every channel of `provider_id` from the subscriber, and fails the messages not sent
  // yet to their tokens (as UpdateCredentials does for each token it removes). NotFound if no
  // subscriber.
  virtual Status DeleteCredentials(std::string_view env, std::string_view subscriber_id,
                                   std::string_view provider_id) = 0;

  // Creates or updates every subscriber `next` yields, in order, with their tokens and topic
  // memberships (see ImportedSubscriber), in one transaction: all of it or nothing. Fails with
  // InvalidArgument, nothing applied, when a channel has no active integration (as
  // UpdateCredentials) or would hold more than `max_tokens` tokens, the message naming the
  // subscriber by its `where` and the field ("line 3: channels[0]: ..."). Any error of `next` is
  // returned as it is. Other writes wait while it runs (a million rows take seconds).
  virtual Result<ImportReceipt> ImportSubscribers(std::string_view env,
                                                  const SubscriberSource& next,
                                                  std::size_t max_tokens) = 0;

  // ---- topics --------------------------------------------------------------------------------
  virtual Result<Topic> UpsertTopic(const Topic& topic, bool fail_if_exists, bool* created) = 0;
  virtual Result<Topic> GetTopic(std::string_view env, std::string_view key) = 0;
  virtual Result<Page<Topic>> ListTopics(std::string_view env, std::optional<std::string> key,
                                         std::optional<std::string> name,
                                         const PageRequest& page) = 0;
  // Creates the topic if needed; subscribes each existing subscriber (idempotent).
  virtual Result<TopicSubscriptionResult> AddTopicSubscribers(
      std::string_view env, std::string_view key,
      const std::vector<std::string>& subscriber_ids) = 0;
  virtual Result<TopicSubscriptionResult> RemoveTopicSubscribers(
      std::string_view env, std::string_view key,
      const std::vector<std::string>& subscriber_ids) = 0;
  virtual Result<Page<TopicSubscription>> ListTopicSubscriptions(
      std::string_view env, std::string_view key, std::optional<std::string> subscriber_id,
      const PageRequest& page) = 0;

  // ---- workflows -----------------------------------------------------------------------------
  virtual Result<Workflow> CreateWorkflow(const Workflow& workflow) = 0;  // Conflict on id
  // `id_or_workflow_id` matches either the internal _id or the workflowId.
  virtual Result<Workflow> GetWorkflow(std::string_view env,
                                       std::string_view id_or_workflow_id) = 0;
  virtual Result<std::vector<Workflow>> ListWorkflows(std::string_view env, int offset, int limit,
                                                      std::optional<std::string> query,
                                                      long long* total) = 0;
  virtual Result<Workflow> UpdateWorkflow(const Workflow& workflow) = 0;  // by env + id
  virtual Status DeleteWorkflow(std::string_view env, std::string_view id_or_workflow_id) = 0;

  // ---- triggers ------------------------------------------------------------------------------
  // Stores an accepted trigger in the inbox; `done` runs on a store thread once it is durable.
  virtual void EnqueueTrigger(QueuedTrigger trigger, std::function<void(Status)> done) = 0;
  // The oldest inbox rows (rows leave the inbox when they are planned).
  virtual Result<std::vector<QueuedTrigger>> ReadQueuedTriggers(std::size_t limit) = 0;
  // Checks what a trigger needs before it is accepted: every JIT channel has an active
  // integration and room for its tokens. NotFound / InvalidArgument. Topics are not checked here:
  // Novu accepts a trigger to an unknown topic and its worker skips it, and so does planning.
  virtual Status CheckTriggerTargets(const TriggerRequest& request) = 0;
  // Plans triggers in order, in consecutive transactions of a few triggers each (an
  // implementation may use one), each trigger all or nothing: deletes its inbox row
  // (an item whose row is gone was cancelled and is skipped), records the transactionId (a
  // repeat is a no-op), upserts the actor and every named subscriber with their JIT channels,
  // writes one notification per subscriber with the messages `planner` returns, and queues a
  // fan-out for topics and broadcasts. New messages are leased to `owner` until `lease_until`
  // and returned (unleased and not returned when `owner` is empty). Stops before the next item
  // once `max_leased` messages were made (its row stays queued). A trigger that can never be
  // planned (NotFound, InvalidArgument, FailedPrecondition, Unprocessable, or a planner that
  // throws) is dropped alone, its error logged; any other error fails the transaction it
  // happened in, leaving its rows queued for a later attempt: the call then returns what the
  // other transactions planned (their messages are leased), or the error if none succeeded.
  // Planning is delivery bookkeeping: it may reach the disk a moment after the call returns.
  virtual Result<PlanReceipt> PlanTriggers(std::vector<PlannedTrigger> items,
                                           const MessagePlanner& planner, std::string_view owner,
                                           EpochMs lease_until,
                                           std::size_t max_leased = SIZE_MAX) = 0;
  // Cancels every pending message, fan-out and queued trigger of the transaction. True if
  // anything was.
  virtual Result<bool> CancelTransaction(std::string_view env, std::string_view transaction_id) = 0;

  // ---- the delivery queue --------------------------------------------------------------------
  // Leases up to `limit` due pending messages (next_attempt_at <= now, lease free or expired)
  // to `owner` until `lease_until`. While leased, a message's next_attempt_at is the end of its
  // lease: the time it can be claimed again if its outcome never comes.
  virtual Result<std::vector<Message>> ClaimDueMessages(std::string_view owner, EpochMs now,
                                                        EpochMs lease_until, std::size_t limit) = 0;
  // Records the outcomes of leased messages in one transaction (token last-active/expiry too).
  // Outcomes for messages whose lease `owner` no longer holds are ignored. Asynchronous: `done`
  // runs on a store thread once the outcomes are durable (or failed).
  virtual void CompleteMessages(std::string owner, std::vector<MessageOutcome> outcomes,
                                std::function<void(Status)> done) = 0;
  // Frees every lease (a single-owner store does this on start: all work comes back at once,
  // due immediately).
  virtual Status ReleaseAllLeases() = 0;
  // Earliest next_attempt_at of a pending message (for a leased one, its lease end), if any.
  virtual Result<std::optional<EpochMs>> NextDueAt() = 0;
  // Expands one batch (up to `batch` subscribers) of the oldest pending fan-out into
  // notifications and messages, in one transaction. Returns the number of fan-outs still
  // pending afterwards (0 = idle).
  virtual Result<std::size_t> RunFanoutBatch(std::size_t batch, const MessagePlanner& planner) = 0;

  // ---- messages and activity -----------------------------------------------------------------
  virtual Result<std::vector<Message>> ListMessages(const MessageQuery& query,
                                                    long long* total) = 0;
  virtual Status DeleteMessage(std::string_view env, std::string_view id) = 0;  // NotFound
  virtual Result<std::vector<NotificationWithMessages>> ListNotifications(
      const NotificationQuery& query, long long* total) = 0;

  // ---- devices -------------------------------------------------------------------------------
  // Every device token of the environment, newest first, filtered.
  virtual Result<Page<DeviceRecord>> ListDevices(const DeviceQuery& query) = 0;
  // Retires (status expired, reason INACTIVE) every active token that no provider accepted a
  // message for since `inactive_since` (nor was registered since). Returns how many.
  virtual Result<std::size_t> ExpireInactiveTokens(EpochMs inactive_since, EpochMs now) = 0;

  // ---- event webhooks ------------------------------------------------------------------------
  // Events are recorded with the outcomes and token changes that cause them, in the same
  // transaction: one delivery per endpoint of the environment that wants the type, rendered by
  // the store's EventRenderer.
  virtual Result<WebhookEndpoint> CreateWebhookEndpoint(const WebhookEndpoint& endpoint) = 0;
  virtual Result<std::vector<WebhookEndpoint>> ListWebhookEndpoints(std::string_view env) = 0;
  // NotFound if absent. Its deliveries not made yet are dropped.
  virtual Status DeleteWebhookEndpoint(std::string_view env, std::string_view id) = 0;
  // Leases up to `limit` due deliveries to `owner` until `lease_until`, oldest first; a delivery
  // waits while an earlier one of the same endpoint and message is still pending (in order per
  // message).
  virtual Result<std::vector<WebhookDelivery>> ClaimWebhookDeliveries(std::string_view owner,
                                                                       EpochMs now,
                                                                       EpochMs lease_until,
                                                                       std::size_t limit) = 0;
  // Records attempts of leased deliveries (ignored when `owner` lost the lease).
  virtual Status RecordWebhookAttempts(std::string_view owner,
                                       const std::vector<WebhookAttempt>& attempts) = 0;
  // Earliest due time of a pending delivery, if any.
  virtual Result<std::optional<EpochMs>> NextWebhookDueAt() = 0;

  // ---- idempotency keys (novu-api.md §2.0.1) -------------------------------------------------
  // Starts (or looks up) the request `key` with this body digest; a new key is held in progress
  // until `in_progress_until`. Asynchronous: `done` runs on the store's thread after commit.
  virtual void BeginIdempotent(std::string env, std::string key, std::string body_hash, EpochMs now,
                               EpochMs in_progress_until,
                               std::function<void(Result<IdempotencyRecord>)> done) = 0;
  // Stores the reply for replays until `expires_at`. Asynchronous: returns before it commits.
  virtual void FinishIdempotent(std::string env, std::string key, int status, std::string body,
                                EpochMs expires_at) = 0;
  // Deletes expired idempotency records.
  virtual Status PurgeExpired(EpochMs now) = 0;

  // Returns once every write submitted before the call is durable and has run its callback (a
  // barrier: after it, no earlier write can still call back into its caller).
  virtual Status Flush() = 0;
};

}  // namespace herald::store
