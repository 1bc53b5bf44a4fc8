// Event webhook endpoints (POST/GET/DELETE /v1/webhooks/endpoints) and every device token of the
// environment (GET /v1/devices).
#include <algorithm>
#include <utility>

#include "api/api.h"
#include "api/input.h"
#include "core/ids.h"
#include "core/time.h"
#include "core/url.h"
#include "crypto/crypto.h"
#include "server/error_reply.h"
#include "wire/wire.h"

namespace herald::api {
namespace {

constexpr std::size_t kMaxUrlBytes = 2048;
constexpr std::size_t kMaxEndpointsPerEnvironment = 20;

// Where events may be sent: https, or any http(s) with HERALD_ALLOW_PRIVATE_TARGETS=1 (tests and
// closed networks). Private hosts named literally are refused here; names that resolve to private
// addresses are refused when connecting (the same guard as deliveries).
Status CheckEndpointUrl(const std::string& url, bool allow_private) {
  if (url.size() > kMaxUrlBytes) return Status::InvalidArgument("url is too long");
  std::optional<Url> parsed = ParseHttpUrl(url);
  if (!parsed) return Status::InvalidArgument("url must be an absolute https URL");
  if (parsed->has_fragment) return Status::InvalidArgument("url must not have a fragment");
  // The URL is listed as it is: a password in it would be shown to every reader of the list.
  if (parsed->has_userinfo) return Status::InvalidArgument("url must not carry a user or password");
  if (allow_private) return Status::Ok();
  if (parsed->scheme != "https") return Status::InvalidArgument("url must be an https URL");
  if (IsPrivateHost(parsed->host)) {
    return Status::InvalidArgument("url must not point to a private or loopback address");
  }
  return Status::Ok();
}

}  // namespace

Api::Reply Api::CreateWebhookEndpoint(Req& r, const Env& env) {
  ASSIGN_OR_RETURN(Json body, ParseObjectBody(r));
  RETURN_IF_ERROR(RejectUnknownFields(body, {"url", "eventTypes"}));
  store::WebhookEndpoint endpoint;
  ASSIGN_OR_RETURN(endpoint.url, RequiredString(body, "url"));
  RETURN_IF_ERROR(CheckEndpointUrl(endpoint.url, options_.token_policy.allow_private_targets));
  ASSIGN_OR_RETURN(std::optional<std::vector<std::string>> types,
                   OptStringArray(body, "eventTypes"));
  for (const std::string& type : types.value_or(std::vector<std::string>{})) {
    if (!store::IsEventType(type)) {
      return Status::InvalidArgument(
          "eventTypes: unknown event type \"" + type +
          "\" (known: message.sent, message.delivered, message.failed, device.removed)");
    }
    if (std::find(endpoint.event_types.begin(), endpoint.event_types.end(), type) ==
        endpoint.event_types.end()) {
      endpoint.event_types.push_back(type);
    }
  }
  ASSIGN_OR_RETURN(std::vector<store::WebhookEndpoint> existing,
                   store_.ListWebhookEndpoints(env.id));
  if (existing.size() >= kMaxEndpointsPerEnvironment) {
    return Status::InvalidArgument("an environment has at most " +
                                   std::to_string(kMaxEndpointsPerEnvironment) +
                                   " webhook endpoints");
  }
  endpoint.id = NewObjectId();
  endpoint.environment_id = env.id;
  endpoint.secret = "whsec_" + crypto::Base64Encode(RandomBytes(32));
  endpoint.created_at = NowMs();
  ASSIGN_OR_RETURN(store::WebhookEndpoint created, store_.CreateWebhookEndpoint(endpoint));
  return server::DataReply(wire::WebhookEndpointJson(created, /*with_secret=*/true), 201);
}

Api::Reply Api::ListWebhookEndpoints(Req& /*r*/, const Env& env) {
  ASSIGN_OR_RETURN(std::vector<store::WebhookEndpoint> endpoints,
                   store_.ListWebhookEndpoints(env.id));
  Json data = Json::array();
  for (const store::WebhookEndpoint& e : endpoints) {
    data.push_back(wire::WebhookEndpointJson(e, /*with_secret=*/false));
  }
  return server::DataReply(data);
}

Api::Reply Api::DeleteWebhookEndpoint(Req& r, const Env& env) {
  RETURN_IF_ERROR(store_.DeleteWebhookEndpoint(env.id, r.Param("id")));
  return server::DataReply({{"acknowledged", true}, {"status", "deleted"}});
}

Api::Reply Api::ListEnvironmentDevices(Req& r, const Env& env) {
  store::DeviceQuery query;
  query.environment_id = env.id;
  ASSIGN_OR_RETURN(std::optional<long long> limit, QueryInt(r, "limit", 1, 100));
  query.limit = static_cast<int>(limit.value_or(10));
  if (const std::string* after = r.Query("after")) query.after = *after;
  if (const std::string* status = r.Query("status")) {
    query.status = store::ParseTokenStatus(*status);
    if (!query.status) {
      return Status::InvalidArgument("status must be one of: active, expired, unsubscribed");
    }
  }
  if (const std::string* provider = r.Query("providerId")) {
    ASSIGN_OR_RETURN(const providers::ProviderSpec* spec,
                     RequirePushProvider(*provider, "providerId"));
    query.provider_id = std::string(spec->id());
  }
  if (const std::string* subscriber = r.Query("subscriberId")) {
    RETURN_IF_ERROR(CheckId(*subscriber, "subscriberId"));
    query.subscriber_id = *subscriber;
  }
  ASSIGN_OR_RETURN(store::Page<store::DeviceRecord> page, store_.ListDevices(query));
  return server::JsonReply(wire::CursorPageJson(page, wire::DeviceRecordJson));
}

}  // namespace herald::api
