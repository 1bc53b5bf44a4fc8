// JSON Web Tokens in JWS compact serialization (RFC 7515 §7.1), signed ES256 or RS256: the APNs
// provider token, the VAPID token and Google's OAuth assertion.
#pragma once

#include <string>
#include <string_view>

#include "core/status.h"
#include "crypto/keys.h"

namespace herald::crypto {

// base64url(header_json) "." base64url(claims_json) "." base64url(signature), the bytes of both
// JSON texts kept exactly as given. The caller writes the header, whose "alg" must be "ES256"
// (with a P-256 key) or "RS256" (with an RSA key). InvalidArgument if the header is not a JSON
// object with such an "alg", if the claims are not a JSON object, or if the key does not fit.
Result<std::string> SignJwt(const PrivateKey& key, std::string_view header_json,
                            std::string_view claims_json);

// A compact JWS taken apart, for tests and for Herald's mock receivers. Nothing is verified:
// check `signature` over `signing_input` with VerifyEs256 / VerifyRs256.
struct DecodedJwt {
  std::string header_json;    // decoded
  std::string claims_json;    // decoded
  std::string signature;      // raw bytes
  std::string signing_input;  // the first two parts as sent: what the signature covers
};
// InvalidArgument unless `compact` is three unpadded base64url parts separated by two dots,
// with non-empty header and claims.
Result<DecodedJwt> DecodeJwt(std::string_view compact);

}  // namespace herald::crypto
