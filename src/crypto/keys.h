// Private keys for the providers' signatures: ES256 (APNs provider tokens, VAPID) and RS256
// (Google's OAuth assertion), over OpenSSL 3 EVP. Raw bytes travel in std::string.
#pragma once

#include <openssl/types.h>

#include <string>
#include <string_view>

#include "core/status.h"
#include "crypto/crypto.h"

namespace herald::crypto {

// An EC or RSA private key. Copies share the one immutable EVP_PKEY (reference counted), and
// every const member may be called from any number of threads at once: each signature uses
// its own contexts.
class PrivateKey {
 public:
  // PEM: PKCS#8 ("BEGIN PRIVATE KEY"), SEC1 ("BEGIN EC PRIVATE KEY") or PKCS#1
  // ("BEGIN RSA PRIVATE KEY"), unencrypted. InvalidArgument if it does not parse, is encrypted,
  // or is neither EC nor RSA.
  static Result<PrivateKey> FromPem(std::string_view pem);
  // A P-256 key from its 32-byte private scalar (e.g. a VAPID private key); the public point is
  // derived. InvalidArgument unless the scalar is 32 bytes in [1, n-1]. Costs ~150 us with
  // OpenSSL 3.0 (a DER decoder is set up per call): load keys once, not per message.
  static Result<PrivateKey> FromP256Scalar(std::string_view d);
  // A fresh random P-256 key.
  static PrivateKey GenerateP256();

  PrivateKey(const PrivateKey& other);
  PrivateKey& operator=(const PrivateKey& other);
  PrivateKey(PrivateKey&& other) noexcept;
  PrivateKey& operator=(PrivateKey&& other) noexcept;
  ~PrivateKey();

  KeyType type() const { return type_; }  // kEc or kRsa (kOther only once moved from)
  bool IsP256() const { return !p256_point_.empty(); }
  // The 65-byte uncompressed public point (0x04 || X || Y); empty if the key is not P-256.
  const std::string& P256PublicPoint() const { return p256_point_; }
  // The public half as PEM SubjectPublicKeyInfo ("BEGIN PUBLIC KEY"), e.g. for VerifyRs256.
  std::string PublicKeyPem() const;

  // ES256 (ECDSA P-256 with SHA-256) over `message`: the raw 64-byte R || S of JWS (RFC 7518
  // §3.4), each half big-endian and left-padded to 32 bytes. InvalidArgument if not P-256.
  Result<std::string> SignEs256(std::string_view message) const;
  // RS256 (RSASSA-PKCS1-v1_5 with SHA-256) over `message`; as long as the modulus.
  // InvalidArgument if not RSA.
  Result<std::string> SignRs256(std::string_view message) const;

  // The underlying key, e.g. for SSL_CTX_use_PrivateKey. Owned by this object (and its copies).
  EVP_PKEY* pkey() const { return key_; }

 private:
  explicit PrivateKey(EVP_PKEY* key);  // takes ownership

  EVP_PKEY* key_ = nullptr;
  KeyType type_ = KeyType::kOther;
  std::string p256_point_;
};

// True if `sig64` (raw R || S) is a valid ES256 signature of `message` under the P-256 public
// point `public_point65`. False for any malformed input.
bool VerifyEs256(std::string_view public_point65, std::string_view message,
                 std::string_view sig64);
// True if `signature` is a valid RS256 signature of `message` under the RSA public key in
// `public_key_pem` (SubjectPublicKeyInfo "BEGIN PUBLIC KEY" or PKCS#1 "BEGIN RSA PUBLIC KEY").
bool VerifyRs256(std::string_view public_key_pem, std::string_view message,
                 std::string_view signature);

namespace detail {
// ECDSA-Sig-Value (DER SEQUENCE of two INTEGERs, as OpenSSL emits) to/from JWS's raw R || S with
// each half `half_size` bytes. Empty on malformed input or a value wider than `half_size`.
std::string EcdsaDerToRaw(std::string_view der, std::size_t half_size);
std::string EcdsaRawToDer(std::string_view raw);
}  // namespace detail

}  // namespace herald::crypto
