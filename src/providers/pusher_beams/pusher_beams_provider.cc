#include "providers/pusher_beams/pusher_beams_provider.h"

#include "providers/recipient_batch.h"

namespace herald::providers {
namespace {

constexpr std::size_t kMaxUsers = 1000;           // per publish
constexpr std::size_t kMaxBody = 200 * 1024;      // a users publish's body
constexpr std::size_t kMaxContent = 64 * 1024;    // the three blocks; leaves room for users
constexpr std::int64_t kMaxTimeToLive = 2419200;  // four weeks, Beams' web maximum

// Novu's three blocks for one message, with the native blocks from overrides merged over them.
Result<std::string> Content(const PushMessage& message) {
  const Json& overrides = message.overrides;
  std::optional<std::string> sound, category, channel, click, color, icon, tag;
  std::optional<std::int64_t> badge, ttl;
  RETURN_IF_ERROR(ReadString(overrides, "sound", sound));
  RETURN_IF_ERROR(ReadString(overrides, "categoryId", category));
  RETURN_IF_ERROR(ReadString(overrides, "channelId", channel));
  RETURN_IF_ERROR(ReadString(overrides, "clickAction", click));
  RETURN_IF_ERROR(ReadString(overrides, "color", color));
  RETURN_IF_ERROR(ReadString(overrides, "icon", icon));
  RETURN_IF_ERROR(ReadString(overrides, "tag", tag));
  RETURN_IF_ERROR(ReadInteger(overrides, "badge", 0, 1 << 30, badge));
  RETURN_IF_ERROR(ReadInteger(overrides, "ttl", 0, kMaxTimeToLive, ttl));
  ASSIGN_OR_RETURN(OrderedJson data, PayloadWithDataOverride(message));

  OrderedJson alert = OrderedJson::object();
  if (!message.title.empty()) alert["title"] = message.title;
  alert["body"] = message.content;
  OrderedJson aps = {{"alert", std::move(alert)}};
  if (badge) aps["badge"] = *badge;
  if (category) aps["category"] = *category;
  if (sound) aps["sound"] = *sound;
  OrderedJson apns = {{"aps", std::move(aps)}};
  if (!data.empty()) apns["data"] = data;

  OrderedJson notification = OrderedJson::object();
  if (!message.title.empty()) notification["title"] = message.title;
  notification["body"] = message.content;
  OrderedJson web_notification = notification;
  if (channel) notification["android_channel_id"] = *channel;
  if (click) notification["click_action"] = *click;
  if (color) notification["color"] = *color;
  if (icon) notification["icon"] = *icon;
  if (sound) notification["sound"] = *sound;
  if (tag) notification["tag"] = *tag;
  OrderedJson fcm = {{"notification", std::move(notification)}};
  if (!data.empty()) fcm["data"] = data;
  if (ttl) fcm["time_to_live"] = *ttl;

  if (icon) web_notification["icon"] = *icon;
  OrderedJson web = {{"notification", std::move(web_notification)}};
  if (!data.empty()) web["data"] = std::move(data);
  if (ttl) web["time_to_live"] = *ttl;

  OrderedJson out = {{"apns", std::move(apns)}, {"fcm", std::move(fcm)}, {"web", std::move(web)}};
  for (const char* block : {"apns", "fcm", "web"}) {
    if (const Json* native = JsonMember(overrides, block)) {
      if (!native->is_object()) return OverrideError(block, "must be an object");
      out[block].merge_patch(OrderedJson(*native));
    }
    // Beams writes its own `pusher` member into the data it delivers, and refuses a publish
    // that has one.
    const OrderedJson& merged = out[block];
    auto data = merged.find("data");
    if (data != merged.end() && data->is_object() && data->contains("pusher")) {
      return Refusal("RESERVED_DATA_KEY", "Beams reserves the data member \"pusher\"");
    }
  }
  std::string text = DumpOrdered(out);
  RETURN_IF_ERROR(CheckContentSize("Pusher Beams", text.size(), kMaxContent));
  return text;
}

class PusherBeamsProvider final : public Provider {
 public:
  PusherBeamsProvider(std::string url, std::string secret)
      : url_(std::move(url)), secret_(std::move(secret)) {}

