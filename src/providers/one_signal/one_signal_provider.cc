#include "providers/one_signal/one_signal_provider.h"

#include <algorithm>
#include <unordered_map>

#include "crypto/crypto.h"
#include "providers/recipient_batch.h"

namespace herald::providers {
namespace {

constexpr std::string_view kLegacyOrigin = "https://onesignal.com";
constexpr std::string_view kCurrentOrigin = "https://api.onesignal.com";
constexpr std::size_t kMaxRecipients = 2000;  // OneSignal's limit per targeting array
constexpr std::size_t kMaxData = 2048;        // OneSignal's limit for `data`
// A notification's own fields; a push payload is 4 KB at most on every platform, so a larger
// one is a mistake to refuse here rather than a request to send.
constexpr std::size_t kMaxContent = 32 * 1024;

// Fields of OneSignal's Notification taken from the overrides as they are (after the ones Novu
// maps), for what Novu's names do not cover.
// clang-format off
constexpr std::string_view kNativeFields[] = {
    "url", "web_url", "app_url", "big_picture", "chrome_web_image", "ios_attachments",
    "chrome_web_icon", "chrome_web_badge", "small_icon", "large_icon", "collapse_id",
    "web_push_topic", "thread_id", "android_group", "ttl", "priority", "content_available",
    "ios_interruption_level", "buttons", "web_buttons", "ios_sound", "android_channel_id",
    "ios_category", "mutable_content", "ios_badgeType", "ios_badgeCount", "android_accent_color",
    "ios_relevance_score"};
// clang-format on

// The notification for one message, without app id, targets and idempotency key: Novu's mapping
// (novu-api.md §5.1) plus the native fields above.
Result<std::string> Content(const PushMessage& message) {
  const Json& overrides = message.overrides;
  std::optional<std::string> subtitle, sound, channel, icon, category;
  std::optional<bool> mutable_content;
  std::optional<std::int64_t> badge;
  RETURN_IF_ERROR(ReadString(overrides, "subtitle", subtitle));
  RETURN_IF_ERROR(ReadString(overrides, "sound", sound));
  RETURN_IF_ERROR(ReadString(overrides, "channelId", channel));
  RETURN_IF_ERROR(ReadString(overrides, "icon", icon));
  RETURN_IF_ERROR(ReadString(overrides, "categoryId", category));
  RETURN_IF_ERROR(ReadBool(overrides, "mutableContent", mutable_content));
  RETURN_IF_ERROR(ReadInteger(overrides, "badge", 0, 1 << 30, badge));
  const Json* available = JsonMember(overrides, "content_available");
  const bool silent = available && available->is_boolean() && available->get<bool>();
  if (message.content.empty() && !silent) {
    return Refusal("MISSING_CONTENT", "OneSignal needs a message body (contents.en)");
  }

  OrderedJson out = OrderedJson::object();
  if (!message.title.empty()) out["headings"] = {{"en", message.title}};
  if (!message.content.empty()) out["contents"] = {{"en", message.content}};
  if (subtitle) out["subtitle"] = {{"en", *subtitle}};
  ASSIGN_OR_RETURN(OrderedJson data, PayloadWithDataOverride(message));
  if (!data.empty()) {
    const std::string text = DumpOrdered(data);
    if (text.size() > kMaxData) {
      return Refusal("PAYLOAD_TOO_LARGE",
                     "OneSignal takes at most 2048 bytes of data; the payload "
                     "is " +
                         std::to_string(text.size()));
    }
    out["data"] = std::move(data);
  }
  // Novu always adds one to the badge; a number in overrides.badge sets it instead.
  out["ios_badgeType"] = badge ? "SetTo" : "Increase";
  out["ios_badgeCount"] = badge ? *badge : 1;
  if (sound) {
    out["ios_sound"] = *sound;
    out["android_sound"] = *sound;
  }
  if (mutable_content) out["mutable_content"] = *mutable_content;
  if (channel) out["android_channel_id"] = *channel;
  if (icon) {
    for (const char* key : {"small_icon", "large_icon", "chrome_web_icon", "firefox_icon"}) {
      out[key] = *icon;
    }
  }
  if (category) out["ios_category"] = *category;
  for (std::string_view key : kNativeFields) {
    if (const Json* value = JsonMember(overrides, key)) out[std::string(key)] = *value;
  }
  std::string text = DumpOrdered(out);
  RETURN_IF_ERROR(CheckContentSize("OneSignal", text.size(), kMaxContent));
  return text;
}

// The ids a 200 reply says were invalid, by token, with the typed reason for each.
std::unordered_map<std::string, std::string_view> InvalidIds(const Json* errors) {
  std::unordered_map<std::string, std::string_view> out;
  if (!errors) return out;
  auto take = [&](const Json* list, std::string_view reason) {
    if (!list || !list->is_array()) return;
    for (const Json& id : *list) {
      if (id.is_string()) out.emplace(id.get<std::string>(), reason);
    }
  };
  take(JsonMember(*errors, "invalid_player_ids"), "INVALID_PLAYER_ID");
  take(JsonMember(*errors, "invalid_external_user_ids"), "INVALID_EXTERNAL_ID");
  if (const Json* aliases = JsonMember(*errors, "invalid_aliases")) {
    take(JsonMember(*aliases, "external_id"), "INVALID_EXTERNAL_ID");
  }
  return out;
}

class OneSignalProvider final : public Provider {
 public:
  struct Config {
    std::string app_id, api_key, origin;
    bool external_id = false;  // apiVersion externalId
  };
  explicit OneSignalProvider(Config config) : config_(std::move(config)) {}

