#include "providers/pushpad/pushpad_provider.h"

#include <unordered_set>

#include "providers/recipient_batch.h"

namespace herald::providers {
namespace {

constexpr std::string_view kDefaultOrigin = "https://pushpad.xyz";
constexpr std::string_view kApiPrefix = "/api/v1";
// Pushpad sets no limit on uids per request. A thousand keeps a request and its reply (which
// lists them back) far below the 1 MiB a reply may have here, and bounds what one refused
// request fails; a topic of 10,000 is still ten requests.
constexpr std::size_t kMaxUids = 1000;
// A web push payload is 4 KB; a larger notification is a mistake to refuse here.
constexpr std::size_t kMaxContent = 32 * 1024;

Status CheckActions(const Json& actions) {
  if (!actions.is_array()) return OverrideError("actions", "must be an array");
  for (const Json& action : actions) {
    if (!action.is_object() || !JsonMember(action, "title") || !action["title"].is_string()) {
      return OverrideError("actions", "must hold objects with a string title");
    }
  }
  return Status::Ok();
}

Status CheckMetrics(const Json& metrics) {
  if (!metrics.is_array() || metrics.size() > 3) {
    return OverrideError("custom_metrics", "must be an array of at most 3 strings");
  }
  for (const Json& metric : metrics) {
    if (!metric.is_string()) {
      return OverrideError("custom_metrics", "must be an array of at most 3 strings");
    }
  }
  return Status::Ok();
}

// The notification object for one message: body and title from the step, Pushpad's own fields
// from the overrides (and url / icon / image for target_url / icon_url / image_url).
Result<std::string> Content(const PushMessage& message) {
  const Json& overrides = message.overrides;
  if (message.content.empty()) {
    return Refusal("MISSING_CONTENT", "Pushpad needs a notification body");
  }
  if (JsonMember(overrides, "send_at")) {
    // A scheduled notification's reply does not say which uids are subscribed.
    return OverrideError("send_at", "is not supported (schedule with the workflow instead)");
  }
  OrderedJson out = {{"body", message.content}};
  if (!message.title.empty()) out["title"] = message.title;
  struct Alias {
    std::string_view key, field;
  };
  for (const Alias& alias :
       {Alias{"url", "target_url"}, Alias{"icon", "icon_url"}, Alias{"image", "image_url"},
        Alias{"target_url", "target_url"}, Alias{"icon_url", "icon_url"},
        Alias{"badge_url", "badge_url"}, Alias{"image_url", "image_url"},
        Alias{"custom_data", "custom_data"}}) {
    std::optional<std::string> value;
    RETURN_IF_ERROR(ReadString(overrides, alias.key, value));
    if (value) out[std::string(alias.field)] = *value;
  }
  std::optional<std::int64_t> ttl;
  RETURN_IF_ERROR(ReadInteger(overrides, "ttl", 0, std::int64_t{1} << 31, ttl));
  if (ttl) out["ttl"] = *ttl;
  for (const char* flag : {"require_interaction", "silent", "urgent", "starred"}) {
    std::optional<bool> value;
    RETURN_IF_ERROR(ReadBool(overrides, flag, value));
    if (value) out[flag] = *value;
  }
  if (const Json* actions = JsonMember(overrides, "actions")) {
    RETURN_IF_ERROR(CheckActions(*actions));
    out["actions"] = *actions;
  }
  if (const Json* metrics = JsonMember(overrides, "custom_metrics")) {
    RETURN_IF_ERROR(CheckMetrics(*metrics));
    out["custom_metrics"] = *metrics;
  }
  std::string text = DumpOrdered(out);
  RETURN_IF_ERROR(CheckContentSize("Pushpad", text.size(), kMaxContent));
  return text;
}

class PushpadProvider final : public Provider {
 public:
  PushpadProvider(std::string project_url, std::string authorization)
      : project_url_(std::move(project_url)), authorization_(std::move(authorization)) {}

  std::size_t max_batch() const override { return kMaxUids; }

  BatchPlan BuildBatch(std::span<const PushMessage* const> batch, const AuthToken&) const override {
    BatchPlan plan;
    for (RecipientGroup& group : GroupByContent(batch, {kMaxUids, 0}, Content, plan.refused)) {
      http::Request request = Request("POST", project_url_ + "/notifications");
      request.body =
          "{\"notification\":" + group.content + ",\"uids\":" + RecipientArray(batch, group) + "}";
      plan.requests.push_back({std::move(request), std::move(group.messages)});
    }
    return plan;
  }

  std::vector<Outcome> ClassifyBatch(const http::Outcome& reply,
                                     std::span<const PushMessage* const> messages) const override {
    const std::size_t n = messages.size();
    // The token refused (401), billing (402), a project of another account (403) or none at all
    // (404: the project id is the only variable part of the path).
    Outcome status = RequestOutcome(reply, "Pushpad", {401, 402, 403, 404});
    if (status.verdict != Verdict::kDelivered) return std::vector<Outcome>(n, status);
    const http::Response& response = reply.response;
    Json body = ReplyJson(response);
    if (const Json* id = JsonMember(body, "id")) {
      status.provider_message_id = id->is_string() ? id->get<std::string>() : DumpJson(*id);
    }
    const Json* listed = JsonMember(body, "uids");
    if (!listed || !listed->is_array()) {
      // No list to read (a reply too large to keep, or none sent): created, so delivered.
      if (response.body_truncated) status.detail = "Pushpad's reply was too large to read per uid";
      return std::vector<Outcome>(n, status);
    }
    std::unordered_set<std::string> subscribed;
    for (const Json& uid : *listed) {
      if (uid.is_string()) subscribed.insert(uid.get<std::string>());
    }
    std::vector<Outcome> out;
    out.reserve(n);
    for (const PushMessage* message : messages) {
      if (subscribed.contains(message->device_token)) {
        out.push_back(status);
      } else {
        out.push_back({Verdict::kFailed, "NOT_SUBSCRIBED",
                       "Pushpad has no subscription for this uid (kept: the user may subscribe)"});
      }
    }
    return out;
  }

  // The project itself (GET /projects/{id}): read-only, the same token and project as a send.
  Result<std::optional<http::Request>> BuildProbe(const AuthToken&) const override {
    return std::optional<http::Request>(Request("GET", project_url_));
  }

  ProbeResult ReadProbe(const http::Outcome& reply) const override {
    return ProbeByStatus(reply, "Pushpad", "Pushpad accepted the token for this project");
  }

 private:
  http::Request Request(std::string method, std::string url) const {
    return JsonApiRequest(std::move(method), std::move(url), authorization_);
  }

  std::string project_url_;  // .../api/v1/projects/{id}
  std::string authorization_;
};

}  // namespace

Result<std::unique_ptr<Provider>> NewPushpadProvider(const Json& credentials) {
  const std::string project = credentials.value("applicationId", "");
  const std::string token = credentials.value("apiKey", "");
  if (project.empty() || token.empty()) {
    return Status::InvalidArgument("pushpad credentials need apiKey and applicationId");
  }
  std::string base = ApiOrigin(credentials, kDefaultOrigin);
  if (base.ends_with(kApiPrefix)) base.resize(base.size() - kApiPrefix.size());
  // The documented scheme: Token token="...", a quoted-string (RFC 9110 §5.6.4).
  std::string authorization = "Token token=\"";
  for (char c : token) {
    if (c == '"' || c == '\\') authorization += '\\';
    authorization += c;
  }
  authorization += '"';
  return std::unique_ptr<Provider>(new PushpadProvider(
      base + std::string(kApiPrefix) + "/projects/" + project, std::move(authorization)));
}

}  // namespace herald::providers
