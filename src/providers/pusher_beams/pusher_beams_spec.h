// Pusher Beams publish API; device tokens are Beams user ids.
#pragma once

#include <memory>

#include "providers/registry.h"

namespace herald::providers {

std::unique_ptr<ProviderSpec> NewPusherBeamsSpec();

}  // namespace herald::providers
