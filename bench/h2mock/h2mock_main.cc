// herald_bench_h2mock: a loopback mock of APNs, FCM (with its OAuth token endpoint) and a Web Push
// service for bench/providers/run.mjs, cleartext only: HTTP/2 with prior knowledge (h2c) on
// Debian's libnghttp2, and HTTP/1.1 keep-alive, told apart by the first bytes of a connection.
// It checks what a sender must get right (paths, the presence and shape of the credentials,
// required headers, body sizes), never decrypts or verifies a signature, and answers from
// prebuilt headers: it is meant to cost far less per request than any sender it measures.
//
//   herald_bench_h2mock [--listen 127.0.0.1:0] [--threads 1] [--max-seconds 0]
//   first stdout line: "listening PORT"
//
//   POST /3/device/<hex token>            APNs: 200 + apns-id (echoed, or made up)
//   POST /token                           OAuth JWT-bearer grant: {"access_token":"mock-token-<n>"}
//   POST /v1/projects/<p>/messages:send   FCM: 200 {"name":"projects/<p>/messages/<n>"}
//   POST /wp/<id>                         Web Push: 201 + location + ttl
//   GET  /stats                           counters (JSON); POST /reset zeroes them
//
// Threads: --threads epoll loops; the first also accepts, and hands connections out round-robin.
// Duplicates: a push is keyed by its body (APNs, FCM) or its `topic` header (Web Push, whose
// bodies are encrypted afresh on every attempt); `distinct_messages` counts keys seen once,
// `duplicates` the keyed pushes accepted again.
//
// This file: the flags, the listener, the worker threads and their epoll loop (accept, read,
// write). Elsewhere: h2mock_util.h (helpers), h2mock_stats.{h,cc} (counters, /stats),
// h2mock_routes.{h,cc} (request digest, route checks, canned responses), h2mock_worker.h
// (connections, the Worker), h2mock_h2.cc and h2mock_http1.cc (the two protocol front-ends).

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nghttp2/nghttp2.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "bench/h2mock/h2mock_routes.h"
#include "bench/h2mock/h2mock_stats.h"
#include "bench/h2mock/h2mock_worker.h"

namespace herald::bench {
namespace {

std::atomic<bool> g_stop{false};

}  // namespace

// ------------------------------------------------------------------------------------ worker
Worker::~Worker() {
  for (Conn* c : closing_) Destroy(c);
  closing_.clear();
  while (!conns_.empty()) Destroy(conns_.back());
  if (epfd_ >= 0) close(epfd_);
  if (wake_fd_ >= 0) close(wake_fd_);
}

bool Worker::Init() {
  epfd_ = epoll_create1(EPOLL_CLOEXEC);
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (epfd_ < 0 || wake_fd_ < 0) return false;
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = &wake_item_;
  if (epoll_ctl(epfd_, EPOLL_CTL_ADD, wake_fd_, &ev) != 0) return false;
  if (listen_fd_ >= 0) {
    ev.data.ptr = &listen_item_;
    if (epoll_ctl(epfd_, EPOLL_CTL_ADD, listen_fd_, &ev) != 0) return false;
  }
  callbacks_ = MakeCallbacks();
  if (nghttp2_option_new(&h2_option_) != 0) return false;
  // No HTTP semantics checks in nghttp2: the routes check what they need, and firebase-admin's
  // HTTP/2 transport sends ":scheme: https:" (with the colon), which nghttp2 would refuse with
  // a stream error where Google answers.
  nghttp2_option_set_no_http_messaging(h2_option_, 1);
  return callbacks_ != nullptr;
}

void Worker::Start() {
  thread_ = std::thread([this] { Run(); });
}

void Worker::Wake() {
  std::uint64_t one = 1;
  [[maybe_unused]] ssize_t n = write(wake_fd_, &one, sizeof one);
}

void Worker::Join() {
  if (thread_.joinable()) thread_.join();
  if (callbacks_) nghttp2_session_callbacks_del(callbacks_);
  if (h2_option_) nghttp2_option_del(h2_option_);
  callbacks_ = nullptr;
  h2_option_ = nullptr;
}

void Worker::HandOver(int fd) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    incoming_.push_back(fd);
  }
  Wake();
}

