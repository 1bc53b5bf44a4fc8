// The Novu-compatible REST API: authentication, routes and handlers. Handlers are thin: decode
// and validate the request, call one Store operation, encode the reply.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/status.h"
#include "core/worker_pool.h"
#include "providers/registry.h"
#include "server/http.h"
#include "server/router.h"
#include "store/store.h"
#include "template/template.h"

namespace herald::api {

struct ApiOptions {
  providers::TokenPolicy token_policy;
  std::size_t max_tokens_per_channel = 100;
  // Called after a trigger was queued, to wake the dispatcher.
  std::function<void()> on_work;
  // Called after the store made sends unwanted (a cancelled transaction, a deleted subscriber or
  // integration), so that those still waiting for a connection are taken back.
  std::function<void(store::UnwantedSends)> on_unwanted;
  // Called after an integration changed or was deleted, so that delivery reads it again.
  std::function<void(const std::string& integration_id)> on_integration_changed;
  // Integration checks, run by delivery (it holds the HTTP client and the auth tokens): a
  // connection test (POST /v1/integrations/:id/test) and one push sent now (.../send-test).
  // `done` may run on any thread.
  std::function<void(std::string env, std::string integration_id,
                     std::function<void(Result<providers::ProbeResult>)> done)>
      test_connection;
  std::function<void(std::string env, std::string integration_id, std::string token,
                     std::string title, std::string body,
                     std::function<void(Result<providers::Outcome>)> done)>
      send_test;
  // Threads for handlers that wait on the store (every synchronous handler, and any request
  // with an Idempotency-Key): the HTTP I/O threads never block.
  int blocking_threads = 4;
};

// Novu's trigger result: {acknowledged: true, status, transactionId?}.
struct TriggerAck {
  std::string_view status;  // a literal
  std::optional<std::string> transaction_id;
};
// The result as JSON (a slot of the bulk reply), and as the 201 of a single trigger: its text
// written directly (it is built once per trigger), the same bytes as {"data": AckJson(ack)}.
Json AckJson(const TriggerAck& ack);
server::Reply AckReply(const TriggerAck& ack);

class Api {
 public:
  // `environments` are the ones the store holds (read once at start-up; keys never change while
  // running). The store and cache must outlive the Api.
  Api(store::Store& store, std::vector<store::Environment> environments,
      tmpl::TemplateCache& templates, ApiOptions options);

  void AddRoutes(server::Router& router);

  // Decodes a queued trigger again for planning (the dispatcher calls it; any thread). Fails if
  // the trigger can no longer be planned (its workflow was deleted or deactivated meanwhile).
  Result<store::TriggerRequest> DecodeQueued(const store::QueuedTrigger& queued);

  // "ApiKey <key>" -> the environment, comparing SHA-256 digests in constant time.
  Result<const store::Environment*> Authenticate(const server::Request& request) const;

 private:
  using Env = store::Environment;
  using Req = server::Request;
  using Reply = Result<server::Reply>;
  using Method = Reply (Api::*)(Req&, const Env&);
  using AsyncMethod = void (Api::*)(Req&, const Env&, server::Done);

  // Authenticates, applies Idempotency-Key (POST/PATCH), runs the handler, shapes errors.
  server::Handler Bind(Method method);
  server::Handler Bind(AsyncMethod method);
  void RunWithIdempotency(Req& request, const Env& env, server::Done done,
                          std::function<void(Req&, server::Done)> run);
  void RunAsync(AsyncMethod method, Req& request, const Env& env, server::Done done);
  static bool UsesIdempotency(const Req& request);

  // events.cc
  void Trigger(Req& r, const Env& env, server::Done done);
  void TriggerBulk(Req& r, const Env& env, server::Done done);
  void TriggerBroadcast(Req& r, const Env& env, server::Done done);
  Reply CancelTrigger(Req& r, const Env& env);
  // Accepts one decoded event; `done` gets the trigger result (or an error).
  // `text` is the event's JSON text when the caller has it (a whole request body): it is queued
  // as is instead of being written out again.
  void AcceptEvent(const Json& event, const Env& env, bool broadcast, std::string_view text,
                   std::function<void(Result<TriggerAck>)> done);

