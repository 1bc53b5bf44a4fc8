// OneSignal create-notification API.
#pragma once

#include <memory>

#include "providers/registry.h"

namespace herald::providers {

std::unique_ptr<ProviderSpec> NewOneSignalSpec();

}  // namespace herald::providers
