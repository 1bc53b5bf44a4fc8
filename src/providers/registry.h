// The push providers Herald knows, and what the API needs from each before anything is sent:
// credential validation and masking, and device-token validation.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/json.h"
#include "core/status.h"
#include "providers/provider.h"

namespace herald::providers {

enum class FieldType { kString, kBoolean };

struct CredentialField {
  std::string_view key;  // e.g. "serviceAccount"
  bool required;
  bool secret;  // masked in every API response
  FieldType type = FieldType::kString;
  // Another name accepted on input and renamed to `key` by ValidateCredentials (web-push takes
  // "vapidPrivateKey" for "secretKey"). Empty if none.
  std::string_view alias = {};
};

struct TokenPolicy {
  bool allow_private_targets = false;  // HERALD_ALLOW_PRIVATE_TARGETS=1
};

class ProviderSpec {
 public:
  virtual ~ProviderSpec() = default;
  virtual std::string_view id() const = 0;            // Novu providerId, e.g. "fcm"
  virtual std::string_view display_name() const = 0;  // e.g. "Firebase Cloud Messaging"
  virtual const std::vector<CredentialField>& fields() const = 0;

  // Checks `credentials` (a JSON object) for this provider; may normalise it in place (e.g. trim,
  // canonical key names). InvalidArgument names the bad field: "credentials.serviceAccount:
  // private_key is not a valid PEM private key". Every provider accepts an optional
  // `baseUrl` (absolute http(s) URL, no query or fragment).
  virtual Status ValidateCredentials(Json& credentials) const = 0;

  // Validates one device token as registered by a subscriber and returns its canonical form
  // (web-push: the PushSubscription JSON re-serialised as {"endpoint","keys":{"p256dh","auth"}}).
  virtual Result<std::string> NormalizeDeviceToken(std::string_view token,
                                                   const TokenPolicy& policy) const = 0;

  // The identity two tokens are compared by for de-duplication (web-push: the endpoint;
  // others: the token itself). `normalized` is a value NormalizeDeviceToken returned.
  virtual std::string TokenIdentity(std::string_view normalized) const;

  // Whether Novu's SDKs know this providerId: they validate subscriber channels and message
  // records against a closed list, so records of other providers are shown apart (web-push).
  virtual bool known_to_novu_sdk() const { return true; }
  // Where a device token points, when it is a URL (web-push: the subscription's endpoint).
  virtual std::optional<std::string> Endpoint(std::string_view /*normalized*/) const {
    return std::nullopt;
  }

  // Binds validated credentials to a Provider that can deliver. FailedPrecondition when Herald
  // cannot deliver through this provider yet (the message fails as a configuration error).
  virtual Result<std::unique_ptr<Provider>> Create(const Json& credentials) const;
};

// Process-wide provider settings from the environment, set once at startup (app.cc) before any
// Provider is created; providers read them when their spec creates them.
struct ProviderSettings {
  // When an Expo ticket's receipt is first asked for: HERALD_EXPO_RECEIPT_DELAY (seconds).
  std::chrono::milliseconds expo_receipt_delay = std::chrono::minutes(15);
};
void SetProviderSettings(const ProviderSettings& settings);
ProviderSettings GetProviderSettings();

// nullptr if `id` is not a push provider Herald supports.
const ProviderSpec* FindProvider(std::string_view id);
// Sorted ids of every supported push provider.
std::vector<std::string_view> ProviderIds();

// A copy of `credentials` with every secret field (and its alias) masked ("****" + last 4
// characters when the value is longer than 12 characters, else "****"); non-secret fields are
// returned as they are.
Json MaskCredentials(const ProviderSpec& spec, const Json& credentials);
// True if `candidate` is what MaskCredentials would show for `stored` (lets a client send back a
// masked value unchanged on update without overwriting the secret).
bool IsMaskOf(std::string_view candidate, std::string_view stored);

}  // namespace herald::providers
