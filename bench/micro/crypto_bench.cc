// Per-operation cost of the signatures and the Web Push encryption Herald does per message.
//   herald_bench_crypto [--benchmark_filter=...] [--benchmark_repetitions=N]
#include <benchmark/benchmark.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

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

}  // namespace
}  // namespace herald::crypto

BENCHMARK_MAIN();
