// Novu's push-webhook: an HMAC-signed POST per device token.
#pragma once

#include <memory>

#include "providers/registry.h"

namespace herald::providers {

std::unique_ptr<ProviderSpec> NewPushWebhookSpec();

}  // namespace herald::providers
