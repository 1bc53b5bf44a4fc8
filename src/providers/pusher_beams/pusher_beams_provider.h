// Pusher Beams publish-to-users (protocols.md §6): one POST
// https://{instanceId}.pushnotifications.pusher.com/publish_api/v1/instances/{instanceId}/
// publishes/users with `Authorization: Bearer <secretKey>` for up to 1,000 user ids that get the
// same notification (the request body stays under Beams' 200 KiB). The device token is a Beams
// user id. The body has Novu's `apns`, `fcm` and `web` blocks (novu-api.md §5.1) built from the
// title, the body and overrides (sound, badge, categoryId, channelId, clickAction, color, icon,
// tag, ttl), with `overrides.apns` / `fcm` / `web` merged over them for anything else. Beams
// reports nothing per user (it prunes its own devices): a 200 `publishId` delivers every message
// of the request.
#pragma once

#include <cstddef>
#include <memory>

#include "providers/provider.h"

namespace herald::providers {

// Beams' limit on a user id.
inline constexpr std::size_t kMaxBeamsUserIdBytes = 164;

// `credentials` must have passed the pusher-beams spec's validation.
Result<std::unique_ptr<Provider>> NewPusherBeamsProvider(const Json& credentials);

}  // namespace herald::providers
