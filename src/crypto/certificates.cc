#include "crypto/certificates.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/provider.h>
#include <openssl/x509.h>

#include <climits>
#include <ctime>
#include <memory>

#include "crypto/internal.h"

namespace herald::crypto {
namespace {

using internal::Bytes;
using internal::ClearErrorsOnExit;
using internal::PkeyPtr;
using internal::X509Ptr;

struct X509StackFree {
  void operator()(STACK_OF(X509) * stack) const { sk_X509_pop_free(stack, X509_free); }
};
using X509StackPtr = std::unique_ptr<STACK_OF(X509), X509StackFree>;
using Pkcs12Ptr = std::unique_ptr<PKCS12, internal::Deleter<PKCS12_free>>;

std::string CertificatePem(X509* cert) {
  internal::BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_X509(bio.get(), cert) != 1) internal::Die("PEM_write_bio_X509");
  return internal::BioContents(bio.get());
}

std::string SubjectOf(X509* cert) {
  internal::BioPtr bio(BIO_new(BIO_s_mem()));
  // RFC 2253 order and escaping, but UTF-8 kept as is rather than escaped byte by byte.
  if (!bio || X509_NAME_print_ex(bio.get(), X509_get_subject_name(cert), 0,
                                 XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) < 0) {
    internal::Die("X509_NAME_print_ex");
  }
  return internal::BioContents(bio.get());
}

// The checked, PEM-encoded result. `chain` may be null.
Result<ClientCertificate> Assemble(X509* cert, EVP_PKEY* key, STACK_OF(X509) * chain) {
  if (X509_check_private_key(cert, key) != 1) {
    return Status::InvalidArgument("the private key does not match the certificate");
  }
  std::tm tm{};
  if (ASN1_TIME_to_tm(X509_get0_notAfter(cert), &tm) != 1) {
    return Status::InvalidArgument("the certificate's notAfter time is malformed");
  }
  ClientCertificate out;
  out.certificate_pem = CertificatePem(cert);
  out.private_key_pem = internal::PrivateKeyPkcs8Pem(key);
  for (int i = 0; chain != nullptr && i < sk_X509_num(chain); ++i) {
    out.chain_pem += CertificatePem(sk_X509_value(chain, i));
  }
  out.not_after_unix = static_cast<std::int64_t>(timegm(&tm));
  out.subject = SubjectOf(cert);
  return out;
}

// True if the error queue says an algorithm is missing (e.g. RC2-40-CBC, which OpenSSL 3 moved
// to the legacy provider) rather than that the password or the file is wrong.
bool UnsupportedAlgorithmError() {
  for (unsigned long e = ERR_get_error(); e != 0; e = ERR_get_error()) {
    int reason = ERR_GET_REASON(e);
    if (reason == ERR_GET_REASON(ERR_R_UNSUPPORTED) ||
        (ERR_GET_LIB(e) == ERR_LIB_EVP &&
         (reason == EVP_R_UNSUPPORTED_ALGORITHM || reason == EVP_R_UNKNOWN_CIPHER ||
          reason == EVP_R_UNSUPPORTED_CIPHER))) {
      ERR_clear_error();
      return true;
    }
  }
  return false;
}

// One parse in the calling thread's current default library context. Sets *unsupported when
// it failed for want of an algorithm.
Result<ClientCertificate> ParsePkcs12Once(std::string_view der, const std::string& password,
                                          bool* unsupported) {
  ClearErrorsOnExit clear;
  *unsupported = false;
  const unsigned char* p = Bytes(der);
  Pkcs12Ptr p12(d2i_PKCS12(nullptr, &p, static_cast<long>(der.size())));
  if (!p12) return Status::InvalidArgument("not a PKCS#12 (.p12) file");

  EVP_PKEY* raw_key = nullptr;
  X509* raw_cert = nullptr;
  STACK_OF(X509)* raw_ca = nullptr;
  if (PKCS12_parse(p12.get(), password.c_str(), &raw_key, &raw_cert, &raw_ca) != 1) {
    if (UnsupportedAlgorithmError()) {
      *unsupported = true;
      return Status::InvalidArgument("the PKCS#12 file uses an algorithm OpenSSL does not support");
    }
    return Status::InvalidArgument("wrong password or not a valid PKCS#12 file");
  }
  PkeyPtr key(raw_key);
  X509Ptr cert(raw_cert);
  X509StackPtr ca(raw_ca);
  if (!key) return Status::InvalidArgument("the PKCS#12 file holds no private key");
  // Without matching localKeyID attributes PKCS12_parse returns every certificate in `ca`:
  // the leaf is then the one the key belongs to.
  for (int i = 0; !cert && ca && i < sk_X509_num(ca.get()); ++i) {
    if (X509_check_private_key(sk_X509_value(ca.get(), i), key.get()) == 1) {
      cert.reset(sk_X509_delete(ca.get(), i));
    }
  }
  if (!cert) {
    return Status::InvalidArgument(ca && sk_X509_num(ca.get()) > 0
                                       ? "no certificate in the PKCS#12 file matches its key"
                                       : "the PKCS#12 file holds no certificate");
  }
  return Assemble(cert.get(), key.get(), ca.get());
}

// A library context with the default and legacy providers, made on first use and kept.
struct LegacyContext {
  OSSL_LIB_CTX* ctx = nullptr;  // null if the legacy provider could not be loaded
};
const LegacyContext& Legacy() {
  static const LegacyContext legacy = [] {
    LegacyContext made;
    made.ctx = OSSL_LIB_CTX_new();
    if (made.ctx == nullptr) internal::Die("OSSL_LIB_CTX_new");
    if (OSSL_PROVIDER_load(made.ctx, "legacy") == nullptr ||
        OSSL_PROVIDER_load(made.ctx, "default") == nullptr) {
      OSSL_LIB_CTX_free(made.ctx);
      made.ctx = nullptr;
    }
    ERR_clear_error();
    return made;
  }();
  return legacy;
}

// Makes `ctx` the calling thread's default library context for the scope: PKCS12_parse has no
// library-context parameter, and fetches (MAC, PBE ciphers, key decoders) from the default.
class DefaultContextScope {
 public:
  explicit DefaultContextScope(OSSL_LIB_CTX* ctx) : previous_(OSSL_LIB_CTX_set0_default(ctx)) {}
  ~DefaultContextScope() { OSSL_LIB_CTX_set0_default(previous_); }
  DefaultContextScope(const DefaultContextScope&) = delete;
  DefaultContextScope& operator=(const DefaultContextScope&) = delete;

