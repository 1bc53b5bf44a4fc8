// herald_bench_load: closed-loop HTTP/1.1 load generator. C keep-alive connections, each with
// one request in flight, driven by epoll on --threads threads, until --requests are done or
// --max-seconds pass. Prints one JSON line with throughput and send->response latency.
//
//   --mode trigger  Novu trigger bodies to Herald (Authorization: ApiKey K, expects 201)
//   --mode raw      push-webhook bodies straight to the sink (optionally signed, expects 200)
//   --mode engine   the raw mode's requests sent through Herald's own outbound HTTP engine
//   --mode get      GET --url with no body (a server's no-op route, e.g. /healthz; expects 200)
//                   (http/client.h: libcurl multi on its I/O thread, Herald's defaults), handed
//                   to it from another thread as Herald's dispatcher does: --connections
//                   requests submitted at a time, the engine's per-integration limit on the wire
// All put payload.sentAtUs (µs since the epoch, CLOCK_REALTIME) in the body for the sink. The
// report includes the process's CPU time per request (user + system).
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "core/json.h"
#include "crypto/crypto.h"
#include "http/client.h"

namespace herald::bench {
namespace {

using Clock = std::chrono::steady_clock;

std::int64_t NowUs() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

struct Options {
  std::string mode = "raw";
  std::string url;
  std::string api_key;
  std::string workflow = "bench";
  std::string secret;
  std::uint64_t requests = 20000;
  int connections = 32;
  int threads = 1;
  int subscribers = 100;
  double max_seconds = 30;
  int expect_status = 0;  // 0 = by mode
};

struct Target {
  std::string host_header;
  std::string path;
  sockaddr_storage address{};
  socklen_t address_len = 0;
};

bool ParseUrl(const std::string& url, Target* target, std::string* error) {
  constexpr std::string_view kScheme = "http://";
  if (url.rfind(kScheme, 0) != 0) {
    *error = "--url must start with http://";
    return false;
  }
  std::string rest = url.substr(kScheme.size());
  std::size_t slash = rest.find('/');
  std::string authority = rest.substr(0, slash);
  target->path = slash == std::string::npos ? "/" : rest.substr(slash);
  std::size_t colon = authority.rfind(':');
  std::string host = authority.substr(0, colon);
  std::string port = colon == std::string::npos ? "80" : authority.substr(colon + 1);
  if (host.size() > 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (int rc = getaddrinfo(host.c_str(), port.c_str(), &hints, &found); rc != 0) {
    *error = "cannot resolve " + authority + ": " + gai_strerror(rc);
    return false;
  }
  std::memcpy(&target->address, found->ai_addr, found->ai_addrlen);
  target->address_len = found->ai_addrlen;
  freeaddrinfo(found);
  target->host_header = authority;
  return true;
}

// Builds the request for sequence number `n`: a trigger or a push-webhook delivery body.
class RequestBuilder {
 public:
  RequestBuilder(const Options& options, const Target& target)
      : options_(options),
        workflow_json_(DumpJson(Json(options.workflow))),
        head_((options.mode == "get" ? "GET " : "POST ") + target.path +
              " HTTP/1.1\r\nHost: " + target.host_header + "\r\n" +
              (options.mode == "get" ? "" : "Content-Type: application/json\r\n")) {
    if (options.mode == "trigger") head_ += "Authorization: ApiKey " + options.api_key + "\r\n";
  }

  // The body of request `n`.
  std::string Body(std::uint64_t n) const {
    const std::string k = std::to_string(n % static_cast<std::uint64_t>(options_.subscribers));
    const std::string seq = std::to_string(n);
    const std::string sent = std::to_string(NowUs());
    std::string body;
    body.reserve(640);
    if (options_.mode == "trigger") {
      body += R"({"name":)" + workflow_json_ + R"(,"to":"sub-)" + k +
              R"(","payload":{"sentAtUs":)" + sent + R"(,"n":)" + seq + "}}";
    } else {
      // The shape Herald's push-webhook provider posts (novu-api.md §6), with a compact
      // stored-subscriber document.
      body += R"({"target":["tok-)" + k + R"("],"title":"Hi sub-)" + k + R"(","content":"n=)" +
              seq + R"(","overrides":{},"payload":{"sentAtUs":)" + sent + R"(,"n":)" + seq +
              R"(,"subscriber":{"_id":"65f0c0ffee00000000000000","subscriberId":"sub-)" + k +
              R"(","firstName":null,"lastName":null,"email":null,"phone":null,"avatar":null,)"
              R"("locale":null,"data":{},"channels":[{"providerId":"push-webhook",)"
              R"("credentials":{"deviceTokens":["tok-)" +
              k +
              R"("]}}],"deleted":false,"createdAt":"2024-01-01T00:00:00.000Z",)"
              R"("updatedAt":"2024-01-01T00:00:00.000Z"},"step":{"digest":false}},)"
              R"("messageId":"bench-)" +
              seq + R"("})";
    }
    return body;
  }

  // The signature header's value for `body` (empty when not signing).
  std::string Signature(const std::string& body) const {
    return options_.secret.empty() ? std::string()
                                   : crypto::Hex(crypto::HmacSha256(options_.secret, body));
  }

  // The whole HTTP/1.1 request `n`.
  void Build(std::uint64_t n, std::string* out) const {
    if (options_.mode == "get") {
      out->assign(head_);
      *out += "\r\n";
      return;
    }
    const std::string body = Body(n);
    out->assign(head_);
    if (!options_.secret.empty()) *out += "X-Novu-Signature: " + Signature(body) + "\r\n";
    *out += "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n";
    *out += body;
  }

 private:
  const Options& options_;
  std::string workflow_json_;
  std::string head_;
};

