// The nghttp2 engine's origins and their connections (h2_client.h): finding a request's origin,
// handing waiting requests to connections with room, opening connections (names resolved off the
// I/O thread, addresses checked by outbound safety), and the periodic sweep that fails slow
// set-ups and closes idle connections.
#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <iterator>
#include <optional>

#include "http/curl_support.h"
#include "http/h2_client.h"

namespace herald::http::h2 {
namespace {

constexpr auto kIdleTimeout = std::chrono::minutes(4);  // idle connections and origins go
constexpr auto kDnsCacheTime = std::chrono::seconds(60);
constexpr auto kSetupRetryDelay = std::chrono::seconds(1);

bool SameCertificate(const ClientCertificate* a, const ClientCertificate* b) {
  if (a == b) return true;
  return a != nullptr && b != nullptr && a->certificate_pem == b->certificate_pem &&
         a->private_key_pem == b->private_key_pem;
}

// `host` as an address (port set), if it is an IP literal.
std::optional<sockaddr_storage> LiteralAddress(const std::string& host, std::uint16_t port) {
  sockaddr_storage storage{};
  auto* v4 = reinterpret_cast<sockaddr_in*>(&storage);
  if (inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    return storage;
  }
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&storage);
  if (inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    return storage;
  }
  return std::nullopt;
}

socklen_t LengthOf(const sockaddr_storage& address) {
  return address.ss_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
}

void SetPort(sockaddr_storage* address, std::uint16_t port) {
  if (address->ss_family == AF_INET6) {
    reinterpret_cast<sockaddr_in6*>(address)->sin6_port = htons(port);
  } else {
    reinterpret_cast<sockaddr_in*>(address)->sin_port = htons(port);
  }
}

}  // namespace

// The origin of a request (found, or made): scheme, host, port, connection group, and the
// client certificate, compared by content.
Origin& H2Client::OriginFor(const Transfer& transfer) {
  const Url& url = transfer.url;
  const Request& request = transfer.request;
  std::string key = url.scheme;
  key += "://";
  key += url.host;
  key += ':';
  key += std::to_string(url.port);
  key += '\n';
  key += request.connection_group;
  const bool tls = url.scheme == "https";
  const ClientCertificate* certificate = tls ? request.client_certificate.get() : nullptr;
  auto& list = origins_[key];
  for (auto& origin : list) {
    if (SameCertificate(origin->certificate.get(), certificate)) return *origin;
  }
  auto origin = std::make_unique<Origin>();
  origin->tls = tls;
  origin->scheme = url.scheme;
  origin->host = url.host;
  origin->port = url.port;
  const bool v6 = url.host.find(':') != std::string::npos;
  origin->authority = v6 ? "[" + url.host + "]" : url.host;
  if (url.port != (tls ? 443 : 80)) origin->authority += ":" + std::to_string(url.port);
  if (certificate != nullptr) origin->certificate = request.client_certificate;
  origin->idle_since = Clock::now();
  list.push_back(std::move(origin));
  return *list.back();
}

void H2Client::QueueDispatch(Origin& origin) {
  if (origin.dispatch_queued) return;
  origin.dispatch_queued = true;
  dispatch_queue_.push_back(&origin);
}

// Gives waiting requests streams on connections with room (the first ones first, so that load
// gathers on few connections), and opens a connection when all are full.
void H2Client::Dispatch(Origin& origin) {
  origin.dispatch_queued = false;
  std::size_t next = 0;
  while (origin.HasPending() && next < origin.connections.size()) {
    Connection& connection = *origin.connections[next];
    if (!connection.CanTakeStream()) {
      ++next;
      continue;
    }
    Transfer* transfer = origin.PopFront();
    std::string error;
    switch (connection.Submit(transfer, &error)) {
      case Connection::Submitted::kYes:
        break;
      case Connection::Submitted::kNoRoom:
        origin.PushFront(transfer);
        ++next;
        break;
      case Connection::Submitted::kRejected:
        Finish(transfer, Outcome{TransportError::kBadRequest, std::move(error), {}});
        break;
    }
  }
  if (!origin.HasPending()) return;
  std::size_t usable = 0;
  for (const auto& connection : origin.connections) {
    if (connection->state() == Connection::State::kClosed || connection->draining()) continue;
    // One on its way, or one whose stream limit is not known yet: wait for it.
    if (connection->state() != Connection::State::kReady || !connection->settled()) return;
    ++usable;
  }
  if (usable >= std::max<std::size_t>(1, options_.max_connections_per_host)) return;
  // Beside connections that work, a failed attempt is not repeated at once.
  if (usable > 0 && Clock::now() - origin.setup_failed_at < kSetupRetryDelay) return;
  OpenConnection(origin);
}

