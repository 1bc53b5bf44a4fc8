#include <arpa/inet.h>
#include <curl/curl.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "http/client.h"

extern char** environ;

namespace herald::http {
namespace {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

milliseconds Since(Clock::time_point start) {
  return std::chrono::duration_cast<milliseconds>(Clock::now() - start);
}

// --- Sockets -----------------------------------------------------------------------------------

int ListenLoopback(std::uint16_t* port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), len) != 0 || listen(fd, 128) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    close(fd);
    return -1;
  }
  *port = ntohs(addr.sin_port);
  return fd;
}

// A loopback port with nothing listening (bound once, then released).
std::uint16_t FreePort() {
  std::uint16_t port = 0;
  close(ListenLoopback(&port));
  return port;
}

int ConnectLoopback(std::uint16_t port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

bool WaitForListener(std::uint16_t port, milliseconds limit) {
  auto start = Clock::now();
  while (Since(start) < limit) {
    int fd = ConnectLoopback(port);
    if (fd >= 0) {
      close(fd);
      return true;
    }
    std::this_thread::sleep_for(milliseconds(20));
  }
  return false;
}

bool SendAll(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n <= 0) return false;
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

// Accepts on a loopback port and runs `serve(fd)` on a thread per connection; everything polls
// `stopping()` every 20 ms so the destructor returns promptly.
class LoopbackAcceptor {
 public:
  explicit LoopbackAcceptor(std::function<void(int)> serve) : serve_(std::move(serve)) {
    listen_fd_ = ListenLoopback(&port_);
    acceptor_ = std::thread([this] { AcceptLoop(); });
  }
  ~LoopbackAcceptor() {
    stop_ = true;
    acceptor_.join();
    std::lock_guard lock(mu_);
    for (auto& thread : threads_) thread.join();
    close(listen_fd_);
  }

  std::uint16_t port() const { return port_; }
  int accepted() const { return accepted_; }
  bool stopping() const { return stop_; }

  // Waits until `fd` is readable; false when stopping.
  bool WaitReadable(int fd) const {
    pollfd p{fd, POLLIN, 0};
    while (!stop_) {
      if (poll(&p, 1, 20) > 0) return true;
    }
    return false;
  }

  void SleepUnlessStopping(milliseconds duration) const {
    auto start = Clock::now();
    while (!stop_ && Since(start) < duration) std::this_thread::sleep_for(milliseconds(5));
  }

 private:
  void AcceptLoop() {
    while (WaitReadable(listen_fd_)) {
      int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      ++accepted_;
      std::lock_guard lock(mu_);
      threads_.emplace_back([this, fd] {
        serve_(fd);
        close(fd);
      });
    }
  }

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

  const std::string* Find(std::string_view name) const {
    for (const auto& [key, value] : headers) {
      if (key == name) return &value;
    }
    return nullptr;
  }
};

struct Reply {
  enum Kind { kRespond, kRespondThenClose, kHang, kClose };
  Kind kind = kRespond;
  std::string raw;  // bytes written as the response
  milliseconds delay{0};
};

std::string HttpResponse(int status, std::string_view body, std::string_view extra_headers = "") {
  return "HTTP/1.1 " + std::to_string(status) +
         " X\r\nContent-Length: " + std::to_string(body.size()) + "\r\n" +
         std::string(extra_headers) + "\r\n" + std::string(body);
}

// Keep-alive HTTP/1.1 server (Content-Length bodies only). Counts connections and the largest
// number of requests being handled at once.
class TestServer {
 public:
  using Handler = std::function<Reply(const SeenRequest&)>;

  explicit TestServer(Handler handler)
      : handler_(std::move(handler)), acceptor_([this](int fd) { Serve(fd); }) {}

  std::string Url(std::string_view path = "/") const {
    return "http://127.0.0.1:" + std::to_string(acceptor_.port()) + std::string(path);
  }
  std::uint16_t port() const { return acceptor_.port(); }
  int accepted() const { return acceptor_.accepted(); }
  int max_concurrent() const { return max_concurrent_; }
  int received() const { return received_; }
  std::vector<SeenRequest> requests() const {
    std::lock_guard lock(mu_);
    return requests_;
  }

 private:
  void Serve(int fd) {
    std::string buffer;
    SeenRequest request;
    while (ReadRequest(fd, &buffer, &request)) {
      ++received_;
      int now = ++current_;
      int seen = max_concurrent_;
      while (now > seen && !max_concurrent_.compare_exchange_weak(seen, now)) {
      }
      {
        std::lock_guard lock(mu_);
        requests_.push_back(request);
      }
      Reply reply = handler_(request);
      acceptor_.SleepUnlessStopping(reply.delay);
      if (reply.kind == Reply::kHang) acceptor_.SleepUnlessStopping(milliseconds(60'000));
      --current_;  // before answering, so the client's next request never overlaps this one
      if (reply.kind == Reply::kRespondThenClose) SendAll(fd, reply.raw);
      if (reply.kind != Reply::kRespond || !SendAll(fd, reply.raw)) return;
    }
  }

  bool ReadRequest(int fd, std::string* buffer, SeenRequest* out) {
    std::size_t end;
    while ((end = buffer->find("\r\n\r\n")) == std::string::npos) {
      if (!ReadMore(fd, buffer)) return false;
    }
    std::string head = buffer->substr(0, end);
    buffer->erase(0, end + 4);
    *out = SeenRequest{};
    std::size_t line_end = head.find("\r\n");
    std::string first = head.substr(0, line_end);
    std::size_t sp1 = first.find(' ');
    std::size_t sp2 = first.find(' ', sp1 + 1);
    out->method = first.substr(0, sp1);
    out->target = first.substr(sp1 + 1, sp2 - sp1 - 1);
    std::size_t content_length = 0;
    while (line_end != std::string::npos) {
      std::size_t start = line_end + 2;
      line_end = head.find("\r\n", start);
      std::string line =
          head.substr(start, line_end == std::string::npos ? std::string::npos : line_end - start);
      std::size_t colon = line.find(':');
      if (colon == std::string::npos) continue;
      std::string name = line.substr(0, colon);
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      std::string value = line.substr(line.find_first_not_of(' ', colon + 1));
      if (name == "content-length") content_length = std::stoul(value);
      out->headers.emplace_back(name, value);
    }
    while (buffer->size() < content_length) {
      if (!ReadMore(fd, buffer)) return false;
    }
    out->body = buffer->substr(0, content_length);
    buffer->erase(0, content_length);
    return true;
  }

  bool ReadMore(int fd, std::string* buffer) {
    if (!acceptor_.WaitReadable(fd)) return false;
    char chunk[16384];
    ssize_t n = recv(fd, chunk, sizeof(chunk), 0);
    if (n <= 0) return false;
    buffer->append(chunk, static_cast<std::size_t>(n));
    return true;
  }

  Handler handler_;
  std::atomic<int> current_{0};
  std::atomic<int> max_concurrent_{0};
  std::atomic<int> received_{0};
  mutable std::mutex mu_;
  std::vector<SeenRequest> requests_;
  LoopbackAcceptor acceptor_;  // last: its threads use the members above
};

// Forwards TCP connections to `upstream`, counting them (to see how many an h2 client opens).
class CountingProxy {
 public:
  explicit CountingProxy(std::uint16_t upstream)
      : upstream_(upstream), acceptor_([this](int fd) { Pump(fd); }) {}
  std::uint16_t port() const { return acceptor_.port(); }
  int accepted() const { return acceptor_.accepted(); }

 private:
  void Pump(int client) {
    int server = ConnectLoopback(upstream_);
    if (server < 0) return;
    pollfd fds[2] = {{client, POLLIN, 0}, {server, POLLIN, 0}};
    char chunk[16384];
    while (!acceptor_.stopping()) {
      if (poll(fds, 2, 20) <= 0) continue;
      bool open = true;
      for (int i = 0; i < 2 && open; ++i) {
        if (fds[i].revents == 0) continue;
        ssize_t n = recv(fds[i].fd, chunk, sizeof(chunk), 0);
        open = n > 0 && SendAll(fds[1 - i].fd, std::string_view(chunk, static_cast<size_t>(n)));
      }
      if (!open) break;
    }
    close(server);
  }

  std::uint16_t upstream_;
  LoopbackAcceptor acceptor_;
};

// --- External programs (nghttpd, openssl), optional ------------------------------------------

std::string FindProgram(const std::string& name) {
  for (const char* dir : {"/usr/bin", "/usr/sbin", "/usr/local/bin", "/usr/local/sbin", "/bin"}) {
    std::string path = std::string(dir) + "/" + name;
    if (access(path.c_str(), X_OK) == 0) return path;
  }
  return {};
}

// Starts `argv` with stdout/stderr discarded; the destructor terminates it.
class ChildProcess {
 public:
  explicit ChildProcess(std::vector<std::string> args) {
    std::vector<char*> argv;
    for (auto& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
    if (posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), environ) != 0) pid_ = -1;
    posix_spawn_file_actions_destroy(&actions);
  }
  ~ChildProcess() {
    if (pid_ <= 0) return;
    kill(pid_, SIGTERM);
    waitpid(pid_, nullptr, 0);
  }
  bool started() const { return pid_ > 0; }
  int Wait() {
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

 private:
  pid_t pid_ = -1;
};

class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "herald_http_XXXXXX").string();
    path_ = mkdtemp(pattern.data()) != nullptr ? pattern : "";
  }
  ~TempDir() {
    std::error_code ignored;
    if (!path_.empty()) std::filesystem::remove_all(path_, ignored);
  }
  std::string File(std::string_view name) const { return path_ + "/" + std::string(name); }
  void Write(std::string_view name, std::string_view content) const {
    std::ofstream(File(name), std::ios::binary) << content;
  }

 private:
  std::string path_;
};

