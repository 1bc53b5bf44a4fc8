// Delivery through one integration, sans-I/O: a Provider builds the HTTP request for a message
// and classifies the reply. It never opens a socket, sleeps or retries; the dispatcher owns the
// network (http::Client) and the queue owns retries, so each is written once.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "core/json.h"
#include "core/status.h"
#include "http/client.h"

namespace herald::providers {

enum class Verdict {
  kDelivered,          // the provider accepted it
  kRetry,              // transient: 5xx, 429, timeout, reset; retry with backoff
  kRefreshAuth,        // our auth token is stale: refresh, then retry
  kFailed,             // this message is bad; keep the token
  kFailedRemoveToken,  // the token is dead: mark it expired
  kFailedConfig,       // the integration is misconfigured; keep the token
};
const char* VerdictName(Verdict verdict);

struct Outcome {
  Verdict verdict = Verdict::kDelivered;
  std::string reason;  // typed code: "HTTP_503", "TIMEOUT", "UNREGISTERED", ...
  std::string detail;  // human-readable, for the message record (never a credential)
  std::optional<std::chrono::milliseconds> retry_after;  // the provider's Retry-After
  std::string provider_message_id;
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

// An integration bound to its (decrypted) credentials. Immutable and thread-safe.
class Provider {
 public:
  virtual ~Provider() = default;
  // InvalidArgument if the message cannot be expressed for this provider.
  virtual Result<http::Request> BuildRequest(const PushMessage& message) const = 0;
  // Decides on status codes and typed provider error codes only, never on free text.
  virtual Outcome Classify(const http::Outcome& reply) const = 0;
};

// Shared classification of transport errors and plain HTTP statuses: 2xx delivered; 408, 429
// and 5xx retried (honouring Retry-After); other 4xx failed; private targets and unusable
// requests are configuration errors.
Outcome ClassifyTransport(const http::Outcome& reply);
Outcome ClassifyHttpStatus(const http::Response& response);

// Retry-After as delta-seconds or an HTTP-date (RFC 9110 §10.2.3), relative to `now_ms`.
std::optional<std::chrono::milliseconds> ParseRetryAfter(std::string_view value,
                                                         std::int64_t now_ms);

}  // namespace herald::providers
