#include "providers/recipient_batch.h"

#include <algorithm>
#include <unordered_map>
#include <unordered_set>

#include "providers/basic_spec.h"

namespace herald::providers {
namespace {

// Room for the members a provider adds around the content and the recipients ("users":[...],
// "app_id", the idempotency key).
constexpr std::size_t kEnvelopeBytes = 256;

struct Chunk {
  std::size_t group;
  std::size_t bytes;
  std::unordered_set<std::string_view> tokens;
};

std::size_t JsonStringBytes(std::string_view text, std::string& scratch) {
  scratch.clear();
  AppendJsonString(scratch, text);
  return scratch.size();
}

}  // namespace

std::vector<RecipientGroup> GroupByContent(std::span<const PushMessage* const> batch,
                                           const RecipientLimits& limits,
                                           const ContentOf& content_of,
                                           std::vector<std::pair<std::size_t, Outcome>>& refused) {
  std::vector<RecipientGroup> groups;
  std::vector<Chunk> chunks;  // parallel to `groups`
  // content -> the groups (requests) holding it, oldest first
  std::unordered_map<std::string, std::vector<std::size_t>> by_content;
  const std::size_t max_recipients = std::max<std::size_t>(1, limits.max_recipients);
  std::string scratch;
  for (std::size_t i = 0; i < batch.size(); ++i) {
    const PushMessage& message = *batch[i];
    Result<std::string> content = content_of(message);
    if (!content.ok()) {
      refused.emplace_back(i,
                           Outcome{Verdict::kFailed, ReasonOf(content.status(), "INVALID_MESSAGE"),
                                   content.status().message()});
      continue;
    }
    const std::size_t cost = JsonStringBytes(message.device_token, scratch) + 1;
    std::vector<std::size_t>& holders = by_content[*content];
    std::size_t target = groups.size();
    for (std::size_t g : holders) {
      const Chunk& chunk = chunks[g];
      const bool full = groups[g].messages.size() >= max_recipients ||
                        (limits.max_body_bytes > 0 && chunk.bytes + cost > limits.max_body_bytes);
      if (!full && !chunk.tokens.contains(message.device_token)) {
        target = g;
        break;
      }
    }
    if (target == groups.size()) {
      holders.push_back(target);
      groups.push_back({*content, {}});
      chunks.push_back({target, content->size() + kEnvelopeBytes, {}});
    }
    groups[target].messages.push_back(i);
    chunks[target].bytes += cost;
    chunks[target].tokens.insert(message.device_token);
  }
  return groups;
}

std::string RecipientArray(std::span<const PushMessage* const> batch, const RecipientGroup& group) {
  std::string out = "[";
  for (std::size_t index : group.messages) {
    if (out.size() > 1) out += ',';
    AppendJsonString(out, batch[index]->device_token);
  }
  out += ']';
  return out;
}

std::string WithMembers(std::string_view leading, std::string_view object,
                        std::string_view trailing) {
  // `object` is "{...}" as a serialiser wrote it: its members are what lies between the braces.
  std::string_view inner = object.size() >= 2 ? object.substr(1, object.size() - 2) : "";
  std::string out;
  out.reserve(leading.size() + inner.size() + trailing.size() + 4);
  out += '{';
  for (std::string_view part : {leading, inner, trailing}) {
    if (part.empty()) continue;
    if (out.size() > 1) out += ',';
    out += part;
  }
  out += '}';
  return out;
}

std::string ApiOrigin(const Json& credentials, std::string_view fallback) {
  std::string base(StringField(credentials, "baseUrl"));
  while (!base.empty() && base.back() == '/') base.pop_back();
  return base.empty() ? std::string(fallback) : base;
}

const Json* JsonMember(const Json& object, std::string_view key) {
  if (!object.is_object()) return nullptr;
  auto it = object.find(key);
  return it == object.end() || it->is_null() ? nullptr : &*it;
}

std::string JsonString(const Json* value) {
  return value && value->is_string() ? value->get<std::string>() : std::string();
}

std::string DumpOrdered(const OrderedJson& value) {
  return value.dump(-1, ' ', false, OrderedJson::error_handler_t::replace);
}

bool IsUtf8(std::string_view text) {
  struct Form {
    unsigned char mask, lead;  // the lead byte's fixed bits
    std::size_t extra;         // continuation bytes
    unsigned min;              // smallest code point (shorter forms are overlong)
  };
  static constexpr Form kForms[] = {
      {0xe0, 0xc0, 1, 0x80}, {0xf0, 0xe0, 2, 0x800}, {0xf8, 0xf0, 3, 0x10000}};
  std::size_t i = 0;
  while (i < text.size()) {
    const auto lead = static_cast<unsigned char>(text[i]);
    if (lead < 0x80) {
      ++i;
      continue;
    }
    const Form* form = nullptr;
    for (const Form& f : kForms) {
      if ((lead & f.mask) == f.lead) form = &f;
    }
    if (!form || i + form->extra >= text.size()) return false;
    unsigned code = lead & static_cast<unsigned char>(~form->mask);
    for (std::size_t k = 1; k <= form->extra; ++k) {
      const auto next = static_cast<unsigned char>(text[i + k]);
      if ((next & 0xc0) != 0x80) return false;
      code = (code << 6) | (next & 0x3f);
    }
    // Overlong forms, UTF-16 surrogates and code points past U+10FFFF are not UTF-8.
    if (code < form->min || (code >= 0xd800 && code <= 0xdfff) || code > 0x10ffff) return false;
    i += form->extra + 1;
  }
  return true;
}

std::string BodyExcerpt(std::string_view body) {
  constexpr std::size_t kMax = 200;
  std::string out;
  for (char c : body.substr(0, kMax)) {
    const auto byte = static_cast<unsigned char>(c);
    out += byte < 0x20 || byte == 0x7f ? ' ' : c;
  }
  if (body.size() > kMax) out += "...";
  return out;
}

http::Request JsonApiRequest(std::string method, std::string url, std::string authorization) {
  http::Request request;
  request.method = std::move(method);
  request.url = std::move(url);
  request.headers = {{"Authorization", std::move(authorization)}, {"Accept", "application/json"}};
  if (request.method == "POST") request.headers.emplace_back("Content-Type", "application/json");
  return request;
}

Json ReplyJson(const http::Response& response) {
  if (response.body_truncated) return Json();
  return Json::parse(response.body, nullptr, /*allow_exceptions=*/false);
}

Outcome RequestOutcome(const http::Outcome& reply, std::string_view provider,
                       std::initializer_list<int> config_statuses) {
  if (!reply.ok()) return ClassifyTransport(reply);
  const http::Response& response = reply.response;
  Outcome out = ClassifyHttpStatus(response);
  if (out.verdict == Verdict::kDelivered) return out;
  out.detail = std::string(provider) + " answered " + std::to_string(response.status);
  if (std::string excerpt = BodyExcerpt(response.body); !excerpt.empty()) {
    out.detail += ": " + excerpt;
  }
  if (std::find(config_statuses.begin(), config_statuses.end(), response.status) !=
      config_statuses.end()) {
    out.verdict = Verdict::kFailedConfig;
  }
  return out;
}

ProbeResult ProbeByStatus(const http::Outcome& reply, std::string_view provider,
                          std::string_view accepted) {
  if (!reply.ok()) return ProbeFromTransport(reply);
  ProbeResult result;
  const int status = reply.response.status;
  result.ok = status >= 200 && status < 300;
  result.reason = result.ok ? "" : "HTTP_" + std::to_string(status);
  result.detail = result.ok ? std::string(accepted)
                            : std::string(provider) + " answered " + std::to_string(status) + ": " +
                                  BodyExcerpt(reply.response.body);
  return result;
}

Status OverrideError(std::string_view key, std::string_view problem) {
  return Refusal("INVALID_OVERRIDES", "overrides." + std::string(key) + " " + std::string(problem));
}

Status ReadString(const Json& overrides, std::string_view key, std::optional<std::string>& out) {
  const Json* value = JsonMember(overrides, key);
  if (!value) return Status::Ok();
  if (!value->is_string()) return OverrideError(key, "must be a string");
  out = value->get<std::string>();
  return Status::Ok();
}

Status ReadBool(const Json& overrides, std::string_view key, std::optional<bool>& out) {
  const Json* value = JsonMember(overrides, key);
  if (!value) return Status::Ok();
  if (!value->is_boolean()) return OverrideError(key, "must be a boolean");
  out = value->get<bool>();
  return Status::Ok();
}

Status ReadInteger(const Json& overrides, std::string_view key, std::int64_t min, std::int64_t max,
                   std::optional<std::int64_t>& out) {
  const Json* value = JsonMember(overrides, key);
  if (!value) return Status::Ok();
  const std::string range = "an integer from " + std::to_string(min) + " to " + std::to_string(max);
  if (!value->is_number_integer()) return OverrideError(key, "must be " + range);
  // Unsigned values past int64 compare through the unsigned reading.
  if (value->is_number_unsigned() &&
      value->get<std::uint64_t>() > static_cast<std::uint64_t>(max)) {
    return OverrideError(key, "must be " + range);
  }
  const auto number = value->get<std::int64_t>();
  if (number < min || number > max) return OverrideError(key, "must be " + range);
  out = number;
  return Status::Ok();
}

Result<OrderedJson> PayloadWithDataOverride(const PushMessage& message) {
  OrderedJson data = DevicePayload(message);
  if (const Json* extra = JsonMember(message.overrides, "data")) {
    if (!extra->is_object()) return OverrideError("data", "must be an object");
    for (const auto& [key, value] : extra->items()) data[key] = value;
  }
  return data;
}

Status CheckContentSize(std::string_view provider, std::size_t size, std::size_t limit) {
  if (size <= limit) return Status::Ok();
  return Refusal("MESSAGE_TOO_LARGE", std::string(provider) + " message is " +
                                          std::to_string(size) + " bytes; at most " +
                                          std::to_string(limit) + " are sent");
}

}  // namespace herald::providers