// --- Client helpers ------------------------------------------------------------------------------

ClientOptions LoopbackOptions() {
  ClientOptions options;
  options.allow_private_targets = true;
  options.user_agent = "herald-test/1";
  options.connect_timeout = milliseconds(1000);
  options.default_timeout = milliseconds(2500);
  return options;
}

// Collects outcomes from many callbacks.
class Collector {
 public:
  Callback callback() {
    return [this](Outcome outcome) {
      std::lock_guard lock(mu_);
      outcomes_.push_back(std::move(outcome));
      cv_.notify_all();
    };
  }
  bool WaitFor(std::size_t count, milliseconds limit = milliseconds(2500)) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, limit, [&] { return outcomes_.size() >= count; });
  }
  std::vector<Outcome> outcomes() {
    std::lock_guard lock(mu_);
    return outcomes_;
  }
  std::size_t size() {
    std::lock_guard lock(mu_);
    return outcomes_.size();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Outcome> outcomes_;
};

Outcome SendAndWait(Client& client, Request request) {
  auto promise = std::make_shared<std::promise<Outcome>>();
  std::future<Outcome> future = promise->get_future();
  client.Send(std::move(request),
              [promise](Outcome outcome) { promise->set_value(std::move(outcome)); });
  if (future.wait_for(std::chrono::seconds(3)) != std::future_status::ready) {
    ADD_FAILURE() << "no callback within 3 s";
    return Outcome{TransportError::kShutdown, "test: no callback", {}};
  }
  return future.get();
}