// What one worker thread measured.
struct Tally {
  std::vector<std::uint32_t> latencies_us;  // successful responses only
  std::map<int, std::uint64_t> statuses;
  std::uint64_t transport_errors = 0;
  std::uint64_t unfinished = 0;  // in flight at the hard stop
};

struct Shared {
  const Options& options;
  const Target& target;
  const RequestBuilder& builder;
  int expect_status;
  Clock::time_point deadline;
  std::atomic<std::uint64_t> next{0};
};

char Lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool StartsWithIgnoreCase(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (std::size_t i = 0; i < prefix.size(); ++i) {
    if (Lower(s[i]) != prefix[i]) return false;
  }
  return true;
}

// Result of looking at the bytes received so far.
struct Parsed {
  enum State { kIncomplete, kComplete, kBad } state = kIncomplete;
  int status = 0;
  bool close = false;
  std::size_t length = 0;  // bytes of the whole response
};

Parsed ParseResponse(std::string_view in) {
  Parsed p;
  std::size_t end = in.find("\r\n\r\n");
  if (end == std::string_view::npos) {
    if (in.size() > 65536) p.state = Parsed::kBad;
    return p;
  }
  std::string_view head = in.substr(0, end + 2);
  if (head.size() < 12 || head.substr(0, 7) != "HTTP/1.") {
    p.state = Parsed::kBad;
    return p;
  }
  p.status = std::atoi(std::string(head.substr(9, 3)).c_str());
  bool has_length = false;
  std::size_t content_length = 0;
  for (std::size_t pos = head.find("\r\n") + 2; pos < head.size();) {
    std::size_t eol = head.find("\r\n", pos);
    std::string_view line = head.substr(pos, eol - pos);
    pos = eol + 2;
    if (StartsWithIgnoreCase(line, "content-length:")) {
      has_length = true;
      content_length = std::strtoull(std::string(line.substr(15)).c_str(), nullptr, 10);
    } else if (StartsWithIgnoreCase(line, "connection:")) {
      std::string value(line.substr(11));
      for (char& c : value) c = Lower(c);
      p.close = value.find("close") != std::string::npos;
    } else if (StartsWithIgnoreCase(line, "transfer-encoding:")) {
      p.state = Parsed::kBad;  // the servers under test always send Content-Length
      return p;
    }
  }
  if (!has_length && p.status != 204 && p.status != 304) {
    p.state = Parsed::kBad;
    return p;
  }
  p.length = end + 4 + content_length;
  if (in.size() >= p.length) p.state = Parsed::kComplete;
  return p;
}

struct Conn {
  int fd = -1;
  bool busy = false;
  bool want_write = false;
  std::string out;
  std::size_t out_sent = 0;
  std::string in;
  Clock::time_point started;
};

class Worker {
 public:
  Worker(Shared& shared, int connections) : shared_(shared), conns_(connections) {}

