// herald_bench_sink: a loopback push-webhook receiver that counts deliveries and records
// trigger-to-delivery latency (now - payload.sentAtUs).
//
//   POST <any path>  a delivery: optional X-Novu-Signature check, 200 {"id":"<n>"}
//   GET  /stats      {count, p50_us, p90_us, p99_us, max_us, first_at_us, last_at_us, ...}
//   POST /reset      zeroes every counter

#include <CLI/CLI.hpp>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <utility>

#include "bench/sink/latency_histogram.h"
#include "core/json.h"
#include "core/log.h"
#include "core/signals.h"
#include "crypto/crypto.h"
#include "server/http_server.h"

namespace herald::bench {
namespace {

std::int64_t NowUs() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void StoreMin(std::atomic<std::int64_t>& slot, std::int64_t v) {
  std::int64_t seen = slot.load(std::memory_order_relaxed);
  while ((seen == 0 || v < seen) &&
         !slot.compare_exchange_weak(seen, v, std::memory_order_relaxed)) {
  }
}

void StoreMax(std::atomic<std::int64_t>& slot, std::int64_t v) {
  std::int64_t seen = slot.load(std::memory_order_relaxed);
  while (v > seen && !slot.compare_exchange_weak(seen, v, std::memory_order_relaxed)) {
  }
}

class Sink {
 public:
  explicit Sink(std::string secret) : secret_(std::move(secret)) {}

  server::Reply Handle(const server::Request& request) {
    if (request.method == "GET" && request.path == "/stats") return Stats();
    if (request.method == "POST" && request.path == "/reset") {
      Reset();
      return {200, R"({"ok":true})"};
    }
    if (request.method == "POST") return Deliver(request);
    return {404, R"({"message":"not found"})"};
  }

 private:
  server::Reply Deliver(const server::Request& request) {
    const std::int64_t now = NowUs();
    if (!secret_.empty()) {
      std::string expected = crypto::Hex(crypto::HmacSha256(secret_, request.body));
      if (!crypto::ConstantTimeEquals(expected, request.Header("x-novu-signature"))) {
        bad_signature_.fetch_add(1, std::memory_order_relaxed);
        return {401, R"({"message":"bad signature"})"};
      }
    }
    std::string error;
    std::optional<Json> body = ParseJson(request.body, &error);
    if (!body || !body->is_object()) {
      bad_json_.fetch_add(1, std::memory_order_relaxed);
      return {400, R"({"message":"bad json"})"};
    }
    auto payload = body->find("payload");
    if (payload != body->end() && payload->is_object()) {
      auto sent = payload->find("sentAtUs");
      if (sent != payload->end() && sent->is_number()) {
        latency_.Record(now - sent->get<std::int64_t>());
      }
    }
    std::uint64_t n = count_.fetch_add(1, std::memory_order_relaxed) + 1;
    StoreMin(first_at_us_, now);
    StoreMax(last_at_us_, now);
    return {200, "{\"id\":\"" + std::to_string(n) + "\"}"};
  }

  server::Reply Stats() const {
    Json stats = {
        {"count", count_.load(std::memory_order_relaxed)},
        {"latency_samples", latency_.count()},
        {"p50_us", latency_.Quantile(0.50)},
        {"p90_us", latency_.Quantile(0.90)},
        {"p99_us", latency_.Quantile(0.99)},
        {"max_us", latency_.max()},
        {"first_at_us", first_at_us_.load(std::memory_order_relaxed)},
        {"last_at_us", last_at_us_.load(std::memory_order_relaxed)},
        {"bad_signature", bad_signature_.load(std::memory_order_relaxed)},
        {"bad_json", bad_json_.load(std::memory_order_relaxed)},
    };
    return {200, DumpJson(stats)};
  }

  void Reset() {
    latency_.Reset();
    count_.store(0);
    first_at_us_.store(0);
    last_at_us_.store(0);
    bad_signature_.store(0);
    bad_json_.store(0);
  }

  const std::string secret_;
  LatencyHistogram latency_;
  std::atomic<std::uint64_t> count_{0};
  std::atomic<std::int64_t> first_at_us_{0};
  std::atomic<std::int64_t> last_at_us_{0};
  std::atomic<std::uint64_t> bad_signature_{0};
  std::atomic<std::uint64_t> bad_json_{0};
};

bool ParseListen(const std::string& listen, server::ServerOptions* options) {
  std::size_t colon = listen.rfind(':');
  if (colon == std::string::npos || colon == 0) return false;
  try {
    std::size_t used = 0;
    int port = std::stoi(listen.substr(colon + 1), &used);
    if (used != listen.size() - colon - 1 || port < 0 || port > 65535) return false;
    options->host = listen.substr(0, colon);
    options->port = static_cast<std::uint16_t>(port);
  } catch (...) {
    return false;
  }
  return true;
}

int Main(int argc, char** argv) {
  std::string listen = "127.0.0.1:0";
  std::string secret;
  int threads = 2;
  int max_seconds = 0;
  CLI::App cli{"herald_bench_sink: loopback push-webhook receiver for benchmarks"};
  cli.add_option("--listen", listen, "HOST:PORT; port 0 picks one (printed as 'listening PORT')");
  cli.add_option("--threads", threads, "I/O threads")->check(CLI::Range(1, 64));
  cli.add_option("--secret", secret, "verify X-Novu-Signature with this HMAC key");
  cli.add_option("--max-seconds", max_seconds, "exit after this long (0 = until SIGINT/SIGTERM)")
      ->check(CLI::NonNegativeNumber);
  CLI11_PARSE(cli, argc, argv);

  server::ServerOptions options;
  if (!ParseListen(listen, &options)) {
    std::fprintf(stderr, "herald_bench_sink: --listen must be HOST:PORT, got '%s'\n",
                 listen.c_str());
    return 2;
  }
  options.threads = threads;
  options.pin_connections = true;  // its handler never blocks
  InitLogging("warn");             // stderr; stdout carries only the "listening PORT" line

  // Before any thread starts, so that only the wait below sees the stop signals.
  BlockStopSignals();

  Sink sink(secret);
  auto server = server::HttpServer::Start(
      options, server::Sync([&sink](server::Request& request) { return sink.Handle(request); }));
  if (!server.ok()) {
    std::fprintf(stderr, "herald_bench_sink: %s\n", server.status().message().c_str());
    return 1;
  }
  std::printf("listening %u\n", static_cast<unsigned>((*server)->port()));
  std::fflush(stdout);

  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(max_seconds);
  for (;;) {
    if (WaitForStopSignal(std::chrono::seconds(1)) != 0) break;
    if (max_seconds > 0 && std::chrono::steady_clock::now() >= deadline) break;
  }
  (*server)->Stop(std::chrono::milliseconds(500));
  return 0;
}

}  // namespace
}  // namespace herald::bench

int main(int argc, char** argv) { return herald::bench::Main(argc, argv); }
