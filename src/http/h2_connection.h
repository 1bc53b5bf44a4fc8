// One connection of the nghttp2 engine (h2_client.cc): a non-blocking TCP socket, TLS with ALPN
// h2 for https origins (h2c with prior knowledge for http), and an nghttp2 client session
// carrying many streams at once. Everything here runs on the engine's I/O thread. Internal to
// src/http.
#pragma once

#include <sys/socket.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/url.h"
#include "http/client.h"

struct nghttp2_session;
struct ssl_st;
struct ssl_ctx_st;
struct ssl_session_st;
struct x509_store_st;

namespace herald::http::h2 {

using Clock = std::chrono::steady_clock;
inline constexpr std::size_t kNoSlot = static_cast<std::size_t>(-1);

class Connection;
struct Origin;

// One request, from Send() to its callback. Its stream may outlive the callback: a response cut
// short at max_response_bytes is drained until the server ends it, and a timed-out stream
// until the RST_STREAM is out. The engine frees a transfer once both are over.
struct Transfer {
  Request request;  // header names lowercase, connection-specific headers removed
  Callback done;
  Url url;                     // url.path carries the query: the :path
  std::string content_length;  // the content-length sent, empty when none is
  Response response;
  Clock::time_point deadline;       // total timeout, from admission
  std::size_t heap_slot = kNoSlot;  // in the engine's deadline heap
  Origin* origin = nullptr;
  Transfer* prev = nullptr;  // in origin->pending
  Transfer* next = nullptr;
  Connection* connection = nullptr;  // while it has an open stream
  std::size_t stream_slot = kNoSlot;
  std::int32_t stream_id = 0;
  std::size_t body_offset = 0;  // request body bytes handed to nghttp2
  int resends = 0;
  bool holds_key_slot = false;  // counted against its concurrency_key's limit
  bool pending = false;         // waiting in origin->pending for a stream
  bool headers_sent = false;    // the server may have seen it
  bool length_checked = false;  // the final response's content-length was held against the cap
  bool complete = false;        // the final response ended (END_STREAM)
  bool delivered = false;       // the callback ran
};

// Requests with the same scheme, host, port, connection group and client certificate: they may
// share connections, and only they.
struct Origin {
  Origin() = default;
  Origin(const Origin&) = delete;
  Origin& operator=(const Origin&) = delete;
  ~Origin();

  bool tls = false;
  std::string scheme;
  std::string host;  // IPv6 literals without brackets
  std::uint16_t port = 0;
  std::string authority;  // host[:port] as the URL has it
  std::shared_ptr<const ClientCertificate> certificate;
  ssl_ctx_st* tls_context = nullptr;  // owned; made on first use (with the certificate if any)
  ssl_session_st* session = nullptr;  // owned; the newest TLS session, offered for resumption
  std::vector<std::unique_ptr<Connection>> connections;
  Transfer* pending_head = nullptr;  // admitted, waiting for a stream
  Transfer* pending_tail = nullptr;
  Clock::time_point idle_since;       // no connection and nothing pending since
  Clock::time_point setup_failed_at;  // the last connection attempt that failed
  bool dispatch_queued = false;

  bool HasPending() const { return pending_head != nullptr; }
  void PushBack(Transfer* transfer);
  void PushFront(Transfer* transfer);
  Transfer* PopFront();
  void Remove(Transfer* transfer);
};

// --- TLS (h2_tls.cc) -----------------------------------------------------------------------------

// A TLS client context trusting `store`: certificate verification on, ALPN "h2" only, TLS 1.2+,
// client-side session caching for Origin::session; with `certificate`, that certificate and key
// are presented. Null with `*error` set when the certificate or key cannot be used.
ssl_ctx_st* NewTlsContext(x509_store_st* store, const ClientCertificate* certificate,
                          std::string* error);
void FreeTlsContext(ssl_ctx_st* context);
// TLS on the connected socket `fd`, client side: reads from the socket, writes its records into
// `*wire_out`; verifies the certificate for `host` (SNI and name, or the IP address) and offers
// `resume` (may be null); new sessions go to `connection`'s OnNewSession. Null with `*error`.
ssl_st* NewTls(ssl_ctx_st* context, int fd, std::string* wire_out, const std::string& host,
               ssl_session_st* resume, Connection* connection, std::string* error);
// The reason of OpenSSL's newest error, or `fallback`; clears OpenSSL's error queue.
std::string TlsErrorText(const char* fallback);

// The engine, as its connections see it.
class ConnectionOwner {
 public:
  // The callback of `transfer` is due. Its stream may still be open (t->connection set); the
  // connection then calls Drop when it ends.
  virtual void Finish(Transfer* transfer, Outcome outcome) = 0;
  // The stream of a delivered transfer ended.
  virtual void Drop(Transfer* transfer) = 0;
  // The server never processed it (REFUSED_STREAM, above a GOAWAY's last stream id, or never
  // sent before the connection went away): to be sent again. Detached from the connection.
  virtual void Resend(Transfer* transfer) = 0;
  // The connection may take new streams now, or stopped taking them.
  virtual void CapacityChanged(Connection& connection) = 0;
  // Setting the connection up failed (before any stream was sent on it).
  virtual void SetupFailed(Connection& connection, TransportError error,
                           const std::string& message) = 0;
  // The connection is closed and holds no transfer: it may be destroyed after this loop turn.
  virtual void Closed(Connection& connection) = 0;
  // nghttp2 has frames to write: Flush() at the end of this loop turn.
  virtual void WantFlush(Connection& connection) = 0;

