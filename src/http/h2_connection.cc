#include "http/h2_connection.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nghttp2/nghttp2.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <new>
#include <string_view>
#include <utility>

#include "core/log.h"
#include "http/curl_support.h"

namespace herald::http::h2 {
namespace {

constexpr std::uint32_t kMaxStreamsPerConnection = 1000;
constexpr std::uint32_t kStreamWindow = 1 << 20;      // SETTINGS_INITIAL_WINDOW_SIZE
constexpr std::int32_t kConnectionWindow = 16 << 20;  // the connection's receive window
// While this much waits for the socket, nghttp2 is not asked for more frames.
constexpr std::size_t kWireHighWater = 256 * 1024;
constexpr std::size_t kWireCompactAt = 64 * 1024;
constexpr int kReadRounds = 16;  // reads per readiness event; level-triggered epoll brings us back
constexpr int kKeepAliveSeconds = 60;

std::string ErrnoText(int error) { return std::strerror(error); }

// --- nghttp2 callbacks: each hands its event to the Connection (never throwing into C).

Connection* Of(void* user) { return static_cast<Connection*>(user); }

int OnHeaderCallback(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                     size_t name_length, const uint8_t* value, size_t value_length, uint8_t,
                     void* user) {
  if (frame->hd.type != NGHTTP2_HEADERS) return 0;
  try {
    return Of(user)->OnHeader(frame->hd.stream_id,
                              {reinterpret_cast<const char*>(name), name_length},
                              {reinterpret_cast<const char*>(value), value_length});
  } catch (...) {
    return NGHTTP2_ERR_CALLBACK_FAILURE;
  }
}

int OnFrameRecvCallback(nghttp2_session*, const nghttp2_frame* frame, void* user) {
  try {
    return Of(user)->OnFrameReceived(frame);
  } catch (...) {
    return NGHTTP2_ERR_CALLBACK_FAILURE;
  }
}

int OnFrameSendCallback(nghttp2_session*, const nghttp2_frame* frame, void* user) {
  return Of(user)->OnFrameSent(frame);
}

int OnDataChunkCallback(nghttp2_session*, uint8_t, int32_t stream_id, const uint8_t* data,
                        size_t length, void* user) {
  try {
    return Of(user)->OnData(stream_id, data, length);
  } catch (...) {
    return NGHTTP2_ERR_CALLBACK_FAILURE;
  }
}

int OnStreamCloseCallback(nghttp2_session*, int32_t stream_id, uint32_t error_code, void* user) {
  try {
    return Of(user)->OnStreamClosed(stream_id, error_code);
  } catch (...) {
    return NGHTTP2_ERR_CALLBACK_FAILURE;
  }
}

ssize_t ReadBody(nghttp2_session*, int32_t, uint8_t* buffer, size_t length, uint32_t* flags,
                 nghttp2_data_source* source, void*) {
  auto* transfer = static_cast<Transfer*>(source->ptr);
  const std::string& body = transfer->request.body;
  const std::size_t n = std::min(length, body.size() - transfer->body_offset);
  std::memcpy(buffer, body.data() + transfer->body_offset, n);
  transfer->body_offset += n;
  if (transfer->body_offset == body.size()) *flags |= NGHTTP2_DATA_FLAG_EOF;
  return static_cast<ssize_t>(n);
}

const nghttp2_session_callbacks* Callbacks() {
  static nghttp2_session_callbacks* callbacks = [] {
    nghttp2_session_callbacks* c = nullptr;
    if (nghttp2_session_callbacks_new(&c) != 0) throw std::bad_alloc();
    nghttp2_session_callbacks_set_on_header_callback(c, OnHeaderCallback);
    nghttp2_session_callbacks_set_on_frame_recv_callback(c, OnFrameRecvCallback);
    nghttp2_session_callbacks_set_on_frame_send_callback(c, OnFrameSendCallback);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(c, OnDataChunkCallback);
    nghttp2_session_callbacks_set_on_stream_close_callback(c, OnStreamCloseCallback);
    return c;
  }();
  return callbacks;
}

}  // namespace

// --- Origin --------------------------------------------------------------------------------------

Origin::~Origin() {
  if (session != nullptr) SSL_SESSION_free(session);
  FreeTlsContext(tls_context);
}

void Origin::PushBack(Transfer* transfer) {
  transfer->pending = true;
  transfer->next = nullptr;
  transfer->prev = pending_tail;
  (pending_tail != nullptr ? pending_tail->next : pending_head) = transfer;
  pending_tail = transfer;
}

void Origin::PushFront(Transfer* transfer) {
  transfer->pending = true;
  transfer->prev = nullptr;
  transfer->next = pending_head;
  (pending_head != nullptr ? pending_head->prev : pending_tail) = transfer;
  pending_head = transfer;
}

void Origin::Remove(Transfer* transfer) {
  (transfer->prev != nullptr ? transfer->prev->next : pending_head) = transfer->next;
  (transfer->next != nullptr ? transfer->next->prev : pending_tail) = transfer->prev;
  transfer->prev = transfer->next = nullptr;
  transfer->pending = false;
}

Transfer* Origin::PopFront() {
  Transfer* transfer = pending_head;
  if (transfer != nullptr) Remove(transfer);
  return transfer;
}

// --- Connection: setting up ----------------------------------------------------------------------

Connection::Connection(ConnectionOwner& owner, Origin& origin, ConnectionContext& context,
                       Clock::time_point setup_deadline)
    : owner_(owner),
      origin_(origin),
      context_(context),
      setup_deadline_(setup_deadline),
      idle_since_(Clock::now()) {}

Connection::~Connection() { ReleaseTransport(); }

bool Connection::CanTakeStream() const {
  if (state_ != State::kReady || draining_) return false;
  const std::uint32_t cap = std::min(
      nghttp2_session_get_remote_settings(session_, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS),
      kMaxStreamsPerConnection);
  return streams_.size() < cap;
}

void Connection::Connect(std::vector<sockaddr_storage> addresses, bool refused_some) {
  addresses_ = std::move(addresses);
  next_address_ = 0;
  refused_some_ = refused_some;
  state_ = State::kConnecting;
  TryNextAddress();
}

void Connection::TryNextAddress() {
  while (next_address_ < addresses_.size()) {
    const sockaddr_storage& address = addresses_[next_address_++];
    const socklen_t length =
        address.ss_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
    int fd = socket(address.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
    if (fd < 0) {
      last_connect_error_ = ErrnoText(errno);
      continue;
    }
    int one = 1;
    int keep_alive = kKeepAliveSeconds;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &keep_alive, sizeof(keep_alive));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &keep_alive, sizeof(keep_alive));
    if (connect(fd, reinterpret_cast<const sockaddr*>(&address), length) != 0 &&
        errno != EINPROGRESS) {
      last_connect_error_ = ErrnoText(errno);
      close(fd);
      continue;
    }
    fd_ = fd;
    attempt_deadline_ = Clock::now() + kAttemptTime;
    SetInterest(EPOLLOUT);  // writable once connected (or failed); checked in FinishConnect
    return;
  }
  if (refused_some_) {
    FailSetup(TransportError::kForbiddenTarget, kPrivateTargetMessage);
  } else {
    FailSetup(TransportError::kConnect, "cannot connect to " + origin_.host + " port " +
                                            std::to_string(origin_.port) + ": " +
                                            last_connect_error_);
  }
}

