// libcurl multi on one I/O thread. Threads other than the I/O thread only touch the
// mutex-guarded inbox (new requests, limit changes, flags); everything curl-related and the
// per-key admission state belong to the I/O thread.
#include <curl/curl.h>
#include <openssl/ssl.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/log.h"
#include "core/url.h"
#include "http/client.h"
#include "http/curl_support.h"
#include "http/engine_inbox.h"
#include "http/socket_watch.h"

namespace herald::http {
namespace {

using std::chrono::milliseconds;

constexpr long kMaxConcurrentStreams = 1000;  // APNs allows ~1000; the server's SETTINGS cap it
constexpr long kMaxCachedConnections = 256;   // idle connections kept across all origins
constexpr std::size_t kMaxPooledHandles = 256;
constexpr int kIdlePollMs = 1000;

void GlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct MultiDeleter {
  void operator()(CURLM* multi) const { curl_multi_cleanup(multi); }
};
struct ShareDeleter {
  void operator()(CURLSH* share) const { curl_share_cleanup(share); }
};
struct SlistDeleter {
  void operator()(curl_slist* list) const { curl_slist_free_all(list); }
};

class CurlClient;

// One request from Send() to its callback.
struct Transfer {
  CurlClient* client = nullptr;
  Request request;
  Callback done;
  CURL* easy = nullptr;
  std::unique_ptr<curl_slist, SlistDeleter> header_list;
  Response response;
  std::size_t max_body = 0;
  bool forbidden_target = false;  // the open-socket hook refused a private address
  bool body_too_large = false;
  char error_buffer[CURL_ERROR_SIZE] = {};
};

class CurlClient final : public InboxEngine<Transfer> {
 public:
  explicit CurlClient(const ClientOptions& options);
  ~CurlClient() override;

 private:
  struct KeyState {
    std::size_t active = 0;
    std::deque<std::unique_ptr<Transfer>> waiting;
  };

  // I/O thread.
  void Run();
  void Enqueue(std::unique_ptr<Transfer> transfer);
  void Pump(const std::string& key);
  void Start(std::unique_ptr<Transfer> transfer);
  CURLcode Configure(Transfer& transfer, const Url& url);
  CURLSH* ShareFor(const std::string& connection_group);
  void ReapCompleted();
  Outcome OutcomeOf(Transfer& transfer, CURLcode result);
  void Complete(std::unique_ptr<Transfer> transfer, Outcome outcome);
  void FailEverything();
  void Recycle(CURL* easy);
  std::size_t LimitFor(const std::string& key) const;

  void Finish(std::unique_ptr<Transfer> transfer, Outcome outcome);

  static size_t OnHeader(char* data, size_t size, size_t count, void* user);
  static size_t OnBody(char* data, size_t size, size_t count, void* user);
  static curl_socket_t OnOpenSocket(void* user, curlsocktype purpose, curl_sockaddr* address);
  static int OnCloseSocket(void* user, curl_socket_t socket);
  // Event loop: libcurl says which sockets to watch (OnSocket) and when to call it back without
  // socket activity (OnTimer); epoll reports only the sockets that are ready, so an event costs
  // the same however many transfers are open.
  static int OnSocket(CURL* easy, curl_socket_t socket, int what, void* user, void* socket_data);
  static int OnTimer(CURLM* multi, long timeout_ms, void* user);
  void WaitAndAct();

  static CURLcode OnSslContext(CURL* easy, void* ssl_ctx, void* user);

  const ClientOptions options_;
  // The trusted CAs (see TrustAnchors in curl_support.h).
  std::unique_ptr<X509_STORE, X509StoreDeleter> ca_store_;
  std::string ca_pem_;
  std::string ca_error_;  // set when options_.ca_file could not be read
  // libcurl < 8.0.0 breaks every reuse of an h2c prior-knowledge connection (curl/curl#10634,
  // fixed by #10643); there such requests get a fresh connection each.
  bool h2c_reuse_broken_ = false;
  // DNS and TLS session caches; no lock callbacks: only the I/O thread uses the handles.
  std::unique_ptr<CURLSH, ShareDeleter> share_;
  // Per Request::connection_group: the same caches plus a connection pool of its own. I/O thread.
  std::unordered_map<std::string, std::unique_ptr<CURLSH, ShareDeleter>> group_shares_;
  std::unique_ptr<CURLM, MultiDeleter> multi_;  // connection cache and the event loop
  int epoll_fd_ = -1;
  std::optional<std::chrono::steady_clock::time_point> timer_;  // I/O thread only
  std::optional<SocketWatch> sockets_;  // I/O thread only (libcurl calls the socket hooks there)

