#include "providers/web_push/web_push_provider.h"

#include <array>

#include "core/url.h"
#include "crypto/crypto.h"
#include "crypto/ece.h"
#include "crypto/jwt.h"
#include "crypto/keys.h"

namespace herald::providers {
namespace {

constexpr std::int64_t kDefaultTtlSeconds = 2419200;  // four weeks, as the web-push library
constexpr std::int64_t kMaxTtlSeconds = 2592000;       // 30 days: what push services accept
// VAPID tokens may live 24 hours; Herald signs them for 12 and replaces them an hour early.
constexpr std::int64_t kJwtLifetimeMs = 12 * 3600 * 1000;
constexpr std::int64_t kJwtRefreshMarginMs = 3600 * 1000;

bool IsBase64UrlChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_';
}

// The subscription a device token holds (its canonical form, see the web-push spec).
struct Subscription {
  std::string endpoint;
  std::string p256dh;  // 65 raw bytes
  std::string auth;    // 16 raw bytes
};

Result<Subscription> ReadSubscription(std::string_view token) {
  std::string error;
  std::optional<Json> json = ParseJson(token, &error);
  if (!json || !json->is_object() || !(*json)["endpoint"].is_string() ||
      !(*json)["keys"].is_object()) {
    return Refusal("INVALID_SUBSCRIPTION", "device token is not a push subscription");
  }
  Subscription sub;
  sub.endpoint = (*json)["endpoint"].get<std::string>();
  const Json& keys = (*json)["keys"];
  std::optional<std::string> p256dh =
      keys.contains("p256dh") && keys["p256dh"].is_string()
          ? crypto::Base64UrlDecode(keys["p256dh"].get_ref<const std::string&>())
          : std::nullopt;
  std::optional<std::string> auth =
      keys.contains("auth") && keys["auth"].is_string()
          ? crypto::Base64UrlDecode(keys["auth"].get_ref<const std::string&>())
          : std::nullopt;
  if (!p256dh || !auth) {
    return Refusal("INVALID_SUBSCRIPTION", "push subscription keys are not base64url");
  }
  sub.p256dh = std::move(*p256dh);
  sub.auth = std::move(*auth);
  return sub;
}

std::string OriginOf(const Url& url) {
  bool default_port = (url.scheme == "https" && url.port == 443) ||
                      (url.scheme == "http" && url.port == 80);
  std::string host = url.host.find(':') != std::string::npos ? "[" + url.host + "]" : url.host;
  return url.scheme + "://" + host + (default_port ? "" : ":" + std::to_string(url.port));
}

const Json* Member(const Json& object, std::string_view key) {
  if (!object.is_object()) return nullptr;
  auto it = object.find(key);
  return it == object.end() || it->is_null() ? nullptr : &*it;
}

Status OverrideError(std::string_view key, std::string_view problem) {
  return Refusal("INVALID_OVERRIDES",
                 "overrides." + std::string(key) + " " + std::string(problem));
}

// The request headers the overrides ask for: TTL, Urgency, Topic.
Result<http::Headers> PushHeaders(const Json& overrides) {
  std::int64_t ttl = kDefaultTtlSeconds;
  if (const Json* value = Member(overrides, "ttl")) {
    if (!value->is_number_integer() || value->get<std::int64_t>() < 0 ||
        value->get<std::int64_t>() > kMaxTtlSeconds) {
      return OverrideError("ttl", "must be whole seconds from 0 to 2592000");
    }
    ttl = value->get<std::int64_t>();
  }
  http::Headers headers = {{"TTL", std::to_string(ttl)}};
  if (const Json* value = Member(overrides, "urgency")) {
    static constexpr std::array<std::string_view, 4> kUrgencies = {"very-low", "low", "normal",
                                                                   "high"};
    if (!value->is_string() || std::find(kUrgencies.begin(), kUrgencies.end(),
                                         value->get_ref<const std::string&>()) == kUrgencies.end()) {
      return OverrideError("urgency", "must be very-low, low, normal or high");
    }
    headers.emplace_back("Urgency", value->get<std::string>());
  }
  if (const Json* value = Member(overrides, "topic")) {
    if (!value->is_string() || value->get_ref<const std::string&>().empty() ||
        value->get_ref<const std::string&>().size() > 32 ||
        !std::all_of(value->get_ref<const std::string&>().begin(),
                     value->get_ref<const std::string&>().end(), IsBase64UrlChar)) {
      return OverrideError("topic", "must be 1 to 32 characters of the base64url alphabet");
    }
    headers.emplace_back("Topic", value->get<std::string>());
  }
  return headers;
}

class WebPushProvider final : public Provider, public Authenticator {
 public:
  WebPushProvider(crypto::PrivateKey key, std::string public_key, std::string subject,
                  std::optional<Url> base)
      : key_(std::move(key)),
        public_key_(std::move(public_key)),
        subject_(std::move(subject)),
        base_(std::move(base)) {}

