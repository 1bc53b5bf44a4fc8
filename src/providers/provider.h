// Delivery through one integration, sans-I/O. A Provider turns messages into HTTP requests and
// classifies the replies; it never opens a socket, sleeps, waits or retries. The dispatcher owns
// the network (http::Client), the auth-token cache and the order of things; the queue owns
// retries. So each concern is written once, and a provider is a pure function of its inputs.
//
// What a provider may need, each optional:
//   - batches: one request for many messages of one integration, one outcome per message back
//     (max_batch() > 1); per-message providers implement the simple form;
//   - an auth token (Authenticator): minted locally (APNs and VAPID JWTs) or obtained by an
//     exchange request (FCM OAuth), cached by the dispatcher per credential and scope;
//   - later confirmation (ReceiptChecker): a message accepted now is resolved by a scheduled,
//     durable follow-up request (Expo receipts);
//   - a connection test (Probe) that checks the credentials without reaching a user.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/json.h"
#include "core/status.h"
#include "core/time.h"
#include "http/client.h"

namespace herald::providers {

enum class Verdict {
  kDelivered,          // the provider accepted it
  kAccepted,           // taken, confirmation comes later (Outcome::receipt; ReceiptChecker)
  kPending,            // a receipt says nothing yet: ask again later (ReceiptChecker only)
  kRetry,              // transient: 5xx, 429, timeout, reset; retry with backoff
  kRefreshAuth,        // our auth token is stale: refresh it, then resend once at once
  kFailed,             // this message is bad; keep the token
  kFailedRemoveToken,  // the token is dead: take it off the subscriber
  kFailedConfig,       // the integration is misconfigured; keep the token
};

struct Outcome {
  Verdict verdict = Verdict::kDelivered;
  std::string reason;  // typed code: "HTTP_503", "TIMEOUT", "UNREGISTERED", ...
  std::string detail;  // human-readable, for the message record (never a credential)
  std::optional<std::chrono::milliseconds> retry_after;  // the provider's Retry-After
  std::string provider_message_id;
  // kFailedRemoveToken: the provider says the app or browser is gone (unsubscribed), rather than
  // the token being invalid or expired.
  bool unsubscribed = false;
  // kFailedRemoveToken: the provider's time since when the token is invalid (APNs 410
  // `timestamp`); a token registered again after it is kept.
  std::optional<EpochMs> token_invalid_since;
  // kAccepted: what identifies the message to the provider's receipt service.
  std::string receipt;
};

// One rendered push for one device token.
struct PushMessage {
  std::string message_id;
  std::string device_token;
  std::string title;
  std::string content;
  std::string payload_json = "{}";  // a JSON object, see store::Message::payload_json
  Json overrides = Json::object();
};

// A token a provider puts on its requests.
struct AuthToken {
  std::string value;
  EpochMs issued_at = 0;
  EpochMs refresh_at = 0;  // from then on a new one is obtained (shortly before it expires)
};

// How a provider authenticates, when its requests carry a token derived from the credentials.
class Authenticator {
 public:
  virtual ~Authenticator() = default;
  enum class Kind { kMinted, kExchanged };
  virtual Kind kind() const = 0;
  // Identifies the credential across rebuilds of the Provider (tokens are cached under it): a
  // digest, never a secret in clear.
  virtual std::string CredentialKey() const = 0;
  // The scope a message's token must have ("" = one token per credential; Web Push: one per
  // push-service origin).
  virtual std::string Scope(const PushMessage&) const { return {}; }
  // A token that was asked to be refreshed is kept if it is younger than this (APNs refuses new
  // provider tokens more often than every 20 minutes).
  virtual std::chrono::milliseconds min_refresh_age() const { return std::chrono::milliseconds(0); }