Request Get(std::string url) {
  Request request;
  request.method = "GET";
  request.url = std::move(url);
  return request;
}

bool WaitUntil(const std::function<bool()>& done, milliseconds limit = milliseconds(2000)) {
  auto start = Clock::now();
  while (!done()) {
    if (Since(start) > limit) return false;
    std::this_thread::sleep_for(milliseconds(5));
  }
  return true;
}

// --- Tests ---------------------------------------------------------------------------------------

TEST(CurlClientTest, PostRoundTripCarriesHeadersAndBody) {
  TestServer server([](const SeenRequest&) {
    return Reply{Reply::kRespond,
                 HttpResponse(201, "created", "X-Trace: abc\r\nX-Multi: 1\r\nX-Multi: 2\r\n")};
  });
  auto client = NewCurlClient(LoopbackOptions());
  Request request;
  request.url = server.Url("/v1/send?x=1");
  request.headers = {{"Authorization", "Bearer t0k"}, {"Content-Type", "application/json"}};
  request.body = "{\"data\":\"" + std::string(3000, 'x') + "\"}";

  Outcome outcome = SendAndWait(*client, request);
  ASSERT_TRUE(outcome.ok()) << outcome.error_message;
  EXPECT_EQ(outcome.response.status, 201);
  EXPECT_EQ(outcome.response.body, "created");
  EXPECT_EQ(outcome.response.http_version, "1.1");
  EXPECT_EQ(outcome.response.Header("x-trace"), "abc");
  EXPECT_EQ(outcome.response.Header("X-Trace"), "abc");
  EXPECT_EQ(outcome.response.Header("x-multi"), "1");
  EXPECT_EQ(outcome.response.Header("missing"), "");
  for (const auto& header : outcome.response.headers) {
    EXPECT_EQ(header.first.find_first_of("ABCDEFGHIJKLMNOPQRSTUVWXYZ"), std::string::npos);
  }

  auto seen = server.requests();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].method, "POST");
  EXPECT_EQ(seen[0].target, "/v1/send?x=1");
  EXPECT_EQ(seen[0].body, request.body);
  ASSERT_NE(seen[0].Find("authorization"), nullptr);
  EXPECT_EQ(*seen[0].Find("authorization"), "Bearer t0k");
  EXPECT_EQ(*seen[0].Find("content-type"), "application/json");
  EXPECT_EQ(*seen[0].Find("user-agent"), "herald-test/1");
  EXPECT_EQ(seen[0].Find("expect"), nullptr);  // no 100-continue round trip
}

TEST(CurlClientTest, GetSendsNoBodyAndNoInventedContentType) {
  TestServer server([](const SeenRequest& request) {
    return Reply{Reply::kRespond, HttpResponse(200, request.method + " " + request.target)};
  });
  auto client = NewCurlClient(LoopbackOptions());
  Outcome outcome = SendAndWait(*client, Get(server.Url("/status")));
  ASSERT_TRUE(outcome.ok()) << outcome.error_message;
  EXPECT_EQ(outcome.response.body, "GET /status");
  auto seen = server.requests();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_TRUE(seen[0].body.empty());
  EXPECT_EQ(seen[0].Find("content-type"), nullptr);

  Request del = Get(server.Url("/token/1"));
  del.method = "DELETE";
  outcome = SendAndWait(*client, del);
  ASSERT_TRUE(outcome.ok()) << outcome.error_message;
  EXPECT_EQ(outcome.response.body, "DELETE /token/1");
}

TEST(CurlClientTest, KeepsOnlyFinalResponseHeaders) {
  TestServer server([](const SeenRequest&) {
    return Reply{Reply::kRespond, "HTTP/1.1 100 Continue\r\nX-Interim: 1\r\n\r\n" +
                                      HttpResponse(200, "ok", "X-Final: yes\r\n")};
  });
  auto client = NewCurlClient(LoopbackOptions());
  Outcome outcome = SendAndWait(*client, Get(server.Url()));
  ASSERT_TRUE(outcome.ok()) << outcome.error_message;
  EXPECT_EQ(outcome.response.status, 200);
  EXPECT_EQ(outcome.response.Header("x-final"), "yes");
  EXPECT_EQ(outcome.response.Header("x-interim"), "");
}

