#include "providers/apns/apns_provider.h"

#include <array>

#include "core/url.h"
#include "crypto/crypto.h"
#include "crypto/jwt.h"
#include "crypto/keys.h"
#include "providers/basic_spec.h"

namespace herald::providers {
namespace {

constexpr std::string_view kProductionOrigin = "https://api.push.apple.com";
constexpr std::string_view kSandboxOrigin = "https://api.sandbox.push.apple.com";
constexpr std::size_t kMaxPayload = 4096;
constexpr std::size_t kMaxVoipPayload = 5120;
// Apple refuses provider tokens older than an hour and new ones more often than every 20 minutes.
constexpr std::int64_t kTokenReuseMs = 50 * 60 * 1000;
constexpr std::chrono::minutes kMinTokenAge{20};

// Push types and the topic suffix each needs (protocols.md §2.3).
struct PushType {
  std::string_view name;
  std::string_view topic_suffix;
};
constexpr std::array<PushType, 11> kPushTypes = {{{"alert", ""},
                                                  {"background", ""},
                                                  {"voip", ".voip"},
                                                  {"complication", ".complication"},
                                                  {"fileprovider", ".pushkit.fileprovider"},
                                                  {"location", ".location-query"},
                                                  {"liveactivity", ".push-type.liveactivity"},
                                                  {"pushtotalk", ".voip-ptt"},
                                                  {"widgets", ".push-type.widgets"},
                                                  {"controls", ".push-type.controls"},
                                                  {"mdm", ""}}};

const Json* Member(const Json& object, std::string_view key) {
  if (!object.is_object()) return nullptr;
  auto it = object.find(key);
  return it == object.end() || it->is_null() ? nullptr : &*it;
}

Status OverrideError(std::string_view key, std::string_view problem) {
  return Refusal("INVALID_OVERRIDES", "overrides." + std::string(key) + " " + std::string(problem));
}

// node-apn's names for aps keys, as Novu passes them through overrides.
struct ApsKey {
  std::string_view override_key;
  std::string_view aps_key;
};
constexpr std::array<ApsKey, 10> kApsKeys = {{{"badge", "badge"},
                                              {"sound", "sound"},
                                              {"threadId", "thread-id"},
                                              {"category", "category"},
                                              {"interruptionLevel", "interruption-level"},
                                              {"relevanceScore", "relevance-score"},
                                              {"targetContentId", "target-content-id"},
                                              {"targetContentIdentifier", "target-content-id"},
                                              {"filterCriteria", "filter-criteria"},
                                              {"urlArgs", "url-args"}}};
constexpr std::array<ApsKey, 8> kAlertKeys = {{{"subtitle", "subtitle"},
                                               {"launchImage", "launch-image"},
                                               {"titleLocKey", "title-loc-key"},
                                               {"titleLocArgs", "title-loc-args"},
                                               {"subtitleLocKey", "subtitle-loc-key"},
                                               {"subtitleLocArgs", "subtitle-loc-args"},
                                               {"locKey", "loc-key"},
                                               {"locArgs", "loc-args"}}};

bool Truthy(const Json& value) {
  return (value.is_boolean() && value.get<bool>()) ||
         (value.is_number() && value.get<double>() != 0);
}

// Merges the members of `extra` (an object) into `into`.
Status MergeObject(OrderedJson& into, const Json& extra, std::string_view key) {
  if (!extra.is_object()) return OverrideError(key, "must be an object");
  for (const auto& [name, value] : extra.items()) into[name] = value;
  return Status::Ok();
}

// What one message asks of APNs besides its body.
struct Envelope {
  std::string push_type = "alert";
  std::string topic;
  std::optional<int> priority;
  std::optional<std::int64_t> expiration;
  std::optional<std::string> collapse_id;
};

Result<Envelope> ReadEnvelope(const Json& overrides, const std::string& bundle_id,
                              bool background) {
  Envelope env;
  if (background) env.push_type = "background";
  if (const Json* value = Member(overrides, "pushType")) {
    if (!value->is_string()) return OverrideError("pushType", "must be a string");
    env.push_type = value->get<std::string>();
  }
  auto type = std::find_if(kPushTypes.begin(), kPushTypes.end(),
                           [&](const PushType& t) { return t.name == env.push_type; });
  if (type == kPushTypes.end()) return OverrideError("pushType", "is not an APNs push type");
  env.topic = bundle_id + std::string(type->topic_suffix);
  if (const Json* value = Member(overrides, "topic")) {
    if (!value->is_string() || value->get_ref<const std::string&>().empty()) {
      return OverrideError("topic", "must be a non-empty string");
    }
    env.topic = value->get<std::string>();
  }
  if (const Json* value = Member(overrides, "priority")) {
    if (!value->is_number_integer() ||
        (value->get<int>() != 10 && value->get<int>() != 5 && value->get<int>() != 1)) {
      return OverrideError("priority", "must be 10, 5 or 1");
    }
    env.priority = value->get<int>();
  } else if (env.push_type == "background") {
    env.priority = 5;  // Apple requires it for background pushes
  }
  for (std::string_view key : {"expiry", "expiration"}) {
    if (const Json* value = Member(overrides, key)) {
      if (!value->is_number_integer() || value->get<std::int64_t>() < 0) {
        return OverrideError(key, "must be a Unix time in seconds (0: deliver now or never)");
      }
      env.expiration = value->get<std::int64_t>();
    }
  }
  if (const Json* value = Member(overrides, "collapseId")) {
    if (!value->is_string() || value->get_ref<const std::string&>().size() > 64) {
      return OverrideError("collapseId", "must be a string of at most 64 bytes");
    }
    env.collapse_id = value->get<std::string>();
  }
  return env;
}

// The JSON body: aps from the step and the overrides, custom keys beside it.
Result<std::string> Body(const PushMessage& message, bool* background) {
  const Json& overrides = message.overrides;
  OrderedJson aps = OrderedJson::object();
  OrderedJson alert = OrderedJson::object();
  if (!message.title.empty()) alert["title"] = message.title;
  if (!message.content.empty()) alert["body"] = message.content;
  for (const ApsKey& key : kAlertKeys) {
    if (const Json* value = Member(overrides, key.override_key)) alert[key.aps_key] = *value;
  }
  if (const Json* value = Member(overrides, "alert")) {
    if (value->is_string()) {
      alert = value->get<std::string>();
    } else {
      RETURN_IF_ERROR(MergeObject(alert, *value, "alert"));
    }
  }
  if (!alert.empty()) aps["alert"] = std::move(alert);
  for (const ApsKey& key : kApsKeys) {
    if (const Json* value = Member(overrides, key.override_key)) aps[key.aps_key] = *value;
  }
  if (const Json* value = Member(overrides, "contentAvailable"); value && Truthy(*value)) {
    aps["content-available"] = 1;
  }
  if (const Json* value = Member(overrides, "mutableContent"); value && Truthy(*value)) {
    aps["mutable-content"] = 1;
  }
  if (const Json* value = Member(overrides, "aps")) RETURN_IF_ERROR(MergeObject(aps, *value, "aps"));
  *background = aps.contains("content-available") && !aps.contains("alert") &&
                !aps.contains("sound") && !aps.contains("badge");

  OrderedJson body = DevicePayload(message);
  for (std::string_view key : {"payload", "data"}) {
    if (const Json* value = Member(overrides, key)) RETURN_IF_ERROR(MergeObject(body, *value, key));
  }
  body["messageId"] = message.message_id;
  body["aps"] = std::move(aps);
  return body.dump();
}

// Apple's reason codes (protocols.md §2.8).
Outcome ClassifyReason(int status, const std::string& reason, const Json& body) {
  Outcome out;
  out.reason = reason.empty() ? "HTTP_" + std::to_string(status) : reason;
  out.detail = "APNs answered " + std::to_string(status) + (reason.empty() ? "" : " " + reason);
  auto is = [&](std::initializer_list<std::string_view> names) {
    return std::find(names.begin(), names.end(), reason) != names.end();
  };
  if (status == 410 || is({"Unregistered", "ExpiredToken"})) {
    out.verdict = Verdict::kFailedRemoveToken;
    out.unsubscribed = reason != "ExpiredToken";
    if (const Json* at = Member(body, "timestamp"); at && at->is_number_integer()) {
      out.token_invalid_since = at->get<EpochMs>();
    }
  } else if (is({"BadDeviceToken", "DeviceTokenNotForTopic"})) {
    out.verdict = Verdict::kFailedRemoveToken;
  } else if (is({"ExpiredProviderToken"})) {
    out.verdict = Verdict::kRefreshAuth;
  } else if (is({"InvalidProviderToken", "MissingProviderToken", "BadCertificate",
                 "BadCertificateEnvironment", "BadEnvironmentKeyIdInToken", "BadTopic",
                 "MissingTopic", "TopicDisallowed"})) {
    out.verdict = Verdict::kFailedConfig;
  } else if (status == 429 || status >= 500 ||
             is({"IdleTimeout", "UnrelatedKeyIdInToken", "TooManyProviderTokenUpdates",
                 "Shutdown"})) {
    out.verdict = Verdict::kRetry;
    if (is({"IdleTimeout", "Shutdown", "UnrelatedKeyIdInToken"})) {
      out.retry_after = std::chrono::milliseconds(0);  // a new connection, at once
    }
  } else if (status == 403 && reason != "Forbidden") {  // Forbidden: this message, kFailed
    out.verdict = Verdict::kFailedConfig;
  } else {
    out.verdict = Verdict::kFailed;  // 400 header and payload reasons, 404, 405, 413
  }
  return out;
}

class ApnsProvider final : public Provider, public Authenticator {
 public:
  struct Config {
    std::string origin;
    std::string bundle_id;
    std::string key_id, team_id;
    std::optional<crypto::PrivateKey> key;                    // token auth
    std::shared_ptr<const http::ClientCertificate> certificate;  // certificate auth
    std::string identity;                                      // a digest of the credential
  };
  explicit ApnsProvider(Config config) : config_(std::move(config)) {}

