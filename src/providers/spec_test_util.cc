#include "providers/spec_test_util.h"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include <cstdlib>
#include <map>

#include "crypto/crypto.h"
#include "providers/registry.h"

namespace herald::providers::test {
namespace {

std::string ToPem(EVP_PKEY* key, bool pkcs8) {
  if (key == nullptr) std::abort();
  BIO* bio = BIO_new(BIO_s_mem());
  int ok =
      pkcs8 ? PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr)
            : PEM_write_bio_PrivateKey_traditional(bio, key, nullptr, nullptr, 0, nullptr, nullptr);
  if (ok != 1) std::abort();
  char* data = nullptr;
  long size = BIO_get_mem_data(bio, &data);
  std::string pem(data, static_cast<std::size_t>(size));
  BIO_free(bio);
  return pem;
}

EVP_PKEY* Generate(std::string_view kind) {
  if (kind == "RSA") return EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", std::size_t{2048});
  if (kind == "ED25519") return EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
  std::string curve(kind);  // "P-256", "P-384"
  return EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", curve.c_str());
}

// Generating RSA keys is slow, so each kind of key is made once and kept for the process.
const std::string& CachedPem(std::string_view kind, bool pkcs8) {
  static auto* cache = new std::map<std::string, std::string>();
  std::string cache_key = std::string(kind) + (pkcs8 ? "/pkcs8" : "/traditional");
  auto it = cache->find(cache_key);
  if (it == cache->end()) {
    EVP_PKEY* key = Generate(kind);
    it = cache->emplace(cache_key, ToPem(key, pkcs8)).first;
    EVP_PKEY_free(key);
  }
  return it->second;
}

}  // namespace

const std::string& RsaPem(bool pkcs8) { return CachedPem("RSA", pkcs8); }
const std::string& EcPem(std::string_view curve, bool pkcs8) { return CachedPem(curve, pkcs8); }
const std::string& Ed25519Pem() { return CachedPem("ED25519", true); }

std::string RandomBytes(std::size_t n) {
  std::string bytes(n, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(bytes.data()), static_cast<int>(n)) != 1) {
    std::abort();
  }
  return bytes;
}

Json ServiceAccount() {
  return {
      {"type", "service_account"},
      {"project_id", "herald-demo"},
      {"private_key_id", "0123456789abcdef"},
      {"private_key", RsaPem()},
      {"client_email", "push@herald-demo.iam.gserviceaccount.com"},
      {"client_id", "1234567890"},
      {"token_uri", "https://oauth2.googleapis.com/token"},
  };
}

Json ValidCredentials(std::string_view id) {
  if (id == "fcm") return {{"serviceAccount", DumpJson(ServiceAccount())}};
  if (id == "apns") {
    return {{"secretKey", EcPem("P-256")},
            {"apiKey", "ABC123DEFG"},
            {"projectName", "TEAM123456"},
            {"applicationId", "com.example.app"},
            {"secure", true}};
  }
  if (id == "expo") return {{"apiKey", "expo-access-token-0123456789"}};
  if (id == "one-signal") {
    return {{"applicationId", "5eb5a37e-b458-11e3-ac11-000c2940e62c"},
            {"apiKey", "os_v2_app_secretsecretsecret"}};
  }
  if (id == "pusher-beams") {
    return {{"instanceId", "8f9a6e22-2483-49aa-8552-125f1a4c5781"},
            {"secretKey", "C54D42FB7CD2D408DDB22D7A0166F1D"}};
  }
  if (id == "pushpad") return {{"apiKey", "pushpad-auth-token-abcdef"}, {"applicationId", "123"}};
  if (id == "push-webhook") {
    return {{"webhookUrl", "https://hooks.example.com/push?via=herald"}, {"secretKey", "sekret"}};
  }
  if (id == "web-push") {
    static const auto* pair =
        new std::pair<std::string, std::string>(crypto::GenerateP256KeyPair());
    return {{"apiKey", crypto::Base64UrlEncode(pair->second)},
            {"secretKey", crypto::Base64UrlEncode(pair->first)},
            {"from", "mailto:ops@example.com"}};
  }
  std::abort();
}

Status Validate(std::string_view id, Json credentials) {
  const ProviderSpec* spec = FindProvider(id);
  if (spec == nullptr) std::abort();
  return spec->ValidateCredentials(credentials);
}

}  // namespace herald::providers::test
