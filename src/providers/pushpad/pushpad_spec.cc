#include "providers/pushpad/pushpad_spec.h"

#include "providers/basic_spec.h"
#include "providers/pushpad/pushpad_provider.h"

namespace herald::providers {
namespace {

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

class PushpadSpec final : public BasicSpec {
 public:
  PushpadSpec()
      : BasicSpec("pushpad", "Pushpad", {{"apiKey", true, true}, {"applicationId", true, false}}) {}

  Result<std::unique_ptr<Provider>> Create(const Json& credentials) const override {
    return NewPushpadProvider(credentials);
  }

  // A Pushpad uid (the application's user id), written into the request's JSON as it is.
  Result<std::string> NormalizeDeviceToken(std::string_view token,
                                           const TokenPolicy& policy) const override {
    return NormalizeUtf8Token(token, policy);
  }

 protected:
  Status CheckValues(const Json& credentials) const override {
    // The project id goes into the path: /api/v1/projects/<id>/notifications.
    if (!AllOf(StringField(credentials, "applicationId"), IsDigit)) {
      return FieldError("applicationId", "must be a Pushpad project id (digits only)");
    }
    return Status::Ok();
  }
};

}  // namespace

std::unique_ptr<ProviderSpec> NewPushpadSpec() { return std::make_unique<PushpadSpec>(); }

}  // namespace herald::providers
