#include "api/input.h"

#include <cctype>
#include <charconv>
#include <set>

namespace herald::api {
namespace {

std::string FieldName(std::string_view key, std::string_view field) {
  return std::string(field.empty() ? key : field);
}

}  // namespace

Result<Json> ParseObjectBody(const server::Request& request, bool allow_empty) {
  std::string_view body = request.body;
  bool blank = body.find_first_not_of(" \t\r\n") == std::string_view::npos;
  if (blank) {
    if (allow_empty) return Json::object();
    return Status::InvalidArgument("Request body must be a JSON object");
  }
  std::string error;
  std::optional<Json> parsed = ParseJson(body, &error);
  if (!parsed) return Status::InvalidArgument(error);
  if (!parsed->is_object()) return Status::InvalidArgument("Request body must be a JSON object");
  return std::move(*parsed);
}

Status RejectUnknownFields(const Json& object, std::span<const std::string_view> allowed,
                           std::string_view prefix) {
  for (const auto& [key, value] : object.items()) {
    bool known = false;
    for (std::string_view a : allowed) known = known || a == key;
    if (!known) {
      return Status::InvalidArgument("property " + std::string(prefix) + key + " should not exist");
    }
  }
  return Status::Ok();
}

Result<std::optional<std::string>> OptString(const Json& object, std::string_view key,
                                             std::string_view field) {
  auto it = object.find(key);
  if (it == object.end()) return std::optional<std::string>();
  if (!it->is_string()) return Status::InvalidArgument(FieldName(key, field) + " must be a string");
  return std::optional<std::string>(it->get<std::string>());
}

Result<std::optional<std::optional<std::string>>> OptNullableString(const Json& object,
                                                                    std::string_view key,
                                                                    std::string_view field) {
  using Out = std::optional<std::optional<std::string>>;
  auto it = object.find(key);
  if (it == object.end()) return Out();
  if (it->is_null()) return Out(std::optional<std::string>());
  if (!it->is_string()) return Status::InvalidArgument(FieldName(key, field) + " must be a string");
  return Out(it->get<std::string>());
}

Result<std::optional<bool>> OptBool(const Json& object, std::string_view key) {
  auto it = object.find(key);
  if (it == object.end()) return std::optional<bool>();
  if (!it->is_boolean()) return Status::InvalidArgument(std::string(key) + " must be a boolean");
  return std::optional<bool>(it->get<bool>());
}

Result<std::string> RequiredString(const Json& object, std::string_view key,
                                   std::string_view field) {
  ASSIGN_OR_RETURN(std::optional<std::string> value, OptString(object, key, field));
  if (!value) return Status::InvalidArgument(FieldName(key, field) + " is required");
  return std::move(*value);
}

Result<std::optional<std::vector<std::string>>> OptStringArray(const Json& object,
                                                               std::string_view key,
                                                               std::string_view field) {
  using Out = std::optional<std::vector<std::string>>;
  auto it = object.find(key);
  if (it == object.end()) return Out();
  std::string name = FieldName(key, field);
  if (!it->is_array()) return Status::InvalidArgument(name + " must be an array of strings");
  std::vector<std::string> out;
  out.reserve(it->size());
  for (const Json& item : *it) {
    if (!item.is_string()) {
      return Status::InvalidArgument(name + " must be an array of strings");
    }
    out.push_back(item.get<std::string>());
  }
  return Out(std::move(out));
}

Status CheckId(std::string_view value, std::string_view field) {
  if (value.empty()) return Status::InvalidArgument(std::string(field) + " must not be empty");
  if (value.size() > 256) {
    return Status::InvalidArgument(std::string(field) + " must be at most 256 characters");
  }
  for (unsigned char c : value) {
    if (c < 0x20 || c == 0x7f) {
      return Status::InvalidArgument(std::string(field) + " must not contain control characters");
    }
  }
  return Status::Ok();
}

bool IsNovuChannelType(std::string_view channel) {
  for (std::string_view c : {"in_app", "email", "sms", "chat", "push", "tool"}) {
    if (c == channel) return true;
  }
  return false;
}

Result<bool> QueryBool(const server::Request& r, std::string_view key, bool fallback) {
  const std::string* raw = r.Query(key);
  if (!raw) return fallback;
  if (*raw == "true") return true;
  if (*raw == "false") return false;
  return Status::InvalidArgument(std::string(key) + " must be true or false");
}

Result<store::SubscriberPatch> DecodeProfile(const Json& body, std::string_view prefix) {
  store::SubscriberPatch p;
  std::pair<const char*, std::optional<std::optional<std::string>>*> fields[] = {
      {"firstName", &p.first_name}, {"lastName", &p.last_name}, {"email", &p.email},
      {"phone", &p.phone},          {"avatar", &p.avatar},      {"locale", &p.locale},
      {"timezone", &p.timezone}};
  for (auto& [key, target] : fields) {
    std::string name = std::string(prefix) + key;
    ASSIGN_OR_RETURN(*target, OptNullableString(body, key, name));
    if (*target && **target && (**target)->size() > 1024) {
      return Status::InvalidArgument(name + " must be at most 1024 characters");
    }
  }
  if (auto it = body.find("data"); it != body.end()) {
    if (it->is_null()) {
      p.data = std::optional<Json>();
    } else if (it->is_object()) {
      p.data = std::optional<Json>(*it);
    } else {
      return Status::InvalidArgument(std::string(prefix) + "data must be an object");
    }
  }
  return p;
}

Result<NewSubscriber> DecodeNewSubscriber(const Json& body, std::string_view prefix) {
  NewSubscriber out;
  std::string field = std::string(prefix) + "subscriberId";
  ASSIGN_OR_RETURN(out.subscriber_id, RequiredString(body, "subscriberId", field));
  RETURN_IF_ERROR(CheckId(out.subscriber_id, field));
  ASSIGN_OR_RETURN(out.profile, DecodeProfile(body, prefix));
  return out;
}

Result<store::JitChannel> DecodeJitChannel(const Json& channel, const std::string& at,
                                           const providers::TokenPolicy& policy) {
  if (!channel.is_object()) return Status::InvalidArgument(at + " must be an object");
  store::JitChannel jit;
  ASSIGN_OR_RETURN(jit.provider_id, RequiredString(channel, "providerId", at + ".providerId"));
  ASSIGN_OR_RETURN(const providers::ProviderSpec* spec,
                   RequirePushProvider(jit.provider_id, at + ".providerId"));
  ASSIGN_OR_RETURN(jit.integration_identifier,
                   OptString(channel, "integrationIdentifier", at + ".integrationIdentifier"));
  auto credentials = channel.find("credentials");
  if (credentials == channel.end()) return jit;
  if (!credentials->is_object()) {
    return Status::InvalidArgument(at + ".credentials must be an object");
  }
  ASSIGN_OR_RETURN(jit.webhook_url,
                   OptString(*credentials, "webhookUrl", at + ".credentials.webhookUrl"));
  ASSIGN_OR_RETURN(std::optional<std::vector<std::string>> tokens,
                   OptStringArray(*credentials, "deviceTokens", at + ".credentials.deviceTokens"));
  if (tokens) {
    ASSIGN_OR_RETURN(jit.tokens,
                     NormalizeTokens(*spec, *tokens, policy, at + ".credentials.deviceTokens"));
  }
  return jit;
}

Result<const providers::ProviderSpec*> RequirePushProvider(const std::string& id,
                                                           std::string_view field) {
  const providers::ProviderSpec* spec = providers::FindProvider(id);
  if (!spec) {
    return Status::InvalidArgument(std::string(field) + " " + id +
                                   " is not a supported push provider");
  }
  return spec;
}

Result<std::vector<store::DeviceToken>> NormalizeTokens(const providers::ProviderSpec& spec,
                                                        const std::vector<std::string>& tokens,
                                                        const providers::TokenPolicy& policy,
                                                        std::string_view field) {
  std::vector<store::DeviceToken> out;
  std::set<std::string> seen;
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    Result<std::string> token = spec.NormalizeDeviceToken(tokens[i], policy);
    if (!token.ok()) {
      return Status::InvalidArgument(std::string(field) + "[" + std::to_string(i) +
                                     "]: " + token.status().message());
    }
    std::string identity = spec.TokenIdentity(*token);
    if (seen.insert(identity).second) out.push_back({std::move(*token), std::move(identity)});
  }
  return out;
}