TEST(CurlClientTest, ManyConcurrentRequestsShareFewConnections) {
  TestServer server([](const SeenRequest& request) {
    return Reply{Reply::kRespond, HttpResponse(200, request.target)};
  });
  ClientOptions options = LoopbackOptions();
  options.max_connections_per_host = 4;
  Collector collector;
  Collector second;
  auto client = NewCurlClient(options);
  constexpr int kRequests = 500;
  auto start = Clock::now();
  for (int i = 0; i < kRequests; ++i) {
    client->Send(Get(server.Url("/n/" + std::to_string(i))), collector.callback());
  }
  ASSERT_TRUE(collector.WaitFor(kRequests));
  int ok = 0;
  for (const auto& outcome : collector.outcomes()) {
    ok += outcome.ok() && outcome.response.status == 200;
  }
  EXPECT_EQ(ok, kRequests);
  EXPECT_GE(server.accepted(), 1);
  EXPECT_LE(server.accepted(), 4);
  EXPECT_TRUE(WaitUntil([&] { return client->InFlight() == 0; }));

  // A second wave reuses the kept-alive connections.
  for (int i = 0; i < 50; ++i) client->Send(Get(server.Url()), second.callback());
  ASSERT_TRUE(second.WaitFor(50));
  EXPECT_LE(server.accepted(), 4);
  EXPECT_LT(Since(start), milliseconds(2500));
}

TEST(CurlClientTest, TimesOutWhenServerNeverAnswers) {
  TestServer server([](const SeenRequest&) { return Reply{Reply::kHang}; });
  auto client = NewCurlClient(LoopbackOptions());
  Request request = Get(server.Url());
  request.timeout = milliseconds(300);
  auto start = Clock::now();
  Outcome outcome = SendAndWait(*client, request);
  EXPECT_EQ(outcome.error, TransportError::kTimeout) << outcome.error_message;
  EXPECT_TRUE(IsTransient(outcome.error));
  EXPECT_GE(Since(start), milliseconds(250));
  EXPECT_LT(Since(start), milliseconds(1500));
}

TEST(CurlClientTest, RefusedConnectionIsConnectError) {
  auto client = NewCurlClient(LoopbackOptions());
  Outcome outcome =
      SendAndWait(*client, Get("http://127.0.0.1:" + std::to_string(FreePort()) + "/"));
  EXPECT_EQ(outcome.error, TransportError::kConnect) << outcome.error_message;
  EXPECT_FALSE(outcome.error_message.empty());
  EXPECT_TRUE(IsTransient(outcome.error));
}

TEST(CurlClientTest, ConnectionClosedWithoutAnswerIsTransient) {
  TestServer server([](const SeenRequest&) { return Reply{Reply::kClose}; });
  auto client = NewCurlClient(LoopbackOptions());
  Outcome outcome = SendAndWait(*client, Get(server.Url()));
  EXPECT_TRUE(outcome.error == TransportError::kConnect ||
              outcome.error == TransportError::kProtocol)
      << TransportErrorName(outcome.error) << ": " << outcome.error_message;
  EXPECT_TRUE(IsTransient(outcome.error));
}

// A server that takes the ClientHello and then resets the connection, or closes it without a
// word: the handshake breaks off, which is a network failure worth retrying, not a bad
// certificate.
TEST(CurlClientTest, TlsHandshakeBrokenOffIsTransient) {
  for (bool reset : {true, false}) {
    LoopbackAcceptor acceptor([&acceptor, reset](int fd) {
      char hello[512];
      if (acceptor.WaitReadable(fd)) (void)read(fd, hello, sizeof(hello));
      if (reset) {
        linger abort{1, 0};  // close() sends RST
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &abort, sizeof(abort));
      }
    });
    auto client = NewCurlClient(LoopbackOptions());
    Outcome outcome =
        SendAndWait(*client, Get("https://127.0.0.1:" + std::to_string(acceptor.port()) + "/"));
    EXPECT_EQ(outcome.error, TransportError::kTlsHandshake)
        << (reset ? "reset: " : "closed: ") << TransportErrorName(outcome.error) << ": "
        << outcome.error_message;
    EXPECT_TRUE(IsTransient(outcome.error));
  }
}

// A name for 127.0.0.1 that libcurl has to resolve: this machine's host name when it resolves to
// loopback only (libcurl answers "localhost" itself, without its resolver).
std::string LoopbackName() {
  char name[256] = {};
  if (gethostname(name, sizeof(name) - 1) != 0) return "localhost";
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (getaddrinfo(name, nullptr, &hints, &found) != 0) return "localhost";
  bool loopback = found != nullptr;
  for (addrinfo* a = found; a != nullptr; a = a->ai_next) {
    sockaddr_in v4{};
    std::memcpy(&v4, a->ai_addr, sizeof(v4));
    loopback = loopback && ntohl(v4.sin_addr.s_addr) == INADDR_LOOPBACK;
  }
  freeaddrinfo(found);
  return loopback ? name : "localhost";
}

