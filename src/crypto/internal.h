// OpenSSL plumbing shared by keys.cc, jwt.cc, ece.cc and certificates.cc. Not part of the
// crypto module's interface: include only from src/crypto/*.cc.
#pragma once

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

namespace herald::crypto::internal {

template <auto Free>
struct Deleter {
  template <typename T>
  void operator()(T* p) const {
    Free(p);
  }
};
using BioPtr = std::unique_ptr<BIO, Deleter<BIO_free>>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY_free>>;
using PkeyCtxPtr = std::unique_ptr<EVP_PKEY_CTX, Deleter<EVP_PKEY_CTX_free>>;
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, Deleter<EVP_MD_CTX_free>>;
using CipherCtxPtr = std::unique_ptr<EVP_CIPHER_CTX, Deleter<EVP_CIPHER_CTX_free>>;
using MacCtxPtr = std::unique_ptr<EVP_MAC_CTX, Deleter<EVP_MAC_CTX_free>>;
using X509Ptr = std::unique_ptr<X509, Deleter<X509_free>>;

inline constexpr std::size_t kP256ScalarSize = 32;
inline constexpr std::size_t kP256PointSize = 65;
inline constexpr std::size_t kP256FieldSize = 32;

// For failures that cannot happen short of a broken OpenSSL or memory exhaustion.
[[noreturn]] void Die(const char* what);

// Failures on untrusted input leave entries on OpenSSL's thread-local error queue; drop them so
// they cannot be mistaken for the cause of a later, unrelated failure.
struct ClearErrorsOnExit {
  ~ClearErrorsOnExit() { ERR_clear_error(); }
};

inline const unsigned char* Bytes(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}
inline unsigned char* Bytes(std::string& s) { return reinterpret_cast<unsigned char*>(s.data()); }

// A read-only memory BIO over `data` (which must outlive it). Null if `data` exceeds INT_MAX.
BioPtr MemoryBio(std::string_view data);
// Everything written to a memory BIO, as a string.
std::string BioContents(BIO* bio);

// The public key of a P-256 point given as 65 bytes 0x04 || X || Y. Null unless the point is on
// the curve (OpenSSL's point decoding checks; P-256 has cofactor 1, so on the curve and not the
// point at infinity, which has no 65-byte form, means in the group). Cheap: the curve's
// parameters are copied from a template key rather than rebuilt from the curve's name.
PkeyPtr P256PublicKey(std::string_view point65);

// True if `scalar` is 32 bytes in [1, n-1] (n = the order of P-256).
bool IsP256Scalar(std::string_view scalar);
// A P-256 key pair from a 32-byte private scalar, the public point computed from it. Null unless
// IsP256Scalar(scalar). Slow in OpenSSL 3.0 (~150 us: its DER decoder context is rebuilt per
// call): prepare keys once, not per message.
PkeyPtr P256KeyFromScalar(std::string_view scalar);

// The 65-byte uncompressed public point of a P-256 key, written to `out` (65 bytes). False if
// `key` is not a P-256 key.
bool WriteP256Point(const EVP_PKEY* key, unsigned char* out);
bool IsP256Key(const EVP_PKEY* key);

// Parses a PEM private key without ever prompting for a passphrase (encrypted keys fail).
PkeyPtr ReadPemPrivateKey(std::string_view pem);
// PKCS#8 PEM ("BEGIN PRIVATE KEY") of `key`, unencrypted.
std::string PrivateKeyPkcs8Pem(EVP_PKEY* key);

}  // namespace herald::crypto::internal
