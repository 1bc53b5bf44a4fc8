#include "http/http_test_util.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <iterator>
#include <utility>

extern char** environ;

namespace herald::http::test {

milliseconds Since(Clock::time_point start) {
  return std::chrono::duration_cast<milliseconds>(Clock::now() - start);
}

// --- Sockets -------------------------------------------------------------------------------------

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

LoopbackAcceptor::LoopbackAcceptor(std::function<void(int)> serve) : serve_(std::move(serve)) {
  // A TLS server writes (session tickets, close_notify) to clients that may be gone already: as
  // in Herald itself (core/signals.h), that must not kill the process.
  signal(SIGPIPE, SIG_IGN);
  listen_fd_ = ListenLoopback(&port_);
  acceptor_ = std::thread([this] { AcceptLoop(); });
}

LoopbackAcceptor::~LoopbackAcceptor() { Stop(); }

void LoopbackAcceptor::Stop() {
  stop_ = true;
  if (acceptor_.joinable()) acceptor_.join();
  std::lock_guard lock(mu_);
  for (auto& thread : threads_) thread.join();
  threads_.clear();
  if (listen_fd_ >= 0) close(listen_fd_);
  listen_fd_ = -1;
}

bool LoopbackAcceptor::WaitReadable(int fd) const {
  pollfd p{fd, POLLIN, 0};
  while (!stop_) {
    if (poll(&p, 1, 20) > 0) return true;
  }
  return false;
}

bool LoopbackAcceptor::WaitWritable(int fd) const {
  pollfd p{fd, POLLOUT, 0};
  while (!stop_) {
    if (poll(&p, 1, 20) > 0) return true;
  }
  return false;
}

void LoopbackAcceptor::SleepUnlessStopping(milliseconds duration) const {
  auto start = Clock::now();
  while (!stop_ && Since(start) < duration) std::this_thread::sleep_for(milliseconds(5));
}

void LoopbackAcceptor::AcceptLoop() {
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

// --- A minimal HTTP/1.1 server -------------------------------------------------------------------

const std::string* SeenRequest::Find(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (key == name) return &value;
  }
  return nullptr;
}

std::string HttpResponse(int status, std::string_view body, std::string_view extra_headers) {
  return "HTTP/1.1 " + std::to_string(status) +
         " X\r\nContent-Length: " + std::to_string(body.size()) + "\r\n" +
         std::string(extra_headers) + "\r\n" + std::string(body);
}

namespace {

// ALPN: the server picks "h2" when the client offers it, and nothing otherwise.
int SelectH2(SSL*, const unsigned char** out, unsigned char* out_length, const unsigned char* in,
             unsigned int in_length, void*) {
  static const unsigned char kH2[] = {2, 'h', '2'};
  unsigned char* selected = nullptr;
  if (SSL_select_next_proto(&selected, out_length, kH2, sizeof(kH2), in, in_length) !=
      OPENSSL_NPN_NEGOTIATED) {
    return SSL_TLSEXT_ERR_NOACK;
  }
  *out = selected;
  return SSL_TLSEXT_ERR_OK;
}

SSL_CTX* NewServerContext(const TlsServerFiles& files, bool alpn_h2) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  if (ctx == nullptr) return nullptr;
  static const unsigned char kSessionContext[] = "herald-http-test";
  bool ok = SSL_CTX_use_certificate_chain_file(ctx, files.certificate.c_str()) == 1 &&
            SSL_CTX_use_PrivateKey_file(ctx, files.private_key.c_str(), SSL_FILETYPE_PEM) == 1 &&
            // Sessions may be resumed (the client cert is part of the session).
            SSL_CTX_set_session_id_context(ctx, kSessionContext, sizeof(kSessionContext) - 1) == 1;
  if (ok && !files.client_ca.empty()) {
    ok = SSL_CTX_load_verify_locations(ctx, files.client_ca.c_str(), nullptr) == 1;
    STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(files.client_ca.c_str());
    ok = ok && names != nullptr;
    if (names != nullptr) SSL_CTX_set_client_CA_list(ctx, names);
    SSL_CTX_set_verify(
        ctx,
        SSL_VERIFY_PEER | (files.require_client_certificate ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0),
        nullptr);
  }
  if (!ok) {
    SSL_CTX_free(ctx);
    ERR_clear_error();
    return nullptr;
  }
  if (alpn_h2) SSL_CTX_set_alpn_select_cb(ctx, SelectH2, nullptr);
  return ctx;
}

std::string CommonName(X509* certificate) {
  if (certificate == nullptr) return "";
  char name[256] = {};
  if (X509_NAME_get_text_by_NID(X509_get_subject_name(certificate), NID_commonName, name,
                                sizeof(name)) < 0) {
    return "?";
  }
  return name;
}

}  // namespace

