// Web Push with VAPID; device tokens are serialised PushSubscriptions.
#pragma once

#include <memory>

#include "providers/registry.h"

namespace herald::providers {

std::unique_ptr<ProviderSpec> NewWebPushSpec();

}  // namespace herald::providers