  std::size_t max_batch() const override { return kMaxRecipients; }

  BatchPlan BuildBatch(std::span<const PushMessage* const> batch, const AuthToken&) const override {
    BatchPlan plan;
    std::vector<RecipientGroup> groups =
        GroupByContent(batch, {kMaxRecipients, 0}, Content, plan.refused);
    std::string app_id = "\"app_id\":";
    AppendJsonString(app_id, config_.app_id);
    std::vector<const PushMessage*> carried;
    for (RecipientGroup& group : groups) {
      carried.clear();
      for (std::size_t index : group.messages) carried.push_back(batch[index]);
      const std::string targets = RecipientArray(batch, group);
      std::string leading = app_id;
      leading += config_.external_id ? ",\"include_aliases\":{\"external_id\":" + targets +
                                           "},\"target_channel\":\"push\""
                                     : ",\"include_player_ids\":" + targets;
      std::string trailing = "\"idempotency_key\":\"" + OneSignalIdempotencyKey(carried) + "\"";
      http::Request request = Request("POST", Path());
      request.body = WithMembers(leading, group.content, trailing);
      plan.requests.push_back({std::move(request), std::move(group.messages)});
    }
    return plan;
  }

  std::vector<Outcome> ClassifyBatch(const http::Outcome& reply,
                                     std::span<const PushMessage* const> messages) const override {
    const std::size_t n = messages.size();
    // 401/403: the API key (or the app it belongs to) is refused.
    Outcome status = RequestOutcome(reply, "OneSignal", {401, 403});
    if (status.verdict != Verdict::kDelivered) return std::vector<Outcome>(n, status);
    if (reply.response.body_truncated) {
      // Taken (2xx), but the per-id results are past what was read.
      status.detail = "OneSignal accepted the request; its reply was too large to read per token";
      return std::vector<Outcome>(n, status);
    }
    Json body = ReplyJson(reply.response);
    if (!body.is_object()) {
      // Whether it was sent is unknown; the resend carries the same idempotency key, so OneSignal
      // answers it with the first result instead of sending twice.
      return std::vector<Outcome>(
          n, Outcome{Verdict::kRetry, "UNREADABLE_REPLY", "OneSignal answered 2xx without JSON"});
    }
    return PerToken(body, messages);
  }