bool Connection::AttemptOverdue(Clock::time_point now) const {
  return state_ == State::kConnecting && next_address_ < addresses_.size() &&
         now >= attempt_deadline_;
}

void Connection::AbandonAttempt() {
  last_connect_error_ = "no answer";
  ReleaseTransport();
  TryNextAddress();
}

void Connection::FinishConnect() {
  int error = 0;
  socklen_t length = sizeof(error);
  if (getsockopt(fd_, SOL_SOCKET, SO_ERROR, &error, &length) != 0) error = errno;
  if (error == 0) {
    if (origin_.tls) {
      StartTls();
    } else {
      StartSession();
    }
    return;
  }
  last_connect_error_ = ErrnoText(error);
  ReleaseTransport();
  TryNextAddress();
}

void Connection::StartTls() {
  std::string error;
  ssl_ = NewTls(origin_.tls_context, fd_, &wire_out_, origin_.host, origin_.session, this, &error);
  if (ssl_ == nullptr) return FailSetup(TransportError::kTls, error);
  state_ = State::kHandshaking;
  Handshake();
}

void Connection::Handshake() {
  ERR_clear_error();
  const int rc = SSL_connect(ssl_);
  const int error = rc == 1 ? SSL_ERROR_NONE : SSL_get_error(ssl_, rc);
  const int saved_errno = errno;
  if (!SendWire()) {
    return FailSetup(TransportError::kTlsHandshake, "TLS handshake broke off: " + ErrnoText(errno));
  }
  if (error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE) {
    SetInterest(EPOLLIN | (wire_out_.empty() ? 0u : EPOLLOUT));
    return;
  }
  if (error == SSL_ERROR_SSL) {
    const long verified = SSL_get_verify_result(ssl_);
    if (verified != X509_V_OK) {
      ERR_clear_error();
      return FailSetup(TransportError::kTls, std::string("TLS certificate verification failed: ") +
                                                 X509_verify_cert_error_string(verified));
    }
    return FailSetup(TransportError::kTlsHandshake,
                     "TLS handshake failed: " + TlsErrorText("protocol error"));
  }
  if (error != SSL_ERROR_NONE) {
    ERR_clear_error();
    return FailSetup(TransportError::kTlsHandshake,
                     saved_errno == ECONNRESET
                         ? "TLS handshake broke off: connection reset by the server"
                         : "TLS handshake broke off: connection closed by the server");
  }
  const unsigned char* alpn = nullptr;
  unsigned int alpn_length = 0;
  SSL_get0_alpn_selected(ssl_, &alpn, &alpn_length);
  const std::string_view selected(reinterpret_cast<const char*>(alpn), alpn_length);
  if (selected != "h2") {
    return FailSetup(TransportError::kProtocol,
                     selected.empty()
                         ? "the server did not negotiate HTTP/2 (no ALPN protocol selected)"
                         : "the server did not negotiate HTTP/2 (ALPN selected \"" +
                               std::string(selected) + "\")");
  }
  StartSession();
}

