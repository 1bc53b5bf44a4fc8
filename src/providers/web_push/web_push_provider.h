// Web Push (RFC 8030) with VAPID (RFC 8292) and aes128gcm payload encryption (RFC 8291): one
// POST per browser subscription to its push service. The payload a service worker receives is a
// JSON object `showNotification` can take: title, body, data (the trigger payload plus
// messageId) and, from overrides, icon, badge, image, tag, url, actions, requireInteraction,
// silent. Headers TTL (always), Urgency and Topic come from overrides too.
#pragma once

#include <memory>
#include <string>

#include "providers/provider.h"

namespace herald::providers {

// `credentials` must have passed the web-push spec's validation.
Result<std::unique_ptr<Provider>> NewWebPushProvider(const Json& credentials);

// The plaintext a service worker receives for `message` (exposed for tests).
Result<std::string> WebPushPlaintext(const PushMessage& message);

}  // namespace herald::providers