TEST(CurlClientTest, ResolvedNamesAndIdleConnectionsClosedByTheServerKeepWorking) {
  // Each new host:port is resolved first (libcurl's resolver may have the event loop watch a
  // socket of its own, which it closes itself), and connections a server closes while idle leave
  // the event loop: socket numbers get reused across every kind of socket (SocketWatchTest has
  // the exact cases).
  std::vector<std::unique_ptr<TestServer>> servers;
  for (int i = 0; i < 8; ++i) {
    Reply::Kind kind = i % 2 == 0 ? Reply::kRespond : Reply::kRespondThenClose;
    servers.push_back(std::make_unique<TestServer>([kind](const SeenRequest&) {
      return Reply{kind, HttpResponse(200, "ok")};
    }));
  }
  auto client = NewCurlClient(LoopbackOptions());
  for (int round = 0; round < 3; ++round) {
    for (const auto& server : servers) {
      std::string by_name = "http://" + LoopbackName() + ":" + std::to_string(server->port()) + "/";
      for (const std::string& url : {by_name, server->Url()}) {
        Outcome outcome = SendAndWait(*client, Get(url));
        ASSERT_TRUE(outcome.ok()) << url << ": " << outcome.error_message;
        EXPECT_EQ(outcome.response.body, "ok");
      }
    }
    std::this_thread::sleep_for(milliseconds(20));  // closed connections report EOF while idle
  }
}

TEST(CurlClientTest, RefusesPrivateTargetsUnlessAllowed) {
  TestServer server([](const SeenRequest&) {
    return Reply{Reply::kRespond, HttpResponse(200, "")};
  });
  ClientOptions options = LoopbackOptions();
  options.allow_private_targets = false;
  auto strict = NewCurlClient(options);
  const std::string port = std::to_string(server.port());
  for (const std::string& url :
       {server.Url(), "http://localhost:" + port + "/", "http://[::1]:" + port + "/"}) {
    Outcome outcome = SendAndWait(*strict, Get(url));
    EXPECT_EQ(outcome.error, TransportError::kForbiddenTarget)
        << url << " " << TransportErrorName(outcome.error) << ": " << outcome.error_message;
    EXPECT_EQ(outcome.error_message,
              "target resolves to a private address (set HERALD_ALLOW_PRIVATE_TARGETS=1 to allow)");
    EXPECT_FALSE(IsTransient(outcome.error));
  }
  EXPECT_EQ(server.accepted(), 0);

  auto permissive = NewCurlClient(LoopbackOptions());
  Outcome outcome = SendAndWait(*permissive, Get(server.Url()));
  EXPECT_TRUE(outcome.ok()) << outcome.error_message;
  EXPECT_EQ(server.accepted(), 1);
}

TEST(CurlClientTest, DefaultPerKeyLimitBoundsConcurrency) {
  TestServer server([](const SeenRequest&) {
    return Reply{Reply::kRespond, HttpResponse(200, "ok"), milliseconds(80)};
  });
  ClientOptions options = LoopbackOptions();
  options.default_concurrency_per_key = 2;
  Collector collector;
  auto client = NewCurlClient(options);
  for (int i = 0; i < 8; ++i) {
    Request request = Get(server.Url());
    request.concurrency_key = "integration-a";
    client->Send(request, collector.callback());
  }
  EXPECT_EQ(client->InFlight(), 8u);
  ASSERT_TRUE(collector.WaitFor(8));
  for (const auto& outcome : collector.outcomes()) EXPECT_TRUE(outcome.ok());
  EXPECT_EQ(server.max_concurrent(), 2);
}

TEST(CurlClientTest, SetConcurrencyLowersAndRaisesTheLimit) {
  TestServer server([](const SeenRequest&) {
    return Reply{Reply::kRespond, HttpResponse(200, "ok"), milliseconds(100)};
  });
  Collector collector;
  auto client = NewCurlClient(LoopbackOptions());
  client->SetConcurrency("k", 1);
  for (int i = 0; i < 7; ++i) {
    Request request = Get(server.Url());
    request.concurrency_key = "k";
    client->Send(request, collector.callback());
  }
  ASSERT_TRUE(collector.WaitFor(1));
  EXPECT_EQ(server.max_concurrent(), 1);
  client->SetConcurrency("k", 3);  // the 6 waiting ones now go 3 at a time
  ASSERT_TRUE(collector.WaitFor(7));
  EXPECT_EQ(server.max_concurrent(), 3);
  for (const auto& outcome : collector.outcomes()) EXPECT_TRUE(outcome.ok());
}

// A request waiting for a slot is asked, when its turn comes, whether its sender still wants it:
// one taken back completes as withdrawn and never reaches the server; the others go out.
TEST(CurlClientTest, AWithdrawnRequestIsNeverSent) {
  TestServer server([](const SeenRequest&) {
    return Reply{Reply::kRespond, HttpResponse(200, "ok"), milliseconds(50)};
  });
  struct Unwanted : Withdrawal {
    bool Withdrawn(std::uint64_t tag) const override { return tag % 2 == 1; }
  } unwanted;
  Collector collector;
  auto client = NewCurlClient(LoopbackOptions());
  client->SetConcurrency("k", 1);
  for (std::uint64_t i = 0; i < 6; ++i) {
    Request request = Get(server.Url("/" + std::to_string(i)));
    request.concurrency_key = "k";
    request.withdrawal = &unwanted;
    request.withdrawal_tag = i;
    client->Send(request, collector.callback());
  }
  ASSERT_TRUE(collector.WaitFor(6));
  int withdrawn = 0;
  for (const auto& outcome : collector.outcomes()) {
    if (outcome.error == TransportError::kWithdrawn) {
      ++withdrawn;
    } else {
      EXPECT_TRUE(outcome.ok()) << outcome.error_message;
    }
  }
  EXPECT_EQ(withdrawn, 3);
  std::vector<std::string> targets;
  for (const SeenRequest& seen : server.requests()) targets.push_back(seen.target);
  std::sort(targets.begin(), targets.end());
  EXPECT_EQ(targets, (std::vector<std::string>{"/0", "/2", "/4"}));
  EXPECT_FALSE(IsTransient(TransportError::kWithdrawn));
  EXPECT_STREQ(TransportErrorName(TransportError::kWithdrawn), "withdrawn");
}