void Connection::StartSession() {
  if (nghttp2_session_client_new(&session_, Callbacks(), this) != 0) {
    session_ = nullptr;
    return FailSetup(TransportError::kConnect, "cannot create an HTTP/2 session");
  }
  const nghttp2_settings_entry settings[] = {{NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
                                             {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, kStreamWindow}};
  nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings, std::size(settings));
  nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0, kConnectionWindow);
  state_ = State::kReady;
  idle_since_ = Clock::now();
  SetInterest(EPOLLIN);
  owner_.WantFlush(*this);
  owner_.CapacityChanged(*this);
}

void Connection::FailSetup(TransportError error, const std::string& message) {
  if (state_ == State::kClosed) return;
  spdlog::debug("http2_connect_failed authority={} error={} message=\"{}\"", origin_.authority,
                TransportErrorName(error), message);
  ReleaseTransport();
  state_ = State::kClosed;
  draining_ = true;
  owner_.SetupFailed(*this, error, message);
  owner_.Closed(*this);
}

// --- Connection: I/O -----------------------------------------------------------------------------

void Connection::SetInterest(std::uint32_t events) {
  if (fd_ < 0 || (registered_ && events == interest_)) return;
  epoll_event event{};
  event.events = events;
  event.data.ptr = this;
  epoll_ctl(context_.epoll_fd, registered_ ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd_, &event);
  registered_ = true;
  interest_ = events;
}

void Connection::ReleaseTransport() {
  if (session_ != nullptr) {
    nghttp2_session_del(session_);  // calls no callback
    session_ = nullptr;
  }
  if (ssl_ != nullptr) {
    // A close_notify (best effort) after a handshake that completed and no TLS error: without
    // it OpenSSL takes the connection's session (the origin's, for resumption) as unusable.
    if (fd_ >= 0 && SSL_is_init_finished(ssl_) && !tls_failed_) {
      ERR_clear_error();
      SSL_shutdown(ssl_);
      ERR_clear_error();
      SendWire();
    }
    SSL_set_app_data(ssl_, nullptr);
    SSL_free(ssl_);
    ssl_ = nullptr;
  }
  if (fd_ >= 0) {
    if (registered_) epoll_ctl(context_.epoll_fd, EPOLL_CTL_DEL, fd_, nullptr);
    close(fd_);
    fd_ = -1;
  }
  registered_ = false;
  interest_ = 0;
  wire_out_.clear();
  wire_sent_ = 0;
  plain_out_.clear();
}