  // I/O thread only.
  std::unordered_map<std::string, std::size_t> limits_;
  std::unordered_map<std::string, KeyState> keys_;
  std::unordered_map<Transfer*, std::unique_ptr<Transfer>> active_;
  std::vector<CURL*> pool_;
};

CurlClient::CurlClient(const ClientOptions& options) : InboxEngine("curl"), options_(options) {
  GlobalInit();
  const curl_version_info_data* info = curl_version_info(CURLVERSION_NOW);
  if ((info->features & CURL_VERSION_HTTP2) == 0) {
    spdlog::warn("http_client_no_http2 curl={}", info->version);
  }
  h2c_reuse_broken_ = info->version_num < 0x080000;
  const bool openssl =
      info->ssl_version != nullptr && std::string_view(info->ssl_version).starts_with("OpenSSL/");
  TrustAnchors trust = LoadTrustAnchors(options_.ca_file, openssl);
  ca_store_ = std::move(trust.store);
  ca_pem_ = std::move(trust.pem);
  ca_error_ = std::move(trust.error);

  share_.reset(curl_share_init());
  multi_.reset(curl_multi_init());
  if (!share_ || !multi_) throw std::runtime_error("libcurl initialisation failed");
  curl_share_setopt(share_.get(), CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
  curl_share_setopt(share_.get(), CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);

  CURLM* multi = multi_.get();
  curl_multi_setopt(multi, CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX);
  curl_multi_setopt(multi, CURLMOPT_MAX_HOST_CONNECTIONS,
                    static_cast<long>(std::max<std::size_t>(1, options_.max_connections_per_host)));
  curl_multi_setopt(multi, CURLMOPT_MAX_CONCURRENT_STREAMS, kMaxConcurrentStreams);
  curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, kMaxCachedConnections);
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (epoll_fd_ < 0 || wake_fd_ < 0) throw std::runtime_error("cannot create the http event loop");
  sockets_.emplace(epoll_fd_);
  epoll_event wake{};
  wake.events = EPOLLIN;
  wake.data.fd = wake_fd_;
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &wake) != 0) {
    throw std::runtime_error("cannot create the http event loop");
  }
  curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, &CurlClient::OnSocket);
  curl_multi_setopt(multi, CURLMOPT_SOCKETDATA, this);
  curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, &CurlClient::OnTimer);
  curl_multi_setopt(multi, CURLMOPT_TIMERDATA, this);

  StartIoThread([this] {
    SetThreadName("herald-curl");
    LowerThreadPriority(options_.thread_nice);
    Run();
  });
}

CurlClient::~CurlClient() {
  Shutdown(milliseconds(0));
  for (CURL* easy : pool_) curl_easy_cleanup(easy);
  multi_.reset();  // closes the cached connections; handles are cleaned before the share
  group_shares_.clear();  // closes the groups' connections (the socket watch is still here)
  if (wake_fd_ >= 0) close(wake_fd_);
  if (epoll_fd_ >= 0) close(epoll_fd_);
}

int CurlClient::OnSocket(CURL*, curl_socket_t socket, int what, void* user, void*) {
  auto* self = static_cast<CurlClient*>(user);
  if (what == CURL_POLL_REMOVE) {
    self->sockets_->Unwant(socket);
  } else {
    self->sockets_->Want(
        socket, ((what & CURL_POLL_IN) ? EPOLLIN : 0u) | ((what & CURL_POLL_OUT) ? EPOLLOUT : 0u));
  }
  return 0;
}

int CurlClient::OnCloseSocket(void* user, curl_socket_t socket) {
  static_cast<CurlClient*>(user)->sockets_->Closed(socket);
  return close(socket);
}

int CurlClient::OnTimer(CURLM*, long timeout_ms, void* user) {
  auto* self = static_cast<CurlClient*>(user);
  if (timeout_ms < 0) {
    self->timer_.reset();
  } else {
    self->timer_ = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  }
  return 0;
}

