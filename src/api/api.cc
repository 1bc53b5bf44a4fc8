#include "api/api.h"

#include "core/log.h"
#include "crypto/crypto.h"
#include "server/error_reply.h"

namespace herald::api {

Api::Api(store::Store& store, std::vector<store::Environment> environments,
         tmpl::TemplateCache& templates, ApiOptions options)
    : store_(store),
      environments_(std::move(environments)),
      templates_(templates),
      options_(options) {}

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

server::Handler Api::Bind(Method method) {
  return server::Sync([this, method](server::Request& request) -> server::Reply {
    Result<const store::Environment*> env = Authenticate(request);
    if (!env.ok()) return server::ErrorReply(env.status(), request.target);
    Result<server::Reply> reply = (this->*method)(request, **env);
    if (!reply.ok()) {
      if (reply.status().code() == Code::kInternal) {
        spdlog::error("request failed id={} path={} error={}", request.request_id, request.path,
                      reply.status().message());
      }
      return server::ErrorReply(reply.status(), request.target);
    }
    return std::move(reply.value());
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

  // Subscribers, v2 (@novu/api) and v1 (@novu/node)
  router.Add("POST", "/v2/subscribers", Bind(&Api::CreateSubscriberV2));
  router.Add("GET", "/v2/subscribers", Bind(&Api::SearchSubscribers));
  router.Add("GET", "/v2/subscribers/:subscriberId", Bind(&Api::GetSubscriber));
  router.Add("PATCH", "/v2/subscribers/:subscriberId", Bind(&Api::PatchSubscriberV2));
  router.Add("DELETE", "/v2/subscribers/:subscriberId", Bind(&Api::DeleteSubscriberV2));
  router.Add("POST", "/v1/subscribers", Bind(&Api::CreateSubscriberV1));
  router.Add("GET", "/v1/subscribers/:subscriberId", Bind(&Api::GetSubscriber));
  router.Add("PUT", "/v1/subscribers/:subscriberId", Bind(&Api::UpdateSubscriberV1));
  router.Add("DELETE", "/v1/subscribers/:subscriberId", Bind(&Api::DeleteSubscriberV1));

  // Device tokens (§4) and Herald's devices view
  router.Add("PUT", "/v1/subscribers/:subscriberId/credentials", Bind(&Api::PutCredentials));
  router.Add("PATCH", "/v1/subscribers/:subscriberId/credentials", Bind(&Api::PatchCredentials));
  router.Add("DELETE", "/v1/subscribers/:subscriberId/credentials/:providerId",
             Bind(&Api::DeleteCredentials));
  router.Add("GET", "/v1/subscribers/:subscriberId/devices", Bind(&Api::ListDevices));

  // Topics
  router.Add("POST", "/v2/topics", Bind(&Api::CreateTopic));
  router.Add("GET", "/v2/topics", Bind(&Api::ListTopics));
  router.Add("GET", "/v2/topics/:key", Bind(&Api::GetTopic));
  router.Add("POST", "/v2/topics/:key/subscriptions", Bind(&Api::AddTopicSubscriptions));
  router.Add("GET", "/v2/topics/:key/subscriptions", Bind(&Api::ListTopicSubscriptions));
  router.Add("DELETE", "/v2/topics/:key/subscriptions", Bind(&Api::RemoveTopicSubscriptions));

  // Workflows
  router.Add("POST", "/v2/workflows", Bind(&Api::CreateWorkflow));
  router.Add("GET", "/v2/workflows", Bind(&Api::ListWorkflows));
  router.Add("GET", "/v2/workflows/:workflowId", Bind(&Api::GetWorkflow));
  router.Add("PUT", "/v2/workflows/:workflowId", Bind(&Api::UpdateWorkflow));
  router.Add("DELETE", "/v2/workflows/:workflowId", Bind(&Api::DeleteWorkflow));
}

}  // namespace herald::api
