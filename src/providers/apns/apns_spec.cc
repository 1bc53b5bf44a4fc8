#include "providers/apns/apns_spec.h"

#include "crypto/crypto.h"
#include "providers/basic_spec.h"

namespace herald::providers {
namespace {

bool IsBundleIdChar(char c) { return IsAsciiAlnum(c) || c == '.' || c == '-'; }

// Key IDs and Team IDs are 10 characters from [A-Z0-9]; lowercase is accepted as typed.
bool IsAppleId(std::string_view text) { return text.size() == 10 && AllOf(text, IsAsciiAlnum); }

class ApnsSpec final : public BasicSpec {
 public:
  ApnsSpec()
      : BasicSpec("apns", "APNs",
                  {{"secretKey", true, true},
                   {"apiKey", true, false},
                   {"projectName", true, false},
                   {"applicationId", true, false},
                   {"secure", false, false, FieldType::kBoolean}}) {}

 protected:
  // Token auth (protocols.md §2.4): an ES256 key, its Key ID and the Team ID; the bundle id is
  // the apns-topic.
  Status CheckValues(const Json& credentials) const override {
    std::string_view pem = StringField(credentials, "secretKey");
    Result<crypto::KeyType> key_type = crypto::ParsePemPrivateKey(pem);
    if (!key_type.ok()) return FieldError("secretKey", "is not a valid PEM private key");
    if (*key_type != crypto::KeyType::kEc || !crypto::PemIsP256PrivateKey(pem)) {
      return FieldError("secretKey", "must be an EC P-256 private key (.p8)");
    }
    if (!IsAppleId(StringField(credentials, "apiKey"))) {
      return FieldError("apiKey", "must be the 10-character Key ID (letters and digits)");
    }
    if (!IsAppleId(StringField(credentials, "projectName"))) {
      return FieldError("projectName", "must be the 10-character Team ID (letters and digits)");
    }
    if (!AllOf(StringField(credentials, "applicationId"), IsBundleIdChar)) {
      return FieldError("applicationId", "must be a bundle id (letters, digits, '.' and '-' only)");
    }
    return Status::Ok();
  }
};

}  // namespace

std::unique_ptr<ProviderSpec> NewApnsSpec() { return std::make_unique<ApnsSpec>(); }

}  // namespace herald::providers
