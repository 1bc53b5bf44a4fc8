#include "providers/fcm/fcm_spec.h"

#include <array>
#include <string>

#include "core/url.h"
#include "crypto/crypto.h"
#include "providers/basic_spec.h"
#include "providers/fcm/fcm_provider.h"

namespace herald::providers {
namespace {

Status ServiceAccountError(std::string_view problem) {
  return Status::InvalidArgument("credentials.serviceAccount: " + std::string(problem));
}

class FcmSpec final : public BasicSpec {
 public:
  FcmSpec() : BasicSpec("fcm", "Firebase Cloud Messaging", {{"serviceAccount", true, true}}) {}

  Result<std::unique_ptr<Provider>> Create(const Json& credentials) const override {
    return NewFcmProvider(credentials);
  }

 protected:
  // What the OAuth JWT bearer grant needs (protocols.md §1.2).
  Status CheckValues(const Json& credentials) const override {
    std::string error;
    std::optional<Json> account = ParseJson(StringField(credentials, "serviceAccount"), &error);
    if (!account) return FieldError("serviceAccount", "is not valid JSON");
    if (!account->is_object()) return FieldError("serviceAccount", "must be a JSON object");

    static constexpr std::array<std::string_view, 4> kRequired = {"client_email", "private_key",
                                                                  "token_uri", "project_id"};
    for (std::string_view name : kRequired) {
      auto it = account->find(name);
      if (it == account->end() || it->is_null()) {
        return ServiceAccountError("missing " + std::string(name));
      }
      if (!it->is_string()) return ServiceAccountError(std::string(name) + " must be a string");
      if (it->get_ref<const std::string&>().empty()) {
        return ServiceAccountError(std::string(name) + " must not be empty");
      }
    }

    if (StringField(*account, "client_email").find('@') == std::string_view::npos) {
      return ServiceAccountError("client_email is not an e-mail address");
    }
    Result<crypto::KeyType> key_type =
        crypto::ParsePemPrivateKey(StringField(*account, "private_key"));
    if (!key_type.ok()) return ServiceAccountError("private_key is not a valid PEM private key");
    if (*key_type != crypto::KeyType::kRsa) {
      return ServiceAccountError("private_key must be an RSA key");
    }
    if (!ParseHttpUrl(StringField(*account, "token_uri"))) {
      return ServiceAccountError("token_uri is not an absolute http(s) URL");
    }
    return Status::Ok();
  }
};

}  // namespace

std::unique_ptr<ProviderSpec> NewFcmSpec() { return std::make_unique<FcmSpec>(); }

}  // namespace herald::providers
