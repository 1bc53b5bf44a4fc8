// Expo Push Service (protocols.md §4): up to 100 messages per POST /--/api/v2/push/send, one
// push ticket per message in order; a ticket that is ok only means Expo queued the message, so it
// is accepted with its ticket id as the receipt, and POST /--/api/v2/push/getReceipts (up to
// 1,000 ids) later says whether APNs or FCM took it. Bodies over 1 KiB go gzip-compressed, as
// Expo's own SDK sends them. The optional access token (enhanced push security) is a static
// Bearer header: nothing to mint or exchange.
//
// A message is {to, title, body, data, sound, badge, ...overrides}, as Novu's Expo provider builds
// it: data is the trigger payload (overrides.data merged over it), sound kept when it is a string
// (or Expo's critical-sound object), and the other overrides spread in after type checks on the
// fields Expo knows, because one bad field makes Expo refuse the whole batch.
#pragma once

#include <chrono>
#include <memory>
#include <string_view>

#include "providers/provider.h"

namespace herald::providers {

struct ExpoOptions {
  // When a ticket's receipt is first asked for (HERALD_EXPO_RECEIPT_DELAY). Expo advises about
  // 15 minutes: receipts appear within seconds to minutes and are kept for about a day.
  std::chrono::milliseconds receipt_delay = std::chrono::minutes(15);
};

// `credentials` must have passed the expo spec's validation.
Result<std::unique_ptr<Provider>> NewExpoProvider(const Json& credentials,
                                                  const ExpoOptions& options = {});

// True for "ExponentPushToken[...]" and "ExpoPushToken[...]" with a non-empty inside of letters,
// digits, '-', '_', '.', ':' and '=' (what Expo's tokens are made of), at most 4096 bytes.
bool IsExpoPushToken(std::string_view token);

}  // namespace herald::providers
