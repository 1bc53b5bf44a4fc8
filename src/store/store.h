// What the service needs from a database, as whole, task-shaped operations. Every write is one
// transaction: it either happens completely or not at all. Implementations: sqlite/ (now),
// postgres/ (later); both must pass the same tests.
//
// Thread-safety: every method may be called from any thread concurrently.
// Scoping: every method taking `env` touches only that environment's rows.
#pragma once

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
  // Deletes it and every subscriber channel bound to it. NotFound if absent.
  virtual Status DeleteIntegration(std::string_view env, std::string_view id) = 0;

  // ---- subscribers ---------------------------------------------------------------------------
  // Creates the subscriber; if it exists: Conflict when `fail_if_exists`, else applies `profile`
  // fields that are set (an upsert). `*created` tells which happened.
  virtual Result<Subscriber> UpsertSubscriber(std::string_view env, std::string_view subscriber_id,
                                              const SubscriberPatch& profile, bool fail_if_exists,
                                              bool* created) = 0;
  virtual Result<Subscriber> GetSubscriber(std::string_view env, std::string_view subscriber_id) = 0;
  // NotFound if absent.
  virtual Result<Subscriber> PatchSubscriber(std::string_view env, std::string_view subscriber_id,
                                             const SubscriberPatch& patch) = 0;
  // NotFound if absent. Removes its channels, tokens and topic subscriptions too.
  virtual Status DeleteSubscriber(std::string_view env, std::string_view subscriber_id) = 0;
  virtual Result<Page<Subscriber>> SearchSubscribers(std::string_view env,
                                                     const SubscriberFilter& filter,
                                                     const PageRequest& page) = 0;

  // Sets one push channel's credentials (Novu §4): resolves the integration, creates the channel
  // if needed, replaces or appends tokens. InvalidArgument if the subscriber or an active
  // integration is missing, or the token limit would be exceeded.
  virtual Result<Subscriber> UpdateCredentials(std::string_view env,
                                               std::string_view subscriber_id,
                                               const CredentialsUpdate& update) = 0;
  // Removes every channel of `provider_id` from the subscriber. NotFound if no subscriber.
  virtual Status DeleteCredentials(std::string_view env, std::string_view subscriber_id,
                                   std::string_view provider_id) = 0;

  // ---- topics --------------------------------------------------------------------------------
  virtual Result<Topic> UpsertTopic(const Topic& topic, bool fail_if_exists, bool* created) = 0;
  virtual Result<Topic> GetTopic(std::string_view env, std::string_view key) = 0;
  virtual Result<Page<Topic>> ListTopics(std::string_view env, std::optional<std::string> key,
                                         std::optional<std::string> name,
                                         const PageRequest& page) = 0;
  // Creates the topic if needed; subscribes each existing subscriber (idempotent).
  virtual Result<TopicSubscriptionResult> AddTopicSubscribers(
      std::string_view env, std::string_view key, const std::vector<std::string>& subscriber_ids) = 0;
  virtual Result<TopicSubscriptionResult> RemoveTopicSubscribers(
      std::string_view env, std::string_view key, const std::vector<std::string>& subscriber_ids) = 0;
  virtual Result<Page<TopicSubscription>> ListTopicSubscriptions(
      std::string_view env, std::string_view key, std::optional<std::string> subscriber_id,
      const PageRequest& page) = 0;

  // ---- workflows -----------------------------------------------------------------------------
  virtual Result<Workflow> CreateWorkflow(const Workflow& workflow) = 0;  // Conflict on id
  // `id_or_workflow_id` matches either the internal _id or the workflowId.
  virtual Result<Workflow> GetWorkflow(std::string_view env, std::string_view id_or_workflow_id) = 0;
  virtual Result<std::vector<Workflow>> ListWorkflows(std::string_view env, int offset, int limit,
                                                      std::optional<std::string> query,
                                                      long long* total) = 0;
  virtual Result<Workflow> UpdateWorkflow(const Workflow& workflow) = 0;  // by env + id
  virtual Status DeleteWorkflow(std::string_view env, std::string_view id_or_workflow_id) = 0;
};

}  // namespace herald::store
