#include "crypto/jwt.h"

#include <optional>

#include "core/json.h"
#include "crypto/crypto.h"

namespace herald::crypto {
namespace {

std::optional<Json> ParseObject(std::string_view text) {
  std::string error;
  std::optional<Json> value = ParseJson(text, &error);
  if (!value || !value->is_object()) return std::nullopt;
  return value;
}

}  // namespace

Result<std::string> SignJwt(const PrivateKey& key, std::string_view header_json,
                            std::string_view claims_json) {
  std::optional<Json> header = ParseObject(header_json);
  if (!header) return Status::InvalidArgument("JWT header is not a JSON object");
  auto alg = header->find("alg");
  if (alg == header->end() || !alg->is_string()) {
    return Status::InvalidArgument("JWT header has no \"alg\" string");
  }
  if (!ParseObject(claims_json)) return Status::InvalidArgument("JWT claims are not a JSON object");

  const std::string& name = alg->get_ref<const std::string&>();
  bool es256 = name == "ES256";
  if (es256) {
    if (!key.IsP256()) return Status::InvalidArgument("JWT alg ES256 needs a P-256 key");
  } else if (name == "RS256") {
    if (key.type() != KeyType::kRsa) return Status::InvalidArgument("JWT alg RS256 needs an RSA key");
  } else {
    return Status::InvalidArgument("unsupported JWT alg \"" + name + "\" (ES256 or RS256)");
  }

  std::string jwt = Base64UrlEncode(header_json);
  jwt += '.';
  jwt += Base64UrlEncode(claims_json);
  ASSIGN_OR_RETURN(std::string signature, es256 ? key.SignEs256(jwt) : key.SignRs256(jwt));
  jwt += '.';
  jwt += Base64UrlEncode(signature);
  return jwt;
}

Result<DecodedJwt> DecodeJwt(std::string_view compact) {
  if (compact.find('=') != std::string_view::npos) {
    return Status::InvalidArgument("JWT part is padded (JWS base64url has no '=')");
  }
  std::size_t first = compact.find('.');
  std::size_t second = first == std::string_view::npos ? first : compact.find('.', first + 1);
  if (second == std::string_view::npos ||
      compact.find('.', second + 1) != std::string_view::npos) {
    return Status::InvalidArgument("JWT is not three dot-separated parts");
  }
  std::optional<std::string> header = Base64UrlDecode(compact.substr(0, first));
  std::optional<std::string> claims = Base64UrlDecode(compact.substr(first + 1, second - first - 1));
  std::optional<std::string> signature = Base64UrlDecode(compact.substr(second + 1));
  if (!header || !claims || !signature) {
    return Status::InvalidArgument("JWT part is not valid base64url");
  }
  if (header->empty() || claims->empty()) return Status::InvalidArgument("JWT part is empty");
  return DecodedJwt{std::move(*header), std::move(*claims), std::move(*signature),
                    std::string(compact.substr(0, second))};
}

}  // namespace herald::crypto