void Connection::OnEvent(std::uint32_t events) {
  switch (state_) {
    case State::kConnecting:
      FinishConnect();
      break;
    case State::kHandshaking:
      if ((events & EPOLLOUT) != 0 && !SendWire()) {
        return FailSetup(TransportError::kTlsHandshake,
                         "TLS handshake broke off: connection closed by the server");
      }
      if ((events & (EPOLLIN | EPOLLERR | EPOLLHUP)) != 0) {
        Handshake();
      } else {
        SetInterest(EPOLLIN | (wire_out_.empty() ? 0u : EPOLLOUT));
      }
      break;
    case State::kReady:
      if ((events & (EPOLLIN | EPOLLERR | EPOLLHUP)) != 0) Read();
      if (state_ == State::kReady && (events & EPOLLOUT) != 0) Flush();
      break;
    default:
      break;
  }
}

// Sends what wire_out_ holds until the socket is full; false (errno kept) if the socket failed.
bool Connection::SendWire() {
  while (wire_sent_ < wire_out_.size()) {
    ssize_t n =
        send(fd_, wire_out_.data() + wire_sent_, wire_out_.size() - wire_sent_, MSG_NOSIGNAL);
    if (n >= 0) {
      wire_sent_ += static_cast<std::size_t>(n);
    } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
      break;
    } else if (errno != EINTR) {
      return false;
    }
  }
  if (wire_sent_ == wire_out_.size()) {
    wire_out_.clear();
    wire_sent_ = 0;
  } else if (wire_sent_ >= kWireCompactAt) {
    wire_out_.erase(0, wire_sent_);
    wire_sent_ = 0;
  }
  return true;
}

void Connection::Read() {
  char* buffer = context_.read_buffer.data();
  const std::size_t size = context_.read_buffer.size();
  // TLS: OpenSSL may hold decrypted bytes the socket no longer shows, so those are read first.
  for (int round = 0; state_ == State::kReady; ++round) {
    if (round >= kReadRounds && (ssl_ == nullptr || SSL_pending(ssl_) == 0)) break;
    std::size_t got = 0;
    if (ssl_ != nullptr) {
      ERR_clear_error();
      const int n = SSL_read(ssl_, buffer, static_cast<int>(size));
      if (n <= 0) {
        const int error = SSL_get_error(ssl_, n);
        if (error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE) break;
        if (error == SSL_ERROR_ZERO_RETURN || (error == SSL_ERROR_SYSCALL && errno == 0)) {
          ERR_clear_error();
          return CloseWith(TransportError::kConnect, "connection closed by the server");
        }
        if (error == SSL_ERROR_SYSCALL) {
          ERR_clear_error();
          return CloseWith(TransportError::kConnect, "connection lost: " + ErrnoText(errno));
        }
        tls_failed_ = true;
        return CloseWith(TransportError::kConnect, "TLS error: " + TlsErrorText("unknown"));
      }
      got = static_cast<std::size_t>(n);
    } else {
      const ssize_t n = recv(fd_, buffer, size, 0);
      if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) break;
        if (errno == EINTR) continue;
        return CloseWith(TransportError::kConnect, "connection lost: " + ErrnoText(errno));
      }
      if (n == 0) return CloseWith(TransportError::kConnect, "connection closed by the server");
      got = static_cast<std::size_t>(n);
    }
    const ssize_t used =
        nghttp2_session_mem_recv(session_, reinterpret_cast<const uint8_t*>(buffer), got);
    if (used < 0) {
      return CloseWith(TransportError::kProtocol,
                       std::string("HTTP/2 error: ") + nghttp2_strerror(static_cast<int>(used)));
    }
    if (ssl_ == nullptr && got < size) break;  // the socket is drained
  }
  if (state_ == State::kReady && (!wire_out_.empty() || nghttp2_session_want_write(session_))) {
    owner_.WantFlush(*this);
  }
}

