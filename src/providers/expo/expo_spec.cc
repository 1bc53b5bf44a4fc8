#include "providers/expo/expo_spec.h"

#include "providers/basic_spec.h"

namespace herald::providers {
namespace {

class ExpoSpec final : public BasicSpec {
 public:
  // The access token is needed only when the Expo project enables enhanced push security.
  ExpoSpec() : BasicSpec("expo", "Expo Push", {{"apiKey", false, true}}) {}

 protected:
  Status CheckValues(const Json& /*credentials*/) const override { return Status::Ok(); }
};

}  // namespace

std::unique_ptr<ProviderSpec> NewExpoSpec() { return std::make_unique<ExpoSpec>(); }

}  // namespace herald::providers
