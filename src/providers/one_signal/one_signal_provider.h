// OneSignal create-notification (protocols.md §5): one POST for up to 2,000 device tokens that
// get the same notification, in either of the two targeting models Novu knows:
//   apiVersion playerModel (default): POST https://onesignal.com/api/v1/notifications,
//     `Authorization: Basic <apiKey>`, `include_player_ids`;
//   apiVersion externalId: POST https://api.onesignal.com/notifications, `Authorization: Key
//     <apiKey>`, `include_aliases: {external_id}` with `target_channel: "push"`.
// `baseUrl` replaces the origin. Each request carries an `idempotency_key` derived from its
// message ids, so a resend of the same messages is answered with the first result instead of
// being sent again. The reply's invalid ids take those tokens off; the others are delivered with
// the notification id.
#pragma once

#include <memory>
#include <span>
#include <string>

#include "providers/provider.h"

namespace herald::providers {

// `credentials` must have passed the one-signal spec's validation.
Result<std::unique_ptr<Provider>> NewOneSignalProvider(const Json& credentials);

// The idempotency key of a request carrying these messages: a UUID-shaped digest of their ids,
// whatever their order (exposed for tests).
std::string OneSignalIdempotencyKey(std::span<const PushMessage* const> messages);

}  // namespace herald::providers