  std::size_t max_batch() const override { return kMaxUsers; }

  BatchPlan BuildBatch(std::span<const PushMessage* const> batch, const AuthToken&) const override {
    BatchPlan plan;
    for (RecipientGroup& group :
         GroupByContent(batch, {kMaxUsers, kMaxBody}, Content, plan.refused)) {
      http::Request request = Publish();
      request.body = WithMembers("\"users\":" + RecipientArray(batch, group), group.content, "");
      plan.requests.push_back({std::move(request), std::move(group.messages)});
    }
    return plan;
  }

  std::vector<Outcome> ClassifyBatch(const http::Outcome& reply,
                                     std::span<const PushMessage* const> messages) const override {
    Outcome outcome = Classify(reply);
    return std::vector<Outcome>(messages.size(), outcome);
  }

  // Beams answers for the whole publish (§6.4): its status and error title, never the
  // description.
  Outcome Classify(const http::Outcome& reply) const override {
    if (!reply.ok()) return ClassifyTransport(reply);
    const http::Response& response = reply.response;
    Outcome out = ClassifyHttpStatus(response);
    Json body = ReplyJson(response);
    if (out.verdict == Verdict::kDelivered) {
      if (const Json* id = JsonMember(body, "publishId"); id && id->is_string()) {
        out.provider_message_id = id->get<std::string>();
      }
      return out;
    }
    const std::string error = JsonString(JsonMember(body, "error"));
    out.detail = "Pusher Beams answered " + std::to_string(response.status);
    if (!error.empty()) out.detail += " " + error;
    if (const Json* text = JsonMember(body, "description"); text && text->is_string()) {
      out.detail += ": " + BodyExcerpt(text->get<std::string>());
    }
    // The secret key refused or missing, or an instance Beams does not know: every publish of
    // the integration would fail the same way.
    if (response.status == 401 || response.status == 403 || response.status == 404 ||
        (response.status == 400 && error == "Incomplete Request")) {
      out.verdict = Verdict::kFailedConfig;
    }
    return out;  // otherwise by status: 429/5xx retried, 400/413/422 failed
  }

  // Beams has no read-only call for a secret key. A publish to no users is refused for its
  // content (422) only once the instance and the key were accepted, and reaches nobody.
  Result<std::optional<http::Request>> BuildProbe(const AuthToken&) const override {
    http::Request request = Publish();
    request.body =
        R"({"users":[],"web":{"notification":{"title":"Herald","body":"connection test"}}})";
    return std::optional<http::Request>(std::move(request));
  }

  ProbeResult ReadProbe(const http::Outcome& reply) const override {
    if (!reply.ok()) return ProbeFromTransport(reply);
    ProbeResult result;
    const int status = reply.response.status;
    result.ok = status == 422 || (status >= 200 && status < 300);
    result.reason = result.ok ? "" : "HTTP_" + std::to_string(status);
    result.detail = result.ok ? "Pusher Beams accepted the instance and the secret key"
                              : Classify(reply).detail;
    return result;
  }

 private:
  http::Request Publish() const { return JsonApiRequest("POST", url_, "Bearer " + secret_); }

  std::string url_;
  std::string secret_;
};

}  // namespace

Result<std::unique_ptr<Provider>> NewPusherBeamsProvider(const Json& credentials) {
  const std::string instance = credentials.value("instanceId", "");
  std::string secret = credentials.value("secretKey", "");
  if (instance.empty() || secret.empty()) {
    return Status::InvalidArgument("pusher-beams credentials need instanceId and secretKey");
  }
  const std::string origin =
      ApiOrigin(credentials, "https://" + instance + ".pushnotifications.pusher.com");
  return std::unique_ptr<Provider>(new PusherBeamsProvider(
      origin + "/publish_api/v1/instances/" + instance + "/publishes/users", std::move(secret)));
}

}  // namespace herald::providers