void CurlClient::WaitAndAct() {
  using std::chrono::steady_clock;
  int wait_ms = kIdlePollMs;
  if (timer_) {
    auto left = std::chrono::ceil<std::chrono::milliseconds>(*timer_ - steady_clock::now());
    wait_ms = static_cast<int>(std::clamp<long long>(left.count(), 0, kIdlePollMs));
  }
  constexpr int kMaxEvents = 64;
  epoll_event events[kMaxEvents];
  int ready = epoll_wait(epoll_fd_, events, kMaxEvents, wait_ms);
  int running = 0;
  for (int i = 0; i < ready; ++i) {
    int fd = events[i].data.fd;
    if (fd == wake_fd_) {
      std::uint64_t count = 0;
      ssize_t got = read(wake_fd_, &count, sizeof count);
      (void)got;
      continue;
    }
    // An idle kept-alive connection that became readable (closed by the peer, most likely)
    // leaves the epoll set; libcurl finds out when it next picks the connection.
    if (!sockets_->Deliver(fd)) continue;
    int flags = 0;
    if (events[i].events & EPOLLIN) flags |= CURL_CSELECT_IN;
    if (events[i].events & EPOLLOUT) flags |= CURL_CSELECT_OUT;
    if (events[i].events & (EPOLLERR | EPOLLHUP)) flags |= CURL_CSELECT_ERR;
    curl_multi_socket_action(multi_.get(), fd, flags, &running);
  }
  if (timer_ && steady_clock::now() >= *timer_) {
    timer_.reset();  // libcurl sets the next one from inside the call if it wants one
    curl_multi_socket_action(multi_.get(), CURL_SOCKET_TIMEOUT, 0, &running);
  }
}

void CurlClient::Finish(std::unique_ptr<Transfer> transfer, Outcome outcome) {
  Callback done = std::move(transfer->done);
  transfer.reset();
  CountFinished();
  DeliverOutcome(done, std::move(outcome));
}

void CurlClient::Run() {
  std::vector<std::unique_ptr<Transfer>> batch;
  std::vector<std::pair<std::string, std::size_t>> updates;
  for (;;) {
    try {
      {
        std::lock_guard lock(mu_);
        wake_pending_ = false;
        if (stop_) break;
        batch.swap(inbox_);
        updates.swap(limit_updates_);
      }
      for (auto& [key, limit] : updates) {
        limits_[key] = limit;
        Pump(key);
      }
      updates.clear();
      for (auto& transfer : batch) Enqueue(std::move(transfer));
      batch.clear();

      WaitAndAct();
      ReapCompleted();
    } catch (const std::exception& e) {
      spdlog::error("http_io_exception what=\"{}\"", e.what());
    }
  }
  try {
    FailEverything();
  } catch (const std::exception& e) {
    spdlog::error("http_io_exception what=\"{}\"", e.what());
  }
}

void CurlClient::Enqueue(std::unique_ptr<Transfer> transfer) {
  if (transfer->request.concurrency_key.empty()) {
    Start(std::move(transfer));
    return;
  }
  std::string key = transfer->request.concurrency_key;
  keys_[key].waiting.push_back(std::move(transfer));
  Pump(key);
}

std::size_t CurlClient::LimitFor(const std::string& key) const {
  auto it = limits_.find(key);
  return it != limits_.end() ? it->second
                             : std::max<std::size_t>(1, options_.default_concurrency_per_key);
}

// Admits waiting requests of `key` up to its limit. Complete() only decrements `active`, so the
// iterator stays valid while Start() fails synchronously.
void CurlClient::Pump(const std::string& key) {
  auto it = keys_.find(key);
  if (it == keys_.end()) return;
  const std::size_t limit = LimitFor(key);
  KeyState& state = it->second;
  while (state.active < limit && !state.waiting.empty()) {
    std::unique_ptr<Transfer> transfer = std::move(state.waiting.front());
    state.waiting.pop_front();
    ++state.active;
    Start(std::move(transfer));
  }
  if (state.active == 0 && state.waiting.empty()) keys_.erase(it);
}

