#include "api/api.h"

#include <atomic>
#include <future>
#include <memory>

#include "api/import.h"
#include "core/log.h"
#include "core/time.h"
#include "crypto/crypto.h"
#include "server/error_reply.h"

namespace herald::api {

Api::Api(store::Store& store, std::vector<store::Environment> environments,
         tmpl::TemplateCache& templates, ApiOptions options)
    : store_(store),
      environments_(std::move(environments)),
      templates_(templates),
      options_(options),
      blocking_(options_.blocking_threads, "herald-api") {}

Result<const store::Environment*> Api::Authenticate(const server::Request& request) const {
  std::string_view header = request.Header("authorization");
  if (header.empty()) return Status::Unauthenticated("Missing authorization header");
  std::size_t space = header.find(' ');
  std::string_view scheme = header.substr(0, space);
  if (scheme != "ApiKey") {
    return Status::Unauthenticated("Invalid authentication scheme: \"" + std::string(scheme) +
                                   "\"");
  }
  std::string_view key = space == std::string_view::npos ? "" : header.substr(space + 1);
  if (key.empty()) return Status::Unauthenticated("Unauthorized");
  std::string digest = crypto::Hex(crypto::Sha256(key));
  const store::Environment* found = nullptr;
  for (const store::Environment& env : environments_) {
    // Check every environment so the time taken does not depend on which one matched.
    if (crypto::ConstantTimeEquals(digest, env.api_key_hash)) found = &env;
  }
  if (!found) return Status::Unauthenticated("API Key not found");
  return found;
}

namespace {

constexpr EpochMs kIdempotencyInProgressMs = 5 * 60 * 1000;
constexpr EpochMs kIdempotencyKeepMs = 24 * 60 * 60 * 1000;

server::Reply ToReply(Result<server::Reply> reply, const server::Request& request) {
  if (reply.ok()) return std::move(reply.value());
  if (reply.status().code() == Code::kInternal) {
    spdlog::error("request failed id={} path={} error={}", request.request_id, request.path,
                  reply.status().message());
  }
  return server::ErrorReply(reply.status(), request.target);
}

// Runs a synchronous handler; an exception (a bug) becomes a 500, never a crash.
template <typename F>
Result<server::Reply> Guarded(F&& f) {
  try {
    return f();
  } catch (const std::exception& e) {
    spdlog::error("handler threw: {}", e.what());
    return Status::Internal("Internal server error");
  }
}

}  // namespace

// The request lives as long as its Done (which holds the exchange), so a task holding `done`
// may keep a reference to it.
server::Handler Api::Bind(Method method) {
  return [this, method](server::Request& request, server::Done done) {
    Result<const store::Environment*> env = Authenticate(request);
    if (!env.ok()) return done(server::ErrorReply(env.status(), request.target));
    const store::Environment* e = *env;
    blocking_.Post([this, method, e, &request, done = std::move(done)]() mutable {
      RunWithIdempotency(request, *e, std::move(done), [this, method, e](Req& r, server::Done d) {
        d(ToReply(Guarded([&] { return (this->*method)(r, *e); }), r));
      });
    });
  };
}

server::Handler Api::Bind(AsyncMethod method) {
  return [this, method](server::Request& request, server::Done done) {
    Result<const store::Environment*> env = Authenticate(request);
    if (!env.ok()) return done(server::ErrorReply(env.status(), request.target));
    const store::Environment* e = *env;
    if (!UsesIdempotency(request)) return RunAsync(method, request, *e, std::move(done));
    // The idempotency record is read from the store first: not on an I/O thread.
    blocking_.Post([this, method, e, &request, done = std::move(done)]() mutable {
      RunAsync(method, request, *e, std::move(done));
    });
  };
}

void Api::RunAsync(AsyncMethod method, Req& request, const Env& env, server::Done done) {
  RunWithIdempotency(request, env, std::move(done), [this, method, &env](Req& r, server::Done d) {
    // The handler may throw only before it handed `d` on (all its own work is synchronous).
    auto once = std::make_shared<std::atomic<bool>>(false);
    server::Done guarded = [once, d](server::Reply reply) {
      if (!once->exchange(true)) d(std::move(reply));
    };
    try {
      (this->*method)(r, env, guarded);
    } catch (const std::exception& ex) {
      spdlog::error("handler threw id={} path={} what={}", r.request_id, r.path, ex.what());
      guarded(server::ErrorReply(500, r.target, "Internal server error"));
    }
  });
}

bool Api::UsesIdempotency(const Req& request) {
  return !request.Header("idempotency-key").empty() &&
         (request.method == "POST" || request.method == "PATCH");
}

// Novu's idempotency (novu-api.md §2.0.1): POST and PATCH only; the reply (success or error) is
// kept 24 h with a digest of the body. Same key and body: replay. Still running: 409 with
// Retry-After (the SDK retries 409). Same key, other body: 422.
void Api::RunWithIdempotency(Req& request, const Env& env, server::Done done,
                             std::function<void(Req&, server::Done)> run) {
  if (!UsesIdempotency(request)) return run(request, std::move(done));
  std::string_view key = request.Header("idempotency-key");
  if (key.size() > 255) {
    return done(
        server::ErrorReply(400, request.target, "Idempotency-Key must be at most 255 characters"));
  }
  std::string key_text(key);
  EpochMs now = NowMs();
  std::promise<Result<store::IdempotencyRecord>> promise;
  std::future<Result<store::IdempotencyRecord>> future = promise.get_future();
  // The digest of the body as a JSON document (members in their order, as Novu's digest of
  // JSON.stringify(body) sees it), so that the same body sent with other spacing replays; a body
  // that is not JSON is digested as it came (the handler refuses it, and that reply is kept).
  std::string digested = request.body;
  if (std::optional<OrderedJson> parsed = ParseOrderedJson(request.body)) {
    digested = parsed->dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
  }
  store_.BeginIdempotent(env.id, key_text, crypto::Hex(crypto::Sha256(digested)), now,
                         now + kIdempotencyInProgressMs,
                         [&promise](Result<store::IdempotencyRecord> record) {
                           promise.set_value(std::move(record));
                         });
  Result<store::IdempotencyRecord> record = future.get();
  if (!record.ok()) return done(server::ErrorReply(record.status(), request.target));
  server::Reply reply;
  switch (record->state) {
    case store::IdempotencyState::kReplay:
      reply.status = record->status;
      reply.body = record->body;
      reply.headers = {{"Idempotency-Key", key_text}, {"Idempotency-Replay", "true"}};
      return done(std::move(reply));
    case store::IdempotencyState::kInProgress:
      reply = server::ErrorReply(409, request.target,
                                 "Request with key \"" + key_text +
                                     "\" is currently being processed. "
                                     "Please retry after 1 second");
      reply.headers = {{"Idempotency-Key", key_text},
                       {"Retry-After", "1"},
                       {"Link", "<https://docs.novu.co/additional-resources/idempotency>"}};
      return done(std::move(reply));
    case store::IdempotencyState::kMismatch:
      reply = server::ErrorReply(Status::Unprocessable("Request with key \"" + key_text +
                                                       "\" is being reused for a different body")
                                     .WithExtra({{"errors", Json::object()}}),
                                 request.target);
      reply.headers = {{"Idempotency-Key", key_text}};
      return done(std::move(reply));
    case store::IdempotencyState::kNew:
      break;
  }
  run(request, [this, env_id = env.id, key_text, done = std::move(done)](server::Reply result) {
    // A server error is not a result worth replaying: expire the key so a retry runs again.
    EpochMs keep_until = result.status >= 500 ? NowMs() : NowMs() + kIdempotencyKeepMs;
    store_.FinishIdempotent(env_id, key_text, result.status, result.body, keep_until);
    result.headers.emplace_back("Idempotency-Key", key_text);
    done(std::move(result));
  });
}

void Api::AddRoutes(server::Router& router) {
  // Integrations (novu-api.md §2.1, §7)
  router.Add("POST", "/v1/integrations", Bind(&Api::CreateIntegration));
  router.Add("GET", "/v1/integrations", Bind(&Api::ListIntegrations));
  router.Add("GET", "/v1/integrations/active", Bind(&Api::ListActiveIntegrations));
  router.Add("PUT", "/v1/integrations/:id", Bind(&Api::UpdateIntegration));
  router.Add("DELETE", "/v1/integrations/:id", Bind(&Api::DeleteIntegration));
  router.Add("POST", "/v1/integrations/:id/set-primary", Bind(&Api::SetPrimaryIntegration));
  router.Add("GET", "/v1/integrations/:id/vapid-public-key", Bind(&Api::GetVapidPublicKey));
  router.Add("POST", "/v1/integrations/:id/test", Bind(&Api::TestIntegration));
  router.Add("POST", "/v1/integrations/:id/send-test", Bind(&Api::SendTestPush));

  // Subscribers, v2 (@novu/api) and v1 (@novu/node)
  router.Add("POST", "/v2/subscribers", Bind(&Api::CreateSubscriberV2));
  router.Add("GET", "/v2/subscribers", Bind(&Api::SearchSubscribers));
  router.Add("GET", "/v2/subscribers/:subscriberId", Bind(&Api::GetSubscriber));
  router.Add("PATCH", "/v2/subscribers/:subscriberId", Bind(&Api::PatchSubscriberV2));
  router.Add("DELETE", "/v2/subscribers/:subscriberId", Bind(&Api::DeleteSubscriberV2));
  router.Add("POST", "/v1/subscribers", Bind(&Api::CreateSubscriberV1));
  router.Add("POST", "/v1/subscribers/bulk", Bind(&Api::CreateSubscribersBulk));
  // Herald's NDJSON import: the one route with a body limit above the server's 1 MiB, for a
  // client with a valid API key only (the body is read before the handler authenticates).
  router.Add("POST", "/v1/subscribers/import", Bind(&Api::ImportSubscribers),
             [this](const server::Request& head) -> std::size_t {
               return Authenticate(head).ok() ? kImportBodyLimit : 0;
             });
  router.Add("GET", "/v1/subscribers/:subscriberId", Bind(&Api::GetSubscriber));
  router.Add("PUT", "/v1/subscribers/:subscriberId", Bind(&Api::UpdateSubscriberV1));
  router.Add("DELETE", "/v1/subscribers/:subscriberId", Bind(&Api::DeleteSubscriberV1));

  // Device tokens (§4) and Herald's devices view
  router.Add("PUT", "/v1/subscribers/:subscriberId/credentials", Bind(&Api::PutCredentials));
  router.Add("PATCH", "/v1/subscribers/:subscriberId/credentials", Bind(&Api::PatchCredentials));
  router.Add("DELETE", "/v1/subscribers/:subscriberId/credentials/:providerId",
             Bind(&Api::DeleteCredentials));
  router.Add("GET", "/v1/subscribers/:subscriberId/devices", Bind(&Api::ListDevices));
  router.Add("GET", "/v1/devices", Bind(&Api::ListEnvironmentDevices));

  // Event webhooks: what the application is told
  router.Add("POST", "/v1/webhooks/endpoints", Bind(&Api::CreateWebhookEndpoint));
  router.Add("GET", "/v1/webhooks/endpoints", Bind(&Api::ListWebhookEndpoints));
  router.Add("DELETE", "/v1/webhooks/endpoints/:id", Bind(&Api::DeleteWebhookEndpoint));

  // Topics
  router.Add("POST", "/v2/topics", Bind(&Api::CreateTopic));
  router.Add("GET", "/v2/topics", Bind(&Api::ListTopics));
  router.Add("GET", "/v2/topics/:key", Bind(&Api::GetTopic));
  router.Add("POST", "/v2/topics/:key/subscriptions", Bind(&Api::AddTopicSubscriptions));
  router.Add("GET", "/v2/topics/:key/subscriptions", Bind(&Api::ListTopicSubscriptions));
  router.Add("DELETE", "/v2/topics/:key/subscriptions", Bind(&Api::RemoveTopicSubscriptions));

  // Events (§3) and the delivery record
  router.Add("POST", "/v1/events/trigger", Bind(&Api::Trigger));
  router.Add("POST", "/v1/events/trigger/bulk", Bind(&Api::TriggerBulk));
  router.Add("POST", "/v1/events/trigger/broadcast", Bind(&Api::TriggerBroadcast));
  router.Add("DELETE", "/v1/events/trigger/:transactionId", Bind(&Api::CancelTrigger));
  router.Add("GET", "/v1/messages", Bind(&Api::ListMessages));
  router.Add("DELETE", "/v1/messages/:messageId", Bind(&Api::DeleteMessage));
  router.Add("GET", "/v1/notifications", Bind(&Api::ListNotifications));

  // Workflows
  router.Add("POST", "/v2/workflows", Bind(&Api::CreateWorkflow));
  router.Add("GET", "/v2/workflows", Bind(&Api::ListWorkflows));
  router.Add("GET", "/v2/workflows/:workflowId", Bind(&Api::GetWorkflow));
  router.Add("PUT", "/v2/workflows/:workflowId", Bind(&Api::UpdateWorkflow));
  router.Add("DELETE", "/v2/workflows/:workflowId", Bind(&Api::DeleteWorkflow));
}

}  // namespace herald::api
