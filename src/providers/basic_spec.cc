#include "providers/basic_spec.h"

#include <algorithm>
#include <string>
#include <utility>

#include "core/url.h"
#include "providers/recipient_batch.h"

namespace herald::providers {
namespace {

// Null counts as absent, so any type is fine for it.
Status CheckType(const CredentialField& field, std::string_view name, const Json& value) {
  if (value.is_null()) return Status::Ok();
  switch (field.type) {
    case FieldType::kString:
      if (!value.is_string()) return FieldError(name, "must be a string");
      break;
    case FieldType::kBoolean:
      if (!value.is_boolean()) return FieldError(name, "must be a boolean");
      break;
  }
  return Status::Ok();
}

// Moves a value sent under the field's alias to its canonical key.
Status RenameAlias(const CredentialField& field, Json& credentials) {
  if (field.alias.empty()) return Status::Ok();
  auto it = credentials.find(field.alias);
  if (it == credentials.end()) return Status::Ok();
  RETURN_IF_ERROR(CheckType(field, field.alias, *it));
  Json value = std::move(*it);
  credentials.erase(it);
  if (value.is_null()) return Status::Ok();
  auto canonical = credentials.find(field.key);
  if (canonical != credentials.end() && !canonical->is_null()) {
    if (*canonical != value) {
      return FieldError(field.alias, "conflicts with credentials." + std::string(field.key));
    }
    return Status::Ok();
  }
  credentials[std::string(field.key)] = std::move(value);
  return Status::Ok();
}

Status CheckPresence(const CredentialField& field, const Json& credentials) {
  auto it = credentials.find(field.key);
  if (it == credentials.end() || it->is_null()) {
    return field.required ? FieldError(field.key, "is required") : Status::Ok();
  }
  RETURN_IF_ERROR(CheckType(field, field.key, *it));
  if (field.required && it->is_string() && it->get_ref<const std::string&>().empty()) {
    return FieldError(field.key, "must not be empty");
  }
  return Status::Ok();
}

Status CheckBaseUrl(std::string_view base_url) {
  if (base_url.empty()) return Status::Ok();
  std::optional<Url> url = ParseHttpUrl(base_url);
  if (!url) return FieldError("baseUrl", "is not an absolute http(s) URL");
  if (url->has_fragment) return FieldError("baseUrl", "must not have a fragment");
  if (base_url.find('?') != std::string_view::npos) {
    return FieldError("baseUrl", "must not have a query");
  }
  return Status::Ok();
}

}  // namespace

BasicSpec::BasicSpec(std::string_view id, std::string_view display_name,
                     std::vector<CredentialField> fields)
    : id_(id), display_name_(display_name), fields_(std::move(fields)) {
  fields_.push_back({"baseUrl", false, false});
}

Status BasicSpec::ValidateCredentials(Json& credentials) const {
  if (!credentials.is_object()) return Status::InvalidArgument("credentials must be an object");
  for (const CredentialField& field : fields_) RETURN_IF_ERROR(RenameAlias(field, credentials));
  for (const CredentialField& field : fields_) RETURN_IF_ERROR(CheckPresence(field, credentials));
  RETURN_IF_ERROR(CheckBaseUrl(StringField(credentials, "baseUrl")));
  return CheckValues(credentials);
}

Result<std::string> BasicSpec::NormalizeUtf8Token(std::string_view token,
                                                  const TokenPolicy& policy) const {
  ASSIGN_OR_RETURN(std::string normalized, BasicSpec::NormalizeDeviceToken(token, policy));
  if (!IsUtf8(normalized)) return Status::InvalidArgument("device token must be UTF-8");
  return normalized;
}

Result<std::string> BasicSpec::NormalizeDeviceToken(std::string_view token,
                                                    const TokenPolicy& /*policy*/) const {
  if (token.empty()) return Status::InvalidArgument("device token must not be empty");
  if (token.size() > kMaxTokenBytes) {
    return Status::InvalidArgument("device token must be at most 4096 bytes");
  }
  for (char c : token) {
    auto byte = static_cast<unsigned char>(c);
    if (byte <= 0x20 || byte == 0x7f) {
      return Status::InvalidArgument(
          "device token must not contain whitespace or control characters");
    }
  }
  return std::string(token);
}

Status FieldError(std::string_view key, std::string_view problem) {
  std::string message = "credentials.";
  message.append(key).append(" ").append(problem);
  return Status::InvalidArgument(std::move(message));
}

std::string_view StringField(const Json& credentials, std::string_view key) {
  auto it = credentials.find(key);
  if (it == credentials.end() || !it->is_string()) return {};
  return it->get_ref<const std::string&>();
}

bool IsAsciiAlnum(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

bool AllOf(std::string_view text, bool (*pred)(char)) {
  return std::all_of(text.begin(), text.end(), pred);
}

bool IsUuid(std::string_view text) {
  if (text.size() != 36) return false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    bool dash_position = i == 8 || i == 13 || i == 18 || i == 23;
    bool hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
    if (dash_position ? c != '-' : !hex) return false;
  }
  return true;
}

}  // namespace herald::providers