void CurlClient::Start(std::unique_ptr<Transfer> transfer) {
  auto fail = [&](TransportError error, std::string message) {
    Complete(std::move(transfer), Outcome{error, std::move(message), {}});
  };
  const Request& request = transfer->request;
  if (request.withdrawal && request.withdrawal->Withdrawn(request.withdrawal_tag)) {
    return fail(TransportError::kWithdrawn, "taken back by the sender before it was sent");
  }
  std::optional<Url> url = ParseHttpUrl(request.url);
  if (!url) return fail(TransportError::kBadRequest, "invalid or unsupported URL");
  if (!IsToken(request.method)) return fail(TransportError::kBadRequest, "invalid HTTP method");
  if (url->scheme == "https" && !ca_error_.empty()) {
    return fail(TransportError::kTls, ca_error_);
  }

  bool has_content_type = false;
  bool has_expect = false;
  curl_slist* list = nullptr;
  for (const auto& [name, value] : request.headers) {
    if (!IsToken(name) || !IsSafeHeaderValue(value)) {
      curl_slist_free_all(list);
      return fail(TransportError::kBadRequest, "invalid request header " + name);
    }
    has_content_type = has_content_type || HeaderNameIs(name, "content-type");
    has_expect = has_expect || HeaderNameIs(name, "expect");
    // "Name;" is curl's spelling of a header with an empty value ("Name:" would remove it).
    std::string line = value.empty() ? name + ";" : name + ": " + value;
    curl_slist* next = curl_slist_append(list, line.c_str());
    if (next == nullptr) {
      curl_slist_free_all(list);
      return fail(TransportError::kBadRequest, "out of memory building headers");
    }
    list = next;
  }
  // No 100-continue round trip; no form-urlencoded Content-Type curl would otherwise invent.
  for (const char* suppress :
       {has_expect ? nullptr : "Expect:", has_content_type ? nullptr : "Content-Type:"}) {
    if (suppress == nullptr) continue;
    curl_slist* next = curl_slist_append(list, suppress);
    if (next == nullptr) {
      curl_slist_free_all(list);
      return fail(TransportError::kBadRequest, "out of memory building headers");
    }
    list = next;
  }
  transfer->header_list.reset(list);

  CURL* easy = nullptr;
  if (!pool_.empty()) {
    easy = pool_.back();
    pool_.pop_back();
  } else {
    easy = curl_easy_init();
    if (easy == nullptr) return fail(TransportError::kConnect, "curl_easy_init failed");
  }
  transfer->easy = easy;
  transfer->max_body = options_.max_response_bytes;
  if (CURLcode rc = Configure(*transfer, *url); rc != CURLE_OK) {
    Recycle(easy);
    transfer->easy = nullptr;
    return fail(TransportError::kBadRequest,
                std::string("cannot configure request: ") + curl_easy_strerror(rc));
  }
  Transfer* raw = transfer.get();
  active_.emplace(raw, std::move(transfer));
  if (CURLMcode rc = curl_multi_add_handle(multi_.get(), easy); rc != CURLM_OK) {
    auto node = active_.extract(raw);
    transfer = std::move(node.mapped());
    Recycle(easy);
    transfer->easy = nullptr;
    return fail(TransportError::kConnect,
                std::string("cannot start request: ") + curl_multi_strerror(rc));
  }
}

