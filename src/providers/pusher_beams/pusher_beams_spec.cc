#include "providers/pusher_beams/pusher_beams_spec.h"

#include "providers/basic_spec.h"

namespace herald::providers {
namespace {

bool IsInstanceIdChar(char c) { return IsAsciiAlnum(c) || c == '-'; }

class PusherBeamsSpec final : public BasicSpec {
 public:
  PusherBeamsSpec()
      : BasicSpec("pusher-beams", "Pusher Beams",
                  {{"instanceId", true, false}, {"secretKey", true, true}}) {}

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
