#include "http/h2_resolver.h"

#include <netdb.h>

#include <cstring>
#include <exception>

#include "core/log.h"

namespace herald::http::h2 {
namespace {

Resolution Resolve(const std::string& host) {
  Resolution resolution;
  resolution.host = host;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  const int rc = getaddrinfo(host.c_str(), nullptr, &hints, &found);
  if (rc != 0) {
    resolution.error = "cannot resolve host name " + host + ": " + gai_strerror(rc);
    return resolution;
  }
  for (const addrinfo* a = found; a != nullptr; a = a->ai_next) {
    if ((a->ai_family != AF_INET && a->ai_family != AF_INET6) ||
        a->ai_addrlen > sizeof(sockaddr_storage)) {
      continue;
    }
    sockaddr_storage address{};
    std::memcpy(&address, a->ai_addr, a->ai_addrlen);
    resolution.addresses.push_back(address);
  }
  freeaddrinfo(found);
  if (resolution.addresses.empty()) {
    resolution.error = "cannot resolve host name " + host + ": no address";
  }
  return resolution;
}

}  // namespace

Resolver::~Resolver() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Resolver::Lookup(std::string host) {
  std::lock_guard lock(mu_);
  queue_.push_back(std::move(host));
  if (!thread_.joinable()) {
    thread_ = std::thread([this] {
      SetThreadName("herald-h2-dns");
      Run();
    });
  }
  cv_.notify_one();
}

void Resolver::Run() {
  for (;;) {
    std::string host;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
      if (stop_) return;
      host = std::move(queue_.front());
      queue_.pop_front();
    }
    try {
      done_(Resolve(host));
    } catch (const std::exception& e) {
      spdlog::error("http_resolver_exception what=\"{}\"", e.what());
    }
  }
}

}  // namespace herald::http::h2