CURLcode CurlClient::Configure(Transfer& transfer, const Url& url) {
  CURL* easy = transfer.easy;
  const Request& request = transfer.request;
  transfer.client = this;
  CURLcode rc = CURLE_OK;
  auto check = [&rc](CURLcode result) {
    if (rc == CURLE_OK) rc = result;
  };

  check(curl_easy_setopt(easy, CURLOPT_PRIVATE, &transfer));
  CURLSH* share = ShareFor(request.connection_group);
  if (share == nullptr) return CURLE_OUT_OF_MEMORY;
  check(curl_easy_setopt(easy, CURLOPT_SHARE, share));
  check(curl_easy_setopt(easy, CURLOPT_URL, request.url.c_str()));
  check(curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L));
  check(curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, transfer.error_buffer));

  // Outbound safety: http(s) only, no redirects, no proxies from the environment.
  check(curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https"));
  check(curl_easy_setopt(easy, CURLOPT_REDIR_PROTOCOLS_STR, "http,https"));
  check(curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L));
  check(curl_easy_setopt(easy, CURLOPT_PROXY, ""));
  check(curl_easy_setopt(easy, CURLOPT_NOPROXY, "*"));
  check(curl_easy_setopt(easy, CURLOPT_CLOSESOCKETFUNCTION, &CurlClient::OnCloseSocket));
  check(curl_easy_setopt(easy, CURLOPT_CLOSESOCKETDATA, this));
  check(curl_easy_setopt(easy, CURLOPT_OPENSOCKETFUNCTION, &CurlClient::OnOpenSocket));
  check(curl_easy_setopt(easy, CURLOPT_OPENSOCKETDATA, &transfer));

  // TLS: always verified against the system bundle plus HERALD_CA_FILE.
  check(curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, 1L));
  check(curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, 2L));
  if (url.scheme != "https") {
    // No TLS context: nothing to trust.
  } else if (ca_store_) {  // libcurl loads no CA itself; each new TLS context takes the store
    check(curl_easy_setopt(easy, CURLOPT_CAINFO, nullptr));
    check(curl_easy_setopt(easy, CURLOPT_CAPATH, nullptr));
    check(curl_easy_setopt(easy, CURLOPT_SSL_CTX_FUNCTION, &CurlClient::OnSslContext));
    check(curl_easy_setopt(easy, CURLOPT_SSL_CTX_DATA, this));
  } else if (!ca_pem_.empty()) {
    curl_blob blob{ca_pem_.data(), ca_pem_.size(), CURL_BLOB_NOCOPY};
    check(curl_easy_setopt(easy, CURLOPT_CAINFO_BLOB, &blob));
  }

  if (request.client_certificate && url.scheme == "https") {
    // Not copied: the transfer holds the request (libcurl copies what a connection keeps).
    const ClientCertificate& cert = *request.client_certificate;
    curl_blob cert_blob{const_cast<char*>(cert.certificate_pem.data()),
                        cert.certificate_pem.size(), CURL_BLOB_NOCOPY};
    curl_blob key_blob{const_cast<char*>(cert.private_key_pem.data()),
                       cert.private_key_pem.size(), CURL_BLOB_NOCOPY};
    check(curl_easy_setopt(easy, CURLOPT_SSLCERT_BLOB, &cert_blob));
    check(curl_easy_setopt(easy, CURLOPT_SSLCERTTYPE, "PEM"));
    check(curl_easy_setopt(easy, CURLOPT_SSLKEY_BLOB, &key_blob));
    check(curl_easy_setopt(easy, CURLOPT_SSLKEYTYPE, "PEM"));
  }

  // Protocol: h2 via ALPN for https, h2c only when asked, otherwise HTTP/1.1 keep-alive.
  long version = CURL_HTTP_VERSION_1_1;
  if (url.scheme == "https") {
    version = CURL_HTTP_VERSION_2TLS;
  } else if (request.http2_prior_knowledge) {
    version = CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE;
  }
  check(curl_easy_setopt(easy, CURLOPT_HTTP_VERSION, version));
  if (version == CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE && h2c_reuse_broken_) {
    check(curl_easy_setopt(easy, CURLOPT_FRESH_CONNECT, 1L));
    check(curl_easy_setopt(easy, CURLOPT_FORBID_REUSE, 1L));
  } else {
    check(curl_easy_setopt(easy, CURLOPT_PIPEWAIT, version == CURL_HTTP_VERSION_1_1 ? 0L : 1L));
  }
  check(curl_easy_setopt(easy, CURLOPT_TCP_KEEPALIVE, 1L));

  const milliseconds timeout =
      request.timeout.count() > 0 ? request.timeout : options_.default_timeout;
  check(curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS,
                         static_cast<long>(options_.connect_timeout.count())));
  check(curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout.count())));

  // Request.
  const std::string& method = request.method;
  if (method == "GET" && request.body.empty()) {
    check(curl_easy_setopt(easy, CURLOPT_HTTPGET, 1L));
  } else if (method == "HEAD") {
    check(curl_easy_setopt(easy, CURLOPT_NOBODY, 1L));
  } else {
    if (method == "POST" || !request.body.empty()) {
      check(curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE,
                             static_cast<curl_off_t>(request.body.size())));
      check(curl_easy_setopt(easy, CURLOPT_POSTFIELDS, request.body.data()));
    }
    if (method != "POST") check(curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, method.c_str()));
  }
  check(curl_easy_setopt(easy, CURLOPT_HTTPHEADER, transfer.header_list.get()));
  check(curl_easy_setopt(easy, CURLOPT_USERAGENT, options_.user_agent.c_str()));

  // Response.
  check(curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, &CurlClient::OnHeader));
  check(curl_easy_setopt(easy, CURLOPT_HEADERDATA, &transfer));
  check(curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, &CurlClient::OnBody));
  check(curl_easy_setopt(easy, CURLOPT_WRITEDATA, &transfer));
  if (options_.max_response_bytes > 0) {
    check(curl_easy_setopt(easy, CURLOPT_MAXFILESIZE_LARGE,
                           static_cast<curl_off_t>(options_.max_response_bytes)));
  }
  return rc;
}

