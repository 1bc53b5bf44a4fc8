#include "providers/expo/expo_spec.h"

#include "providers/basic_spec.h"
#include "providers/expo/expo_provider.h"

namespace herald::providers {
namespace {

class ExpoSpec final : public BasicSpec {
 public:
  // The access token is needed only when the Expo project enables enhanced push security.
  ExpoSpec() : BasicSpec("expo", "Expo Push", {{"apiKey", false, true}}) {}

  // Expo's own tokens only: anything else would make Expo refuse the whole batch it rides in, so
  // it is refused at registration (400) rather than at every delivery.
  Result<std::string> NormalizeDeviceToken(std::string_view token,
                                           const TokenPolicy& policy) const override {
    ASSIGN_OR_RETURN(std::string normalized, BasicSpec::NormalizeDeviceToken(token, policy));
    if (!IsExpoPushToken(normalized)) {
      return Status::InvalidArgument(
          "device token must be an Expo push token: ExponentPushToken[...] or ExpoPushToken[...]");
    }
    return normalized;
  }

  Result<std::unique_ptr<Provider>> Create(const Json& credentials) const override {
    ExpoOptions options;
    options.receipt_delay = GetProviderSettings().expo_receipt_delay;
    return NewExpoProvider(credentials, options);
  }

 protected:
  Status CheckValues(const Json& /*credentials*/) const override { return Status::Ok(); }
};

}  // namespace

std::unique_ptr<ProviderSpec> NewExpoSpec() { return std::make_unique<ExpoSpec>(); }

}  // namespace herald::providers
