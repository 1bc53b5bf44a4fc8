// Expo Push Service; the access token is optional.
#pragma once

#include <memory>

#include "providers/registry.h"

namespace herald::providers {

std::unique_ptr<ProviderSpec> NewExpoSpec();

}  // namespace herald::providers