  const Authenticator* auth() const override { return config_.key ? this : nullptr; }

  // ---- Authenticator (token auth) ----------------------------------------------------------
  Kind kind() const override { return Kind::kMinted; }
  std::string CredentialKey() const override { return config_.identity; }
  std::chrono::milliseconds min_refresh_age() const override { return kMinTokenAge; }
  Result<AuthToken> Mint(std::string_view, EpochMs now) const override {
    OrderedJson header = {{"alg", "ES256"}, {"kid", config_.key_id}};
    OrderedJson claims = {{"iss", config_.team_id}, {"iat", now / 1000}};
    ASSIGN_OR_RETURN(std::string jwt, crypto::SignJwt(*config_.key, header.dump(), claims.dump()));
    return AuthToken{std::move(jwt), now, now + kTokenReuseMs};
  }

  // ---- Provider -----------------------------------------------------------------------------
  Result<http::Request> BuildRequest(const PushMessage& message,
                                     const AuthToken& token) const override {
    bool background = false;
    ASSIGN_OR_RETURN(std::string body, Body(message, &background));
    ASSIGN_OR_RETURN(Envelope env, ReadEnvelope(message.overrides, config_.bundle_id, background));
    const std::size_t limit = env.push_type == "voip" ? kMaxVoipPayload : kMaxPayload;
    if (body.size() > limit) {
      return Refusal("PayloadTooLarge", "the APNs payload is " + std::to_string(body.size()) +
                                            " bytes, at most " + std::to_string(limit));
    }
    http::Request request = Base("/3/device/" + message.device_token, token);
    request.body = std::move(body);
    request.headers.emplace_back("apns-topic", env.topic);
    request.headers.emplace_back("apns-push-type", env.push_type);
    if (env.priority) request.headers.emplace_back("apns-priority", std::to_string(*env.priority));
    if (env.expiration) {
      request.headers.emplace_back("apns-expiration", std::to_string(*env.expiration));
    }
    if (env.collapse_id) request.headers.emplace_back("apns-collapse-id", *env.collapse_id);
    if (std::string id = ApnsIdOf(message.message_id); !id.empty()) {
      request.headers.emplace_back("apns-id", std::move(id));
    }
    return request;
  }

