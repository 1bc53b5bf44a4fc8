#include "providers/push_webhook/push_webhook_spec.h"

#include "core/url.h"
#include "providers/basic_spec.h"
#include "providers/push_webhook/push_webhook_provider.h"

namespace herald::providers {
namespace {

class PushWebhookSpec final : public BasicSpec {
 public:
  PushWebhookSpec()
      : BasicSpec("push-webhook", "Push Webhook",
                  {{"webhookUrl", true, false}, {"secretKey", true, true}}) {}

 protected:
  // Whether the target may be private is decided when connecting, on resolved addresses.
  Status CheckValues(const Json& credentials) const override {
    std::optional<Url> url = ParseHttpUrl(StringField(credentials, "webhookUrl"));
    if (!url) return FieldError("webhookUrl", "is not an absolute http(s) URL");
    if (url->has_fragment) return FieldError("webhookUrl", "must not have a fragment");
    return Status::Ok();
  }

 public:
  Result<std::unique_ptr<Provider>> Create(const Json& credentials) const override {
    return NewPushWebhookProvider(credentials);
  }
};

}  // namespace

std::unique_ptr<ProviderSpec> NewPushWebhookSpec() { return std::make_unique<PushWebhookSpec>(); }

}  // namespace herald::providers
