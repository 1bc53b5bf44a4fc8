// Per-operation cost of the signatures and the Web Push encryption Herald does per message.
//   herald_bench_crypto [--benchmark_filter=...] [--benchmark_repetitions=N]
//
// The Web Push crypto ceiling of bench/providers/run.mjs: THREADS threads, each in a loop doing
// only what Herald's Web Push adapter must do per message whatever the transport, for SECONDS:
// RFC 8291 encryption of a PLAINTEXT-byte payload (crypto::WebPushEncrypt, what
// WebPushProvider::BuildRequest calls: a fresh P-256 key pair, ECDH, HKDF, AES-128-GCM) for one of
// 100 subscriptions in turn, and the Authorization header built from one VAPID JWT signed once.
// Prints one JSON line: {mode, threads, seconds, messages, messages_per_s, cpu_us_per_message,
// plaintext_bytes, body_bytes}.
//   herald_bench_crypto --webpush-ceiling [--threads 2] [--seconds 5] [--plaintext-bytes 160]
#include <benchmark/benchmark.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "crypto/crypto.h"
#include "crypto/ece.h"
#include "crypto/jwt.h"
#include "crypto/keys.h"

namespace herald::crypto {
namespace {

template <typename T>
T OrDie(Result<T> result) {
  if (!result.ok()) {
    std::fprintf(stderr, "crypto_bench: %s\n", result.status().message().c_str());
    std::abort();
  }
  return std::move(*result);
}

PrivateKey Rsa2048() {
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(
      EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", std::size_t{2048}), &EVP_PKEY_free);
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), &BIO_free);
  if (!key || PEM_write_bio_PrivateKey(bio.get(), key.get(), nullptr, nullptr, 0, nullptr,
                                       nullptr) != 1) {
    std::abort();
  }
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  return OrDie(PrivateKey::FromPem(std::string(data, static_cast<std::size_t>(len))));
}

// A typical JWT signing input (APNs provider token / VAPID size).
const std::string kSigningInput =
    "eyJhbGciOiJFUzI1NiIsImtpZCI6IkFCQzEyM0RFRkcifQ.eyJpc3MiOiJERUYxMjNHSElKIiwiaWF0IjoxNzAwMDAwMDAwfQ";

void BM_WebPushEncrypt200(benchmark::State& state) {
  auto [ua_private, ua_public] = GenerateP256KeyPair();
  const std::string auth(16, '\x42');
  const std::string plaintext(200, 'p');
  for (auto _ : state) {
    Result<std::string> body = WebPushEncrypt(ua_public, auth, plaintext);
    benchmark::DoNotOptimize(body);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_WebPushEncrypt200);
BENCHMARK(BM_WebPushEncrypt200)->Threads(2)->UseRealTime();

void BM_WebPushDecrypt200(benchmark::State& state) {
  auto [ua_private, ua_public] = GenerateP256KeyPair();
  const std::string auth(16, '\x42');
  const std::string body = OrDie(WebPushEncrypt(ua_public, auth, std::string(200, 'p')));
  for (auto _ : state) {
    Result<std::string> plaintext = WebPushDecrypt(ua_private, auth, body);
    benchmark::DoNotOptimize(plaintext);
  }
}
BENCHMARK(BM_WebPushDecrypt200);

void BM_WebPushDecrypt200PreparedKey(benchmark::State& state) {
  auto [ua_private, ua_public] = GenerateP256KeyPair();
  const PrivateKey ua_key = OrDie(PrivateKey::FromP256Scalar(ua_private));
  const std::string auth(16, '\x42');
  const std::string body = OrDie(WebPushEncrypt(ua_public, auth, std::string(200, 'p')));
  for (auto _ : state) {
    Result<std::string> plaintext = WebPushDecrypt(ua_key, auth, body);
    benchmark::DoNotOptimize(plaintext);
  }
}
BENCHMARK(BM_WebPushDecrypt200PreparedKey);

void BM_SignEs256(benchmark::State& state) {
  PrivateKey key = PrivateKey::GenerateP256();
  for (auto _ : state) {
    Result<std::string> sig = key.SignEs256(kSigningInput);
    benchmark::DoNotOptimize(sig);
  }
}
BENCHMARK(BM_SignEs256);

void BM_VerifyEs256(benchmark::State& state) {
  PrivateKey key = PrivateKey::GenerateP256();
  const std::string sig = OrDie(key.SignEs256(kSigningInput));
  for (auto _ : state) benchmark::DoNotOptimize(VerifyEs256(key.P256PublicPoint(), kSigningInput, sig));
}
BENCHMARK(BM_VerifyEs256);

void BM_SignJwtEs256(benchmark::State& state) {
  PrivateKey key = PrivateKey::GenerateP256();
  for (auto _ : state) {
    Result<std::string> jwt = SignJwt(key, R"({"alg":"ES256","kid":"ABC123DEFG"})",
                                      R"({"iss":"DEF123GHIJ","iat":1700000000})");
    benchmark::DoNotOptimize(jwt);
  }
}
BENCHMARK(BM_SignJwtEs256);

void BM_SignRs256(benchmark::State& state) {
  static const PrivateKey key = Rsa2048();
  for (auto _ : state) {
    Result<std::string> sig = key.SignRs256(kSigningInput);
    benchmark::DoNotOptimize(sig);
  }
}
BENCHMARK(BM_SignRs256);

double CpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

int WebPushCeiling(int argc, char** argv) {
  int threads = 2;
  double seconds = 5;
  std::size_t plaintext_bytes = 160;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--webpush-ceiling") continue;
    if (i + 1 >= argc) {
      std::fprintf(stderr, "crypto_bench: %s needs a value\n", argv[i]);
      return 2;
    }
    const std::string_view value = argv[++i];
    const char* end = value.data() + value.size();
    bool ok = false;
    if (arg == "--threads") {
      ok = std::from_chars(value.data(), end, threads).ptr == end && threads >= 1 && threads <= 64;
    } else if (arg == "--seconds") {
      seconds = std::atof(std::string(value).c_str());
      ok = seconds > 0 && seconds <= 600;
    } else if (arg == "--plaintext-bytes") {
      ok = std::from_chars(value.data(), end, plaintext_bytes).ptr == end &&
           plaintext_bytes <= kWebPushMaxPlaintext;
    }
    if (!ok) {
      std::fprintf(stderr,
                   "crypto_bench: bad %s '%s' (--threads 1-64, --seconds 0-600, "
                   "--plaintext-bytes 0-%zu)\n",
                   argv[i - 1], argv[i], kWebPushMaxPlaintext);
      return 2;
    }
  }

  // The integration's VAPID key and its one JWT (Herald signs one per push-service origin and
  // reuses it for 11 hours); 100 browser subscriptions, as run.mjs makes them.
  const PrivateKey vapid = PrivateKey::GenerateP256();
  const std::string vapid_public = Base64UrlEncode(vapid.P256PublicPoint());
  const std::string jwt = OrDie(SignJwt(
      vapid, R"({"typ":"JWT","alg":"ES256"})",
      R"({"aud":"http://127.0.0.1:40000","exp":1900000000,"sub":"mailto:bench@example.com"})"));
  struct Subscription {
    std::string p256dh, auth;
  };
  std::vector<Subscription> subscriptions;
  for (int i = 0; i < 100; ++i) {
    auto [ua_private, ua_public] = GenerateP256KeyPair();
    std::string auth(16, '\0');
    for (std::size_t k = 0; k < auth.size(); ++k)
      auth[k] = static_cast<char>((i * 31 + k * 7) & 0xff);
    subscriptions.push_back({ua_public, auth});
  }
  std::string plaintext = R"({"title":"Hi sub-1","body":"n=12345","data":{"pad":")";
  if (plaintext_bytes >= plaintext.size() + 3) {  // JSON of exactly that size
    plaintext.resize(plaintext_bytes - 3, 'x');
    plaintext.append("\"}}");
  } else {
    plaintext.resize(plaintext_bytes, 'x');
  }

  std::atomic<bool> stop{false};
  std::atomic<bool> failed{false};
  std::vector<std::uint64_t> counts(static_cast<std::size_t>(threads), 0);
  std::vector<std::thread> workers;
  const double cpu0 = CpuSeconds();
  const auto start = std::chrono::steady_clock::now();
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      std::uint64_t n = 0;
      std::size_t sub = static_cast<std::size_t>(t);
      while (!stop.load(std::memory_order_relaxed)) {
        const Subscription& s = subscriptions[sub];
        sub = (sub + 1) % subscriptions.size();
        Result<std::string> body = WebPushEncrypt(s.p256dh, s.auth, plaintext);
        if (!body.ok()) {
          failed = true;
          break;
        }
        std::string authorization = "vapid t=" + jwt + ", k=" + vapid_public;
        benchmark::DoNotOptimize(body);
        benchmark::DoNotOptimize(authorization);
        ++n;
      }
      counts[static_cast<std::size_t>(t)] = n;
    });
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop = true;
  for (std::thread& w : workers) w.join();
  const double wall =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double cpu = CpuSeconds() - cpu0;
  std::uint64_t total = 0;
  for (std::uint64_t c : counts) total += c;
  if (failed || total == 0) {
    std::fprintf(stderr, "crypto_bench: Web Push encryption failed\n");
    return 1;
  }
  std::printf(
      "{\"mode\":\"webpush_ceiling\",\"threads\":%d,\"seconds\":%.3f,\"messages\":%llu,"
      "\"messages_per_s\":%.1f,\"cpu_us_per_message\":%.2f,\"plaintext_bytes\":%zu,"
      "\"body_bytes\":%zu}\n",
      threads, wall, static_cast<unsigned long long>(total), static_cast<double>(total) / wall,
      cpu * 1e6 / static_cast<double>(total), plaintext_bytes, plaintext_bytes + 86 + 1 + 16);
  return 0;
}

}  // namespace
}  // namespace herald::crypto

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::string_view(argv[i]) == "--webpush-ceiling") {
      return herald::crypto::WebPushCeiling(argc, argv);
    }
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