  Tally Run() {
    epoll_ = epoll_create1(EPOLL_CLOEXEC);
    int active = 0;
    for (std::size_t i = 0; i < conns_.size(); ++i) active += StartNext(i) ? 1 : 0;
    std::vector<epoll_event> events(std::max<std::size_t>(conns_.size(), 1));
    while (active > 0) {
      auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(shared_.deadline - Clock::now());
      if (left.count() <= 0) break;
      int n = epoll_wait(epoll_, events.data(), static_cast<int>(events.size()),
                         static_cast<int>(std::min<std::int64_t>(left.count(), 100)));
      for (int e = 0; e < n; ++e) {
        std::size_t i = events[e].data.u64;
        if (!OnEvent(i, events[e].events)) active -= StartNext(i) ? 0 : 1;
      }
    }
    for (Conn& c : conns_) {
      if (c.busy) ++tally_.unfinished;
      Close(c);
    }
    close(epoll_);
    return std::move(tally_);
  }

 private:
  // Claims the next request and sends it on connection i. False when there is nothing left
  // to send (count reached or deadline passed); the connection is then closed.
  bool StartNext(std::size_t i) {
    Conn& c = conns_[i];
    for (;;) {
      if (Clock::now() >= shared_.deadline) break;
      std::uint64_t n = shared_.next.fetch_add(1, std::memory_order_relaxed);
      if (n >= shared_.options.requests) break;
      if (c.fd < 0 && !Connect(i)) {
        ++tally_.transport_errors;
        continue;
      }
      shared_.builder.Build(n, &c.out);
      c.out_sent = 0;
      c.in.clear();
      c.busy = true;
      c.started = Clock::now();
      if (Flush(i)) return true;
      Fail(c);  // the connection broke while sending; count it and move on
    }
    Close(c);
    return false;
  }

  bool Connect(std::size_t i) {
    Conn& c = conns_[i];
    int fd = socket(shared_.target.address.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    // Blocking connect: immediate on loopback (refused or accepted); SO_SNDTIMEO bounds it
    // should the listen backlog be full.
    timeval timeout{2, 0};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
    if (connect(fd, reinterpret_cast<const sockaddr*>(&shared_.target.address),
                shared_.target.address_len) != 0) {
      close(fd);
      return false;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    int flags = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, flags | O_NONBLOCK);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = i;
    epoll_ctl(epoll_, EPOLL_CTL_ADD, fd, &ev);
    c.fd = fd;
    c.want_write = false;
    return true;
  }

  // Writes what it can; arms EPOLLOUT if the socket is full. False on a broken connection.
  bool Flush(std::size_t i) {
    Conn& c = conns_[i];
    while (c.out_sent < c.out.size()) {
      ssize_t n = send(c.fd, c.out.data() + c.out_sent, c.out.size() - c.out_sent, MSG_NOSIGNAL);
      if (n > 0) {
        c.out_sent += static_cast<std::size_t>(n);
      } else if (n < 0 && errno == EINTR) {
        continue;
      } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        return Watch(i, true);
      } else {
        return false;
      }
    }
    return Watch(i, false);
  }

  bool Watch(std::size_t i, bool write) {
    Conn& c = conns_[i];
    if (c.want_write == write) return true;
    epoll_event ev{};
    ev.events = EPOLLIN | (write ? EPOLLOUT : 0u);
    ev.data.u64 = i;
    c.want_write = write;
    return epoll_ctl(epoll_, EPOLL_CTL_MOD, c.fd, &ev) == 0;
  }

  // Handles readiness on connection i. True while its current request is still in flight.
  bool OnEvent(std::size_t i, std::uint32_t events) {
    Conn& c = conns_[i];
    if ((events & EPOLLOUT) && !Flush(i)) {
      Fail(c);
      return false;
    }
    if (!(events & (EPOLLIN | EPOLLERR | EPOLLHUP))) return true;
    char buffer[16384];
    ssize_t n = recv(c.fd, buffer, sizeof(buffer), 0);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return true;
    if (n <= 0 || !c.busy) {
      Fail(c);
      return false;
    }
    c.in.append(buffer, static_cast<std::size_t>(n));
    Parsed p = ParseResponse(c.in);
    if (p.state == Parsed::kIncomplete) return true;
    if (p.state == Parsed::kBad || p.length != c.in.size()) {
      Fail(c);
      return false;
    }
    c.busy = false;
    ++tally_.statuses[p.status];
    if (p.status == shared_.expect_status) {
      auto us = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - c.started);
      tally_.latencies_us.push_back(static_cast<std::uint32_t>(us.count()));
    }
    if (p.close) Close(c);
    return false;
  }

  // The in-flight request (if any) failed at the transport level; drop the connection.
  void Fail(Conn& c) {
    if (c.busy) ++tally_.transport_errors;
    c.busy = false;
    Close(c);
  }

  void Close(Conn& c) {
    if (c.fd >= 0) close(c.fd);  // also removes it from the epoll set
    c.fd = -1;
    c.want_write = false;
  }

  Shared& shared_;
  std::vector<Conn> conns_;
  Tally tally_;
  int epoll_ = -1;
};

