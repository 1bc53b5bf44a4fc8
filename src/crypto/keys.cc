#include "crypto/keys.h"

#include <openssl/decoder.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <utility>

#include "crypto/internal.h"

namespace herald::crypto {
namespace {

using internal::Bytes;
using internal::ClearErrorsOnExit;
using internal::MdCtxPtr;
using internal::PkeyPtr;

constexpr std::size_t kEs256HalfSize = 32;

// A signature of SHA-256(message) with `key`: DER ECDSA-Sig-Value for EC keys, PKCS#1 v1.5 for
// RSA keys (the default padding). The contexts are the call's own: the key itself is only read,
// which OpenSSL 3 allows from any number of threads. (A per-thread context would save one small
// allocation but keep a reference to the last key signed with, and so the key, alive.)
Result<std::string> DigestSign(EVP_PKEY* key, std::string_view message) {
  MdCtxPtr ctx(EVP_MD_CTX_new());
  if (!ctx) internal::Die("EVP_MD_CTX_new");
  ClearErrorsOnExit clear;
  std::size_t len = static_cast<std::size_t>(EVP_PKEY_get_size(key));
  std::string sig(len, '\0');
  if (EVP_DigestSignInit_ex(ctx.get(), nullptr, "SHA256", nullptr, nullptr, key, nullptr) != 1 ||
      EVP_DigestSign(ctx.get(), Bytes(sig), &len, Bytes(message), message.size()) != 1) {
    return Status::Internal("signing failed");
  }
  sig.resize(len);
  return sig;
}

bool DigestVerify(EVP_PKEY* key, std::string_view message, std::string_view sig) {
  MdCtxPtr ctx(EVP_MD_CTX_new());
  if (!ctx) internal::Die("EVP_MD_CTX_new");
  return EVP_DigestVerifyInit_ex(ctx.get(), nullptr, "SHA256", nullptr, nullptr, key, nullptr) ==
             1 &&
         EVP_DigestVerify(ctx.get(), Bytes(sig), sig.size(), Bytes(message), message.size()) == 1;
}

// Reads a DER INTEGER at `der` (advanced past it) holding a non-negative value, returning its
// magnitude without leading zero bytes (empty for zero). False if malformed.
bool ReadDerUnsigned(std::string_view& der, std::string_view& magnitude) {
  if (der.size() < 2 || der[0] != 0x02) return false;
  std::size_t len = static_cast<unsigned char>(der[1]);
  if (len == 0 || len >= 0x80 || der.size() < 2 + len) return false;
  magnitude = der.substr(2, len);
  der.remove_prefix(2 + len);
  if (static_cast<unsigned char>(magnitude[0]) & 0x80) return false;  // negative
  while (magnitude.size() > 1 && magnitude[0] == '\0') magnitude.remove_prefix(1);
  if (magnitude.size() == 1 && magnitude[0] == '\0') magnitude = {};
  return true;
}

void AppendDerLength(std::string& out, std::size_t len) {
  if (len >= 0x80) out.push_back('\x81');  // lengths here stay below 256
  out.push_back(static_cast<char>(len));
}

}  // namespace

namespace detail {

std::string EcdsaDerToRaw(std::string_view der, std::size_t half_size) {
  if (der.size() < 2 || der[0] != 0x30) return {};
  std::size_t len = static_cast<unsigned char>(der[1]);
  std::size_t header = 2;
  if (len == 0x81 && der.size() >= 3) {
    len = static_cast<unsigned char>(der[2]);
    header = 3;
  } else if (len >= 0x80) {
    return {};
  }
  if (der.size() != header + len) return {};
  der.remove_prefix(header);
  std::string_view r, s;
  if (!ReadDerUnsigned(der, r) || !ReadDerUnsigned(der, s) || !der.empty() ||
      r.size() > half_size || s.size() > half_size) {
    return {};
  }
  std::string raw(2 * half_size, '\0');
  raw.replace(half_size - r.size(), r.size(), r);
  raw.replace(2 * half_size - s.size(), s.size(), s);
  return raw;
}

std::string EcdsaRawToDer(std::string_view raw) {
  if (raw.empty() || raw.size() % 2 != 0 || raw.size() > 2 * 66) return {};
  std::string body;
  for (std::string_view half : {raw.substr(0, raw.size() / 2), raw.substr(raw.size() / 2)}) {
    while (half.size() > 1 && half[0] == '\0') half.remove_prefix(1);
    bool pad = static_cast<unsigned char>(half[0]) & 0x80;  // keep the INTEGER positive
    body.push_back('\x02');
    AppendDerLength(body, half.size() + (pad ? 1 : 0));
    if (pad) body.push_back('\0');
    body.append(half);
  }
  std::string der(1, '\x30');
  AppendDerLength(der, body.size());
  return der + body;
}

}  // namespace detail

// ---- PrivateKey ----

PrivateKey::PrivateKey(EVP_PKEY* key) : key_(key) {
  if (EVP_PKEY_is_a(key_, "EC")) {
    type_ = KeyType::kEc;
    std::string point(internal::kP256PointSize, '\0');
    if (internal::WriteP256Point(key_, Bytes(point))) p256_point_ = std::move(point);
  } else if (EVP_PKEY_is_a(key_, "RSA")) {
    type_ = KeyType::kRsa;
  }
}

PrivateKey::PrivateKey(const PrivateKey& other)
    : key_(other.key_), type_(other.type_), p256_point_(other.p256_point_) {
  if (key_ != nullptr) EVP_PKEY_up_ref(key_);
}

PrivateKey& PrivateKey::operator=(const PrivateKey& other) {
  if (this != &other) *this = PrivateKey(other);
  return *this;
}

PrivateKey::PrivateKey(PrivateKey&& other) noexcept
    : key_(std::exchange(other.key_, nullptr)),
      type_(std::exchange(other.type_, KeyType::kOther)),
      p256_point_(std::move(other.p256_point_)) {
  other.p256_point_.clear();
}

PrivateKey& PrivateKey::operator=(PrivateKey&& other) noexcept {
  if (this != &other) {
    EVP_PKEY_free(key_);
    key_ = std::exchange(other.key_, nullptr);
    type_ = std::exchange(other.type_, KeyType::kOther);
    p256_point_ = std::move(other.p256_point_);
    other.p256_point_.clear();
  }
  return *this;
}

PrivateKey::~PrivateKey() { EVP_PKEY_free(key_); }

Result<PrivateKey> PrivateKey::FromPem(std::string_view pem) {
  ClearErrorsOnExit clear;
  PkeyPtr key = internal::ReadPemPrivateKey(pem);
  if (!key) {
    return Status::InvalidArgument(
        "not an unencrypted PEM private key (PKCS#8, SEC1 EC or PKCS#1 RSA)");
  }
  if (!EVP_PKEY_is_a(key.get(), "EC") && !EVP_PKEY_is_a(key.get(), "RSA")) {
    const char* name = EVP_PKEY_get0_type_name(key.get());
    return Status::InvalidArgument(std::string("unsupported private key type ") +
                                   (name != nullptr ? name : "?") + " (need EC or RSA)");
  }
  return PrivateKey(key.release());
}

Result<PrivateKey> PrivateKey::FromP256Scalar(std::string_view d) {
  ClearErrorsOnExit clear;
  PkeyPtr key = internal::P256KeyFromScalar(d);
  if (!key) return Status::InvalidArgument("private key is not a 32-byte P-256 scalar in [1, n-1]");
  return PrivateKey(key.release());
}

PrivateKey PrivateKey::GenerateP256() {
  EVP_PKEY* key = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
  if (key == nullptr) internal::Die("P-256 key generation");
  return PrivateKey(key);
}

std::string PrivateKey::PublicKeyPem() const {
  if (key_ == nullptr) return {};
  internal::BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PUBKEY(bio.get(), key_) != 1) internal::Die("PEM_write_bio_PUBKEY");
  return internal::BioContents(bio.get());
}

