// Outbound HTTP as providers and the delivery engine see it. NewClient routes each request to one
// of two engines, each on an I/O thread of its own: requests with http2_prior_knowledge (APNs,
// FCM) to an HTTP/2 engine written on nghttp2 (h2_client.cc), the others to libcurl multi
// (curl_client.cc). Both pool connections per origin and never block the caller; the
// semantics below hold for either.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/status.h"

namespace herald::http {

using Headers = std::vector<std::pair<std::string, std::string>>;

// Lets a sender take back a request still waiting for its turn (a concurrency slot): the client
// asks once, on its I/O thread, just before it would send the request; a withdrawn request
// completes with TransportError::kWithdrawn and is never sent.
class Withdrawal {
 public:
  virtual bool Withdrawn(std::uint64_t tag) const = 0;

 protected:
  ~Withdrawal() = default;
};

// A TLS client certificate and its private key, both PEM (certificate-authenticated APNs).
struct ClientCertificate {
  std::string certificate_pem;
  std::string private_key_pem;
};

struct Request {
  std::string method = "POST";
  std::string url;  // absolute http(s) URL
  Headers headers;
  std::string body;
  // 0 = the client's default. Total covers connect + TLS + request + response; it starts when
  // the request is admitted (time spent waiting for a concurrency_key slot is not counted).
  std::chrono::milliseconds timeout{0};
  // Key for the per-key concurrency limit (e.g. the integration id); empty = unlimited.
  std::string concurrency_key;
  // HTTP/2 (APNs, FCM): h2 by ALPN for https://, cleartext HTTP/2 with prior knowledge for
  // http://. NewClient sends such requests through its nghttp2 engine, where a server that does
  // not speak HTTP/2 fails them with kProtocol.
  bool http2_prior_knowledge = false;
  // Requests of different groups never share a connection (APNs binds a connection to the
  // credential that first used it). Empty: the shared pool.
  std::string connection_group;
  // Presented on TLS connections of this request (which then belong to this certificate).
  std::shared_ptr<const ClientCertificate> client_certificate;
  // If set, asked (with `withdrawal_tag`) before the request is sent; it must outlive the request.
  const Withdrawal* withdrawal = nullptr;
  std::uint64_t withdrawal_tag = 0;
};

struct Response {
  int status = 0;
  Headers headers;  // names lowercase
  std::string body;
  std::string http_version;  // "1.1", "2"
  // The body went past ClientOptions::max_response_bytes: `body` holds what was read before the
  // client stopped. The status and headers are the server's; an adapter that needs the whole
  // body (per-token results) must not take a truncated one as complete.
  bool body_truncated = false;
  std::string_view Header(std::string_view name) const;  // first match or empty
};

// Why a request got no HTTP response. Transient ones are retried by the queue.
enum class TransportError {
  kNone,
  kTimeout,          // connect or total timeout
  kConnect,          // refused, unreachable, reset before a response
  kDns,              // name did not resolve
  kTlsHandshake,     // the TLS handshake broke off (reset, closed, garbled): transient
  kTls,              // certificate not verified, or our TLS setup (CA file) unusable
  kForbiddenTarget,  // resolved to a loopback/private/link-local/metadata address
  kProtocol,         // malformed response, stream error, GOAWAY
  kBadRequest,       // our request was unusable (bad URL, ...)
  kShutdown,         // the client is stopping
  kWithdrawn,        // the sender took it back before it was sent (Request::withdrawal)
};
const char* TransportErrorName(TransportError error);
bool IsTransient(TransportError error);

struct Outcome {
  TransportError error = TransportError::kNone;
  std::string error_message;  // the engine's text, for logs and delivery records
  Response response;          // valid when error == kNone
  bool ok() const { return error == TransportError::kNone; }
};

using Callback = std::function<void(Outcome)>;

struct ClientOptions {
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds default_timeout{15000};
  std::string ca_file;                 // HERALD_CA_FILE: extra CA bundle (added to system CAs)
  bool allow_private_targets = false;  // HERALD_ALLOW_PRIVATE_TARGETS=1
  // Requests in flight per concurrency key (an integration), unless set per key.
  std::size_t default_concurrency_per_key = 64;
  // Connections per origin. HTTP/1.1 carries one request per connection at a time, so a cap
  // below the concurrency only queues requests inside libcurl, which re-tries the queued ones
  // whenever a transfer ends (measured: bench/HISTORY.md); the concurrency limit above is what
  // throttles. HTTP/2 multiplexes on one connection.
  std::size_t max_connections_per_host = 64;
  std::size_t max_response_bytes = 1 << 20;  // larger bodies fail with kProtocol; 0 = no cap
  std::string user_agent = "herald/0.1";
  int thread_nice = 0;  // added to the I/O thread's nice value (see LowerThreadPriority)
};

class Client {
 public:
  virtual ~Client() = default;
  // Queues `request`; `done` runs exactly once on the client's I/O thread (keep it short: hand
  // heavy work elsewhere). Never follows redirects. Thread-safe. After Shutdown() began, `done`
  // runs immediately on the calling thread with kShutdown.
  virtual void Send(Request request, Callback done) = 0;
  // Concurrency limit for requests carrying this concurrency_key (default from options; a limit
  // of 0 is treated as 1). Raising it admits waiting requests at once.
  virtual void SetConcurrency(const std::string& key, std::size_t limit) = 0;
  // Number of requests queued or in flight.
  virtual std::size_t InFlight() const = 0;
  // Stops accepting, waits up to `grace` for in-flight requests, fails the rest with kShutdown
  // and stops the I/O thread. Idempotent. Called from a callback it cannot wait: it only begins
  // the stop (the destructor, on another thread, joins). Never destroy a client from a callback.
  virtual void Shutdown(std::chrono::milliseconds grace) = 0;
};

// The client Herald uses: the two engines below behind one Client. SetConcurrency applies to
// both, InFlight is their sum, Shutdown stops both within `grace`.
std::unique_ptr<Client> NewClient(const ClientOptions& options);
// libcurl: HTTP/1.1 (and HTTP/2 when asked).
std::unique_ptr<Client> NewCurlClient(const ClientOptions& options);
// nghttp2: HTTP/2 only, h2 over TLS (ALPN) for https:// and h2c with prior knowledge for
// http://, many streams per connection (up to the server's SETTINGS_MAX_CONCURRENT_STREAMS,
// at most 1000), further connections up to max_connections_per_host when those are full; idle
// connections stay open for minutes. Streams a server did not process (REFUSED_STREAM, above a
// GOAWAY's last stream id) are sent again transparently; a connection lost with streams the
// server may have processed fails them with kConnect.
std::unique_ptr<Client> NewH2Client(const ClientOptions& options);

}  // namespace herald::http
