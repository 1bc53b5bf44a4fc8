// Pushpad create-notification (protocols.md §7): one POST
// https://pushpad.xyz/api/v1/projects/{applicationId}/notifications with
// `Authorization: Token token="<apiKey>"` and the documented body {"notification": {...},
// "uids": [...]} for up to 1,000 uids that get the same notification. The device token is a
// Pushpad uid (the application's user id). `baseUrl` replaces the origin, like every provider's;
// the official SDK's form of it (origin + "/api/v1") is taken as well.
//
// The 201 reply lists the requested uids that have a subscription: those messages are delivered
// (id = the notification id); a uid it leaves out fails as NOT_SUBSCRIBED and is kept, because a
// uid is a user, not a device: nobody is subscribed now, the user may subscribe later, and
// Pushpad prunes expired browser subscriptions itself.
#pragma once

#include <memory>

#include "providers/provider.h"

namespace herald::providers {

// `credentials` must have passed the pushpad spec's validation.
Result<std::unique_ptr<Provider>> NewPushpadProvider(const Json& credentials);

}  // namespace herald::providers