  // kMinted: a new token for `scope`.
  virtual Result<AuthToken> Mint(std::string_view scope, EpochMs now) const;
  // kExchanged: the exchange request, and the token its reply carries. A failed exchange is
  // Unavailable when it may work later (network, 5xx), any other code when the credentials are
  // refused.
  virtual Result<http::Request> BuildExchange(EpochMs now) const;
  virtual Result<AuthToken> ReadExchange(const http::Outcome& reply, EpochMs now) const;
};

// Messages accepted with a receipt (Verdict::kAccepted) are resolved later through this.
class ReceiptChecker {
 public:
  virtual ~ReceiptChecker() = default;
  virtual std::size_t max_receipts() const = 0;  // receipts one request may ask about
  // How long after acceptance the first check is made.
  virtual std::chrono::milliseconds first_check_after() const = 0;
  virtual Result<http::Request> BuildCheck(std::span<const std::string> receipts,
                                           const AuthToken& token) const = 0;
  // One outcome per receipt, in order: a final verdict (delivered, failed, token dead), kPending
  // (no receipt yet, or the check itself failed: asked again later, Outcome::retry_after or
  // first_check_after() from now) or kRetry (the provider asks for the message to be sent again).
  virtual std::vector<Outcome> ReadCheck(const http::Outcome& reply,
                                         std::span<const std::string> receipts) const = 0;
};

// What a connection test found.
struct ProbeResult {
  bool ok = false;
  std::string reason;  // typed: "INVALID_GRANT", "InvalidProviderToken", "HTTP_404", ...
  std::string detail;
};

// A request that carries some messages of a batch, and which ones (indices into the batch, in
// the order the reply answers them).
struct BatchRequest {
  http::Request request;
  std::vector<std::size_t> messages;
};

// What Build made of a batch: the requests, and an outcome for each message no request carries
// (it cannot be expressed for this provider: too big, malformed).
struct BatchPlan {
  std::vector<BatchRequest> requests;
  std::vector<std::pair<std::size_t, Outcome>> refused;
};

// An integration bound to its (decrypted) credentials. Immutable and thread-safe.
class Provider {
 public:
  virtual ~Provider() = default;

  virtual const Authenticator* auth() const { return nullptr; }
  virtual const ReceiptChecker* receipts() const { return nullptr; }

  // ---- per message (max_batch() == 1) ------------------------------------------------------
  // InvalidArgument if the message cannot be expressed for this provider. `token` is empty when
  // auth() is null.
  virtual Result<http::Request> BuildRequest(const PushMessage& message,
                                             const AuthToken& token) const;
  // Decides on status codes and typed provider error codes only, never on free text.
  virtual Outcome Classify(const http::Outcome& reply) const;

  // ---- batches -----------------------------------------------------------------------------
  // Messages one request may carry. Above 1, BuildBatch and ClassifyBatch are used instead of
  // the per-message pair, and the reply is classified on the dispatcher thread.
  virtual std::size_t max_batch() const { return 1; }
  // `batch` holds at most max_batch() messages of one integration and one auth scope.
  virtual BatchPlan BuildBatch(std::span<const PushMessage* const> batch,
                               const AuthToken& token) const;
  // One outcome per message of `request`, in the order of BatchRequest::messages.
  virtual std::vector<Outcome> ClassifyBatch(const http::Outcome& reply,
                                             std::span<const PushMessage* const> messages) const;

  // ---- connection test ---------------------------------------------------------------------
  // The request that checks the credentials without reaching a user, or nullopt when a local
  // check settles it (then ReadProbe is not called and the result is ok). Any auth exchange
  // happens first (a refused exchange is the test's answer).
  virtual Result<std::optional<http::Request>> BuildProbe(const AuthToken& token) const;
  // Whether BuildProbe needs a token (the exchange or mint happens first). Default: when the
  // provider authenticates at all.
  virtual bool probe_uses_token() const { return auth() != nullptr; }
  virtual ProbeResult ReadProbe(const http::Outcome& reply) const;
};

// Shared classification of transport errors and plain HTTP statuses: 2xx delivered; 408, 429
// and 5xx retried (honouring Retry-After); other 4xx failed; private targets and unusable
// requests are configuration errors.
Outcome ClassifyTransport(const http::Outcome& reply);
Outcome ClassifyHttpStatus(const http::Response& response);
// A probe answered by transport: ok for any HTTP response below 500 that is not 401/403.
ProbeResult ProbeFromTransport(const http::Outcome& reply);

// A request a provider will not make (a message it cannot express, refused credentials), with
// the typed reason recorded for it: `code` InvalidArgument unless given.
Status Refusal(std::string_view reason, std::string detail, Code code = Code::kInvalidArgument);
// The typed reason a Refusal carries, else `fallback`.
std::string ReasonOf(const Status& status, std::string_view fallback);

// Retry-After as delta-seconds or an HTTP-date (RFC 9110 §10.2.3), relative to `now_ms`.
std::optional<std::chrono::milliseconds> ParseRetryAfter(std::string_view value,
                                                         std::int64_t now_ms);

// The trigger payload a device or browser receives: Novu's push payload (PushMessage::
// payload_json, with `subscriber` and `step`) without those two members, which would not fit in
// the 4 KB that APNs, FCM and push services take. Members keep their order.
OrderedJson DevicePayload(const PushMessage& message);

}  // namespace herald::providers