void Connection::Flush() {
  if (state_ != State::kReady) return;
  for (int pass = 0; pass < 4; ++pass) {  // more passes only when the high-water mark cut one
    std::size_t produced = 0;
    while (wire_out_.size() - wire_sent_ + plain_out_.size() < kWireHighWater) {
      const uint8_t* data = nullptr;
      const ssize_t n = nghttp2_session_mem_send(session_, &data);
      if (n < 0) {
        return CloseWith(TransportError::kProtocol,
                         std::string("HTTP/2 error: ") + nghttp2_strerror(static_cast<int>(n)));
      }
      if (n == 0) break;
      (ssl_ != nullptr ? plain_out_ : wire_out_)
          .append(reinterpret_cast<const char*>(data), static_cast<std::size_t>(n));
      produced += static_cast<std::size_t>(n);
    }
    if (ssl_ != nullptr && !plain_out_.empty()) {
      ERR_clear_error();
      const int n = SSL_write(ssl_, plain_out_.data(), static_cast<int>(plain_out_.size()));
      if (n <= 0) {
        tls_failed_ = true;
        return CloseWith(TransportError::kConnect, "TLS error: " + TlsErrorText("write"));
      }
      plain_out_.erase(0, static_cast<std::size_t>(n));
    }
    if (!SendWire()) {
      const std::string message = "connection lost: " + ErrnoText(errno);
      Read();  // what the server sent before it went away (answers, GOAWAY) still counts
      if (state_ == State::kReady) CloseWith(TransportError::kConnect, message);
      return;
    }
    if (!wire_out_.empty() || produced == 0 || nghttp2_session_want_write(session_) == 0) break;
  }
  if (nghttp2_session_want_read(session_) == 0 && nghttp2_session_want_write(session_) == 0 &&
      wire_out_.empty()) {
    return CloseWith(sent_error_goaway_ ? TransportError::kProtocol : TransportError::kConnect,
                     sent_error_goaway_ ? "HTTP/2 protocol error: the session was ended"
                                        : "the HTTP/2 session ended");
  }
  SetInterest(EPOLLIN | (wire_out_.empty() ? 0u : EPOLLOUT));
}

void Connection::CloseIdle() {
  if (state_ == State::kReady && session_ != nullptr) {
    draining_ = true;
    nghttp2_session_terminate_session(session_, NGHTTP2_NO_ERROR);
    const uint8_t* data = nullptr;
    ssize_t n = 0;
    while ((n = nghttp2_session_mem_send(session_, &data)) > 0) {
      (ssl_ != nullptr ? plain_out_ : wire_out_)
          .append(reinterpret_cast<const char*>(data), static_cast<std::size_t>(n));
    }
    if (ssl_ != nullptr && !plain_out_.empty()) {
      SSL_write(ssl_, plain_out_.data(), static_cast<int>(plain_out_.size()));
      ERR_clear_error();
    }
    SendWire();  // best effort: the GOAWAY
  }
  CloseWith(TransportError::kConnect, "closed while idle");
}

void Connection::CloseWith(TransportError error, const std::string& message) {
  if (state_ == State::kClosed) return;
  spdlog::debug("http2_connection_closed authority={} streams={} message=\"{}\"", origin_.authority,
                streams_.size(), message);
  state_ = State::kClosed;
  draining_ = true;
  std::vector<Transfer*> transfers;
  transfers.swap(streams_);
  ReleaseTransport();
  for (Transfer* transfer : transfers) {
    transfer->connection = nullptr;
    transfer->stream_slot = kNoSlot;
    if (transfer->delivered) {
      owner_.Drop(transfer);
    } else if (!transfer->headers_sent) {
      owner_.Resend(transfer);
    } else {
      owner_.Finish(transfer, Outcome{error, message, {}});
    }
  }
  owner_.Closed(*this);
}

std::vector<Transfer*> Connection::DetachAll() {
  std::vector<Transfer*> transfers;
  transfers.swap(streams_);
  for (Transfer* transfer : transfers) {
    transfer->connection = nullptr;
    transfer->stream_slot = kNoSlot;
  }
  ReleaseTransport();
  state_ = State::kClosed;
  draining_ = true;
  return transfers;
}