  const Authenticator* auth() const override { return this; }

  // ---- Authenticator: one VAPID JWT per push-service origin ---------------------------------
  Kind kind() const override { return Kind::kMinted; }
  std::string CredentialKey() const override { return "web-push:" + public_key_; }
  std::string Scope(const PushMessage& message) const override {
    Result<Subscription> sub = ReadSubscription(message.device_token);
    if (!sub.ok()) return {};
    std::optional<Url> url = Target(sub->endpoint);
    return url ? OriginOf(*url) : std::string();
  }
  Result<AuthToken> Mint(std::string_view audience, EpochMs now) const override {
    if (audience.empty()) return Refusal("INVALID_SUBSCRIPTION", "push endpoint has no origin");
    const EpochMs expires = now + kJwtLifetimeMs;
    OrderedJson claims = {{"aud", std::string(audience)},
                          {"exp", expires / 1000},
                          {"sub", subject_}};
    ASSIGN_OR_RETURN(std::string jwt,
                     crypto::SignJwt(key_, R"({"typ":"JWT","alg":"ES256"})", claims.dump()));
    return AuthToken{std::move(jwt), now, expires - kJwtRefreshMarginMs};
  }

  // ---- Provider -----------------------------------------------------------------------------
  Result<http::Request> BuildRequest(const PushMessage& message,
                                     const AuthToken& token) const override {
    ASSIGN_OR_RETURN(Subscription sub, ReadSubscription(message.device_token));
    std::optional<Url> url = Target(sub.endpoint);
    if (!url) return Refusal("INVALID_SUBSCRIPTION", "push endpoint is not an http(s) URL");
    ASSIGN_OR_RETURN(http::Headers headers, PushHeaders(message.overrides));
    ASSIGN_OR_RETURN(std::string plaintext, WebPushPlaintext(message));
    if (plaintext.size() > crypto::kWebPushMaxPlaintext) {
      return Refusal("PAYLOAD_TOO_LARGE",
                     "the encrypted payload would exceed the 4096 bytes push services accept (" +
                         std::to_string(plaintext.size()) + " bytes of JSON, at most " +
                         std::to_string(crypto::kWebPushMaxPlaintext) + ")");
    }
    Result<std::string> body = crypto::WebPushEncrypt(sub.p256dh, sub.auth, plaintext);
    if (!body.ok()) return Refusal("INVALID_SUBSCRIPTION", body.status().message());

    http::Request request;
    request.method = "POST";
    request.url = RequestUrl(sub.endpoint, *url);
    request.body = std::move(*body);
    request.headers = std::move(headers);
    request.headers.emplace_back("Content-Encoding", "aes128gcm");
    request.headers.emplace_back("Content-Type", "application/octet-stream");
    request.headers.emplace_back("Authorization", "vapid t=" + token.value + ", k=" + public_key_);
    return request;
  }

  // RFC 8030 §5-§8 and what push services answer in practice (protocols.md §3.1).
  Outcome Classify(const http::Outcome& reply) const override {
    Outcome out = ClassifyTransport(reply);
    if (!reply.ok()) return out;
    const int status = reply.response.status;
    if (status >= 200 && status < 300) {
      out.provider_message_id = std::string(reply.response.Header("location"));
      return out;
    }
    switch (status) {
      case 404:
      case 410:  // the browser unsubscribed, or the subscription expired
        out.verdict = Verdict::kFailedRemoveToken;
        out.unsubscribed = true;
        out.reason = status == 404 ? "SUBSCRIPTION_NOT_FOUND" : "SUBSCRIPTION_GONE";
        break;
      case 413:
        out.verdict = Verdict::kFailed;
        out.reason = "PAYLOAD_TOO_LARGE";
        break;
      case 400:
      case 401:
      case 403:  // refused our VAPID token or headers: the same for every subscription
        out.verdict = Verdict::kFailedConfig;
        out.reason = status == 400 ? "BAD_REQUEST" : "VAPID_REFUSED";
        break;
      case 406:  // Windows Notification Service throttles with 406
        out.verdict = Verdict::kRetry;
        break;
      default:
        break;  // 429 and 5xx retried, other 4xx failed (ClassifyTransport)
    }
    return out;
  }

