// Model -> JSON in Novu's wire shapes (underscore-prefixed ids, ISO dates). Pure functions, shared
// by the API and by delivery (the push-webhook body carries the subscriber document).
#pragma once

#include "core/json.h"
#include "store/store.h"

namespace herald::wire {

Json IntegrationJson(const store::Integration& integration, std::string_view organization_id);
Json SubscriberJson(const store::Subscriber& subscriber, std::string_view organization_id);
Json DevicesJson(const store::Subscriber& subscriber);
// A row of GET /v1/devices: the token masked, with its subscriber.
Json DeviceRecordJson(const store::DeviceRecord& device);
Json TopicJson(const store::Topic& topic);
Json TopicSubscriptionJson(const store::TopicSubscription& subscription);
Json WorkflowJson(const store::Workflow& workflow);
Json WorkflowListItemJson(const store::Workflow& workflow);
// A message as GET /v1/messages shows it: Novu's fields plus Herald's delivery record
// (deliveryStatus, attempts, lastAttemptAt).
Json MessageJson(const store::Message& message, std::string_view organization_id);
// An activity-feed item (GET /v1/notifications) with one job per message.
Json NotificationJson(const store::NotificationWithMessages& item,
                      std::string_view organization_id);

// An event webhook's body (Novu's outbound webhook shape): {id, type, object, timestamp,
// environmentId, data}.
std::string EventBody(const store::DeliveryEvent& event, std::string_view organization_id);
// An endpoint as the API lists it: the secret masked unless `with_secret` (only on creation).
Json WebhookEndpointJson(const store::WebhookEndpoint& endpoint, bool with_secret);

// {data, next, previous, totalCount, totalCountCapped}
template <typename T, typename F>
Json CursorPageJson(const store::Page<T>& page, F&& to_json) {
  Json data = Json::array();
  for (const T& item : page.items) data.push_back(to_json(item));
  return {{"data", std::move(data)},
          {"next", page.next ? Json(*page.next) : Json()},
          {"previous", page.previous ? Json(*page.previous) : Json()},
          {"totalCount", page.total_count},
          {"totalCountCapped", page.total_count_capped}};
}

}  // namespace herald::wire
