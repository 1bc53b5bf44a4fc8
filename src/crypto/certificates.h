// TLS client certificates (APNs certificate-based authentication): a .p12 file, or a PEM
// certificate and key, checked and normalised to PEM.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/status.h"

namespace herald::crypto {

struct ClientCertificate {
  std::string certificate_pem;  // the leaf certificate
  std::string private_key_pem;  // PKCS#8, unencrypted; matches the certificate
  std::string chain_pem;        // further certificates, in file order (may be empty)
  std::int64_t not_after_unix = 0;
  std::string subject;  // RFC 2253, e.g. "UID=com.example.app,CN=Apple Push Services: ...,C=US"
};

// Parses a PKCS#12 (.p12/.pfx) file in DER form. The leaf certificate is the one matching the
// private key. Files from older tools (Keychain exports with RC2/3DES) need OpenSSL's legacy
// provider: on an unsupported-algorithm failure the parse is retried in a library context with
// the legacy provider loaded, and the error says so if that provider is not installed.
// InvalidArgument for: not a PKCS#12 file, a wrong password, no private key, no certificate,
// or a key that does not match the certificate.
Result<ClientCertificate> ParsePkcs12(std::string_view der, std::string_view password);

// Checks a PEM certificate (optionally followed by its chain) and a PEM private key (unencrypted;
// if `key_pem` is empty the key is looked for in `cert_pem`, as in a combined .pem file).
// InvalidArgument if either does not parse or the key does not match the certificate.
Result<ClientCertificate> ParseCertificateAndKey(std::string_view cert_pem,
                                                 std::string_view key_pem);

}  // namespace herald::crypto