CURLSH* CurlClient::ShareFor(const std::string& connection_group) {
  if (connection_group.empty()) return share_.get();
  auto it = group_shares_.find(connection_group);
  if (it != group_shares_.end()) return it->second.get();
  std::unique_ptr<CURLSH, ShareDeleter> share(curl_share_init());
  if (!share) return nullptr;
  for (curl_lock_data data : {CURL_LOCK_DATA_DNS, CURL_LOCK_DATA_SSL_SESSION, CURL_LOCK_DATA_CONNECT}) {
    curl_share_setopt(share.get(), CURLSHOPT_SHARE, data);
  }
  return group_shares_.emplace(connection_group, std::move(share)).first->second.get();
}

void CurlClient::ReapCompleted() {
  int remaining = 0;
  while (CURLMsg* message = curl_multi_info_read(multi_.get(), &remaining)) {
    if (message->msg != CURLMSG_DONE) continue;
    CURL* easy = message->easy_handle;
    const CURLcode result = message->data.result;
    Transfer* raw = nullptr;
    curl_easy_getinfo(easy, CURLINFO_PRIVATE, &raw);
    auto node = active_.extract(raw);
    if (node.empty()) {  // cannot happen; never leak the handle
      curl_multi_remove_handle(multi_.get(), easy);
      curl_easy_cleanup(easy);
      continue;
    }
    std::unique_ptr<Transfer> transfer = std::move(node.mapped());
    Outcome outcome = OutcomeOf(*transfer, result);
    curl_multi_remove_handle(multi_.get(), easy);  // invalidates `message`
    Recycle(easy);
    transfer->easy = nullptr;
    std::string key = transfer->request.concurrency_key;
    Complete(std::move(transfer), std::move(outcome));
    if (!key.empty()) Pump(key);
  }
}

Outcome CurlClient::OutcomeOf(Transfer& transfer, CURLcode result) {
  Outcome outcome;
  long status = 0;
  curl_easy_getinfo(transfer.easy, CURLINFO_RESPONSE_CODE, &status);
  bool too_large = transfer.body_too_large || result == CURLE_FILESIZE_EXCEEDED;
  if (result == CURLE_OK || (too_large && status > 0)) {
    // A body over the limit still comes with the server's verdict (its status): a 2xx means the
    // request was taken, so it must not be sent again.
    long version = 0;
    curl_easy_getinfo(transfer.easy, CURLINFO_HTTP_VERSION, &version);
    transfer.response.status = static_cast<int>(status);
    transfer.response.http_version = HttpVersionName(version);
    transfer.response.body_truncated = result != CURLE_OK;
    outcome.response = std::move(transfer.response);
  } else if (too_large) {
    outcome.error = TransportError::kProtocol;
    outcome.error_message =
        "response body exceeds " + std::to_string(options_.max_response_bytes) + " bytes";
  } else if (transfer.forbidden_target && result == CURLE_COULDNT_CONNECT) {
    outcome.error = TransportError::kForbiddenTarget;
    outcome.error_message = kPrivateTargetMessage;
  } else {
    outcome.error = MapCurlError(result);
    outcome.error_message =
        transfer.error_buffer[0] != '\0' ? transfer.error_buffer : curl_easy_strerror(result);
  }
  return outcome;
}

