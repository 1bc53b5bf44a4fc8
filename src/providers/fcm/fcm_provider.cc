#include "providers/fcm/fcm_provider.h"

#include "crypto/crypto.h"
#include "crypto/jwt.h"
#include "crypto/keys.h"

namespace herald::providers {
namespace {

constexpr std::string_view kDefaultOrigin = "https://fcm.googleapis.com";
constexpr std::string_view kScope = "https://www.googleapis.com/auth/firebase.messaging";
constexpr std::int64_t kAssertionLifetimeS = 3600;  // Google refuses longer ones
constexpr std::int64_t kRefreshMarginS = 300;       // as google-auth-library
// FCM's advice for QUOTA_EXCEEDED without Retry-After: wait at least a minute.
constexpr std::chrono::seconds kQuotaBackoff{60};
constexpr std::string_view kProbeToken = "herald-connection-test";

const Json* Member(const Json& object, std::string_view key) {
  if (!object.is_object()) return nullptr;
  auto it = object.find(key);
  return it == object.end() || it->is_null() ? nullptr : &*it;
}

std::string AsString(const Json& value) {
  return value.is_string() ? value.get<std::string>() : DumpJson(value);
}

Status OverrideError(std::string_view key, std::string_view problem) {
  return Refusal("INVALID_OVERRIDES", "overrides." + std::string(key) + " " + std::string(problem));
}

// FCM's error body (google.rpc.Status) read by its typed parts: the FcmError code, the status,
// and whether a BadRequest detail names the registration token.
struct FcmError {
  std::string error_code;  // FcmError.errorCode
  std::string status;      // error.status
  bool about_token = false;
};

FcmError ReadError(const std::string& text) {
  FcmError error;
  Json body = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  const Json* root = Member(body, "error");
  if (!root) return error;
  if (const Json* status = Member(*root, "status"); status && status->is_string()) {
    error.status = status->get<std::string>();
  }
  const Json* details = Member(*root, "details");
  if (!details || !details->is_array()) return error;
  for (const Json& detail : *details) {
    const Json* type = Member(detail, "@type");
    if (!type || !type->is_string()) continue;
    const std::string& name = type->get_ref<const std::string&>();
    if (name.ends_with("google.firebase.fcm.v1.FcmError")) {
      if (const Json* code = Member(detail, "errorCode"); code && code->is_string()) {
        error.error_code = code->get<std::string>();
      }
    } else if (name.ends_with("google.rpc.BadRequest")) {
      const Json* violations = Member(detail, "fieldViolations");
      if (!violations || !violations->is_array()) continue;
      for (const Json& violation : *violations) {
        const Json* field = Member(violation, "field");
        if (field && field->is_string() && field->get_ref<const std::string&>() == "message.token") {
          error.about_token = true;
        }
      }
    }
  }
  return error;
}

class FcmProvider final : public Provider, public Authenticator {
 public:
  struct Config {
    std::string origin, project_id, client_email, key_id, token_uri, identity;
    crypto::PrivateKey key;
  };
  explicit FcmProvider(Config config) : config_(std::move(config)) {}

  const Authenticator* auth() const override { return this; }

  // ---- Authenticator: the OAuth 2.0 JWT-bearer grant -----------------------------------------
  Kind kind() const override { return Kind::kExchanged; }
  std::string CredentialKey() const override { return config_.identity; }

  Result<http::Request> BuildExchange(EpochMs now) const override {
    OrderedJson header = {{"alg", "RS256"}, {"typ", "JWT"}};
    if (!config_.key_id.empty()) header["kid"] = config_.key_id;
    const std::int64_t iat = now / 1000;
    OrderedJson claims = {{"iss", config_.client_email},
                          {"scope", kScope},
                          {"aud", config_.token_uri},
                          {"iat", iat},
                          {"exp", iat + kAssertionLifetimeS}};
    ASSIGN_OR_RETURN(std::string assertion,
                     crypto::SignJwt(config_.key, header.dump(), claims.dump()));
    http::Request request;
    request.method = "POST";
    request.url = config_.token_uri;
    request.headers = {{"Content-Type", "application/x-www-form-urlencoded"},
                       {"Accept", "application/json"}};
    // The assertion is base64url and dots: nothing to escape.
    request.body =
        "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=" + assertion;
    return request;
  }