TEST(CurlClientTest, ShutdownFailsQueuedAndActiveRequestsPromptly) {
  TestServer server([](const SeenRequest&) { return Reply{Reply::kHang}; });
  ClientOptions options = LoopbackOptions();
  options.default_concurrency_per_key = 1;
  Collector collector;
  auto client = NewCurlClient(options);
  for (int i = 0; i < 7; ++i) {
    Request request = Get(server.Url());
    if (i < 5) request.concurrency_key = "k";  // 1 active + 4 waiting; 2 more unkeyed
    client->Send(request, collector.callback());
  }
  ASSERT_TRUE(WaitUntil([&] { return server.received() == 3; }));
  EXPECT_EQ(client->InFlight(), 7u);

  auto start = Clock::now();
  client->Shutdown(milliseconds(100));
  EXPECT_GE(Since(start), milliseconds(90));
  EXPECT_LT(Since(start), milliseconds(1000));
  ASSERT_EQ(collector.size(), 7u);  // all callbacks ran before Shutdown returned
  for (const auto& outcome : collector.outcomes()) {
    EXPECT_EQ(outcome.error, TransportError::kShutdown);
    EXPECT_FALSE(IsTransient(outcome.error));
  }
  EXPECT_EQ(client->InFlight(), 0u);

  bool called = false;
  client->Send(Get(server.Url()), [&](Outcome outcome) {
    called = true;
    EXPECT_EQ(outcome.error, TransportError::kShutdown);
  });
  EXPECT_TRUE(called);                  // immediately, on this thread
  client->Shutdown(milliseconds(100));  // idempotent
}

TEST(CurlClientTest, ShutdownLetsInFlightRequestsFinishWithinGrace) {
  TestServer server([](const SeenRequest&) {
    return Reply{Reply::kRespond, HttpResponse(200, "ok"), milliseconds(150)};
  });
  Collector collector;
  auto client = NewCurlClient(LoopbackOptions());
  for (int i = 0; i < 3; ++i) client->Send(Get(server.Url()), collector.callback());
  auto start = Clock::now();
  client->Shutdown(milliseconds(2000));
  EXPECT_LT(Since(start), milliseconds(1500));
  ASSERT_EQ(collector.size(), 3u);
  for (const auto& outcome : collector.outcomes()) {
    EXPECT_TRUE(outcome.ok()) << outcome.error_message;
  }
}

TEST(CurlClientTest, DestructorFailsPendingRequests) {
  TestServer server([](const SeenRequest&) { return Reply{Reply::kHang}; });
  Collector collector;
  {
    auto client = NewCurlClient(LoopbackOptions());
    client->Send(Get(server.Url()), collector.callback());
    ASSERT_TRUE(WaitUntil([&] { return server.received() == 1; }));
  }
  ASSERT_EQ(collector.size(), 1u);
  EXPECT_EQ(collector.outcomes()[0].error, TransportError::kShutdown);
}

TEST(CurlClientTest, CapsResponseBodies) {
  TestServer server([](const SeenRequest& request) {
    if (request.target == "/exact") {
      return Reply{Reply::kRespond, HttpResponse(200, std::string(1000, 'a'))};
    }
    if (request.target == "/big") {
      return Reply{Reply::kRespond, HttpResponse(200, std::string(5000, 'b'))};
    }
    if (request.target == "/big-error") {
      return Reply{Reply::kRespond, HttpResponse(503, std::string(5000, 'e'))};
    }
    // Chunked: no Content-Length, so only the running count can catch it.
    std::string chunk(2500, 'c');
    return Reply{Reply::kRespond, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n9c4\r\n" +
                                      chunk + "\r\n9c4\r\n" + chunk + "\r\n0\r\n\r\n"};
  });
  ClientOptions options = LoopbackOptions();
  options.max_response_bytes = 1000;
  auto client = NewCurlClient(options);

  Outcome exact = SendAndWait(*client, Get(server.Url("/exact")));
  ASSERT_TRUE(exact.ok()) << exact.error_message;
  EXPECT_EQ(exact.response.body.size(), 1000u);
  EXPECT_FALSE(exact.response.body_truncated);
  // Over the limit: the server's status and headers, the body cut short and marked so.
  for (const char* path : {"/big", "/chunked", "/big-error"}) {
    Outcome outcome = SendAndWait(*client, Get(server.Url(path)));
    ASSERT_TRUE(outcome.ok()) << path << ": " << outcome.error_message;
    EXPECT_EQ(outcome.response.status, std::string(path) == "/big-error" ? 503 : 200) << path;
    EXPECT_TRUE(outcome.response.body_truncated) << path;
    EXPECT_LE(outcome.response.body.size(), 1000u) << path;
  }
}