  Outcome Classify(const http::Outcome& reply) const override {
    if (!reply.ok()) return ClassifyTransport(reply);
    const http::Response& response = reply.response;
    if (response.status == 200) {
      Outcome out;
      out.provider_message_id = std::string(response.Header("apns-id"));
      return out;
    }
    Json body = Json::parse(response.body, nullptr, /*allow_exceptions=*/false);
    std::string reason;
    if (const Json* value = Member(body, "reason"); value && value->is_string()) {
      reason = value->get<std::string>();
    }
    Outcome out = ClassifyReason(response.status, reason, body);
    if (out.verdict == Verdict::kRetry && response.status == 429) {
      if (std::string_view after = response.Header("retry-after"); !after.empty()) {
        out.retry_after = ParseRetryAfter(after, NowMs());
      }
    }
    return out;
  }

  // A silent push to an all-zero device token: APNs checks the provider token or certificate
  // first, so BadDeviceToken means the credentials were accepted (nobody receives it).
  Result<std::optional<http::Request>> BuildProbe(const AuthToken& token) const override {
    http::Request request = Base("/3/device/" + std::string(64, '0'), token);
    request.body = R"({"aps":{"content-available":1}})";
    request.headers.emplace_back("apns-topic", config_.bundle_id);
    request.headers.emplace_back("apns-push-type", "background");
    request.headers.emplace_back("apns-priority", "5");
    return std::optional<http::Request>(std::move(request));
  }
  ProbeResult ReadProbe(const http::Outcome& reply) const override {
    Outcome outcome = Classify(reply);
    ProbeResult result;
    result.ok = outcome.verdict == Verdict::kDelivered ||
                outcome.verdict == Verdict::kFailedRemoveToken;
    result.reason = result.ok ? "" : outcome.reason;
    result.detail = result.ok ? "APNs accepted the credentials" : outcome.detail;
    return result;
  }