void CurlClient::Complete(std::unique_ptr<Transfer> transfer, Outcome outcome) {
  const std::string& key = transfer->request.concurrency_key;
  if (!key.empty()) {
    auto it = keys_.find(key);
    if (it != keys_.end() && it->second.active > 0) --it->second.active;
  }
  Finish(std::move(transfer), std::move(outcome));
}

void CurlClient::FailEverything() {
  std::vector<std::unique_ptr<Transfer>> doomed;
  for (auto& [raw, transfer] : active_) {
    curl_multi_remove_handle(multi_.get(), transfer->easy);
    Recycle(transfer->easy);
    transfer->easy = nullptr;
    doomed.push_back(std::move(transfer));
  }
  active_.clear();
  for (auto& [key, state] : keys_) {
    for (auto& transfer : state.waiting) doomed.push_back(std::move(transfer));
  }
  keys_.clear();
  {
    std::lock_guard lock(mu_);
    for (auto& transfer : inbox_) doomed.push_back(std::move(transfer));
    inbox_.clear();
  }
  for (auto& transfer : doomed) {
    Finish(std::move(transfer), Outcome{TransportError::kShutdown, kShutdownMessage, {}});
  }
}

void CurlClient::Recycle(CURL* easy) {
  if (pool_.size() >= kMaxPooledHandles) {
    curl_easy_cleanup(easy);
    return;
  }
  curl_easy_reset(easy);
  pool_.push_back(easy);
}

// curl callbacks: never let an exception cross into C; returning a short count aborts.
size_t CurlClient::OnHeader(char* data, size_t size, size_t count, void* user) {
  auto* transfer = static_cast<Transfer*>(user);
  const size_t n = size * count;
  try {
    std::string_view line(data, n);
    if (line.starts_with("HTTP/")) {  // a new status line: keep only the final response's
      transfer->response.headers.clear();
      return n;
    }
    std::size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) return n;
    std::string name(line.substr(0, colon));
    std::transform(name.begin(), name.end(), name.begin(), ToLower);
    transfer->response.headers.emplace_back(std::move(name),
                                            std::string(Trim(line.substr(colon + 1))));
    return n;
  } catch (...) {
    return 0;
  }
}

size_t CurlClient::OnBody(char* data, size_t size, size_t count, void* user) {
  auto* transfer = static_cast<Transfer*>(user);
  const size_t n = size * count;
  std::string& body = transfer->response.body;
  if (transfer->max_body > 0 && n > transfer->max_body - body.size()) {
    transfer->body_too_large = true;
    return 0;
  }
  try {
    body.append(data, n);
    return n;
  } catch (...) {
    return 0;
  }
}

CURLcode CurlClient::OnSslContext(CURL*, void* ssl_ctx, void* user) {
  auto* self = static_cast<CurlClient*>(user);
  SSL_CTX_set1_cert_store(static_cast<SSL_CTX*>(ssl_ctx), self->ca_store_.get());
  return CURLE_OK;
}

curl_socket_t CurlClient::OnOpenSocket(void* user, curlsocktype purpose, curl_sockaddr* address) {
  auto* transfer = static_cast<Transfer*>(user);
  if (purpose != CURLSOCKTYPE_IPCXN) return CURL_SOCKET_BAD;
  CurlClient* self = transfer->client;
  try {
    if (!self->options_.allow_private_targets && RefusedTarget(*address)) {
      transfer->forbidden_target = true;
      return CURL_SOCKET_BAD;
    }
  } catch (...) {
    return CURL_SOCKET_BAD;
  }
  curl_socket_t fd = socket(address->family, address->socktype | SOCK_CLOEXEC, address->protocol);
  if (fd != CURL_SOCKET_BAD) {
    try {
      self->sockets_->Opened(fd);
    } catch (...) {  // out of memory: no connection rather than one the event loop cannot track
      close(fd);
      return CURL_SOCKET_BAD;
    }
  }
  return fd;
}

}  // namespace

std::unique_ptr<Engine> NewCurlEngine(const ClientOptions& options) {
  return std::make_unique<CurlClient>(options);
}

std::unique_ptr<Client> NewCurlClient(const ClientOptions& options) {
  return NewCurlEngine(options);
}

}  // namespace herald::http