// --mode engine: keeps --connections requests submitted to Herald's HTTP engine. Completions
// arrive on the engine's I/O thread and are handed back to this (the calling) thread, which
// builds and submits the next requests: the hand-over Herald's dispatcher does.
Tally RunEngine(Shared& shared) {
  const Options& o = shared.options;
  http::ClientOptions client_options;  // Herald's defaults (64 requests in flight per integration)
  client_options.allow_private_targets = true;
  std::unique_ptr<http::Client> client = http::NewCurlClient(client_options);

  struct Done {
    int status = 0;  // 0: transport error
    std::uint32_t latency_us = 0;
  };
  std::mutex mu;
  std::condition_variable cv;
  std::vector<Done> done;  // completions not yet taken by this thread
  Tally tally;
  std::uint64_t in_flight = 0;

  auto send_next = [&]() -> bool {
    if (Clock::now() >= shared.deadline) return false;
    std::uint64_t n = shared.next.fetch_add(1, std::memory_order_relaxed);
    if (n >= o.requests) return false;
    http::Request request;
    request.url = o.url;
    request.body = shared.builder.Body(n);
    request.headers.emplace_back("Content-Type", "application/json");
    if (!o.secret.empty()) {
      request.headers.emplace_back("X-Novu-Signature", shared.builder.Signature(request.body));
    }
    request.concurrency_key = "bench";
    const Clock::time_point started = Clock::now();
    client->Send(std::move(request), [&, started](http::Outcome outcome) {
      auto us = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - started);
      std::lock_guard lock(mu);
      done.push_back(
          {outcome.ok() ? outcome.response.status : 0, static_cast<std::uint32_t>(us.count())});
      if (done.size() == 1) cv.notify_one();
    });
    ++in_flight;
    return true;
  };

  for (int i = 0; i < o.connections && send_next(); ++i) {
  }
  std::vector<Done> taken;
  while (in_flight > 0) {
    {
      std::unique_lock lock(mu);
      if (!cv.wait_until(lock, shared.deadline, [&] { return !done.empty(); })) break;
      taken.swap(done);
    }
    for (const Done& d : taken) {
      --in_flight;
      if (d.status == 0) {
        ++tally.transport_errors;
      } else {
        ++tally.statuses[d.status];
        if (d.status == shared.expect_status) tally.latencies_us.push_back(d.latency_us);
      }
      send_next();
    }
    taken.clear();
  }
  tally.unfinished = in_flight;
  client->Shutdown(std::chrono::milliseconds(0));  // fails what is left (a hard stop)
  client.reset();                                  // before the state its callbacks use goes
  return tally;
}

// CPU time (user + system) this process has used so far, in microseconds.
std::int64_t ProcessCpuUs() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  auto us = [](const timeval& t) {
    return static_cast<std::int64_t>(t.tv_sec) * 1000000 + static_cast<std::int64_t>(t.tv_usec);
  };
  return us(usage.ru_utime) + us(usage.ru_stime);
}

std::uint32_t Percentile(std::vector<std::uint32_t>& sorted, double q) {
  if (sorted.empty()) return 0;
  auto rank = static_cast<std::size_t>(q * static_cast<double>(sorted.size()) + 0.999999);
  return sorted[std::clamp<std::size_t>(rank, 1, sorted.size()) - 1];
}

