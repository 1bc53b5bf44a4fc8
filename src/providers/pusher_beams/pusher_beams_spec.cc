#include "providers/pusher_beams/pusher_beams_spec.h"

#include "providers/basic_spec.h"
#include "providers/pusher_beams/pusher_beams_provider.h"

namespace herald::providers {
namespace {

bool IsInstanceIdChar(char c) { return IsAsciiAlnum(c) || c == '-'; }

class PusherBeamsSpec final : public BasicSpec {
 public:
  PusherBeamsSpec()
      : BasicSpec("pusher-beams", "Pusher Beams",
                  {{"instanceId", true, false}, {"secretKey", true, true}}) {}

  Result<std::unique_ptr<Provider>> Create(const Json& credentials) const override {
    return NewPusherBeamsProvider(credentials);
  }

  // A Beams user id: Beams takes at most 164 bytes of UTF-8 (protocols.md §6.3).
  Result<std::string> NormalizeDeviceToken(std::string_view token,
                                           const TokenPolicy& policy) const override {
    ASSIGN_OR_RETURN(std::string normalized, NormalizeUtf8Token(token, policy));
    if (normalized.size() > kMaxBeamsUserIdBytes) {
      return Status::InvalidArgument("device token (a Beams user id) must be at most 164 bytes");
    }
    return normalized;
  }

 protected:
  Status CheckValues(const Json& credentials) const override {
    // The instance id becomes a DNS label: https://<instanceId>.pushnotifications.pusher.com.
    std::string_view instance_id = StringField(credentials, "instanceId");
    if (instance_id.size() > 63 || !AllOf(instance_id, IsInstanceIdChar)) {
      return FieldError("instanceId", "must be a Beams instance id (letters, digits and '-')");
    }
    return Status::Ok();
  }
};

}  // namespace

std::unique_ptr<ProviderSpec> NewPusherBeamsSpec() { return std::make_unique<PusherBeamsSpec>(); }

}  // namespace herald::providers