TEST(CurlClientTest, RejectsUnusableRequests) {
  auto client = NewCurlClient(LoopbackOptions());
  Request ftp = Get("ftp://example.com/file");
  Request relative = Get("/just/a/path");
  Request injected = Get("http://127.0.0.1:9/");
  injected.headers = {{"X-Evil", "a\r\nHost: elsewhere"}};
  Request bad_name = Get("http://127.0.0.1:9/");
  bad_name.headers = {{"Bad Name", "x"}};
  Request bad_method = Get("http://127.0.0.1:9/");
  bad_method.method = "GE T";
  for (const Request& request : {ftp, relative, injected, bad_name, bad_method}) {
    Outcome outcome = SendAndWait(*client, request);
    EXPECT_EQ(outcome.error, TransportError::kBadRequest) << request.url;
    EXPECT_FALSE(IsTransient(outcome.error));
  }
}

TEST(CurlClientTest, ThrowingCallbackDoesNotStopTheClient) {
  TestServer server([](const SeenRequest&) {
    return Reply{Reply::kRespond, HttpResponse(200, "ok")};
  });
  auto client = NewCurlClient(LoopbackOptions());
  client->Send(Get(server.Url()), [](Outcome) { throw std::runtime_error("callback failed"); });
  Outcome outcome = SendAndWait(*client, Get(server.Url()));
  EXPECT_TRUE(outcome.ok()) << outcome.error_message;
}

TEST(CurlClientTest, ErrorNames) {
  EXPECT_STREQ(TransportErrorName(TransportError::kForbiddenTarget), "forbidden_target");
  EXPECT_STREQ(TransportErrorName(TransportError::kTimeout), "timeout");
  EXPECT_TRUE(IsTransient(TransportError::kDns));
  EXPECT_FALSE(IsTransient(TransportError::kTls));
  EXPECT_TRUE(IsTransient(TransportError::kTlsHandshake));
  EXPECT_STREQ(TransportErrorName(TransportError::kTlsHandshake), "tls_handshake");
  EXPECT_FALSE(IsTransient(TransportError::kNone));
}

// --- HTTP/2 against nghttpd (apt package nghttp2-server); skipped when it is absent. -----------

class Nghttpd {
 public:
  // Serves `dir`; TLS when `cert` is given.
  Nghttpd(const std::string& binary, const TempDir& dir, const std::string& key = "",
          const std::string& cert = "")
      : port_(FreePort()), process_([&] {
          std::vector<std::string> args = {binary, "-a", "127.0.0.1", "-d", dir.File("")};
          if (cert.empty()) args.push_back("--no-tls");
          args.push_back(std::to_string(port_));
          if (!cert.empty()) {
            args.push_back(key);
            args.push_back(cert);
          }
          return args;
        }()) {}
  bool Ready() { return process_.started() && WaitForListener(port_, milliseconds(2000)); }
  std::uint16_t port() const { return port_; }

 private:
  std::uint16_t port_;
  ChildProcess process_;
};

TEST(CurlClientTest, H2cPriorKnowledgeRoundTrips) {
  std::string nghttpd = FindProgram("nghttpd");
  if (nghttpd.empty()) GTEST_SKIP() << "nghttpd not installed (apt install nghttp2-server)";
  TempDir dir;
  dir.Write("hello.txt", "hello over h2");
  Nghttpd server(nghttpd, dir);
  ASSERT_TRUE(server.Ready());
  CountingProxy proxy(server.port());
  Collector collector;
  auto client = NewCurlClient(LoopbackOptions());

  constexpr int kRequests = 60;
  for (int i = 0; i < kRequests; ++i) {
    Request request = Get("http://127.0.0.1:" + std::to_string(proxy.port()) + "/hello.txt");
    request.http2_prior_knowledge = true;
    client->Send(request, collector.callback());
  }
  ASSERT_TRUE(collector.WaitFor(kRequests));
  for (const auto& outcome : collector.outcomes()) {
    ASSERT_TRUE(outcome.ok()) << outcome.error_message;
    EXPECT_EQ(outcome.response.status, 200);
    EXPECT_EQ(outcome.response.http_version, "2");
    EXPECT_EQ(outcome.response.body, "hello over h2");
  }
  // libcurl < 8.0.0 cannot reuse h2c connections (curl/curl#10634): one fresh connection each.
  if (curl_version_info(CURLVERSION_NOW)->version_num >= 0x080000) {
    EXPECT_EQ(proxy.accepted(), 1);
  } else {
    EXPECT_EQ(proxy.accepted(), kRequests);
  }
}