  // messages.cc
  Reply ListMessages(Req& r, const Env& env);
  Reply DeleteMessage(Req& r, const Env& env);
  Reply ListNotifications(Req& r, const Env& env);

  // integrations.cc
  Reply CreateIntegration(Req& r, const Env& env);
  Reply ListIntegrations(Req& r, const Env& env);
  Reply ListActiveIntegrations(Req& r, const Env& env);
  Reply UpdateIntegration(Req& r, const Env& env);
  Reply DeleteIntegration(Req& r, const Env& env);
  Reply SetPrimaryIntegration(Req& r, const Env& env);
  Reply GetVapidPublicKey(Req& r, const Env& env);
  void TestIntegration(Req& r, const Env& env, server::Done done);
  void SendTestPush(Req& r, const Env& env, server::Done done);

  // subscribers.cc
  Reply CreateSubscriberV2(Req& r, const Env& env);
  Reply GetSubscriber(Req& r, const Env& env);
  Reply PatchSubscriberV2(Req& r, const Env& env);
  Reply DeleteSubscriberV2(Req& r, const Env& env);
  Reply SearchSubscribers(Req& r, const Env& env);
  Reply CreateSubscriberV1(Req& r, const Env& env);
  Reply UpdateSubscriberV1(Req& r, const Env& env);
  Reply DeleteSubscriberV1(Req& r, const Env& env);
  Status DeleteSubscriber(const Env& env, const std::string& subscriber_id);  // v1 and v2
  Reply PutCredentials(Req& r, const Env& env);
  Reply PatchCredentials(Req& r, const Env& env);
  Reply DeleteCredentials(Req& r, const Env& env);
  Reply ListDevices(Req& r, const Env& env);

  // import.cc: the bulk subscriber routes
  Reply CreateSubscribersBulk(Req& r, const Env& env);
  Reply ImportSubscribers(Req& r, const Env& env);

  // webhooks.cc
  Reply CreateWebhookEndpoint(Req& r, const Env& env);
  Reply ListWebhookEndpoints(Req& r, const Env& env);
  Reply DeleteWebhookEndpoint(Req& r, const Env& env);
  Reply ListEnvironmentDevices(Req& r, const Env& env);
  Reply UpdateCredentials(Req& r, const Env& env, store::TokenWriteMode mode);

  // topics.cc
  Reply CreateTopic(Req& r, const Env& env);
  Reply ListTopics(Req& r, const Env& env);
  Reply GetTopic(Req& r, const Env& env);
  Reply AddTopicSubscriptions(Req& r, const Env& env);
  Reply ListTopicSubscriptions(Req& r, const Env& env);
  Reply RemoveTopicSubscriptions(Req& r, const Env& env);

  // workflows.cc
  Reply CreateWorkflow(Req& r, const Env& env);
  Reply ListWorkflows(Req& r, const Env& env);
  Reply GetWorkflow(Req& r, const Env& env);
  Reply UpdateWorkflow(Req& r, const Env& env);
  Reply DeleteWorkflow(Req& r, const Env& env);
  // Validates the workflow body and compiles its templates; fills `out` (steps, flags).
  Status DecodeWorkflow(const Json& body, store::Workflow& out, bool is_update);

  // Workflows by (environment, id or workflowId), read on every trigger. Every workflow write
  // goes through this Api and bumps the generation, which retires what was cached before it.
  Result<std::shared_ptr<const store::Workflow>> CachedWorkflow(const std::string& env,
                                                                const std::string& key);
  void WorkflowsChanged() { workflow_generation_.fetch_add(1); }

  store::Store& store_;
  std::vector<store::Environment> environments_;
  tmpl::TemplateCache& templates_;
  ApiOptions options_;

  struct CachedEntry {
    std::uint64_t generation;
    std::shared_ptr<const store::Workflow> workflow;
  };
  std::atomic<std::uint64_t> workflow_generation_{0};
  std::mutex workflow_mu_;
  std::unordered_map<std::string, CachedEntry> workflows_;  // guarded by workflow_mu_

  WorkerPool blocking_;  // last: destroyed (drained) first, while everything it uses lives
};

}  // namespace herald::api
