#include "providers/web_push/web_push_spec.h"

#include <cctype>
#include <string>

#include "core/url.h"
#include "crypto/crypto.h"
#include "providers/basic_spec.h"
#include "providers/web_push/web_push_provider.h"

namespace herald::providers {
namespace {

Status SubscriptionError(std::string_view problem) {
  return Status::InvalidArgument("push subscription " + std::string(problem));
}

bool StartsWithIgnoringCase(std::string_view text, std::string_view prefix) {
  if (text.size() < prefix.size()) return false;
  for (std::size_t i = 0; i < prefix.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(text[i])) != prefix[i]) return false;
  }
  return true;
}

// RFC 8292 §2.1 `sub`: a mailto: or https: URI. Apple rejects addresses with spaces or brackets.
bool IsVapidSubject(std::string_view subject) {
  if (StartsWithIgnoringCase(subject, "mailto:")) {
    std::string_view address = subject.substr(7);
    std::size_t at = address.find('@');
    if (at == 0 || at == std::string_view::npos || at + 1 == address.size()) return false;
    return AllOf(address, [](char c) {
      auto byte = static_cast<unsigned char>(c);
      return byte > 0x20 && byte != 0x7f && c != '<' && c != '>';
    });
  }
  std::optional<Url> url = ParseHttpUrl(subject);
  return url && url->scheme == "https";
}

// The string member `key` of `object`, or nullopt when it is missing or not a string.
std::optional<std::string_view> StringMember(const Json& object, std::string_view key) {
  auto it = object.find(key);
  if (it == object.end() || !it->is_string()) return std::nullopt;
  return it->get_ref<const std::string&>();
}

Result<std::string> CheckEndpoint(const Json& subscription, const TokenPolicy& policy) {
  std::optional<std::string_view> endpoint = StringMember(subscription, "endpoint");
  if (!endpoint) return SubscriptionError("endpoint is required and must be a string");
  std::optional<Url> url = ParseHttpUrl(*endpoint);
  if (!url) return SubscriptionError("endpoint is not an absolute http(s) URL");
  if (url->scheme != "https" && !policy.allow_private_targets) {
    return SubscriptionError("endpoint must use https");
  }
  if (url->has_fragment) return SubscriptionError("endpoint must not have a fragment");
  if (url->has_userinfo) return SubscriptionError("endpoint must not contain credentials");
  if (IsPrivateHost(url->host) && !policy.allow_private_targets) {
    return SubscriptionError("endpoint host is a private address");
  }
  return std::string(*endpoint);
}

class WebPushSpec final : public BasicSpec {
 public:
  // The canonical names are ones the Novu SDK's CredentialsDto keeps; the VAPID names are
  // accepted too and renamed.
  WebPushSpec()
      : BasicSpec("web-push", "Web Push (VAPID)",
                  {{"apiKey", true, false, FieldType::kString, "vapidPublicKey"},
                   {"secretKey", true, true, FieldType::kString, "vapidPrivateKey"},
                   {"from", true, false, FieldType::kString, "subject"}}) {}

  // The browser's PushSubscription.toJSON(), serialised (protocols.md §3.1).
  Result<std::string> NormalizeDeviceToken(std::string_view token,
                                           const TokenPolicy& policy) const override {
    if (token.empty()) return Status::InvalidArgument("device token must not be empty");
    if (token.size() > kMaxTokenBytes) {
      return Status::InvalidArgument("device token must be at most 4096 bytes");
    }
    std::string error;
    std::optional<Json> subscription = ParseJson(token, &error);
    if (!subscription || !subscription->is_object()) {
      return Status::InvalidArgument("device token must be a PushSubscription JSON object");
    }
    ASSIGN_OR_RETURN(std::string endpoint, CheckEndpoint(*subscription, policy));

    auto keys = subscription->find("keys");
    if (keys == subscription->end() || !keys->is_object()) {
      return SubscriptionError("keys must be an object with p256dh and auth");
    }
    std::optional<std::string_view> p256dh_text = StringMember(*keys, "p256dh");
    std::optional<std::string> p256dh =
        p256dh_text ? crypto::Base64UrlDecode(*p256dh_text) : std::nullopt;
    if (!p256dh || !crypto::IsP256PublicPoint(*p256dh)) {
      return SubscriptionError("keys.p256dh must be a P-256 public key (base64url of 65 bytes)");
    }
    std::optional<std::string_view> auth_text = StringMember(*keys, "auth");
    std::optional<std::string> auth =
        auth_text ? crypto::Base64UrlDecode(*auth_text) : std::nullopt;
    if (!auth || auth->size() != 16) {
      return SubscriptionError("keys.auth must be 16 bytes in base64url");
    }
    auto expiration = subscription->find("expirationTime");
    if (expiration != subscription->end() && !expiration->is_null() && !expiration->is_number()) {
      return SubscriptionError("expirationTime must be a number or null");
    }

    // nlohmann::ordered_json keeps insertion order, so the key order is fixed.
    nlohmann::ordered_json canonical;
    canonical["endpoint"] = std::move(endpoint);
    canonical["keys"]["p256dh"] = crypto::Base64UrlEncode(*p256dh);
    canonical["keys"]["auth"] = crypto::Base64UrlEncode(*auth);
    return canonical.dump();
  }

  // Novu has no web-push provider: its SDK refuses records that name it.
  bool known_to_novu_sdk() const override { return false; }
  std::optional<std::string> Endpoint(std::string_view normalized) const override {
    return TokenIdentity(normalized);
  }

  std::string TokenIdentity(std::string_view normalized) const override {
    std::string error;
    std::optional<Json> subscription = ParseJson(normalized, &error);
    if (subscription && subscription->is_object()) {
      if (auto endpoint = StringMember(*subscription, "endpoint")) return std::string(*endpoint);
    }
    return std::string(normalized);
  }

  Result<std::unique_ptr<Provider>> Create(const Json& credentials) const override {
    return NewWebPushProvider(credentials);
  }

 protected:
  // RFC 8292: a P-256 key pair and a contact URI (protocols.md §3.5).
  Status CheckValues(const Json& credentials) const override {
    std::optional<std::string> public_key =
        crypto::Base64UrlDecode(StringField(credentials, "apiKey"));
    if (!public_key || !crypto::IsP256PublicPoint(*public_key)) {
      return FieldError("apiKey",
                        "must be a VAPID public key (base64url of a 65-byte P-256 point)");
    }
    std::optional<std::string> private_key =
        crypto::Base64UrlDecode(StringField(credentials, "secretKey"));
    if (!private_key || private_key->size() != 32) {
      return FieldError("secretKey", "must be a VAPID private key (base64url of 32 bytes)");
    }
    if (!crypto::CheckP256KeyPair(*private_key, *public_key).ok()) {
      return FieldError("secretKey", "is not the private key of credentials.apiKey");
    }
    if (!IsVapidSubject(StringField(credentials, "from"))) {
      return FieldError("from", "must be a mailto: address or an https URL (VAPID subject)");
    }
    return Status::Ok();
  }
};

}  // namespace

std::unique_ptr<ProviderSpec> NewWebPushSpec() { return std::make_unique<WebPushSpec>(); }

}  // namespace herald::providers