// --- Connection: streams -------------------------------------------------------------------------

Connection::Submitted Connection::Submit(Transfer* transfer, std::string* error) {
  if (!CanTakeStream()) return Submitted::kNoRoom;
  static thread_local std::vector<nghttp2_nv> headers;
  headers.clear();
  // Not copied: the transfer (and the origin, the context) outlive the stream's HEADERS.
  auto add = [](std::string_view name, std::string_view value) {
    headers.push_back(nghttp2_nv{
        const_cast<uint8_t*>(reinterpret_cast<const uint8_t*>(name.data())),
        const_cast<uint8_t*>(reinterpret_cast<const uint8_t*>(value.data())), name.size(),
        value.size(), NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE});
  };
  const Request& request = transfer->request;
  add(":method", request.method);
  add(":scheme", origin_.scheme);
  add(":authority", origin_.authority);
  add(":path", transfer->url.path);
  bool has_user_agent = false;
  for (const auto& [name, value] : request.headers) {
    has_user_agent = has_user_agent || name == "user-agent";
    add(name, value);
  }
  if (!has_user_agent && !context_.user_agent.empty()) add("user-agent", context_.user_agent);
  if (!transfer->content_length.empty()) add("content-length", transfer->content_length);

  nghttp2_data_provider body{};
  body.source.ptr = transfer;
  body.read_callback = ReadBody;
  transfer->body_offset = 0;
  transfer->headers_sent = false;
  const int32_t id = nghttp2_submit_request(session_, nullptr, headers.data(), headers.size(),
                                            request.body.empty() ? nullptr : &body, transfer);
  if (id == NGHTTP2_ERR_STREAM_ID_NOT_AVAILABLE) {
    draining_ = true;  // ids ran out: the engine opens another connection
    owner_.CapacityChanged(*this);
    return Submitted::kNoRoom;
  }
  if (id < 0) {
    *error = std::string("cannot send the request: ") + nghttp2_strerror(id);
    return Submitted::kRejected;
  }
  transfer->connection = this;
  transfer->stream_id = id;
  transfer->stream_slot = streams_.size();
  streams_.push_back(transfer);
  owner_.WantFlush(*this);
  return Submitted::kYes;
}

void Connection::Cancel(Transfer* transfer) {
  if (state_ != State::kReady || transfer->connection != this) return;
  nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, transfer->stream_id, NGHTTP2_CANCEL);
  owner_.WantFlush(*this);
}

void Connection::Detach(Transfer* transfer) {
  const std::size_t slot = transfer->stream_slot;
  if (slot < streams_.size() && streams_[slot] == transfer) {
    streams_[slot] = streams_.back();
    streams_[slot]->stream_slot = slot;
    streams_.pop_back();
  }
  transfer->connection = nullptr;
  transfer->stream_slot = kNoSlot;
  if (streams_.empty()) idle_since_ = Clock::now();
  owner_.CapacityChanged(*this);
}

void Connection::DeliverResponse(Transfer* transfer) {
  Outcome outcome;
  outcome.response = std::move(transfer->response);
  outcome.response.http_version = "2";
  owner_.Finish(transfer, std::move(outcome));
}

// A final response announcing a body over the cap is delivered at once, as its headers and no
// body (the rest of the stream is drained), as the libcurl engine does.
void Connection::DeliverIfOverCap(Transfer* transfer) {
  if (transfer->length_checked || transfer->response.status < 200) return;
  transfer->length_checked = true;
  const std::size_t max = context_.max_response_bytes;
  if (max == 0 || transfer->request.method == "HEAD") return;
  const std::string_view length = transfer->response.Header("content-length");
  std::size_t announced = 0;
  auto [end, error] = std::from_chars(length.data(), length.data() + length.size(), announced);
  if (length.empty() || error != std::errc() || end != length.data() + length.size()) return;
  if (announced <= max) return;
  transfer->response.body_truncated = true;
  DeliverResponse(transfer);
}