// One accepted connection: plain, or TLS over a non-blocking socket (every wait polls
// LoopbackAcceptor::stopping()).
class TestServer::Connection final : public ServerTransport {
 public:
  Connection(const LoopbackAcceptor& acceptor, int fd, SSL_CTX* tls)
      : acceptor_(acceptor), fd_(fd) {
    if (tls == nullptr) return;
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    ssl_ = SSL_new(tls);
    if (ssl_ != nullptr) SSL_set_fd(ssl_, fd);
  }
  ~Connection() {
    if (ssl_ == nullptr) return;
    if (established_) SSL_shutdown(ssl_);  // best effort (non-blocking): a close_notify
    SSL_free(ssl_);
    ERR_clear_error();
  }

  // Completes the TLS handshake (nothing to do for plain HTTP); false if it failed.
  bool Handshake() {
    if (ssl_ == nullptr) return true;
    for (;;) {
      int rc = SSL_accept(ssl_);
      if (rc == 1) break;
      if (!WaitFor(SSL_get_error(ssl_, rc))) return false;
    }
    established_ = true;
    X509* peer = SSL_get1_peer_certificate(ssl_);
    peer_ = CommonName(peer);
    X509_free(peer);
    resumed_ = SSL_session_reused(ssl_) == 1;
    return true;
  }

  bool ReadMore(std::string* buffer) {
    char chunk[16384];
    if (ssl_ == nullptr) {
      if (!acceptor_.WaitReadable(fd_)) return false;
      ssize_t n = recv(fd_, chunk, sizeof(chunk), 0);
      if (n <= 0) return false;
      buffer->append(chunk, static_cast<std::size_t>(n));
      return true;
    }
    for (;;) {
      int n = SSL_read(ssl_, chunk, sizeof(chunk));
      if (n > 0) {
        buffer->append(chunk, static_cast<std::size_t>(n));
        return true;
      }
      if (!WaitFor(SSL_get_error(ssl_, n))) return false;
    }
  }

  int ReadFor(std::string* buffer, milliseconds wait) override {
    char chunk[16384];
    for (int attempt = 0; attempt < 2; ++attempt) {
      if (acceptor_.stopping()) return -1;
      if (ssl_ != nullptr) {
        int n = SSL_read(ssl_, chunk, sizeof(chunk));
        if (n > 0) {
          buffer->append(chunk, static_cast<std::size_t>(n));
          return 1;
        }
        int error = SSL_get_error(ssl_, n);
        if (error != SSL_ERROR_WANT_READ && error != SSL_ERROR_WANT_WRITE) return -1;
      }
      if (attempt == 1) return 0;
      pollfd p{fd_, POLLIN, 0};
      int ready = poll(&p, 1, static_cast<int>(wait.count()));
      if (ready < 0) return -1;
      if (ready == 0) return 0;
      if (ssl_ == nullptr) {
        ssize_t n = recv(fd_, chunk, sizeof(chunk), 0);
        if (n <= 0) return -1;
        buffer->append(chunk, static_cast<std::size_t>(n));
        return 1;
      }
    }
    return 0;
  }

