// Apple Push Notification service with token (.p8) authentication.
#pragma once

#include <memory>

#include "providers/registry.h"

namespace herald::providers {

std::unique_ptr<ProviderSpec> NewApnsSpec();

}  // namespace herald::providers
