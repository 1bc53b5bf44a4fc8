// Helpers shared by the HTTP client tests (curl_client*_test.cc, h2_client*_test.cc): loopback
// sockets, a small keep-alive server speaking HTTP/1.1 or HTTP/2 (h2c, or h2 over TLS with ALPN;
// plain or TLS, optionally asking for client certificates; http_test_h2.cc has the HTTP/2 side),
// a counting TCP proxy, external programs (nghttpd, the openssl CLI) and a test PKI made with it,
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
#include <ostream>
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
  // Stops accepting and joins every thread (the destructor does it too).
  void Stop();

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
  // kRefuse: HTTP/2 RST_STREAM REFUSED_STREAM (the request was not processed); HTTP/1.1 closes.
  enum Kind { kRespond, kRespondThenClose, kHang, kClose, kRefuse };
  Kind kind = kRespond;
  // The response as HTTP/1.1 bytes (1xx responses first, if any; Content-Length or chunked);
  // over HTTP/2 the same status, headers and body go out as HEADERS and DATA frames.
  std::string raw;
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

struct ServerOptions {
  enum class Protocol { kHttp1, kHttp2 };
  // kHttp2: h2c with prior knowledge, or h2 over TLS selected by ALPN.
  Protocol protocol = Protocol::kHttp1;
  std::optional<TlsServerFiles> tls;
  // TLS + HTTP/2: the server selects "h2" by ALPN; false: it does no ALPN at all.
  bool alpn_h2 = true;
  // HTTP/2: the Nth stream of each connection makes the server send GOAWAY with that stream's id
  // as last_stream_id (before it processes anything of that stream); streams above it are never
  // processed nor recorded, and the server closes the connection once the others are answered.
  // 0: never.
  int goaway_after_streams = 0;
  // HTTP/2: SETTINGS_MAX_CONCURRENT_STREAMS announced; 0: none (unlimited).
  std::uint32_t max_concurrent_streams = 0;
};

// Where an HTTP/2 server session reads and writes (a plain or TLS connection).
class ServerTransport {
 public:
  // Appends what arrives within `wait`: 1 if something did, 0 if not, -1 if the connection is
  // closed or the server is stopping.
  virtual int ReadFor(std::string* buffer, milliseconds wait) = 0;
  virtual bool Write(std::string_view data) = 0;
  // Ends the server's side and reads (and drops) what the client still sends until it closes too
  // (at most a second): closing a socket with unread input resets the connection, which can
  // take the last answers with it.
  virtual void Linger() = 0;

 protected:
  ~ServerTransport() = default;
};

// Keep-alive server (HTTP/1.1 with Content-Length bodies, or HTTP/2). Counts connections and the
// largest number of requests being handled at once; records every request with the connection
// it came on (and, over TLS, the client certificate of that connection).
class TestServer {
 public:
  using Handler = std::function<Reply(const SeenRequest&)>;

  explicit TestServer(Handler handler, std::optional<TlsServerFiles> tls = std::nullopt);
  TestServer(Handler handler, ServerOptions options);
  ~TestServer();

  std::string Url(std::string_view path = "/") const;
  std::uint16_t port() const { return acceptor_->port(); }
  int accepted() const { return acceptor_->accepted(); }
  int handshakes() const { return handshakes_; }  // TLS handshakes that completed
  int max_concurrent() const { return max_concurrent_; }
  int received() const { return received_; }  // requests handed to the handler
  int streams() const { return streams_; }    // HTTP/2: streams the clients opened
  int resets() const { return resets_; }      // HTTP/2: RST_STREAM frames the clients sent
  std::vector<SeenRequest> requests() const;

 private:
  class Connection;
  class Http2Session;
  void Serve(int fd);
  bool ReadRequest(Connection& connection, std::string* buffer, SeenRequest* out);
  // Counts a request being handled and records it; the handler's reply.
  Reply Handle(const SeenRequest& request);
  void Answered() { --current_; }
  void ServeHttp2(ServerTransport& transport, int connection, const std::string& peer,
                  bool resumed);

  Handler handler_;
  ServerOptions options_;
  void* tls_context_ = nullptr;  // SSL_CTX*, null for plain HTTP
  std::atomic<int> next_connection_{0};
  std::atomic<int> handshakes_{0};
  std::atomic<int> current_{0};
  std::atomic<int> max_concurrent_{0};
  std::atomic<int> received_{0};
  std::atomic<int> streams_{0};
  std::atomic<int> resets_{0};
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

// --- Both engines --------------------------------------------------------------------------------

// The client tests run against both engines (TEST_P over EngineKind): libcurl with HTTP/1.1 test
// servers, and the nghttp2 engine with HTTP/2 ones (through NewClient, every request asking for
// HTTP/2 with prior knowledge, as the APNs and FCM adapters do).
enum class EngineKind { kCurl, kH2 };

inline auto AllEngines() { return ::testing::Values(EngineKind::kCurl, EngineKind::kH2); }
inline void PrintTo(EngineKind engine, std::ostream* out) {
  *out << (engine == EngineKind::kH2 ? "h2" : "curl");
}

class HttpEngineTest : public ::testing::TestWithParam<EngineKind> {
 public:
  static std::string Name(const ::testing::TestParamInfo<EngineKind>& info);

 protected:
  bool h2() const { return GetParam() == EngineKind::kH2; }
  std::string HttpVersion() const { return h2() ? "2" : "1.1"; }
  std::unique_ptr<Client> NewEngineClient(const ClientOptions& options = LoopbackOptions()) const;
  // A TestServer speaking the engine's protocol.
  ServerOptions Server(std::optional<TlsServerFiles> tls = std::nullopt) const;
};

// Sets http2_prior_knowledge on every request before handing it to `inner`.
std::unique_ptr<Client> WithPriorKnowledge(std::unique_ptr<Client> inner);

}  // namespace herald::http::test