  void Linger() override {
    if (ssl_ != nullptr && established_) SSL_shutdown(ssl_);
    shutdown(fd_, SHUT_WR);
    std::string discarded;
    auto start = Clock::now();
    while (Since(start) < milliseconds(1000) && ReadFor(&discarded, milliseconds(20)) >= 0) {
      discarded.clear();
    }
  }

  bool Write(std::string_view data) override {
    if (ssl_ == nullptr) return SendAll(fd_, data);
    while (!data.empty()) {
      int n = SSL_write(ssl_, data.data(), static_cast<int>(data.size()));
      if (n > 0) {
        data.remove_prefix(static_cast<std::size_t>(n));
      } else if (!WaitFor(SSL_get_error(ssl_, n))) {
        return false;
      }
    }
    return true;
  }

  const std::string& peer() const { return peer_; }
  bool resumed() const { return resumed_; }

 private:
  // Waits for what an SSL call that returned `error` needs; false if it failed for good.
  bool WaitFor(int error) {
    if (error == SSL_ERROR_WANT_READ) return acceptor_.WaitReadable(fd_);
    if (error == SSL_ERROR_WANT_WRITE) return acceptor_.WaitWritable(fd_);
    return false;
  }

  const LoopbackAcceptor& acceptor_;
  int fd_;
  SSL* ssl_ = nullptr;
  bool established_ = false;
  std::string peer_;
  bool resumed_ = false;
};

TestServer::TestServer(Handler handler, std::optional<TlsServerFiles> tls)
    : TestServer(std::move(handler),
                 ServerOptions{ServerOptions::Protocol::kHttp1, std::move(tls)}) {}

TestServer::TestServer(Handler handler, ServerOptions options)
    : handler_(std::move(handler)), options_(std::move(options)) {
  if (options_.tls) {
    tls_context_ = NewServerContext(
        *options_.tls, options_.protocol == ServerOptions::Protocol::kHttp2 && options_.alpn_h2);
    if (tls_context_ == nullptr) ADD_FAILURE() << "cannot set up the test server's TLS";
  }
  acceptor_ = std::make_unique<LoopbackAcceptor>([this](int fd) { Serve(fd); });
}

TestServer::~TestServer() {
  acceptor_->Stop();  // joins the connection threads (which use acceptor_ until they end)
  SSL_CTX_free(static_cast<SSL_CTX*>(tls_context_));
}

std::string TestServer::Url(std::string_view path) const {
  return std::string(tls_context_ != nullptr ? "https" : "http") +
         "://127.0.0.1:" + std::to_string(port()) + std::string(path);
}

std::vector<SeenRequest> TestServer::requests() const {
  std::lock_guard lock(mu_);
  return requests_;
}

