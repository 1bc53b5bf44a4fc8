// The two engines behind NewClient (client.cc): libcurl (curl_client.cc) for HTTP/1.1 and
// anything without Request::http2_prior_knowledge, nghttp2 (h2_client.cc) for the HTTP/2
// requests of APNs and FCM. Internal to src/http.
#pragma once

#include <memory>

#include "http/client.h"

namespace herald::http {

// What the routing client needs from each engine beyond Client, so that it can stop both within
// one grace period and never wait from a callback.
class Engine : public Client {
 public:
  // From now on Send completes at once with kShutdown; requests already taken go on.
  virtual void StopAccepting() = 0;
  // Begins stopping without waiting: requests still queued or in flight fail with kShutdown on
  // the I/O thread, which then ends (Shutdown or the destructor joins it). This is what Shutdown
  // does when called from one of the engine's callbacks.
  virtual void BeginShutdown() = 0;
  // True on the engine's I/O thread, i.e. inside one of its callbacks.
  virtual bool OnIoThread() const = 0;
};

std::unique_ptr<Engine> NewCurlEngine(const ClientOptions& options);
std::unique_ptr<Engine> NewH2Engine(const ClientOptions& options);

}  // namespace herald::http