 private:
  http::Request Base(const std::string& path, const AuthToken& token) const {
    http::Request request;
    request.method = "POST";
    request.url = config_.origin + path;
    request.http2_prior_knowledge = true;  // HTTP/2 only (h2c for an http:// baseUrl)
    request.connection_group = config_.identity;
    request.client_certificate = config_.certificate;
    if (!token.value.empty()) request.headers.emplace_back("authorization", "bearer " + token.value);
    request.headers.emplace_back("content-type", "application/json");
    return request;
  }

  Config config_;
};

}  // namespace

std::string ApnsIdOf(std::string_view message_id) {
  if (message_id.size() != 24 ||
      !std::all_of(message_id.begin(), message_id.end(),
                   [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); })) {
    return {};
  }
  std::string hex = "00000000" + std::string(message_id);
  return hex.substr(0, 8) + '-' + hex.substr(8, 4) + '-' + hex.substr(12, 4) + '-' +
         hex.substr(16, 4) + '-' + hex.substr(20);
}

Result<crypto::ClientCertificate> LoadApnsCertificate(const Json& credentials) {
  std::string_view certificate = StringField(credentials, "certificate");
  if (certificate.find("-----BEGIN") != std::string_view::npos) {
    Result<crypto::ClientCertificate> parsed =
        crypto::ParseCertificateAndKey(certificate, StringField(credentials, "privateKey"));
    if (!parsed.ok()) return FieldError("certificate", parsed.status().message());
    return parsed;
  }
  std::optional<std::string> der = crypto::Base64Decode(certificate);
  if (!der) {
    return FieldError("certificate", "must be a base64 .p12 file or a PEM certificate");
  }
  Result<crypto::ClientCertificate> parsed =
      crypto::ParsePkcs12(*der, StringField(credentials, "password"));
  if (!parsed.ok()) {
    return FieldError(StringField(credentials, "password").empty() ? "certificate" : "password",
                      parsed.status().message());
  }
  return parsed;
}

Result<std::unique_ptr<Provider>> NewApnsProvider(const Json& credentials) {
  ApnsProvider::Config config;
  std::string base = credentials.value("baseUrl", "");
  while (!base.empty() && base.back() == '/') base.pop_back();
  const Json* secure = Member(credentials, "secure");
  config.origin = !base.empty()                        ? base
                  : (secure && secure->is_boolean() && secure->get<bool>())
                      ? std::string(kProductionOrigin)
                      : std::string(kSandboxOrigin);
  config.bundle_id = credentials.value("applicationId", "");
  std::string identity = "apns\n" + config.origin + '\n';
  if (std::string pem = credentials.value("secretKey", ""); !pem.empty()) {
    ASSIGN_OR_RETURN(crypto::PrivateKey key, crypto::PrivateKey::FromPem(pem));
    config.key = std::move(key);
    config.key_id = credentials.value("apiKey", "");
    config.team_id = credentials.value("projectName", "");
    identity += config.team_id + '\n' + config.key_id + '\n' + pem;
  } else {
    ASSIGN_OR_RETURN(crypto::ClientCertificate cert, LoadApnsCertificate(credentials));
    identity += cert.certificate_pem;
    config.certificate = std::make_shared<http::ClientCertificate>(http::ClientCertificate{
        cert.certificate_pem + cert.chain_pem, std::move(cert.private_key_pem)});
  }
  config.identity = "apns:" + crypto::Hex(crypto::Sha256(identity)).substr(0, 32);
  return std::unique_ptr<Provider>(new ApnsProvider(std::move(config)));
}

}  // namespace herald::providers