  // GET the app's notification list (one entry): read-only, it takes the same key and app id as
  // a send, and reaches nobody.
  Result<std::optional<http::Request>> BuildProbe(const AuthToken&) const override {
    http::Request request = Request("GET", Path() + "?app_id=" + config_.app_id + "&limit=1");
    return std::optional<http::Request>(std::move(request));
  }

  ProbeResult ReadProbe(const http::Outcome& reply) const override {
    return ProbeByStatus(reply, "OneSignal", "OneSignal accepted the API key for this app");
  }

 private:
  std::string Path() const {
    return config_.origin + (config_.external_id ? "/notifications" : "/api/v1/notifications");
  }

  http::Request Request(std::string method, std::string url) const {
    return JsonApiRequest(std::move(method), std::move(url),
                          (config_.external_id ? "Key " : "Basic ") + config_.api_key);
  }

  // A 200's body: `id` is the notification (empty: nothing was sent); `errors` is either the ids
  // that were invalid (an object of lists) or, with an empty id, why nobody was reached (an
  // array). Read by shape only, never by the texts.
  static std::vector<Outcome> PerToken(const Json& body,
                                       std::span<const PushMessage* const> messages) {
    const std::string notification = JsonString(JsonMember(body, "id"));
    const Json* errors = JsonMember(body, "errors");
    const auto invalid = InvalidIds(errors);
    const bool nobody_subscribed =
        notification.empty() && errors && errors->is_array() && !errors->empty();
    std::vector<Outcome> out;
    out.reserve(messages.size());
    for (const PushMessage* message : messages) {
      Outcome outcome;
      if (auto it = invalid.find(message->device_token); it != invalid.end()) {
        outcome = {Verdict::kFailedRemoveToken, std::string(it->second),
                   "OneSignal lists this id as invalid"};
      } else if (nobody_subscribed) {
        outcome = {Verdict::kFailedRemoveToken, "NOT_SUBSCRIBED",
                   "OneSignal sent nothing: no included id is subscribed"};
        outcome.unsubscribed = true;
      } else if (notification.empty()) {
        outcome = {Verdict::kFailed, "NOT_SENT", "OneSignal created no notification"};
      } else {
        outcome.provider_message_id = notification;
      }
      out.push_back(std::move(outcome));
    }
    return out;
  }

  Config config_;
};

}  // namespace

std::string OneSignalIdempotencyKey(std::span<const PushMessage* const> messages) {
  std::vector<std::string_view> ids;
  ids.reserve(messages.size());
  for (const PushMessage* message : messages) ids.push_back(message->message_id);
  std::sort(ids.begin(), ids.end());
  std::string joined;
  for (std::string_view id : ids) joined.append(id).push_back('\n');
  std::string hex = crypto::Hex(crypto::Sha256(joined)).substr(0, 32);
  // Shaped as a version-4 UUID (version nibble 4, variant 10xx): what OneSignal's SDK generates,
  // so any UUID check OneSignal makes accepts it.
  hex[12] = '4';
  hex[16] = "89ab"[std::string_view("0123456789abcdef").find(hex[16]) & 3];
  return hex.substr(0, 8) + '-' + hex.substr(8, 4) + '-' + hex.substr(12, 4) + '-' +
         hex.substr(16, 4) + '-' + hex.substr(20, 12);
}

Result<std::unique_ptr<Provider>> NewOneSignalProvider(const Json& credentials) {
  OneSignalProvider::Config config;
  config.app_id = credentials.value("applicationId", "");
  config.api_key = credentials.value("apiKey", "");
  const Json* version = JsonMember(credentials, "apiVersion");
  config.external_id =
      version && version->is_string() && version->get<std::string>() == "externalId";
  config.origin = ApiOrigin(credentials, config.external_id ? kCurrentOrigin : kLegacyOrigin);
  if (config.app_id.empty() || config.api_key.empty()) {
    return Status::InvalidArgument("one-signal credentials need applicationId and apiKey");
  }
  return std::unique_ptr<Provider>(new OneSignalProvider(std::move(config)));
}

}  // namespace herald::providers
