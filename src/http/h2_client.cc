#include "http/h2_client.h"

#include <openssl/x509.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <exception>
#include <optional>
#include <stdexcept>

#include "core/log.h"
#include "core/url.h"
#include "http/curl_support.h"

namespace herald::http::h2 {
namespace {

using std::chrono::milliseconds;

constexpr int kMaxResends = 5;  // refused or unprocessed, sent again at most this often
constexpr std::size_t kReadBufferSize = 64 * 1024;
constexpr int kMaxWaitMs = 60'000;
constexpr int kMaxEvents = 128;

// HTTP/2 forbids connection-specific header fields (RFC 9113 8.2.2); :authority replaces Host
// and the engine sends content-length itself.
bool Dropped(const std::string& name, const std::string& value) {
  return name == "connection" || name == "keep-alive" || name == "proxy-connection" ||
         name == "transfer-encoding" || name == "upgrade" || name == "host" ||
         name == "content-length" || (name == "te" && value != "trailers");
}

}  // namespace

void StoreDeleter::operator()(x509_store_st* store) const { X509_STORE_free(store); }

H2Client::H2Client(const ClientOptions& options) : InboxEngine("h2"), options_(options) {
  context_.user_agent = options_.user_agent;
  context_.max_response_bytes = options_.max_response_bytes;
  context_.read_buffer.resize(kReadBufferSize);
  context_.epoll_fd = epoll_create1(EPOLL_CLOEXEC);
  wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  epoll_event wake{};
  wake.events = EPOLLIN;
  wake.data.ptr = nullptr;
  if (context_.epoll_fd < 0 || wake_fd_ < 0 ||
      epoll_ctl(context_.epoll_fd, EPOLL_CTL_ADD, wake_fd_, &wake) != 0) {
    if (wake_fd_ >= 0) close(wake_fd_);
    if (context_.epoll_fd >= 0) close(context_.epoll_fd);
    throw std::runtime_error("cannot create the http/2 event loop");
  }
  next_sweep_ = Clock::now() + kSweepInterval;
  StartIoThread([this] {
    SetThreadName("herald-h2");
    LowerThreadPriority(options_.thread_nice);
    Run();
  });
}

H2Client::~H2Client() {
  Shutdown(milliseconds(0));
  resolver_.reset();  // before the inbox it reports to
  close(wake_fd_);
  close(context_.epoll_fd);
}

// --- The loop ------------------------------------------------------------------------------------

void H2Client::Run() {
  std::vector<std::unique_ptr<Transfer>> batch;
  std::vector<std::pair<std::string, std::size_t>> updates;
  std::vector<Resolution> resolutions;
  for (;;) {
    try {
      {
        std::lock_guard lock(mu_);
        wake_pending_ = false;
        if (stop_) break;
        batch.swap(inbox_);
        updates.swap(limit_updates_);
        resolutions.swap(resolved_);
      }
      for (auto& [key, limit] : updates) {
        limits_[key] = limit;
        Pump(key);
      }
      updates.clear();
      for (auto& transfer : batch) Enqueue(transfer.release());
      batch.clear();
      for (auto& resolution : resolutions) OnResolved(std::move(resolution));
      resolutions.clear();
      Settle();
      WaitAndAct();
    } catch (const std::exception& e) {
      spdlog::error("http_io_exception engine=h2 what=\"{}\"", e.what());
    }
  }
  try {
    FailEverything();
  } catch (const std::exception& e) {
    spdlog::error("http_io_exception engine=h2 what=\"{}\"", e.what());
  }
}

// Admits, dispatches and writes until nothing is left to do without waiting, then destroys the
// connections that closed. The queues may grow while they are worked through (by index).
void H2Client::Settle() {
  for (int round = 0; round < 8; ++round) {
    while (!keys_to_pump_.empty() || !dispatch_queue_.empty()) {
      for (std::size_t i = 0; i < keys_to_pump_.size(); ++i) {
        std::string key = std::move(keys_to_pump_[i]);
        Pump(key);
      }
      keys_to_pump_.clear();
      for (std::size_t i = 0; i < dispatch_queue_.size(); ++i) Dispatch(*dispatch_queue_[i]);
      dispatch_queue_.clear();
    }
    if (flush_queue_.empty()) break;
    for (std::size_t i = 0; i < flush_queue_.size(); ++i) {
      Connection* connection = flush_queue_[i];
      connection->flush_queued = false;
      connection->Flush();
    }
    flush_queue_.clear();
  }
  const Clock::time_point now = Clock::now();
  for (Connection* connection : closed_) {
    if (connection->flush_queued) std::erase(flush_queue_, connection);
    Origin& origin = connection->origin();
    auto& list = origin.connections;
    auto it = std::find_if(list.begin(), list.end(),
                           [connection](const auto& c) { return c.get() == connection; });
    if (it != list.end()) list.erase(it);
    if (list.empty()) origin.idle_since = now;
  }
  closed_.clear();
}

void H2Client::WaitAndAct() {
  Clock::time_point now = Clock::now();
  int wait_ms = kMaxWaitMs;
  if (!keys_to_pump_.empty() || !dispatch_queue_.empty() || !flush_queue_.empty()) {
    wait_ms = 0;
  } else {
    Clock::time_point wake = next_sweep_;
    if (!deadlines_.empty()) wake = std::min(wake, deadlines_.front()->deadline);
    auto left = std::chrono::ceil<milliseconds>(wake - now).count();
    wait_ms = static_cast<int>(std::clamp<long long>(left, 0, kMaxWaitMs));
  }
  epoll_event events[kMaxEvents];
  const int ready = epoll_wait(context_.epoll_fd, events, kMaxEvents, wait_ms);
  for (int i = 0; i < ready; ++i) {
    if (events[i].data.ptr == nullptr) {
      std::uint64_t count = 0;
      ssize_t got = read(wake_fd_, &count, sizeof count);
      (void)got;
      continue;
    }
    // A connection closed earlier in this batch is still alive (destroyed in Settle) and
    // ignores the event.
    static_cast<Connection*>(events[i].data.ptr)->OnEvent(events[i].events);
  }
  now = Clock::now();
  Expire(now);
  if (now >= next_sweep_) Sweep(now);
}

// --- Admission -----------------------------------------------------------------------------------
// As in the libcurl engine: per concurrency_key, the total timeout counted from admission.

void H2Client::Enqueue(Transfer* transfer) {
  if (transfer->request.concurrency_key.empty()) return Start(transfer);
  auto it = keys_.try_emplace(transfer->request.concurrency_key).first;
  it->second.waiting.push_back(transfer);
  Pump(it->first);  // the map's own key: `transfer` may be gone before Pump returns
}

std::size_t H2Client::LimitFor(const std::string& key) const {
  auto it = limits_.find(key);
  return it != limits_.end() ? it->second
                             : std::max<std::size_t>(1, options_.default_concurrency_per_key);
}

// Admits waiting requests of `key` up to its limit. Finish() only decrements `active` (never
// erases) and nothing inserts keys meanwhile, so `it` stays valid while Start() fails
// synchronously.
void H2Client::Pump(const std::string& key) {
  auto it = keys_.find(key);
  if (it == keys_.end()) return;
  const std::size_t limit = LimitFor(key);
  KeyState& state = it->second;
  state.pump_queued = false;
  while (state.active < limit && !state.waiting.empty()) {
    Transfer* transfer = state.waiting.front();
    state.waiting.pop_front();
    ++state.active;
    transfer->holds_key_slot = true;
    Start(transfer);
  }
  if (state.active == 0 && state.waiting.empty()) keys_.erase(it);
}

milliseconds H2Client::TimeoutOf(const Transfer& transfer) const {
  return transfer.request.timeout.count() > 0 ? transfer.request.timeout : options_.default_timeout;
}

void H2Client::Start(Transfer* transfer) {
  const Request& request = transfer->request;
  if (request.withdrawal != nullptr && request.withdrawal->Withdrawn(request.withdrawal_tag)) {
    return Finish(
        transfer,
        Outcome{TransportError::kWithdrawn, "taken back by the sender before it was sent", {}});
  }
  std::string error;
  if (TransportError failed = Prepare(*transfer, &error); failed != TransportError::kNone) {
    return Finish(transfer, Outcome{failed, std::move(error), {}});
  }
  transfer->deadline = Clock::now() + TimeoutOf(*transfer);
  HeapPush(transfer);
  Origin& origin = OriginFor(*transfer);
  transfer->origin = &origin;
  origin.PushBack(transfer);
  QueueDispatch(origin);
}

// Checks the request and puts it in the shape Connection::Submit sends.
TransportError H2Client::Prepare(Transfer& transfer, std::string* error) {
  Request& request = transfer.request;
  std::optional<Url> url = ParseHttpUrl(request.url);
  if (!url) {
    *error = "invalid or unsupported URL";
    return TransportError::kBadRequest;
  }
  if (!IsToken(request.method)) {
    *error = "invalid HTTP method";
    return TransportError::kBadRequest;
  }
  if (url->scheme == "https" && !EnsureTrust(error)) return TransportError::kTls;
  Headers& headers = request.headers;
  for (auto& [name, value] : headers) {
    if (!IsToken(name) || !IsSafeHeaderValue(value)) {
      *error = "invalid request header " + name;
      return TransportError::kBadRequest;
    }
    std::transform(name.begin(), name.end(), name.begin(), ToLower);
  }
  headers.erase(
      std::remove_if(headers.begin(), headers.end(),
                     [](const auto& header) { return Dropped(header.first, header.second); }),
      headers.end());
  const std::string& method = request.method;
  if (!request.body.empty() || method == "POST" || method == "PUT" || method == "PATCH") {
    transfer.content_length = std::to_string(request.body.size());
  }
  transfer.url = std::move(*url);
  if (!transfer.url.query.empty()) {
    transfer.url.path += '?';
    transfer.url.path += transfer.url.query;
  }
  return TransportError::kNone;
}

bool H2Client::EnsureTrust(std::string* error) {
  if (!trust_loaded_) {
    trust_loaded_ = true;
    TrustAnchors trust = LoadTrustAnchors(options_.ca_file, /*openssl=*/true);
    trust_store_.reset(trust.store.release());
    trust_error_ = std::move(trust.error);
  }
  if (trust_error_.empty()) return true;
  *error = trust_error_;
  return false;
}

// --- Completion ----------------------------------------------------------------------------------

void H2Client::Finish(Transfer* transfer, Outcome outcome) {
  if (transfer->pending) transfer->origin->Remove(transfer);
  transfer->delivered = true;
  if (transfer->holds_key_slot) {
    transfer->holds_key_slot = false;
    auto it = keys_.find(transfer->request.concurrency_key);
    if (it != keys_.end() && it->second.active > 0) {
      KeyState& state = it->second;
      --state.active;
      if (!state.waiting.empty() && !state.pump_queued) {
        state.pump_queued = true;
        keys_to_pump_.push_back(it->first);
      }
    }
  }
  Callback done = std::move(transfer->done);
  if (transfer->connection == nullptr) Destroy(transfer);  // else when its stream ends (Drop)
  CountFinished();
  DeliverOutcome(done, std::move(outcome));
}

void H2Client::Resend(Transfer* transfer) {
  transfer->response = Response{};
  transfer->stream_id = 0;
  transfer->headers_sent = false;
  transfer->length_checked = false;
  transfer->complete = false;
  if (++transfer->resends > kMaxResends) {
    return Finish(transfer,
                  Outcome{TransportError::kProtocol,
                          "the server did not process the request after " +
                              std::to_string(kMaxResends) + " attempts (REFUSED_STREAM / GOAWAY)",
                          {}});
  }
  transfer->origin->PushFront(transfer);
  QueueDispatch(*transfer->origin);
}

void H2Client::Destroy(Transfer* transfer) {
  if (transfer->heap_slot != kNoSlot) HeapRemove(transfer);
  delete transfer;
}

// Requests past their total timeout fail with kTimeout; an open stream of theirs is reset
// (RST_STREAM CANCEL), which is the only reset this engine sends for a stream of its own.
void H2Client::Expire(Clock::time_point now) {
  while (!deadlines_.empty() && deadlines_.front()->deadline <= now) {
    Transfer* transfer = deadlines_.front();
    HeapRemove(transfer);
    if (transfer->delivered) {  // a response over the cap, still draining
      if (transfer->connection != nullptr && !transfer->complete) {
        transfer->connection->Cancel(transfer);
      }
      continue;
    }
    if (transfer->connection != nullptr) transfer->connection->Cancel(transfer);
    Finish(transfer, Outcome{TransportError::kTimeout,
                             "request timed out after " +
                                 std::to_string(TimeoutOf(*transfer).count()) + " ms",
                             {}});
  }
}

void H2Client::FailEverything() {
  std::vector<Transfer*> doomed;
  {
    std::lock_guard lock(mu_);
    for (auto& transfer : inbox_) doomed.push_back(transfer.release());
    inbox_.clear();
  }
  for (auto& [key, state] : keys_) {
    doomed.insert(doomed.end(), state.waiting.begin(), state.waiting.end());
  }
  keys_.clear();
  keys_to_pump_.clear();
  for (auto& [key, list] : origins_) {
    for (auto& origin : list) {
      while (Transfer* transfer = origin->PopFront()) doomed.push_back(transfer);
      for (auto& connection : origin->connections) {
        for (Transfer* transfer : connection->DetachAll()) doomed.push_back(transfer);
      }
    }
  }
  dispatch_queue_.clear();
  flush_queue_.clear();
  closed_.clear();
  for (Transfer* transfer : doomed) {
    transfer->holds_key_slot = false;
    if (transfer->delivered) {
      Destroy(transfer);
    } else {
      Finish(transfer, Outcome{TransportError::kShutdown, kShutdownMessage, {}});
    }
  }
  origins_.clear();
}

// --- The deadline heap ---------------------------------------------------------------------------

void H2Client::HeapSwap(std::size_t a, std::size_t b) {
  std::swap(deadlines_[a], deadlines_[b]);
  deadlines_[a]->heap_slot = a;
  deadlines_[b]->heap_slot = b;
}

void H2Client::SiftUp(std::size_t slot) {
  while (slot > 0) {
    const std::size_t parent = (slot - 1) / 2;
    if (!(deadlines_[slot]->deadline < deadlines_[parent]->deadline)) return;
    HeapSwap(slot, parent);
    slot = parent;
  }
}

void H2Client::SiftDown(std::size_t slot) {
  const std::size_t size = deadlines_.size();
  for (;;) {
    std::size_t earliest = slot;
    for (std::size_t child = 2 * slot + 1; child <= 2 * slot + 2 && child < size; ++child) {
      if (deadlines_[child]->deadline < deadlines_[earliest]->deadline) earliest = child;
    }
    if (earliest == slot) return;
    HeapSwap(slot, earliest);
    slot = earliest;
  }
}

void H2Client::HeapPush(Transfer* transfer) {
  transfer->heap_slot = deadlines_.size();
  deadlines_.push_back(transfer);
  SiftUp(transfer->heap_slot);
}

void H2Client::HeapRemove(Transfer* transfer) {
  const std::size_t slot = transfer->heap_slot;
  transfer->heap_slot = kNoSlot;
  Transfer* last = deadlines_.back();
  deadlines_.pop_back();
  if (last == transfer) return;
  deadlines_[slot] = last;
  last->heap_slot = slot;
  SiftUp(slot);
  SiftDown(last->heap_slot);
}

}  // namespace herald::http::h2

namespace herald::http {

std::unique_ptr<Engine> NewH2Engine(const ClientOptions& options) {
  return std::make_unique<h2::H2Client>(options);
}

std::unique_ptr<Client> NewH2Client(const ClientOptions& options) { return NewH2Engine(options); }

}  // namespace herald::http