TEST(CurlClientTest, TlsVerifiesAgainstSystemPlusExtraCaAndNegotiatesH2) {
  std::string nghttpd = FindProgram("nghttpd");
  std::string openssl = FindProgram("openssl");
  if (nghttpd.empty() || openssl.empty()) GTEST_SKIP() << "needs nghttpd and openssl";
  TempDir dir;
  dir.Write("hello.txt", "hello over tls");
  ChildProcess make_cert({openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt",
                          "ec_paramgen_curve:P-256", "-nodes", "-keyout", dir.File("key.pem"),
                          "-out", dir.File("cert.pem"), "-subj", "/CN=localhost", "-addext",
                          "subjectAltName=IP:127.0.0.1,DNS:localhost", "-days", "2"});
  ASSERT_EQ(make_cert.Wait(), 0);
  Nghttpd server(nghttpd, dir, dir.File("key.pem"), dir.File("cert.pem"));
  ASSERT_TRUE(server.Ready());
  const std::string url = "https://127.0.0.1:" + std::to_string(server.port()) + "/hello.txt";

  ClientOptions options = LoopbackOptions();
  options.ca_file = dir.File("cert.pem");
  Collector collector;
  auto trusting = NewCurlClient(options);
  Outcome outcome = SendAndWait(*trusting, Get(url));
  ASSERT_TRUE(outcome.ok()) << outcome.error_message;
  EXPECT_EQ(outcome.response.http_version, "2");
  EXPECT_EQ(outcome.response.body, "hello over tls");

  // Concurrent requests multiplex on one TLS connection (counted through a TCP proxy).
  CountingProxy proxy(server.port());
  constexpr int kRequests = 60;
  for (int i = 0; i < kRequests; ++i) {
    trusting->Send(Get("https://127.0.0.1:" + std::to_string(proxy.port()) + "/hello.txt"),
                   collector.callback());
  }
  ASSERT_TRUE(collector.WaitFor(kRequests));
  for (const auto& result : collector.outcomes()) {
    ASSERT_TRUE(result.ok()) << result.error_message;
    EXPECT_EQ(result.response.http_version, "2");
  }
  EXPECT_EQ(proxy.accepted(), 1);

  auto system_only = NewCurlClient(LoopbackOptions());
  outcome = SendAndWait(*system_only, Get(url));
  EXPECT_EQ(outcome.error, TransportError::kTls) << outcome.error_message;
  EXPECT_FALSE(IsTransient(outcome.error));

  options.ca_file = dir.File("missing.pem");
  auto misconfigured = NewCurlClient(options);
  outcome = SendAndWait(*misconfigured, Get(url));
  EXPECT_EQ(outcome.error, TransportError::kTls) << outcome.error_message;
}

// A chain root -> intermediate -> leaf, served with the intermediate. Trusting the root verifies
// the whole chain; trusting only the intermediate makes it the anchor (as libcurl's own store
// does: X509_V_FLAG_PARTIAL_CHAIN); trusting neither fails.
TEST(CurlClientTest, TlsTrustsARootOrAnIntermediateGivenAsTheExtraCa) {
  std::string nghttpd = FindProgram("nghttpd");
  std::string openssl = FindProgram("openssl");
  if (nghttpd.empty() || openssl.empty()) GTEST_SKIP() << "needs nghttpd and openssl";
  TempDir dir;
  dir.Write("hello.txt", "hello over a chain");
  dir.Write("ca.ext", "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign\n");
  dir.Write("leaf.ext", "basicConstraints=CA:FALSE\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n");
  auto run = [&](std::vector<std::string> args) {
    args.insert(args.begin(), openssl);
    return ChildProcess(std::move(args)).Wait();
  };
  const std::vector<std::string> ec = {"-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                                       "-nodes"};
  auto req = [&](const std::string& name, const std::string& cn) {
    std::vector<std::string> args = {"req", "-new"};
    args.insert(args.end(), ec.begin(), ec.end());
    args.insert(args.end(), {"-keyout", dir.File(name + ".key"), "-out", dir.File(name + ".csr"),
                             "-subj", "/CN=" + cn});
    return run(args);
  };
  auto sign = [&](const std::string& name, const std::string& issuer, const std::string& ext) {
    return run({"x509", "-req", "-in", dir.File(name + ".csr"), "-CA", dir.File(issuer + ".pem"),
                "-CAkey", dir.File(issuer + ".key"), "-CAcreateserial", "-days", "2", "-extfile",
                dir.File(ext), "-out", dir.File(name + ".pem")});
  };
  std::vector<std::string> root = {"req", "-x509"};
  root.insert(root.end(), ec.begin(), ec.end());
  root.insert(root.end(),
              {"-keyout", dir.File("root.key"), "-out", dir.File("root.pem"), "-subj",
               "/CN=Herald test root", "-days", "2", "-addext", "basicConstraints=critical,CA:TRUE",
               "-addext", "keyUsage=critical,keyCertSign"});
  ASSERT_EQ(run(root), 0);
  ASSERT_EQ(req("int", "Herald test intermediate"), 0);
  ASSERT_EQ(sign("int", "root", "ca.ext"), 0);
  ASSERT_EQ(req("leaf", "localhost"), 0);
  ASSERT_EQ(sign("leaf", "int", "leaf.ext"), 0);
  auto read = [&](const char* name) {
    std::ifstream in(dir.File(name));
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  };
  dir.Write("chain.pem", read("leaf.pem") + read("int.pem"));
  Nghttpd server(nghttpd, dir, dir.File("leaf.key"), dir.File("chain.pem"));
  ASSERT_TRUE(server.Ready());
  const std::string url = "https://127.0.0.1:" + std::to_string(server.port()) + "/hello.txt";

  for (const char* anchor : {"root.pem", "int.pem"}) {
    ClientOptions options = LoopbackOptions();
    options.ca_file = dir.File(anchor);
    auto client = NewCurlClient(options);
    Outcome outcome = SendAndWait(*client, Get(url));
    ASSERT_TRUE(outcome.ok()) << anchor << ": " << outcome.error_message;
    EXPECT_EQ(outcome.response.body, "hello over a chain");
  }
  auto untrusting = NewCurlClient(LoopbackOptions());
  Outcome outcome = SendAndWait(*untrusting, Get(url));
  EXPECT_EQ(outcome.error, TransportError::kTls) << outcome.error_message;
}

}  // namespace
}  // namespace herald::http