void Worker::Run() {
  std::array<epoll_event, 128> events;
  while (!g_stop.load(std::memory_order_relaxed)) {
    int n = epoll_wait(epfd_, events.data(), static_cast<int>(events.size()), 500);
    for (int i = 0; i < n; ++i) {
      auto* item = static_cast<Pollable*>(events[static_cast<std::size_t>(i)].data.ptr);
      const std::uint32_t ev = events[static_cast<std::size_t>(i)].events;
      if (item->kind == Pollable::kListen) {
        AcceptAll();
      } else if (item->kind == Pollable::kWake) {
        std::uint64_t v;
        [[maybe_unused]] ssize_t r = read(wake_fd_, &v, sizeof v);
        std::vector<int> fds;
        {
          std::lock_guard<std::mutex> lock(mu_);
          fds.swap(incoming_);
        }
        for (int fd : fds) Adopt(fd);
      } else {
        auto* conn = static_cast<Conn*>(item);
        if (ev & (EPOLLERR | EPOLLHUP)) {
          if (!(ev & EPOLLIN)) {
            Close(conn);
            continue;
          }
        }
        if (ev & EPOLLIN) {
          const Read read = OnReadable(conn);
          if (read != Read::kOk) {
            if (read == Read::kEof) Flush(conn);  // answer what came before the end
            Close(conn);
            continue;
          }
        }
        if ((ev & EPOLLOUT) || !conn->out.empty() || conn->h2) {
          if (!Flush(conn)) Close(conn);
        }
      }
    }
    if (!closing_.empty()) {
      for (Conn* c : closing_) Destroy(c);
      closing_.clear();
    }
  }
}

void Worker::AcceptAll() {
  for (;;) {
    int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR) continue;
      return;  // EAGAIN, or a transient error (EMFILE...): try again on the next event
    }
    const std::size_t target = next_++ % all_->size();
    if (target == static_cast<std::size_t>(index_)) {
      Adopt(fd);
    } else {
      (*all_)[target]->HandOver(fd);
    }
  }
}

void Worker::Adopt(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  auto* conn = new Conn();
  conn->worker = this;
  conn->fd = fd;
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLRDHUP;
  ev.data.ptr = conn;
  if (epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
    close(fd);
    delete conn;
    return;
  }
  conns_.push_back(conn);
  Counters::Add(mock_->counters(index_).connections);
}

void Worker::Close(Conn* conn) {
  if (conn->fd < 0) return;
  epoll_ctl(epfd_, EPOLL_CTL_DEL, conn->fd, nullptr);
  close(conn->fd);
  conn->fd = -1;
  Counters::Add(mock_->counters(index_).closed);
  closing_.push_back(conn);  // freed after this round of events (others may still name it)
}

void Worker::Destroy(Conn* conn) {
  if (conn->fd >= 0) {
    close(conn->fd);
    conn->fd = -1;
  }
  if (conn->h2) nghttp2_session_del(conn->h2);
  conn->h2 = nullptr;
  auto it = std::find(conns_.begin(), conns_.end(), conn);
  if (it != conns_.end()) {
    *it = conns_.back();
    conns_.pop_back();
  }
  delete conn;
}

Worker::Read Worker::OnReadable(Conn* conn) {
  for (int round = 0; round < 16; ++round) {
    ssize_t n = recv(conn->fd, rbuf_.data(), rbuf_.size(), 0);
    if (n == 0) return Read::kEof;
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno == EAGAIN || errno == EWOULDBLOCK ? Read::kOk : Read::kError;
    }
    if (!Consume(conn, string_view(rbuf_.data(), static_cast<std::size_t>(n)))) return Read::kError;
    if (static_cast<std::size_t>(n) < rbuf_.size()) break;
  }
  return Read::kOk;
}

bool Worker::Consume(Conn* conn, string_view data) {
  static constexpr string_view kPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
  if (conn->proto == Conn::kDetect) {
    conn->in.append(data);
    const std::size_t n = std::min(conn->in.size(), kPreface.size());
    if (string_view(conn->in).substr(0, n) != kPreface.substr(0, n)) {
      conn->proto = Conn::kH1;
      Counters::Add(mock_->counters(index_).http1_connections);
      return ParseHttp1(conn);
    }
    if (conn->in.size() < kPreface.size()) return true;
    conn->proto = Conn::kH2;
    Counters::Add(mock_->counters(index_).h2_connections);
    if (!StartH2(conn)) return false;
    std::string first;
    first.swap(conn->in);
    return FeedH2(conn, first);
  }
  if (conn->proto == Conn::kH2) return FeedH2(conn, data);
  conn->in.append(data);
  return ParseHttp1(conn);
}