 private:
  OSSL_LIB_CTX* previous_;
};

}  // namespace

Result<ClientCertificate> ParsePkcs12(std::string_view der, std::string_view password) {
  if (der.empty() || der.size() > LONG_MAX) return Status::InvalidArgument("not a PKCS#12 (.p12) file");
  if (password.find('\0') != std::string_view::npos) {
    return Status::InvalidArgument("PKCS#12 password contains a NUL byte");
  }
  std::string pass(password);
  bool unsupported = false;
  Result<ClientCertificate> parsed = ParsePkcs12Once(der, pass, &unsupported);
  if (!unsupported) {
    OPENSSL_cleanse(pass.data(), pass.size());
    return parsed;
  }
  // Old Keychain/OpenSSL 1.x exports encrypt with RC2-40 or 3DES and PBE-SHA1: OpenSSL 3 keeps
  // RC2 in the legacy provider, which is not loaded by default.
  const LegacyContext& legacy = Legacy();
  if (legacy.ctx == nullptr) {
    OPENSSL_cleanse(pass.data(), pass.size());
    return Status::InvalidArgument(
        "the PKCS#12 file uses a legacy algorithm (such as RC2 or 3DES) and OpenSSL's legacy "
        "provider is not available; re-export it with modern encryption (AES) or install the "
        "legacy provider");
  }
  DefaultContextScope scope(legacy.ctx);
  parsed = ParsePkcs12Once(der, pass, &unsupported);
  OPENSSL_cleanse(pass.data(), pass.size());
  return parsed;
}

Result<ClientCertificate> ParseCertificateAndKey(std::string_view cert_pem,
                                                 std::string_view key_pem) {
  ClearErrorsOnExit clear;
  internal::BioPtr bio = internal::MemoryBio(cert_pem);
  X509Ptr cert(bio ? PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr) : nullptr);
  if (!cert) return Status::InvalidArgument("no PEM certificate found");
  X509StackPtr chain(sk_X509_new_null());
  if (!chain) internal::Die("sk_X509_new_null");
  while (X509* next = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
    if (sk_X509_push(chain.get(), next) <= 0) internal::Die("sk_X509_push");
  }
  PkeyPtr key = internal::ReadPemPrivateKey(key_pem.empty() ? cert_pem : key_pem);
  if (!key) return Status::InvalidArgument("not an unencrypted PEM private key");
  return Assemble(cert.get(), key.get(), chain.get());
}

}  // namespace herald::crypto
