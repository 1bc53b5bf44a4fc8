// Firebase Cloud Messaging (HTTP v1): the credential is the service-account JSON.
#pragma once

#include <memory>

#include "providers/registry.h"

namespace herald::providers {

std::unique_ptr<ProviderSpec> NewFcmSpec();

}  // namespace herald::providers
