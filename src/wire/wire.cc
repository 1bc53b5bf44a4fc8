#include "wire/wire.h"

#include "providers/registry.h"

namespace herald::wire {
namespace {

void PutOpt(Json& out, const char* key, const std::optional<std::string>& value) {
  if (value) out[key] = *value;
}

// Novu's SDK validates channels[].providerId against a closed enum, so channels of providers it
// does not know (web-push) are listed under Herald's own `webPushChannels` key instead.
bool KnownToNovuSdk(std::string_view provider_id) {
  const providers::ProviderSpec* spec = providers::FindProvider(provider_id);
  return spec == nullptr || spec->known_to_novu_sdk();
}

Json ChannelJson(const store::SubscriberChannel& ch) {
  Json tokens = Json::array();
  for (const store::DeviceToken& t : ch.tokens) {
    if (t.status == store::TokenStatus::kActive) tokens.push_back(t.token);
  }
  Json credentials = {{"deviceTokens", std::move(tokens)}};
  PutOpt(credentials, "webhookUrl", ch.webhook_url);
  PutOpt(credentials, "channel", ch.channel);
  return {{"_integrationId", ch.integration_id},
          {"integrationIdentifier", ch.integration_identifier},
          {"providerId", ch.provider_id},
          {"credentials", std::move(credentials)}};
}

Json StepJson(const store::Workflow& w, const store::WorkflowStep& step) {
  Json values = Json::object();
  const Json& cv = step.control_values;
  if (cv.contains("title")) values["subject"] = cv["title"];
  for (const char* key : {"subject", "body", "skip"}) {
    if (cv.contains(key)) values[key] = cv[key];
  }
  return {{"_id", step.id},
          {"stepId", step.step_id},
          {"name", step.name},
          {"slug", step.step_id + "_" + step.id},
          {"type", step.type},
          {"origin", "external"},
          {"workflowId", w.workflow_id},
          {"workflowDatabaseId", w.id},
          {"controls", {{"values", values}}},
          {"controlValues", cv},
          {"variables", Json::object()}};
}

// The request carries {user?, workflow?}; the response reports {default, user}, where `default`
// is the workflow's own preference set (all channels enabled unless the workflow says otherwise).
Json PreferencesJson(const Json& requested) {
  Json defaults = {{"all", {{"enabled", true}, {"readOnly", false}}},
                   {"channels", {{"push", {{"enabled", true}}}}}};
  auto pick = [&](const char* key) -> Json {
    if (!requested.is_object()) return nullptr;
    auto it = requested.find(key);
    if (it == requested.end() || !it->is_object() || !it->contains("all") ||
        !(*it)["all"].is_object() || !it->contains("channels") || !(*it)["channels"].is_object()) {
      return nullptr;
    }
    return *it;
  };
  Json workflow = pick("workflow");
  return {{"default", workflow.is_null() ? defaults : workflow}, {"user", pick("user")}};
}

}  // namespace

Json IntegrationJson(const store::Integration& i, std::string_view organization_id) {
  const providers::ProviderSpec* spec = providers::FindProvider(i.provider_id);
  Json out = {
      {"_id", i.id},
      {"_environmentId", i.environment_id},
      {"_organizationId", std::string(organization_id)},
      {"name", i.name},
      {"identifier", i.identifier},
      {"providerId", i.provider_id},
      {"channel", i.channel},
      {"credentials", spec ? providers::MaskCredentials(*spec, i.credentials) : Json::object()},
      {"active", i.active},
      {"deleted", false},
      {"primary", false},
      {"priority", 0},
      {"conditions", i.conditions},
      {"createdAt", IsoTime(i.created_at)},
      {"updatedAt", IsoTime(i.updated_at)}};
  if (i.configurations.is_object() && !i.configurations.empty()) {
    out["configurations"] = i.configurations;
  }
  return out;
}

Json SubscriberJson(const store::Subscriber& s, std::string_view organization_id) {
  Json out = {{"_id", s.id},
              {"_organizationId", std::string(organization_id)},
              {"_environmentId", s.environment_id},
              {"subscriberId", s.subscriber_id},
              {"deleted", false},
              {"createdAt", IsoTime(s.created_at)},
              {"updatedAt", IsoTime(s.updated_at)},
              {"__v", 0}};
  const store::SubscriberProfile& p = s.profile;
  PutOpt(out, "firstName", p.first_name);
  PutOpt(out, "lastName", p.last_name);
  PutOpt(out, "email", p.email);
  PutOpt(out, "phone", p.phone);
  PutOpt(out, "avatar", p.avatar);
  PutOpt(out, "locale", p.locale);
  PutOpt(out, "timezone", p.timezone);
  if (p.data && p.data->is_object()) out["data"] = *p.data;
  Json channels = Json::array(), web_push = Json::array();
  for (const store::SubscriberChannel& ch : s.channels) {
    (KnownToNovuSdk(ch.provider_id) ? channels : web_push).push_back(ChannelJson(ch));
  }
  out["channels"] = std::move(channels);
  out["webPushChannels"] = std::move(web_push);
  out["topics"] = s.topics;
  return out;
}

namespace {

// One device token with its integration, as the devices routes show it.
Json DeviceJson(std::string_view provider_id, std::string_view integration_id,
                std::string_view integration_identifier, const store::DeviceToken& t) {
  Json device = {
      {"providerId", provider_id},
      {"_integrationId", integration_id},
      {"integrationIdentifier", integration_identifier},
      {"token", t.token},
      {"status", store::TokenStatusName(t.status)},
      {"createdAt", IsoTime(t.created_at)},
      {"lastActiveAt", t.last_active_at ? Json(IsoTime(*t.last_active_at)) : Json()},
      {"lastFailureReason", t.last_failure_reason ? Json(*t.last_failure_reason) : Json()},
      {"statusChangedAt", t.status_changed_at ? Json(IsoTime(*t.status_changed_at)) : Json()},
      {"registeredAt", IsoTime(t.registered_at.value_or(t.created_at))}};
  const providers::ProviderSpec* spec = providers::FindProvider(provider_id);
  if (std::optional<std::string> endpoint = spec ? spec->Endpoint(t.token) : std::nullopt) {
    device["endpoint"] = std::move(*endpoint);
  }
  return device;
}

// A token shown in a list of many: the first and last characters (Web Push: the endpoint's
// origin and its last characters), enough to tell tokens apart without listing them whole.
std::string MaskToken(std::string_view token) {
  constexpr std::size_t kShown = 6;
  if (token.size() <= 2 * kShown + 4) return std::string(token.substr(0, 4)) + "...";
  return std::string(token.substr(0, kShown)) + "..." +
         std::string(token.substr(token.size() - kShown));
}

}  // namespace

Json DevicesJson(const store::Subscriber& s) {
  Json out = Json::array();
  for (const store::SubscriberChannel& ch : s.channels) {
    for (const store::DeviceToken& t : ch.tokens) {
      out.push_back(DeviceJson(ch.provider_id, ch.integration_id, ch.integration_identifier, t));
    }
  }
  return out;
}

Json DeviceRecordJson(const store::DeviceRecord& d) {
  Json out = DeviceJson(d.provider_id, d.integration_id, d.integration_identifier, d.token);
  out["_id"] = d.id;
  out["subscriberId"] = d.subscriber_id;
  out["token"] = MaskToken(out.contains("endpoint") ? out["endpoint"].get<std::string>()
                                                     : d.token.token);
  out.erase("endpoint");
  return out;
}

Json TopicJson(const store::Topic& t) {
  Json out = {{"_id", t.id},
              {"key", t.key},
              {"createdAt", IsoTime(t.created_at)},
              {"updatedAt", IsoTime(t.updated_at)}};
  PutOpt(out, "name", t.name);
  if (t.data && t.data->is_object()) out["data"] = *t.data;
  return out;
}

Json TopicSubscriptionJson(const store::TopicSubscription& s) {
  Json topic = {{"_id", s.topic.id}, {"key", s.topic.key}};
  PutOpt(topic, "name", s.topic.name);
  Json subscriber = {{"_id", s.subscriber_pk}, {"subscriberId", s.subscriber_id}};
  PutOpt(subscriber, "firstName", s.subscriber_profile.first_name);
  PutOpt(subscriber, "lastName", s.subscriber_profile.last_name);
  PutOpt(subscriber, "email", s.subscriber_profile.email);
  PutOpt(subscriber, "avatar", s.subscriber_profile.avatar);
  return {{"_id", s.id},
          {"identifier", s.identifier},
          {"topic", std::move(topic)},
          {"subscriber", std::move(subscriber)},
          {"createdAt", IsoTime(s.created_at)},
          {"updatedAt", IsoTime(s.updated_at)}};
}

Json WorkflowJson(const store::Workflow& w) {
  Json steps = Json::array();
  for (const store::WorkflowStep& step : w.steps) steps.push_back(StepJson(w, step));
  Json out = {{"_id", w.id},
              {"workflowId", w.workflow_id},
              {"slug", w.workflow_id + "_" + w.id},
              {"name", w.name},
              {"description", w.description},
              {"tags", w.tags},
              {"active", w.active},
              {"status", w.active ? "ACTIVE" : "INACTIVE"},
              {"origin", "external"},
              {"severity", w.severity},
              {"steps", std::move(steps)},
              {"preferences", PreferencesJson(w.preferences)},
              {"createdAt", IsoTime(w.created_at)},
              {"updatedAt", IsoTime(w.updated_at)}};
  if (!w.payload_schema.is_null()) out["payloadSchema"] = w.payload_schema;
  return out;
}

Json WorkflowListItemJson(const store::Workflow& w) {
  Json steps = Json::array(), overviews = Json::array();
  for (const store::WorkflowStep& step : w.steps) {
    steps.push_back({{"slug", step.step_id + "_" + step.id}, {"type", step.type}});
    overviews.push_back(step.type);
  }
  return {{"_id", w.id},
          {"workflowId", w.workflow_id},
          {"slug", w.workflow_id + "_" + w.id},
          {"name", w.name},
          {"tags", w.tags},
          {"active", w.active},
          {"status", w.active ? "ACTIVE" : "INACTIVE"},
          {"origin", "external"},
          {"stepTypeOverviews", std::move(overviews)},
          {"steps", std::move(steps)},
          {"createdAt", IsoTime(w.created_at)},
          {"updatedAt", IsoTime(w.updated_at)}};
}

namespace {

// Novu's message status: sent | error | warning. Not yet final (pending, retrying) is a warning.
const char* NovuMessageStatus(const store::Message& m) {
  switch (m.state) {
    case store::DeliveryState::kDelivered:
      return "sent";
    case store::DeliveryState::kFailed:
      return "error";
    default:
      return "warning";
  }
}

std::string DeliveryStatus(const store::Message& m) {
  if (m.state == store::DeliveryState::kPending && m.attempts > 0) return "retrying";
  return store::DeliveryStateName(m.state);
}

// A message's payload as stored (planned by this version: always an object).
Json PayloadObject(const std::string& text) {
  Json value = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  return value.is_object() ? value : Json::object();
}

}  // namespace

Json MessageJson(const store::Message& m, std::string_view organization_id) {
  Json out = {{"_id", m.id},
              {"_environmentId", m.environment_id},
              {"_organizationId", std::string(organization_id)},
              {"_notificationId", m.notification_id},
              {"_subscriberId", m.subscriber_pk},
              {"subscriberId", m.subscriber_id},
              {"_templateId", m.workflow_pk},
              {"templateIdentifier", m.workflow_id},
              {"_integrationId", m.integration_id},
              {"transactionId", m.transaction_id},
              {"channel", "push"},
              {"providerId", m.provider_id},
              {"stepId", m.step_id},
              {"deviceTokens", Json::array({m.device_token})},
              {"title", m.title},
              {"content", m.content},
              {"payload", PayloadObject(m.payload_json)},
              {"overrides", m.overrides},
              {"status", NovuMessageStatus(m)},
              {"deliveryStatus", DeliveryStatus(m)},
              {"attempts", m.attempts},
              {"read", false},
              {"seen", false},
              {"cta", Json::object()},
              {"deliveredAt", Json::array()},
              {"createdAt", IsoTime(m.created_at)},
              {"updatedAt", IsoTime(m.updated_at)}};
  if (m.state == store::DeliveryState::kDelivered && m.last_attempt_at) {
    out["deliveredAt"].push_back(IsoTime(*m.last_attempt_at));
  }
  if (m.last_attempt_at) out["lastAttemptAt"] = IsoTime(*m.last_attempt_at);
  if (m.next_attempt_at) out["nextAttemptAt"] = IsoTime(*m.next_attempt_at);
  if (m.provider_response_id) out["providerResponseId"] = *m.provider_response_id;
  if (m.state != store::DeliveryState::kDelivered) {
    PutOpt(out, "errorId", m.error_id);
    PutOpt(out, "errorText", m.error_text);
  }
  return out;
}

Json NotificationJson(const store::NotificationWithMessages& item,
                      std::string_view organization_id) {
  const store::Notification& n = item.notification;
  Json jobs = Json::array();
  for (const store::Message& m : item.messages) {
    // The SDK validates job.providerId against a closed list.
    if (!KnownToNovuSdk(m.provider_id)) continue;
    const char* detail_status = m.state == store::DeliveryState::kDelivered ? "Success"
                                : m.state == store::DeliveryState::kFailed  ? "Failed"
                                                                            : "Pending";
    std::string detail = m.state == store::DeliveryState::kDelivered
                             ? "Message sent: " + m.provider_id
                             : m.error_text.value_or("Message queued: " + m.provider_id);
    Json execution = {{"_id", m.id + "-" + std::to_string(m.attempts)},
                      {"status", detail_status},
                      {"detail", detail},
                      {"isRetry", m.attempts > 1},
                      {"isTest", false},
                      {"providerId", m.provider_id},
                      {"raw", m.provider_response_id ? Json(*m.provider_response_id) : Json()},
                      {"source", "Internal"},
                      {"createdAt", IsoTime(m.last_attempt_at.value_or(m.created_at))}};
    const char* job_status = m.state == store::DeliveryState::kDelivered   ? "completed"
                             : m.state == store::DeliveryState::kFailed    ? "failed"
                             : m.state == store::DeliveryState::kCancelled ? "canceled"
                                                                           : "pending";
    jobs.push_back({{"_id", m.id},
                    {"type", "push"},
                    {"status", job_status},
                    {"providerId", m.provider_id},
                    {"executionDetails", Json::array({execution})},
                    {"step",
                     {{"_id", m.step_pk},
                      {"active", true},
                      {"filters", Json::array()},
                      {"_templateId", n.workflow_pk}}},
                    {"overrides", m.overrides},
                    {"updatedAt", IsoTime(m.updated_at)}});
  }
  return {
      {"_id", n.id},
      {"_environmentId", n.environment_id},
      {"_organizationId", std::string(organization_id)},
      {"_subscriberId", n.subscriber_pk},
      {"_templateId", n.workflow_pk},
      {"transactionId", n.transaction_id},
      {"createdAt", IsoTime(n.created_at)},
      {"channels", Json::array({"push"})},
      {"subscriber", {{"_id", n.subscriber_pk}, {"subscriberId", n.subscriber_id}}},
      {"template",
       {{"_id", n.workflow_pk},
        {"name", n.workflow_name},
        {"triggers",
         Json::array(
             {{{"type", "event"}, {"identifier", n.workflow_id}, {"variables", Json::array()}}})}}},
      {"jobs", std::move(jobs)},
      {"payload", n.payload},
      {"severity", n.severity},
      {"topics", n.topics},
      {"to", {{"subscriberId", n.subscriber_id}}}};
}

}  // namespace herald::wire