std::string Slugify(std::string_view name, std::string_view fallback) {
  std::string out;
  for (unsigned char c : name) {
    if (std::isalnum(c)) {
      out.push_back(static_cast<char>(std::tolower(c)));
    } else if (!out.empty() && out.back() != '-') {
      out.push_back('-');
    }
  }
  while (!out.empty() && out.back() == '-') out.pop_back();
  return out.empty() ? std::string(fallback) : out;
}

Result<store::PageRequest> DecodeCursorPage(const server::Request& r) {
  store::PageRequest page;
  ASSIGN_OR_RETURN(std::optional<long long> limit, QueryInt(r, "limit", 1, 100));
  page.limit = static_cast<int>(limit.value_or(10));
  if (const std::string* after = r.Query("after")) page.after = *after;
  if (const std::string* before = r.Query("before")) page.before = *before;
  if (const std::string* order_by = r.Query("orderBy")) {
    if (*order_by != "createdAt" && *order_by != "updatedAt" && *order_by != "_id") {
      return Status::InvalidArgument("orderBy must be one of: createdAt, updatedAt, _id");
    }
    page.order_by = *order_by;
  }
  if (const std::string* dir = r.Query("orderDirection")) {
    if (*dir != "ASC" && *dir != "DESC") {
      return Status::InvalidArgument("orderDirection must be ASC or DESC");
    }
    page.descending = *dir == "DESC";
  }
  return page;
}

Result<std::optional<long long>> QueryInt(const server::Request& request, std::string_view key,
                                          long long min, long long max) {
  const std::string* raw = request.Query(key);
  if (!raw) return std::optional<long long>();
  long long value = 0;
  auto [end, ec] = std::from_chars(raw->data(), raw->data() + raw->size(), value);
  if (ec != std::errc() || end != raw->data() + raw->size() || value < min || value > max) {
    return Status::InvalidArgument(std::string(key) + " must be an integer between " +
                                   std::to_string(min) + " and " + std::to_string(max));
  }
  return std::optional<long long>(value);
}

}  // namespace herald::api
