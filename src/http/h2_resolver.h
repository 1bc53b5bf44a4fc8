// Host-name resolution for the nghttp2 engine, off its I/O thread: one thread, started on the
// first lookup, runs getaddrinfo for one name at a time and hands each answer to a callback.
// Internal to src/http.
#pragma once

#include <sys/socket.h>

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace herald::http::h2 {

struct Resolution {
  std::string host;
  std::vector<sockaddr_storage> addresses;  // port 0; empty when `error` is set
  std::string error;
};

class Resolver {
 public:
  using Done = std::function<void(Resolution)>;

  // `done` runs on the resolver's thread, once per Lookup.
  explicit Resolver(Done done) : done_(std::move(done)) {}
  // Waits for the lookup under way, if any; queued ones are dropped.
  ~Resolver();
  Resolver(const Resolver&) = delete;
  Resolver& operator=(const Resolver&) = delete;

  void Lookup(std::string host);

 private:
  void Run();

  Done done_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::string> queue_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace herald::http::h2
