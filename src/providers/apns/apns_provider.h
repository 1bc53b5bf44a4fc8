// Apple Push Notification service over HTTP/2 (protocols.md §2): one POST /3/device/<token> per
// message, multiplexed on a few long-lived connections per credential. Token auth (an ES256
// provider JWT per key and team, reused for 50 minutes, never minted more often than every 20)
// or certificate auth (a TLS client certificate from a .p12, or PEM certificate and key).
//
// The body is {"aps": {...}, <custom keys>}: aps.alert.title/body from the step, aps keys and
// headers from overrides (Novu's node-apn names: badge, sound, threadId, category,
// contentAvailable, mutableContent, interruptionLevel, ..., topic, pushType, priority, expiry,
// collapseId), custom keys from the trigger payload, overrides.payload and overrides.data, and
// `messageId`.
#pragma once

#include <memory>
#include <string>

#include "crypto/certificates.h"
#include "providers/provider.h"

namespace herald::providers {

// `credentials` must have passed the apns spec's validation.
Result<std::unique_ptr<Provider>> NewApnsProvider(const Json& credentials);

// The client certificate of certificate-auth credentials (`certificate`: a base64 .p12 with
// `password`, or a PEM certificate with `privateKey`). InvalidArgument naming the field.
Result<crypto::ClientCertificate> LoadApnsCertificate(const Json& credentials);

// The apns-id Herald sends for a message: its 24-hex-digit id as a UUID (empty for other ids).
std::string ApnsIdOf(std::string_view message_id);

}  // namespace herald::providers
