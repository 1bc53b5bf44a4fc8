// Event webhook bodies and endpoints in Novu's outbound webhook shapes (novu-api.md §5).
#include <string>

#include "wire/wire.h"

namespace herald::wire {
namespace {

// Novu's `data.error.push.reason`: the token is invalid, or anything else.
const char* PushReason(const store::DeliveryEvent& e) {
  return e.token_invalid ? "token_invalid" : "generic_error";
}

Json MessageObject(const store::DeliveryEvent& e, std::string_view organization_id) {
  Json object = MessageJson(*e.message, organization_id);
  // The trigger's payload and overrides stay with the application that sent them; the event
  // says what happened to the message.
  object.erase("payload");
  object.erase("overrides");
  if (e.type != store::kEventMessageFailed) object["deviceToken"] = e.message->device_token;
  return object;
}

}  // namespace

std::string EventBody(const store::DeliveryEvent& e, std::string_view organization_id) {
  Json data = Json::object();
  const bool device = e.type == store::kEventDeviceRemoved;
  if (device) {
    Json object = {{"subscriberId", e.subscriber_id},
                   {"providerId", e.provider_id},
                   {"_integrationId", e.integration_id},
                   {"deviceToken", e.device_token},
                   {"status", store::TokenStatusName(e.token_status)},
                   {"reason", e.reason},
                   {"removedAt", IsoTime(e.at)}};
    if (e.message) {
      object["_messageId"] = e.message->id;
      object["transactionId"] = e.message->transaction_id;
    }
    data["object"] = std::move(object);
  } else if (e.message) {
    data["object"] = MessageObject(e, organization_id);
    if (e.type == store::kEventMessageFailed) {
      data["error"] = {{"push", {{"reason", PushReason(e)},
                                 {"deviceToken", e.message->device_token}}},
                       {"message", e.message->error_text.value_or("")},
                       {"code", e.message->error_id.value_or("")}};
    }
  }
  Json body = {{"id", e.id},
               {"type", e.type},
               {"object", device ? "device" : "message"},
               {"timestamp", IsoTime(e.at)},
               {"environmentId", e.environment_id},
               {"data", std::move(data)}};
  return DumpJson(body);
}

Json WebhookEndpointJson(const store::WebhookEndpoint& e, bool with_secret) {
  return {{"_id", e.id},
          {"_environmentId", e.environment_id},
          {"url", e.url},
          {"eventTypes", e.event_types},
          {"secret", with_secret ? e.secret : e.secret.substr(0, 6) + "****"},
          {"createdAt", IsoTime(e.created_at)}};
}

}  // namespace herald::wire