bool Worker::Flush(Conn* conn) {
  if (conn->fd < 0) return false;
  if (conn->h2) {
    for (;;) {
      const std::uint8_t* data = nullptr;
      ssize_t n = nghttp2_session_mem_send(conn->h2, &data);
      if (n < 0) return false;
      if (n == 0) break;
      conn->out.append(reinterpret_cast<const char*>(data), static_cast<std::size_t>(n));
    }
  }
  while (conn->out_off < conn->out.size()) {
    ssize_t n = send(conn->fd, conn->out.data() + conn->out_off, conn->out.size() - conn->out_off,
                     MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      return false;
    }
    conn->out_off += static_cast<std::size_t>(n);
  }
  const bool pending = conn->out_off < conn->out.size();
  if (!pending) {
    conn->out.clear();
    conn->out_off = 0;
  } else if (conn->out_off > (std::size_t{1} << 20)) {
    conn->out.erase(0, conn->out_off);
    conn->out_off = 0;
  }
  if (pending != conn->polling_out) {
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLRDHUP | (pending ? EPOLLOUT : 0u);
    ev.data.ptr = conn;
    epoll_ctl(epfd_, EPOLL_CTL_MOD, conn->fd, &ev);
    conn->polling_out = pending;
  }
  if (!pending && conn->close_after) return false;
  if (conn->h2 && !pending && nghttp2_session_want_read(conn->h2) == 0 &&
      nghttp2_session_want_write(conn->h2) == 0) {
    return false;
  }
  return true;
}

namespace {

// -------------------------------------------------------------------------------------- main
int ListenOn(const std::string& listen, std::uint16_t* port_out) {
  std::size_t colon = listen.rfind(':');
  if (colon == std::string::npos) return -1;
  const std::string host = listen.substr(0, colon);
  int port = 0;
  auto [p, ec] = std::from_chars(listen.data() + colon + 1, listen.data() + listen.size(), port);
  if (ec != std::errc() || p != listen.data() + listen.size() || port < 0 || port > 65535)
    return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  if (inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1) return -1;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd, 4096) != 0) {
    close(fd);
    return -1;
  }
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  *port_out = ntohs(addr.sin_port);
  return fd;
}

int Main(int argc, char** argv) {
  std::string listen = "127.0.0.1:0";
  int threads = 1;
  int max_seconds = 0;
  CLI::App cli{"herald_bench_h2mock: loopback APNs / FCM / Web Push mock (h2c and HTTP/1.1)"};
  cli.add_option("--listen", listen,
                 "HOST:PORT (IPv4); port 0 picks one, printed as 'listening PORT'");
  cli.add_option("--threads", threads, "epoll threads")->check(CLI::Range(1, 64));
  cli.add_option("--max-seconds", max_seconds, "exit after this long (0 = until SIGINT/SIGTERM)")
      ->check(CLI::NonNegativeNumber);
  CLI11_PARSE(cli, argc, argv);

  // Before any thread starts, so that only the wait below takes the stop signals.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  std::uint16_t port = 0;
  int listen_fd = ListenOn(listen, &port);
  if (listen_fd < 0) {
    std::fprintf(stderr, "herald_bench_h2mock: cannot listen on '%s': %s\n", listen.c_str(),
                 std::strerror(errno));
    return 1;
  }
  auto mock = std::make_unique<Mock>(threads);
  std::vector<std::unique_ptr<Worker>> workers;
  for (int i = 0; i < threads; ++i) {
    workers.push_back(std::make_unique<Worker>(mock.get(), i, i == 0 ? listen_fd : -1, &workers));
    if (!workers.back()->Init()) {
      std::fprintf(stderr, "herald_bench_h2mock: worker setup failed: %s\n", std::strerror(errno));
      return 1;
    }
  }
  for (auto& w : workers) w->Start();
  std::printf("listening %u\n", static_cast<unsigned>(port));
  std::fflush(stdout);

  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(max_seconds);
  for (;;) {
    timespec wait{1, 0};
    int sig = sigtimedwait(&stop_signals, nullptr, &wait);
    if (sig > 0) break;
    if (max_seconds > 0 && std::chrono::steady_clock::now() >= deadline) break;
  }
  g_stop.store(true);
  for (auto& w : workers) w->Wake();
  for (auto& w : workers) w->Join();
  workers.clear();
  close(listen_fd);
  return 0;
}

}  // namespace
}  // namespace herald::bench

int main(int argc, char** argv) { return herald::bench::Main(argc, argv); }