Result<std::string> PrivateKey::SignEs256(std::string_view message) const {
  if (!IsP256()) return Status::InvalidArgument("ES256 needs a P-256 key");
  ASSIGN_OR_RETURN(std::string der, DigestSign(key_, message));
  std::string raw = detail::EcdsaDerToRaw(der, kEs256HalfSize);
  if (raw.empty()) return Status::Internal("OpenSSL returned a malformed ECDSA signature");
  return raw;
}

Result<std::string> PrivateKey::SignRs256(std::string_view message) const {
  if (type_ != KeyType::kRsa) return Status::InvalidArgument("RS256 needs an RSA key");
  return DigestSign(key_, message);
}

// ---- verification ----

bool VerifyEs256(std::string_view public_point65, std::string_view message,
                 std::string_view sig64) {
  ClearErrorsOnExit clear;
  if (sig64.size() != 2 * kEs256HalfSize) return false;
  PkeyPtr key = internal::P256PublicKey(public_point65);
  return key && DigestVerify(key.get(), message, detail::EcdsaRawToDer(sig64));
}

bool VerifyRs256(std::string_view public_key_pem, std::string_view message,
                 std::string_view signature) {
  ClearErrorsOnExit clear;
  EVP_PKEY* raw = nullptr;
  // No structure named: accepts SubjectPublicKeyInfo and PKCS#1 RSAPublicKey alike.
  std::unique_ptr<OSSL_DECODER_CTX, internal::Deleter<OSSL_DECODER_CTX_free>> decoder(
      OSSL_DECODER_CTX_new_for_pkey(&raw, "PEM", nullptr, "RSA", EVP_PKEY_PUBLIC_KEY, nullptr,
                                    nullptr));
  const unsigned char* data = Bytes(public_key_pem);
  std::size_t len = public_key_pem.size();
  if (!decoder || OSSL_DECODER_from_data(decoder.get(), &data, &len) != 1) return false;
  PkeyPtr key(raw);
  return EVP_PKEY_is_a(key.get(), "RSA") && DigestVerify(key.get(), message, signature);
}

}  // namespace herald::crypto
