#include "providers/apns/apns_spec.h"

#include "crypto/crypto.h"
#include "providers/apns/apns_provider.h"
#include "providers/basic_spec.h"

namespace herald::providers {
namespace {

bool IsBundleIdChar(char c) { return IsAsciiAlnum(c) || c == '.' || c == '-'; }

// Key IDs and Team IDs are 10 characters from [A-Z0-9]; lowercase is accepted as typed.
bool IsAppleId(std::string_view text) { return text.size() == 10 && AllOf(text, IsAsciiAlnum); }

bool Has(const Json& credentials, std::string_view key) {
  return !StringField(credentials, key).empty();
}

class ApnsSpec final : public BasicSpec {
 public:
  // Token auth (Novu's keys): secretKey, apiKey, projectName. Certificate auth: certificate,
  // with password (.p12) or privateKey (PEM). applicationId is the bundle id either way.
  ApnsSpec()
      : BasicSpec("apns", "APNs",
                  {{"secretKey", false, true},
                   {"apiKey", false, false},
                   {"projectName", false, false},
                   {"applicationId", true, false},
                   {"secure", false, false, FieldType::kBoolean},
                   {"certificate", false, true},
                   {"password", false, true},
                   {"privateKey", false, true}}) {}

  Result<std::unique_ptr<Provider>> Create(const Json& credentials) const override {
    return NewApnsProvider(credentials);
  }

 protected:
  Status CheckValues(const Json& credentials) const override {
    if (!AllOf(StringField(credentials, "applicationId"), IsBundleIdChar)) {
      return FieldError("applicationId", "must be a bundle id (letters, digits, '.' and '-' only)");
    }
    const bool token = Has(credentials, "secretKey");
    const bool certificate = Has(credentials, "certificate");
    if (token && certificate) {
      return FieldError("certificate",
                        "cannot be combined with credentials.secretKey (choose token or "
                        "certificate auth)");
    }
    if (certificate) {
      Result<crypto::ClientCertificate> loaded = LoadApnsCertificate(credentials);
      return loaded.ok() ? Status::Ok() : loaded.status();
    }
    if (!token) {
      return FieldError("secretKey",
                        "is required (token auth), unless credentials.certificate is given");
    }
    // Token auth (protocols.md §2.4): an ES256 key, its Key ID and the Team ID.
    std::string_view pem = StringField(credentials, "secretKey");
    Result<crypto::KeyType> key_type = crypto::ParsePemPrivateKey(pem);
    if (!key_type.ok()) return FieldError("secretKey", "is not a valid PEM private key");
    if (*key_type != crypto::KeyType::kEc || !crypto::PemIsP256PrivateKey(pem)) {
      return FieldError("secretKey", "must be an EC P-256 private key (.p8)");
    }
    for (std::string_view key : {"apiKey", "projectName"}) {
      if (!Has(credentials, key)) return FieldError(key, "is required with credentials.secretKey");
    }
    if (!IsAppleId(StringField(credentials, "apiKey"))) {
      return FieldError("apiKey", "must be the 10-character Key ID (letters and digits)");
    }
    if (!IsAppleId(StringField(credentials, "projectName"))) {
      return FieldError("projectName", "must be the 10-character Team ID (letters and digits)");
    }
    return Status::Ok();
  }
};

}  // namespace

std::unique_ptr<ProviderSpec> NewApnsSpec() { return std::make_unique<ApnsSpec>(); }

}  // namespace herald::providers
