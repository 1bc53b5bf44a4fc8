// Firebase Cloud Messaging HTTP v1 (protocols.md §1): one POST .../messages:send per device
// token, HTTP/2-multiplexed; an OAuth 2.0 access token from the service account's JWT-bearer
// grant (RS256), exchanged once per account and reused until five minutes before it expires.
//
// The message is {token, notification: {title, body, image}, data, android, apns, webpush,
// fcm_options}: data from overrides.data (values as strings), the platform blocks from the
// overrides of the same names (webPush and fcmOptions too), and Novu's `overrides.type =
// "data"` form: no notification, data = the trigger payload with title, body and message.
#pragma once

#include <memory>

#include "providers/provider.h"

namespace herald::providers {

// `credentials` must have passed the fcm spec's validation.
Result<std::unique_ptr<Provider>> NewFcmProvider(const Json& credentials);

}  // namespace herald::providers