  // The key pair was checked when the integration was saved; nothing to ask a push service
  // (every browser subscription has its own).
  bool probe_uses_token() const override { return false; }
  Result<std::optional<http::Request>> BuildProbe(const AuthToken&) const override {
    if (crypto::Base64UrlDecode(public_key_) != key_.P256PublicPoint()) {
      return Refusal("KEY_MISMATCH", "the VAPID private key does not match the public key");
    }
    return std::optional<http::Request>();
  }

 private:
  // Where a request for `endpoint` goes: the endpoint itself, or its path on `baseUrl`.
  std::optional<Url> Target(const std::string& endpoint) const {
    std::optional<Url> url = ParseHttpUrl(endpoint);
    if (!url || !base_) return url;
    Url moved = *base_;
    std::string prefix = base_->path;  // "/" when the base has no path
    while (!prefix.empty() && prefix.back() == '/') prefix.pop_back();
    moved.path = prefix + url->path;
    moved.query = url->query;
    return moved;
  }
  std::string RequestUrl(const std::string& endpoint, const Url& target) const {
    if (!base_) return endpoint;
    return OriginOf(target) + target.path + (target.query.empty() ? "" : "?" + target.query);
  }

  crypto::PrivateKey key_;
  std::string public_key_;  // base64url, as configured: the `k` parameter
  std::string subject_;
  std::optional<Url> base_;
};

}  // namespace

Result<std::string> WebPushPlaintext(const PushMessage& message) {
  const Json& overrides = message.overrides;
  OrderedJson data = DevicePayload(message);
  if (const Json* extra = Member(overrides, "data")) {
    if (!extra->is_object()) return OverrideError("data", "must be an object");
    for (const auto& [key, value] : extra->items()) data[key] = value;
  }
  data["messageId"] = message.message_id;
  OrderedJson notification = {{"title", message.title}, {"body", message.content}};
  notification["data"] = std::move(data);
  // What showNotification() takes (and `url`, for the click), with their JSON types.
  static constexpr std::array<std::pair<std::string_view, Json::value_t>, 8> kOptions = {{
      {"icon", Json::value_t::string},
      {"badge", Json::value_t::string},
      {"image", Json::value_t::string},
      {"tag", Json::value_t::string},
      {"url", Json::value_t::string},
      {"actions", Json::value_t::array},
      {"requireInteraction", Json::value_t::boolean},
      {"silent", Json::value_t::boolean},
  }};
  for (const auto& [key, type] : kOptions) {
    const Json* value = Member(overrides, key);
    if (!value) continue;
    if (value->type() != type) {
      return OverrideError(key, std::string("must be a JSON ") + Json(type).type_name());
    }
    notification[std::string(key)] = *value;
  }
  return notification.dump();
}

Result<std::unique_ptr<Provider>> NewWebPushProvider(const Json& credentials) {
  std::optional<std::string> private_key =
      crypto::Base64UrlDecode(credentials.value("secretKey", ""));
  if (!private_key) return Status::InvalidArgument("credentials.secretKey is not base64url");
  ASSIGN_OR_RETURN(crypto::PrivateKey key, crypto::PrivateKey::FromP256Scalar(*private_key));
  std::optional<Url> base;
  if (std::string text = credentials.value("baseUrl", ""); !text.empty()) {
    base = ParseHttpUrl(text);
    if (!base) return Status::InvalidArgument("credentials.baseUrl is not an http(s) URL");
  }
  return std::unique_ptr<Provider>(new WebPushProvider(std::move(key),
                                                       credentials.value("apiKey", ""),
                                                       credentials.value("from", ""),
                                                       std::move(base)));
}

}  // namespace herald::providers
