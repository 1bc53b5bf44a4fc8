// Fixtures shared by the provider spec tests: freshly generated keys and a valid credential set
// for every built-in provider.
#pragma once

#include <string>
#include <string_view>

#include "core/json.h"
#include "core/status.h"

namespace herald::providers::test {

// Unencrypted PEM private keys, generated once per process. `pkcs8` picks "BEGIN PRIVATE KEY";
// otherwise the traditional form ("BEGIN RSA PRIVATE KEY" / "BEGIN EC PRIVATE KEY").
const std::string& RsaPem(bool pkcs8 = true);
const std::string& EcPem(std::string_view curve, bool pkcs8 = true);  // "P-256", "P-384"
const std::string& Ed25519Pem();

std::string RandomBytes(std::size_t n);

// A service-account JSON object FCM accepts (serialise it for `serviceAccount`).
Json ServiceAccount();

// Credentials that the provider `id` accepts.
Json ValidCredentials(std::string_view id);

// Validates a copy of `credentials` with provider `id`.
Status Validate(std::string_view id, Json credentials);

}  // namespace herald::providers::test
