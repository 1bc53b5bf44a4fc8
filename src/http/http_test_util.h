// Helpers shared by the libcurl client tests (curl_client*_test.cc): loopback sockets, a small
// keep-alive HTTP/1.1 server (plain or TLS, optionally asking for client certificates), a
// counting TCP proxy, external programs (nghttpd, the openssl CLI) and a test PKI made with it,
// and client-side helpers. Test code only.
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "http/client.h"

namespace herald::http::test {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

milliseconds Since(Clock::time_point start);

// --- Sockets -------------------------------------------------------------------------------------

// A listening socket on 127.0.0.1 (any port, written to `port`); -1 on failure.
int ListenLoopback(std::uint16_t* port);
// A loopback port with nothing listening (bound once, then released).
std::uint16_t FreePort();
int ConnectLoopback(std::uint16_t port);
bool WaitForListener(std::uint16_t port, milliseconds limit);
bool SendAll(int fd, std::string_view data);
// A name for 127.0.0.1 that libcurl has to resolve: this machine's host name when it resolves to
// loopback only (libcurl answers "localhost" itself, without its resolver).
std::string LoopbackName();

// Accepts on a loopback port and runs `serve(fd)` on a thread per connection; everything polls
// `stopping()` every 20 ms so the destructor returns promptly.
class LoopbackAcceptor {
 public:
  explicit LoopbackAcceptor(std::function<void(int)> serve);
  ~LoopbackAcceptor();

  std::uint16_t port() const { return port_; }
  int accepted() const { return accepted_; }
  bool stopping() const { return stop_; }

  // Waits until `fd` is readable (or writable); false when stopping.
  bool WaitReadable(int fd) const;
  bool WaitWritable(int fd) const;
  void SleepUnlessStopping(milliseconds duration) const;

 private:
  void AcceptLoop();

  std::function<void(int)> serve_;
  int listen_fd_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> accepted_{0};
  std::mutex mu_;
  std::vector<std::thread> threads_;
  std::thread acceptor_;
};

// --- A minimal HTTP/1.1 server -------------------------------------------------------------------

struct SeenRequest {
  std::string method;
  std::string target;
  Headers headers;  // lowercase names
  std::string body;
  int connection = 0;    // which accepted connection carried it (1, 2, ... in accept order)
  std::string peer;      // TLS: the common name of the client's certificate ("" if none)
  bool resumed = false;  // TLS: the connection resumed an earlier session

  const std::string* Find(std::string_view name) const;
};

struct Reply {
  enum Kind { kRespond, kRespondThenClose, kHang, kClose };
  Kind kind = kRespond;
  std::string raw;  // bytes written as the response
  milliseconds delay{0};
};

std::string HttpResponse(int status, std::string_view body, std::string_view extra_headers = "");

// TLS for TestServer: PEM files. With `client_ca`, the server asks for a client certificate and
// verifies it against that CA (a certificate it cannot verify fails the handshake); with
// `require_client_certificate` too, a client without one fails it as well. No ALPN: HTTP/1.1.
struct TlsServerFiles {
  std::string certificate;  // the chain, leaf first
  std::string private_key;
  std::string client_ca;
  bool require_client_certificate = true;
};

// Keep-alive HTTP/1.1 server (Content-Length bodies only). Counts connections and the largest
// number of requests being handled at once; records every request with the connection it came
// on (and, over TLS, the client certificate of that connection).
class TestServer {
 public:
  using Handler = std::function<Reply(const SeenRequest&)>;

  explicit TestServer(Handler handler, std::optional<TlsServerFiles> tls = std::nullopt);
  ~TestServer();

  std::string Url(std::string_view path = "/") const;
  std::uint16_t port() const { return acceptor_->port(); }
  int accepted() const { return acceptor_->accepted(); }
  int handshakes() const { return handshakes_; }  // TLS handshakes that completed
  int max_concurrent() const { return max_concurrent_; }
  int received() const { return received_; }
  std::vector<SeenRequest> requests() const;

 private:
  class Connection;
  void Serve(int fd);
  bool ReadRequest(Connection& connection, std::string* buffer, SeenRequest* out);