  Result<AuthToken> ReadExchange(const http::Outcome& reply, EpochMs now) const override {
    if (!reply.ok()) {
      return Refusal("TOKEN_EXCHANGE_" + ClassifyTransport(reply).reason,
                     "OAuth token exchange failed: " + reply.error_message, Code::kUnavailable);
    }
    const http::Response& response = reply.response;
    Json body = Json::parse(response.body, nullptr, /*allow_exceptions=*/false);
    if (response.status == 429 || response.status >= 500) {
      return Refusal("TOKEN_EXCHANGE_HTTP_" + std::to_string(response.status),
                     "OAuth token endpoint answered HTTP " + std::to_string(response.status),
                     Code::kUnavailable);
    }
    const Json* token = Member(body, "access_token");
    const Json* expires = Member(body, "expires_in");
    if (response.status == 200 && token && token->is_string() && expires &&
        expires->is_number() && expires->get<double>() > 0) {
      const auto lifetime = static_cast<std::int64_t>(expires->get<double>());
      const std::int64_t keep = std::max(lifetime - kRefreshMarginS, lifetime / 2);
      return AuthToken{token->get<std::string>(), now, now + keep * 1000};
    }
    // OAuth's typed error (RFC 6749 §5.2): invalid_grant, invalid_scope, unauthorized_client.
    const Json* error = Member(body, "error");
    std::string code = error && error->is_string() ? error->get<std::string>()
                                                   : "HTTP_" + std::to_string(response.status);
    std::string detail = "OAuth token exchange refused (" + code + ")";
    if (const Json* text = Member(body, "error_description"); text && text->is_string()) {
      detail += ": " + text->get<std::string>();
    }
    return Refusal(code, std::move(detail), Code::kFailedPrecondition);
  }

  // ---- Provider -----------------------------------------------------------------------------
  Result<http::Request> BuildRequest(const PushMessage& message,
                                     const AuthToken& token) const override {
    ASSIGN_OR_RETURN(OrderedJson fcm_message, Message(message));
    OrderedJson body = {{"message", std::move(fcm_message)}};
    return Send(body, token);
  }

  // FCM's typed codes (protocols.md §1.7), never its messages.
  Outcome Classify(const http::Outcome& reply) const override {
    if (!reply.ok()) return ClassifyTransport(reply);
    const http::Response& response = reply.response;
    Outcome out = ClassifyHttpStatus(response);
    if (out.verdict == Verdict::kDelivered) {
      Json body = Json::parse(response.body, nullptr, /*allow_exceptions=*/false);
      if (const Json* name = Member(body, "name"); name && name->is_string()) {
        out.provider_message_id = name->get<std::string>();
      }
      return out;
    }
    FcmError error = ReadError(response.body);
    const std::string& code = !error.error_code.empty() ? error.error_code : error.status;
    if (!code.empty()) out.reason = code;
    out.detail = "FCM answered " + std::to_string(response.status) +
                 (code.empty() ? "" : " " + code);
    if (code == "UNREGISTERED" || (error.error_code.empty() && error.status == "NOT_FOUND")) {
      out.verdict = Verdict::kFailedRemoveToken;
      out.unsubscribed = true;
    } else if (code == "INVALID_ARGUMENT") {
      out.verdict = error.about_token ? Verdict::kFailedRemoveToken : Verdict::kFailed;
    } else if (code == "SENDER_ID_MISMATCH" || code == "THIRD_PARTY_AUTH_ERROR" ||
               code == "APNS_AUTH_ERROR" || code == "PERMISSION_DENIED" ||
               response.status == 403) {  // 403 without FcmError, JSON or not: permissions
      out.verdict = Verdict::kFailedConfig;
    } else if (response.status == 401) {
      out.verdict = Verdict::kRefreshAuth;  // our access token, not a platform credential
    } else if (code == "QUOTA_EXCEEDED" || code == "RESOURCE_EXHAUSTED") {
      out.verdict = Verdict::kRetry;
      if (!out.retry_after) out.retry_after = kQuotaBackoff;
    } else if (code == "UNAVAILABLE" || code == "INTERNAL") {
      out.verdict = Verdict::kRetry;
    }
    return out;  // otherwise by status: 429/5xx retried, other 4xx failed
  }

