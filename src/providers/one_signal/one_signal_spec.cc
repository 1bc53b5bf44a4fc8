#include "providers/one_signal/one_signal_spec.h"

#include "providers/basic_spec.h"
#include "providers/one_signal/one_signal_provider.h"

namespace herald::providers {
namespace {

class OneSignalSpec final : public BasicSpec {
 public:
  OneSignalSpec()
      : BasicSpec("one-signal", "OneSignal",
                  {{"applicationId", true, false},
                   {"apiKey", true, true},
                   {"apiVersion", false, false}}) {}

  Result<std::unique_ptr<Provider>> Create(const Json& credentials) const override {
    return NewOneSignalProvider(credentials);
  }

  // A player id or an external id, written into the request's JSON as it is.
  Result<std::string> NormalizeDeviceToken(std::string_view token,
                                           const TokenPolicy& policy) const override {
    return NormalizeUtf8Token(token, policy);
  }

 protected:
  Status CheckValues(const Json& credentials) const override {
    if (!IsUuid(StringField(credentials, "applicationId"))) {
      return FieldError("applicationId", "must be a OneSignal app id (a UUID)");
    }
    // Absent means the legacy player model, as in Novu.
    std::string_view version = StringField(credentials, "apiVersion");
    if (!version.empty() && version != "externalId" && version != "playerModel") {
      return FieldError("apiVersion", "must be one of externalId, playerModel");
    }
    return Status::Ok();
  }
};

}  // namespace

std::unique_ptr<ProviderSpec> NewOneSignalSpec() { return std::make_unique<OneSignalSpec>(); }

}  // namespace herald::providers
