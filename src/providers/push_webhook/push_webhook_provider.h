// Novu's push-webhook provider, byte-compatible with Novu (novu-api.md §6): one POST per device
// token to `webhookUrl` with body {target, title, content, overrides, payload, messageId} and
// X-Novu-Signature = lowercase hex HMAC-SHA256 of the exact body bytes keyed by `secretKey`.
// Unlike Novu, the request has a timeout and transient failures are retried by the queue.
#pragma once

#include <memory>

#include "providers/provider.h"

namespace herald::providers {

// `credentials` must have passed the push-webhook spec's validation.
Result<std::unique_ptr<Provider>> NewPushWebhookProvider(const Json& credentials);

// The exact body bytes, keys in Novu's order (exposed for tests and the benchmark).
std::string PushWebhookBody(const PushMessage& message);

}  // namespace herald::providers
