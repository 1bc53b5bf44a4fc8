// Shared plumbing for the built-in provider specs: identity, the field table, the checks every
// provider gets (object shape, alias renaming, JSON types, required fields, baseUrl) and
// plain-string device tokens.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "providers/registry.h"

namespace herald::providers {

class BasicSpec : public ProviderSpec {
 public:
  // `fields` lists the provider's own credentials; the optional `baseUrl` is appended.
  BasicSpec(std::string_view id, std::string_view display_name,
            std::vector<CredentialField> fields);

  std::string_view id() const override { return id_; }
  std::string_view display_name() const override { return display_name_; }
  const std::vector<CredentialField>& fields() const override { return fields_; }

  // Runs the common checks, then CheckValues().
  Status ValidateCredentials(Json& credentials) const final;

  // Any non-empty string of at most kMaxTokenBytes without whitespace or control characters,
  // returned unchanged.
  Result<std::string> NormalizeDeviceToken(std::string_view token,
                                           const TokenPolicy& policy) const override;

 protected:
  // NormalizeDeviceToken's checks, and valid UTF-8: for tokens written into a JSON request as
  // they are (an id the application or the provider chose).
  Result<std::string> NormalizeUtf8Token(std::string_view token, const TokenPolicy& policy) const;

  // Provider-specific checks. Called only once every required field is present with its JSON
  // type and is not empty, and every present field has its JSON type.
  virtual Status CheckValues(const Json& credentials) const = 0;

 private:
  std::string_view id_;
  std::string_view display_name_;
  std::vector<CredentialField> fields_;
};

inline constexpr std::size_t kMaxTokenBytes = 4096;

// InvalidArgument "credentials.<key> <problem>".
Status FieldError(std::string_view key, std::string_view problem);

// The string value of `key`, or "" when it is absent, null or not a string.
std::string_view StringField(const Json& credentials, std::string_view key);

// Character-class helpers for identifier checks.
bool IsAsciiAlnum(char c);
bool AllOf(std::string_view text, bool (*pred)(char));

// True if `text` is 8-4-4-4-12 hexadecimal digits with dashes (any case).
bool IsUuid(std::string_view text);

}  // namespace herald::providers
