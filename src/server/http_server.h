// The HTTP/1.1 listener. Only http_server.cc includes Boost.Beast/Asio.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "core/status.h"
#include "server/http.h"

namespace herald::server {

struct ServerOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 3000;                // 0 = pick a free port; see HttpServer::port()
  int threads = 2;                          // I/O threads
  std::size_t max_body_bytes = 1 << 20;     // larger bodies get 413 without being read
  std::size_t max_header_bytes = 16 << 10;  // larger header blocks get 431
  std::chrono::seconds idle_timeout{60};    // keep-alive connections idle this long are closed
  // One io_context per thread, each connection pinned to one: faster, but a handler that blocks
  // then stalls every connection of its thread. Only for handlers that never block.
  bool pin_connections = false;
  // A larger body limit for some requests (Router::BodyLimitFor), asked with the request's head
  // (method, target, path, headers) only when its body may exceed max_body_bytes (a larger
  // Content-Length, or chunked); 0 or unset: max_body_bytes. Called on an I/O thread: must be
  // fast and thread-safe.
  std::function<std::size_t(const Request& head)> body_limit_for;
};

class HttpServer {
 public:
  virtual ~HttpServer() = default;

  // Binds, listens and starts the I/O threads. Every complete request goes to `handler`
  // (which may answer from any thread); framing errors are answered by the server itself with
  // Novu-shaped JSON errors (400, 413, 431). Unavailable if the address cannot be bound.
  static Result<std::unique_ptr<HttpServer>> Start(const ServerOptions& options, Handler handler);

  virtual std::uint16_t port() const = 0;

  // Stops accepting, lets in-flight requests finish (up to `grace`), closes idle connections
  // and joins the threads. Idempotent.
  virtual void Stop(std::chrono::milliseconds grace = std::chrono::milliseconds(5000)) = 0;
};

}  // namespace herald::server
