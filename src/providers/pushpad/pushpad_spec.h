// Pushpad create-notification API; device tokens are Pushpad uids.
#pragma once

#include <memory>

#include "providers/registry.h"

namespace herald::providers {

std::unique_ptr<ProviderSpec> NewPushpadSpec();

}  // namespace herald::providers