  // The token exchange, then a validate_only send to a made-up token: FCM answers that the token
  // is invalid (or accepts the dry run) once the credentials are accepted, and nothing is sent.
  Result<std::optional<http::Request>> BuildProbe(const AuthToken& token) const override {
    OrderedJson body = {{"message", {{"token", kProbeToken}}}, {"validate_only", true}};
    return std::optional<http::Request>(Send(body, token));
  }
  ProbeResult ReadProbe(const http::Outcome& reply) const override {
    Outcome outcome = Classify(reply);
    ProbeResult result;
    result.ok = outcome.verdict == Verdict::kDelivered ||
                outcome.verdict == Verdict::kFailedRemoveToken ||
                (outcome.verdict == Verdict::kFailed && outcome.reason == "INVALID_ARGUMENT");
    result.reason = result.ok ? "" : outcome.reason;
    result.detail = result.ok ? "FCM accepted the credentials" : outcome.detail;
    return result;
  }

 private:
  http::Request Send(const OrderedJson& body, const AuthToken& token) const {
    http::Request request;
    request.method = "POST";
    request.url = config_.origin + "/v1/projects/" + config_.project_id + "/messages:send";
    request.http2_prior_knowledge = true;  // multiplexed (h2c for an http:// baseUrl)
    request.connection_group = config_.identity;
    request.headers = {{"authorization", "Bearer " + token.value},
                       {"content-type", "application/json"}};
    request.body = body.dump();
    return request;
  }

  // The FCM Message for one device token (Novu's mapping, novu-api.md §5.1).
  static Result<OrderedJson> Message(const PushMessage& message) {
    const Json& overrides = message.overrides;
    OrderedJson out = {{"token", message.device_token}};
    OrderedJson data = OrderedJson::object();
    const Json* type = Member(overrides, "type");
    const bool data_only = type && type->is_string() && type->get_ref<const std::string&>() == "data";
    if (data_only) {
      const OrderedJson payload = DevicePayload(message);
      for (const auto& [key, value] : payload.items()) {
        data[key] = value.is_string() ? value.get<std::string>() : value.dump();
      }
      data["title"] = message.title;
      data["body"] = message.content;
      data["message"] = message.content;
    } else {
      OrderedJson notification = {{"title", message.title}, {"body", message.content}};
      for (std::string_view key : {"image", "imageUrl"}) {
        if (const Json* value = Member(overrides, key)) {
          if (!value->is_string()) return OverrideError(key, "must be a string");
          notification["image"] = value->get<std::string>();
        }
      }
      out["notification"] = std::move(notification);
    }
    if (const Json* extra = Member(overrides, "data")) {
      if (!extra->is_object()) return OverrideError("data", "must be an object");
      for (const auto& [key, value] : extra->items()) data[key] = AsString(value);
    }
    if (!data.empty()) out["data"] = std::move(data);
    struct Block {
      std::string_view override_key, fcm_key;
    };
    for (const Block& block : {Block{"android", "android"}, Block{"apns", "apns"},
                               Block{"webPush", "webpush"}, Block{"webpush", "webpush"},
                               Block{"fcmOptions", "fcm_options"},
                               Block{"fcm_options", "fcm_options"}}) {
      if (const Json* value = Member(overrides, block.override_key)) {
        if (!value->is_object()) return OverrideError(block.override_key, "must be an object");
        out[std::string(block.fcm_key)] = *value;
      }
    }
    return out;
  }

  Config config_;
};

}  // namespace

Result<std::unique_ptr<Provider>> NewFcmProvider(const Json& credentials) {
  std::string error;
  std::optional<Json> account = ParseJson(credentials.value("serviceAccount", ""), &error);
  if (!account || !account->is_object()) {
    return Status::InvalidArgument("credentials.serviceAccount is not a JSON object");
  }
  auto text = [&](const char* key) {
    const Json* value = Member(*account, key);
    return value && value->is_string() ? value->get<std::string>() : std::string();
  };
  std::string pem = text("private_key");
  Result<crypto::PrivateKey> key = crypto::PrivateKey::FromPem(pem);
  if (!key.ok()) return Status::InvalidArgument("credentials.serviceAccount: " + key.status().message());
  std::string base = credentials.value("baseUrl", "");
  while (!base.empty() && base.back() == '/') base.pop_back();
  FcmProvider::Config config{base.empty() ? std::string(kDefaultOrigin) : base,
                             text("project_id"),
                             text("client_email"),
                             text("private_key_id"),
                             text("token_uri"),
                             "",
                             std::move(*key)};
  config.identity = "fcm:" + crypto::Hex(crypto::Sha256(config.client_email + '\n' +
                                                        config.token_uri + '\n' + pem))
                                 .substr(0, 32);
  return std::unique_ptr<Provider>(new FcmProvider(std::move(config)));
}

}  // namespace herald::providers