void TestServer::Serve(int fd) {
  const int id = ++next_connection_;
  Connection connection(*acceptor_, fd, static_cast<SSL_CTX*>(tls_context_));
  if (!connection.Handshake()) return;
  if (tls_context_ != nullptr) ++handshakes_;
  if (options_.protocol == ServerOptions::Protocol::kHttp2) {
    return ServeHttp2(connection, id, connection.peer(), connection.resumed());
  }
  std::string buffer;
  SeenRequest request;
  while (ReadRequest(connection, &buffer, &request)) {
    request.connection = id;
    request.peer = connection.peer();
    request.resumed = connection.resumed();
    Reply reply = Handle(request);
    acceptor_->SleepUnlessStopping(reply.delay);
    if (reply.kind == Reply::kHang) acceptor_->SleepUnlessStopping(milliseconds(60'000));
    Answered();  // before answering, so the client's next request never overlaps this one
    if (reply.kind == Reply::kRespondThenClose) connection.Write(reply.raw);
    if (reply.kind != Reply::kRespond || !connection.Write(reply.raw)) return;
  }
}

Reply TestServer::Handle(const SeenRequest& request) {
  ++received_;
  int now = ++current_;
  int seen = max_concurrent_;
  while (now > seen && !max_concurrent_.compare_exchange_weak(seen, now)) {
  }
  {
    std::lock_guard lock(mu_);
    requests_.push_back(request);
  }
  return handler_(request);
}

bool TestServer::ReadRequest(Connection& connection, std::string* buffer, SeenRequest* out) {
  std::size_t end;
  while ((end = buffer->find("\r\n\r\n")) == std::string::npos) {
    if (!connection.ReadMore(buffer)) return false;
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
    if (!connection.ReadMore(buffer)) return false;
  }
  out->body = buffer->substr(0, content_length);
  buffer->erase(0, content_length);
  return true;
}

CountingProxy::CountingProxy(std::uint16_t upstream)
    : upstream_(upstream), acceptor_([this](int fd) { Pump(fd); }) {}

void CountingProxy::Pump(int client) {
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

// --- External programs (nghttpd, openssl), optional ----------------------------------------------

std::string FindProgram(const std::string& name) {
  for (const char* dir : {"/usr/bin", "/usr/sbin", "/usr/local/bin", "/usr/local/sbin", "/bin"}) {
    std::string path = std::string(dir) + "/" + name;
    if (access(path.c_str(), X_OK) == 0) return path;
  }
  return {};
}

ChildProcess::ChildProcess(std::vector<std::string> args) {
  std::vector<char*> argv;
  for (auto& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
  pid_t pid = -1;
  if (posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ) == 0) pid_ = pid;
  posix_spawn_file_actions_destroy(&actions);
}

ChildProcess::~ChildProcess() {
  if (pid_ <= 0) return;
  kill(pid_, SIGTERM);
  waitpid(pid_, nullptr, 0);
}

int ChildProcess::Wait() {
  if (pid_ <= 0) return -1;
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

int Run(std::vector<std::string> args) { return ChildProcess(std::move(args)).Wait(); }

TempDir::TempDir() {
  std::string pattern = (std::filesystem::temp_directory_path() / "herald_http_XXXXXX").string();
  path_ = mkdtemp(pattern.data()) != nullptr ? pattern : "";
}

TempDir::~TempDir() {
  std::error_code ignored;
  if (!path_.empty()) std::filesystem::remove_all(path_, ignored);
}

void TempDir::Write(std::string_view name, std::string_view content) const {
  std::ofstream(File(name), std::ios::binary) << content;
}

std::string TempDir::Read(std::string_view name) const {
  std::ifstream in(File(name), std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

std::vector<std::string> TestPki::NewKey() const {
  return {openssl_, "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"};
}

bool TestPki::MakeCa(const std::string& name, const std::string& common_name) {
  std::vector<std::string> args = NewKey();
  args.insert(args.begin() + 2, "-x509");
  args.insert(args.end(),
              {"-keyout", dir_.File(name + ".key"), "-out", dir_.File(name + ".pem"), "-subj",
               "/CN=" + common_name, "-days", "2", "-addext", "basicConstraints=critical,CA:TRUE",
               "-addext", "keyUsage=critical,keyCertSign"});
  return Run(args) == 0;
}

bool TestPki::Issue(const std::string& name, const std::string& common_name,
                    const std::string& issuer, const std::string& extensions) {
  std::vector<std::string> request = NewKey();
  request.insert(request.begin() + 2, "-new");
  request.insert(request.end(), {"-keyout", dir_.File(name + ".key"), "-out",
                                 dir_.File(name + ".csr"), "-subj", "/CN=" + common_name});
  dir_.Write(name + ".ext", extensions);
  return Run(request) == 0 &&
         Run({openssl_, "x509", "-req", "-in", dir_.File(name + ".csr"), "-CA",
              dir_.File(issuer + ".pem"), "-CAkey", dir_.File(issuer + ".key"), "-CAcreateserial",
              "-days", "2", "-extfile", dir_.File(name + ".ext"), "-out",
              dir_.File(name + ".pem")}) == 0;
}

bool TestPki::IssueServer(const std::string& name, const std::string& issuer) {
  return Issue(name, "localhost", issuer,
               "basicConstraints=CA:FALSE\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n");
}

bool TestPki::IssueClient(const std::string& name, const std::string& common_name,
                          const std::string& issuer) {
  return Issue(name, common_name, issuer,
               "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n");
}

std::shared_ptr<const ClientCertificate> TestPki::ClientCertificateOf(
    const std::string& name) const {
  return std::make_shared<const ClientCertificate>(
      ClientCertificate{dir_.Read(name + ".pem"), dir_.Read(name + ".key")});
}

Nghttpd::Nghttpd(const std::string& binary, const TempDir& dir, const std::string& key,
                 const std::string& cert)
    : port_(FreePort()), process_(Arguments(binary, dir, port_, key, cert)) {}

std::vector<std::string> Nghttpd::Arguments(const std::string& binary, const TempDir& dir,
                                            std::uint16_t port, const std::string& key,
                                            const std::string& cert) {
  std::vector<std::string> args = {binary, "-a", "127.0.0.1", "-d", dir.File("")};
  if (cert.empty()) args.push_back("--no-tls");
  args.push_back(std::to_string(port));
  if (!cert.empty()) {
    args.push_back(key);
    args.push_back(cert);
  }
  return args;
}

bool Nghttpd::Ready() { return process_.started() && WaitForListener(port_, milliseconds(2000)); }

// --- Client helpers ------------------------------------------------------------------------------

ClientOptions LoopbackOptions() {
  ClientOptions options;
  options.allow_private_targets = true;
  options.user_agent = "herald-test/1";
  options.connect_timeout = milliseconds(1000);
  options.default_timeout = milliseconds(2500);
  return options;
}

Callback Collector::callback() {
  return [this](Outcome outcome) {
    std::lock_guard lock(mu_);
    outcomes_.push_back(std::move(outcome));
    cv_.notify_all();
  };
}

bool Collector::WaitFor(std::size_t count, milliseconds limit) {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, limit, [&] { return outcomes_.size() >= count; });
}

std::vector<Outcome> Collector::outcomes() {
  std::lock_guard lock(mu_);
  return outcomes_;
}

std::size_t Collector::size() {
  std::lock_guard lock(mu_);
  return outcomes_.size();
}

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

bool WaitUntil(const std::function<bool()>& done, milliseconds limit) {
  auto start = Clock::now();
  while (!done()) {
    if (Since(start) > limit) return false;
    std::this_thread::sleep_for(milliseconds(5));
  }
  return true;
}

namespace {

class PriorKnowledgeClient final : public Client {
 public:
  explicit PriorKnowledgeClient(std::unique_ptr<Client> inner) : inner_(std::move(inner)) {}
  void Send(Request request, Callback done) override {
    request.http2_prior_knowledge = true;
    inner_->Send(std::move(request), std::move(done));
  }
  void SetConcurrency(const std::string& key, std::size_t limit) override {
    inner_->SetConcurrency(key, limit);
  }
  std::size_t InFlight() const override { return inner_->InFlight(); }
  void Shutdown(milliseconds grace) override { inner_->Shutdown(grace); }

 private:
  std::unique_ptr<Client> inner_;
};

}  // namespace

std::unique_ptr<Client> WithPriorKnowledge(std::unique_ptr<Client> inner) {
  return std::make_unique<PriorKnowledgeClient>(std::move(inner));
}

std::string HttpEngineTest::Name(const ::testing::TestParamInfo<EngineKind>& info) {
  return info.param == EngineKind::kH2 ? "h2" : "curl";
}

std::unique_ptr<Client> HttpEngineTest::NewEngineClient(const ClientOptions& options) const {
  return h2() ? WithPriorKnowledge(NewClient(options)) : NewCurlClient(options);
}

ServerOptions HttpEngineTest::Server(std::optional<TlsServerFiles> tls) const {
  ServerOptions options;
  options.protocol = h2() ? ServerOptions::Protocol::kHttp2 : ServerOptions::Protocol::kHttp1;
  options.tls = std::move(tls);
  return options;
}

}  // namespace herald::http::test