int Connection::OnHeader(std::int32_t stream_id, std::string_view name, std::string_view value) {
  auto* transfer =
      static_cast<Transfer*>(nghttp2_session_get_stream_user_data(session_, stream_id));
  if (transfer == nullptr || transfer->delivered) return 0;
  Response& response = transfer->response;
  if (name == ":status") {  // a new response (a final one after 1xx): only its headers count
    int status = 0;
    std::from_chars(value.data(), value.data() + value.size(), status);
    response.status = status;
    response.headers.clear();
    return 0;
  }
  if (!name.empty() && name.front() == ':') return 0;
  response.headers.emplace_back(std::string(name), std::string(value));
  return 0;
}

int Connection::OnFrameReceived(const void* raw) {
  const auto* frame = static_cast<const nghttp2_frame*>(raw);
  switch (frame->hd.type) {
    case NGHTTP2_HEADERS:
    case NGHTTP2_DATA: {
      auto* transfer = static_cast<Transfer*>(
          nghttp2_session_get_stream_user_data(session_, frame->hd.stream_id));
      if (transfer == nullptr || transfer->delivered) return 0;
      if ((frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0 && transfer->response.status >= 200) {
        transfer->complete = true;
        DeliverResponse(transfer);
      } else if (frame->hd.type == NGHTTP2_HEADERS) {
        DeliverIfOverCap(transfer);
      }
      return 0;
    }
    case NGHTTP2_SETTINGS:
      if ((frame->hd.flags & NGHTTP2_FLAG_ACK) == 0) {
        settled_ = true;
        owner_.CapacityChanged(*this);
      }
      return 0;
    case NGHTTP2_GOAWAY:
      // nghttp2 closes the streams above last_stream_id with REFUSED_STREAM (sent again by
      // OnStreamClosed); the others end normally. No new stream goes here.
      draining_ = true;
      owner_.CapacityChanged(*this);
      return 0;
    default:
      return 0;
  }
}

int Connection::OnFrameSent(const void* raw) {
  const auto* frame = static_cast<const nghttp2_frame*>(raw);
  if (frame->hd.type == NGHTTP2_HEADERS) {
    auto* transfer =
        static_cast<Transfer*>(nghttp2_session_get_stream_user_data(session_, frame->hd.stream_id));
    if (transfer != nullptr) transfer->headers_sent = true;
  } else if (frame->hd.type == NGHTTP2_GOAWAY && frame->goaway.error_code != NGHTTP2_NO_ERROR) {
    sent_error_goaway_ = true;
    draining_ = true;
  }
  return 0;
}

int Connection::OnData(std::int32_t stream_id, const std::uint8_t* data, std::size_t length) {
  auto* transfer =
      static_cast<Transfer*>(nghttp2_session_get_stream_user_data(session_, stream_id));
  if (transfer == nullptr || transfer->delivered) return 0;  // drained
  std::string& body = transfer->response.body;
  const std::size_t max = context_.max_response_bytes;
  if (max > 0 && length > max - body.size()) {
    transfer->response.body_truncated = true;
    DeliverResponse(transfer);
    return 0;
  }
  body.append(reinterpret_cast<const char*>(data), length);
  return 0;
}

int Connection::OnStreamClosed(std::int32_t stream_id, std::uint32_t error_code) {
  auto* transfer =
      static_cast<Transfer*>(nghttp2_session_get_stream_user_data(session_, stream_id));
  if (transfer == nullptr) return 0;
  Detach(transfer);
  if (transfer->delivered) {
    owner_.Drop(transfer);
  } else if (error_code == NGHTTP2_REFUSED_STREAM && transfer->response.status == 0) {
    owner_.Resend(transfer);  // not processed: GOAWAY, or the server refused it
  } else {
    owner_.Finish(transfer,
                  Outcome{TransportError::kProtocol,
                          error_code == NGHTTP2_NO_ERROR
                              ? std::string("the server ended the stream before the response")
                              : std::string("stream reset by the server: ") +
                                    nghttp2_http2_strerror(error_code),
                          {}});
  }
  return 0;
}

void Connection::OnNewSession(ssl_session_st* session) {
  if (origin_.session != nullptr) SSL_SESSION_free(origin_.session);
  origin_.session = session;
}

}  // namespace herald::http::h2