  Handler handler_;
  void* tls_context_ = nullptr;  // SSL_CTX*, null for plain HTTP
  std::atomic<int> next_connection_{0};
  std::atomic<int> handshakes_{0};
  std::atomic<int> current_{0};
  std::atomic<int> max_concurrent_{0};
  std::atomic<int> received_{0};
  mutable std::mutex mu_;
  std::vector<SeenRequest> requests_;
  std::unique_ptr<LoopbackAcceptor> acceptor_;  // last: its threads use the members above
};

// Forwards TCP connections to `upstream`, counting them (to see how many an h2 client opens).
class CountingProxy {
 public:
  explicit CountingProxy(std::uint16_t upstream);
  std::uint16_t port() const { return acceptor_.port(); }
  int accepted() const { return acceptor_.accepted(); }

 private:
  void Pump(int client);

  std::uint16_t upstream_;
  LoopbackAcceptor acceptor_;
};

// --- External programs (nghttpd, openssl), optional ----------------------------------------------

// The full path of program `name` in the usual system directories, or "".
std::string FindProgram(const std::string& name);

// Starts `argv` with stdout/stderr discarded; the destructor terminates it.
class ChildProcess {
 public:
  explicit ChildProcess(std::vector<std::string> args);
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  bool started() const { return pid_ > 0; }
  int Wait();  // the exit status (-1 if it did not exit normally)

 private:
  int pid_ = -1;
};

// Runs `args` to completion; its exit status.
int Run(std::vector<std::string> args);

class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  std::string File(std::string_view name) const { return path_ + "/" + std::string(name); }
  void Write(std::string_view name, std::string_view content) const;
  std::string Read(std::string_view name) const;

 private:
  std::string path_;
};

// Certificates made with the openssl CLI in a TempDir: P-256 keys, valid for 2 days, each as
// `<name>.key` and `<name>.pem`.
class TestPki {
 public:
  TestPki(std::string openssl, const TempDir& dir) : openssl_(std::move(openssl)), dir_(dir) {}

  // A self-signed CA.
  bool MakeCa(const std::string& name, const std::string& common_name);
  // A certificate issued by CA `issuer` with the X.509v3 `extensions` (extfile syntax).
  bool Issue(const std::string& name, const std::string& common_name, const std::string& issuer,
             const std::string& extensions);
  // A server certificate for 127.0.0.1 and localhost; a client certificate (clientAuth).
  bool IssueServer(const std::string& name, const std::string& issuer);
  bool IssueClient(const std::string& name, const std::string& common_name,
                   const std::string& issuer);
  // `name`'s certificate and key as the client presents them.
  std::shared_ptr<const ClientCertificate> ClientCertificateOf(const std::string& name) const;

  static constexpr const char* kCaExtensions =
      "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign\n";

 private:
  std::vector<std::string> NewKey() const;

  std::string openssl_;
  const TempDir& dir_;
};

// nghttpd (apt package nghttp2-server) serving `dir`; TLS when `cert` is given.
class Nghttpd {
 public:
  Nghttpd(const std::string& binary, const TempDir& dir, const std::string& key = "",
          const std::string& cert = "");
  bool Ready();
  std::uint16_t port() const { return port_; }

 private:
  static std::vector<std::string> Arguments(const std::string& binary, const TempDir& dir,
                                            std::uint16_t port, const std::string& key,
                                            const std::string& cert);

  std::uint16_t port_;
  ChildProcess process_;
};

// --- Client helpers ------------------------------------------------------------------------------

// Private targets allowed (everything here is loopback), short timeouts.
ClientOptions LoopbackOptions();

// Collects outcomes from many callbacks.
class Collector {
 public:
  Callback callback();
  bool WaitFor(std::size_t count, milliseconds limit = milliseconds(2500));
  std::vector<Outcome> outcomes();
  std::size_t size();

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Outcome> outcomes_;
};

// Sends `request` and waits up to 3 s for its outcome (a test failure if none comes).
Outcome SendAndWait(Client& client, Request request);

Request Get(std::string url);

bool WaitUntil(const std::function<bool()>& done, milliseconds limit = milliseconds(2000));

}  // namespace herald::http::test