void H2Client::OpenConnection(Origin& origin) {
  if (origin.tls && origin.tls_context == nullptr) {
    std::string error;
    if (EnsureTrust(&error)) {
      origin.tls_context = NewTlsContext(trust_store_.get(), origin.certificate.get(), &error);
    }
    if (origin.tls_context == nullptr) return FailPending(origin, TransportError::kTls, error);
  }
  const Clock::time_point now = Clock::now();
  origin.connections.push_back(std::make_unique<Connection>(
      static_cast<ConnectionOwner&>(*this), origin, context_, now + options_.connect_timeout));
  Connection& connection = *origin.connections.back();
  next_sweep_ = std::min(next_sweep_, connection.setup_deadline());
  if (auto literal = LiteralAddress(origin.host, origin.port)) {
    return ConnectTo(connection, {*literal});
  }
  auto cached = dns_cache_.find(origin.host);
  if (cached != dns_cache_.end() && cached->second.expires > now) {
    return ConnectTo(connection, cached->second.addresses);
  }
  if (!resolving_.insert(origin.host).second) return;  // asked already: OnResolved connects
  if (!resolver_) {
    resolver_ = std::make_unique<Resolver>([this](Resolution resolution) {
      std::lock_guard lock(mu_);
      resolved_.push_back(std::move(resolution));
      WakeLocked();
    });
  }
  resolver_->Lookup(origin.host);
}

// Connects to the addresses outbound safety allows (all of them with allow_private_targets).
void H2Client::ConnectTo(Connection& connection, const std::vector<sockaddr_storage>& addresses) {
  std::vector<sockaddr_storage> allowed;
  bool refused = false;
  for (sockaddr_storage address : addresses) {
    SetPort(&address, connection.origin().port);
    if (!options_.allow_private_targets &&
        RefusedAddress(reinterpret_cast<const sockaddr*>(&address), LengthOf(address))) {
      refused = true;
      continue;
    }
    allowed.push_back(address);
  }
  if (allowed.empty()) {
    return connection.FailSetup(TransportError::kForbiddenTarget, kPrivateTargetMessage);
  }
  connection.Connect(std::move(allowed), refused);
}

void H2Client::OnResolved(Resolution resolution) {
  resolving_.erase(resolution.host);
  if (resolution.error.empty()) {
    dns_cache_[resolution.host] =
        CachedAddresses{resolution.addresses, Clock::now() + kDnsCacheTime};
  }
  for (auto& [key, list] : origins_) {
    for (auto& origin : list) {
      if (origin->host != resolution.host) continue;
      for (std::size_t i = 0; i < origin->connections.size(); ++i) {
        Connection& connection = *origin->connections[i];
        if (connection.state() != Connection::State::kResolving) continue;
        if (!resolution.error.empty()) {
          connection.FailSetup(TransportError::kDns, resolution.error);
        } else {
          ConnectTo(connection, resolution.addresses);
        }
      }
    }
  }
}

void H2Client::FailPending(Origin& origin, TransportError error, const std::string& message) {
  while (Transfer* transfer = origin.PopFront()) Finish(transfer, Outcome{error, message, {}});
}

void H2Client::CapacityChanged(Connection& connection) {
  if (connection.origin().HasPending()) QueueDispatch(connection.origin());
}

// The waiting requests fail with the connection's error, unless another connection of the
// origin may still take them.
void H2Client::SetupFailed(Connection& connection, TransportError error,
                           const std::string& message) {
  Origin& origin = connection.origin();
  origin.setup_failed_at = Clock::now();
  for (const auto& other : origin.connections) {
    if (other.get() != &connection && other->state() != Connection::State::kClosed &&
        !other->draining()) {
      return;
    }
  }
  FailPending(origin, error, message);
}

void H2Client::Closed(Connection& connection) {
  closed_.push_back(&connection);
  if (connection.origin().HasPending()) QueueDispatch(connection.origin());
}

void H2Client::WantFlush(Connection& connection) {
  if (connection.flush_queued) return;
  connection.flush_queued = true;
  flush_queue_.push_back(&connection);
}

// Connections past their setup deadline fail; idle ones, and draining ones without streams,
// close; origins unused for long go, as do stale cached addresses and unused key states.
void H2Client::Sweep(Clock::time_point now) {
  next_sweep_ = now + kSweepInterval;
  for (auto it = origins_.begin(); it != origins_.end();) {
    auto& list = it->second;
    for (std::size_t i = 0; i < list.size();) {
      Origin& origin = *list[i];
      for (std::size_t c = 0; c < origin.connections.size(); ++c) {
        Connection& connection = *origin.connections[c];
        switch (connection.state()) {
          case Connection::State::kResolving:
          case Connection::State::kConnecting:
          case Connection::State::kHandshaking:
            if (now >= connection.setup_deadline()) {
              connection.FailSetup(TransportError::kTimeout,
                                   "connecting to " + origin.authority + " timed out after " +
                                       std::to_string(options_.connect_timeout.count()) + " ms");
              break;
            }
            if (connection.AttemptOverdue(now)) connection.AbandonAttempt();
            next_sweep_ = std::min(next_sweep_, connection.setup_deadline());
            break;
          case Connection::State::kReady:
            if (connection.streams() == 0 &&
                (connection.draining() || now - connection.idle_since() >= kIdleTimeout)) {
              connection.CloseIdle();
            }
            break;
          case Connection::State::kClosed:
            break;
        }
      }
      const bool unused = origin.connections.empty() && !origin.HasPending() &&
                          !origin.dispatch_queued && now - origin.idle_since >= kIdleTimeout;
      if (unused) {
        list.erase(list.begin() + static_cast<std::ptrdiff_t>(i));
      } else {
        ++i;
      }
    }
    it = list.empty() ? origins_.erase(it) : std::next(it);
  }
  std::erase_if(dns_cache_, [now](const auto& entry) { return entry.second.expires <= now; });
  std::erase_if(keys_, [](const auto& entry) {
    return entry.second.active == 0 && entry.second.waiting.empty();
  });
}

}  // namespace herald::http::h2