 protected:
  ~ConnectionOwner() = default;
};

// What all connections of an engine share.
struct ConnectionContext {
  int epoll_fd = -1;
  std::string user_agent;
  std::size_t max_response_bytes = 0;
  std::vector<char> read_buffer;  // one per engine: reads happen one at a time
};

class Connection {
 public:
  enum class State { kResolving, kConnecting, kHandshaking, kReady, kClosed };
  enum class Submitted { kYes, kNoRoom, kRejected };

  bool flush_queued = false;  // the engine's bookkeeping: in its flush queue

  Connection(ConnectionOwner& owner, Origin& origin, ConnectionContext& context,
             Clock::time_point setup_deadline);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  State state() const { return state_; }
  Origin& origin() const { return origin_; }
  // Takes no new streams: the server sent GOAWAY, stream ids ran out or it is closing.
  bool draining() const { return draining_; }
  bool CanTakeStream() const;
  // The server's SETTINGS arrived: its stream limit is known (until then nghttp2 assumes 100).
  bool settled() const { return settled_; }
  std::size_t streams() const { return streams_.size(); }
  Clock::time_point setup_deadline() const { return setup_deadline_; }
  Clock::time_point idle_since() const { return idle_since_; }

  // Connects to `addresses` (port set) in turn. `refused_some`: private addresses were left
  // out, so failing to reach the others means kForbiddenTarget.
  void Connect(std::vector<sockaddr_storage> addresses, bool refused_some);
  // Gives up before the connection is ready (resolution failed, setup timed out).
  void FailSetup(TransportError error, const std::string& message);
  // A TCP connect still under way after kAttemptTime while other addresses remain (an address
  // family that is routed but dropped, say): those are tried instead.
  bool AttemptOverdue(Clock::time_point now) const;
  void AbandonAttempt();
  static constexpr auto kAttemptTime = std::chrono::seconds(1);

  // Opens a stream for `transfer` (kYes). kNoRoom: the connection cannot take it (it is now
  // draining); kRejected: nghttp2 refused the request itself, `*error` says why.
  Submitted Submit(Transfer* transfer, std::string* error);
  // The transfer's total timeout passed: RST_STREAM CANCEL. It stays attached until the stream
  // closes (then Drop).
  void Cancel(Transfer* transfer);

  void OnEvent(std::uint32_t events);
  // Writes what nghttp2 has to send: one send() per call, or fewer.
  void Flush();
  // Closes an idle connection (GOAWAY NO_ERROR first).
  void CloseIdle();
  // Takes every transfer off the connection (the engine is stopping) and closes it.
  std::vector<Transfer*> DetachAll();

  // nghttp2 and OpenSSL callbacks (h2_connection.cc).
  int OnHeader(std::int32_t stream_id, std::string_view name, std::string_view value);
  int OnFrameReceived(const void* frame);
  int OnFrameSent(const void* frame);
  int OnData(std::int32_t stream_id, const std::uint8_t* data, std::size_t length);
  int OnStreamClosed(std::int32_t stream_id, std::uint32_t error_code);
  void OnNewSession(ssl_session_st* session);

 private:
  void TryNextAddress();
  void FinishConnect();
  void StartTls();
  void Handshake();
  void StartSession();
  void Read();
  bool SendWire();
  void SetInterest(std::uint32_t events);
  void ReleaseTransport();
  // The connection is gone with streams open: those never sent go again, the others fail with
  // `error` (kConnect: the server may have processed them; kProtocol).
  void CloseWith(TransportError error, const std::string& message);
  void Detach(Transfer* transfer);
  void DeliverResponse(Transfer* transfer);
  void DeliverIfOverCap(Transfer* transfer);

  ConnectionOwner& owner_;
  Origin& origin_;
  ConnectionContext& context_;
  State state_ = State::kResolving;
  Clock::time_point setup_deadline_;
  Clock::time_point idle_since_;
  std::vector<sockaddr_storage> addresses_;
  std::size_t next_address_ = 0;
  Clock::time_point attempt_deadline_;
  bool refused_some_ = false;
  std::string last_connect_error_;
  int fd_ = -1;
  std::uint32_t interest_ = 0;
  bool registered_ = false;
  ssl_st* ssl_ = nullptr;
  nghttp2_session* session_ = nullptr;
  std::vector<Transfer*> streams_;
  std::string plain_out_;  // TLS: nghttp2's output of this flush, encrypted in one SSL_write
  std::string wire_out_;   // bytes for the socket
  std::size_t wire_sent_ = 0;
  bool draining_ = false;
  bool settled_ = false;
  bool tls_failed_ = false;         // a TLS error ended the connection: its session is not reused
  bool sent_error_goaway_ = false;  // nghttp2 ended the session over a protocol error
};

}  // namespace herald::http::h2