int Main(int argc, char** argv) {
  Options o;
  CLI::App cli{"herald_bench_load: closed-loop HTTP/1.1 load generator for Herald benchmarks"};
  cli.add_option("--mode", o.mode, "trigger | raw | engine | get")
      ->check(CLI::IsMember({"trigger", "raw", "engine", "get"}));
  cli.add_option("--url", o.url, "http://HOST:PORT/PATH")->required();
  cli.add_option("--api-key", o.api_key, "trigger mode: sent as Authorization: ApiKey <key>");
  cli.add_option("--workflow", o.workflow, "trigger mode: workflow id (the body's name)");
  cli.add_option("--subscribers", o.subscribers, "request n targets sub-<n mod S> / tok-<n mod S>")
      ->check(CLI::Range(1, 100000000));
  cli.add_option("--secret", o.secret,
                 "raw and engine modes: sign bodies (X-Novu-Signature) with this key");
  cli.add_option("--requests", o.requests, "requests to send")->check(CLI::Range(1, 100000000));
  cli.add_option("--connections", o.connections, "keep-alive connections")
      ->check(CLI::Range(1, 10000));
  cli.add_option("--threads", o.threads, "epoll threads")->check(CLI::Range(1, 64));
  cli.add_option("--max-seconds", o.max_seconds, "hard stop")->check(CLI::Range(0.1, 3600.0));
  cli.add_option("--expect-status", o.expect_status,
                 "success status (default 201 trigger, 200 raw)");
  CLI11_PARSE(cli, argc, argv);
  if (o.mode == "trigger" && o.api_key.empty()) {
    std::fprintf(stderr, "herald_bench_load: --mode trigger needs --api-key\n");
    return 2;
  }
  Target target;
  std::string error;
  if (!ParseUrl(o.url, &target, &error)) {
    std::fprintf(stderr, "herald_bench_load: %s\n", error.c_str());
    return 2;
  }
  o.threads = std::min(o.threads, o.connections);

  RequestBuilder builder(o, target);
  const int expect = o.expect_status != 0 ? o.expect_status : (o.mode == "trigger" ? 201 : 200);
  const auto start = Clock::now();
  const std::int64_t start_us = NowUs();
  Shared shared{o, target, builder, expect,
                start + std::chrono::duration_cast<Clock::duration>(
                            std::chrono::duration<double>(o.max_seconds))};
  std::vector<Tally> tallies(o.threads);
  std::vector<std::thread> threads;
  if (o.mode == "engine") tallies.assign(1, RunEngine(shared));
  for (int t = 0; t < o.threads && o.mode != "engine"; ++t) {
    int share = o.connections / o.threads + (t < o.connections % o.threads ? 1 : 0);
    threads.emplace_back([&, t, share] {
      Worker worker(shared, share);
      tallies[t] = worker.Run();
    });
  }
  for (std::thread& t : threads) t.join();
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  const std::int64_t end_us = NowUs();

  std::vector<std::uint32_t> latencies;
  std::map<int, std::uint64_t> statuses;
  std::uint64_t transport_errors = 0;
  std::uint64_t unfinished = 0;
  for (Tally& t : tallies) {
    latencies.insert(latencies.end(), t.latencies_us.begin(), t.latencies_us.end());
    for (auto [status, count] : t.statuses) statuses[status] += count;
    transport_errors += t.transport_errors;
    unfinished += t.unfinished;
  }
  std::sort(latencies.begin(), latencies.end());
  std::uint64_t answered = 0;
  Json status_counts = Json::object();
  for (auto [status, count] : statuses) {
    answered += count;
    status_counts[std::to_string(status)] = count;
  }
  const std::uint64_t ok = latencies.size();
  const std::uint64_t done = answered + transport_errors;
  double mean = 0;
  for (std::uint32_t v : latencies) mean += v;
  if (ok > 0) mean /= static_cast<double>(ok);

  Json report = {
      {"mode", o.mode},
      {"requests", done},
      {"ok", ok},
      {"errors", done - ok},
      {"transport_errors", transport_errors},
      {"unfinished", unfinished},
      {"timed_out", done < o.requests},
      {"seconds", seconds},
      {"rps", seconds > 0 ? static_cast<double>(ok) / seconds : 0.0},
      {"p50_us", Percentile(latencies, 0.50)},
      {"p90_us", Percentile(latencies, 0.90)},
      {"p99_us", Percentile(latencies, 0.99)},
      {"p999_us", Percentile(latencies, 0.999)},
      {"max_us", latencies.empty() ? 0 : latencies.back()},
      {"mean_us", static_cast<std::int64_t>(mean)},
      {"status_counts", status_counts},
      {"connections", o.connections},
      {"start_us", start_us},
      {"end_us", end_us},
      {"cpu_us_per_request", done > 0 ? ProcessCpuUs() / static_cast<double>(done) : 0.0},
  };
  std::printf("%s\n", DumpJson(report).c_str());
  return ok > 0 ? 0 : 1;
}

}  // namespace
}  // namespace herald::bench

int main(int argc, char** argv) { return herald::bench::Main(argc, argv); }
