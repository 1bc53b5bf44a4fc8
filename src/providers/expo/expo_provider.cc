#include "providers/expo/expo_provider.h"

#include <zlib.h>

#include <algorithm>
#include <array>
#include <map>
#include <optional>
#include <string>

#include "core/time.h"
#include "providers/basic_spec.h"
#include "providers/recipient_batch.h"

namespace herald::providers {
namespace {

constexpr std::string_view kDefaultOrigin = "https://exp.host";
constexpr std::string_view kSendPath = "/--/api/v2/push/send";
constexpr std::string_view kReceiptsPath = "/--/api/v2/push/getReceipts";
constexpr std::size_t kMaxMessages = 100;     // more: 400 PUSH_TOO_MANY_NOTIFICATIONS
constexpr std::size_t kMaxReceipts = 1000;    // more: 400 PUSH_TOO_MANY_RECEIPTS
constexpr std::size_t kCompressAbove = 1024;  // as expo-server-sdk
// A compressed reply is never let grow past this (a hundred tickets are about 10 KB).
constexpr std::size_t kMaxInflated = 8u << 20;
// Expo's message texts go into delivery records (they name the token, which helps); bounded.
constexpr std::size_t kMaxErrorText = 300;
// A receipt id no message has: the check answers without touching anyone's pushes.
constexpr std::string_view kProbeReceipt = "00000000-0000-0000-0000-000000000000";

// ---- gzip, both ways ---------------------------------------------------------------------------

// `data` in a gzip wrapper (Content-Encoding: gzip); empty if zlib fails (then sent as it is).
std::string Gzip(std::string_view data) {
  z_stream z{};
  if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
    return {};
  }
  std::string out(deflateBound(&z, static_cast<uLong>(data.size())), '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  z.avail_in = static_cast<uInt>(data.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  const int rc = deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  return rc == Z_STREAM_END ? out : std::string();
}

// A gzip or zlib stream inflated (the wrapper is detected); nullopt if it is corrupt, cut short or
// inflates past kMaxInflated.
std::optional<std::string> Inflate(std::string_view data) {
  z_stream z{};
  if (inflateInit2(&z, 15 + 32) != Z_OK) return std::nullopt;
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  z.avail_in = static_cast<uInt>(data.size());
  std::string out;
  std::array<char, 16384> chunk;
  int rc = Z_OK;
  while (rc == Z_OK) {
    z.next_out = reinterpret_cast<Bytef*>(chunk.data());
    z.avail_out = static_cast<uInt>(chunk.size());
    rc = inflate(&z, Z_NO_FLUSH);
    if (rc != Z_OK && rc != Z_STREAM_END) break;
    out.append(chunk.data(), chunk.size() - z.avail_out);
    if (out.size() > kMaxInflated) rc = Z_MEM_ERROR;
    if (rc == Z_OK && z.avail_in == 0 && z.avail_out != 0) rc = Z_DATA_ERROR;  // cut short
  }
  inflateEnd(&z);
  if (rc != Z_STREAM_END) return std::nullopt;
  return out;
}

// The reply's JSON (the request said it takes gzip and deflate); null when it cannot be read.
Json ReadBody(const http::Response& response) {
  std::string_view encoding = response.Header("content-encoding");
  std::optional<std::string> inflated;
  std::string_view text = response.body;
  if (encoding == "gzip" || encoding == "x-gzip" || encoding == "deflate") {
    inflated = Inflate(response.body);
    if (!inflated) return nullptr;
    text = *inflated;
  } else if (!encoding.empty() && encoding != "identity") {
    return nullptr;
  }
  std::string error;
  std::optional<Json> parsed = ParseJson(text, &error);
  return parsed ? std::move(*parsed) : Json();
}

// ---- the message -------------------------------------------------------------------------------

// Fields of an Expo message (protocols.md §4.3) whose type Herald checks before a message joins a
// batch: Expo refuses a whole request (400) for one message with a field of the wrong type.
enum class FieldKind { kString, kNumber, kBoolean, kObject, kPriority, kInterruptionLevel };
struct KnownField {
  std::string_view key;
  FieldKind kind;
};
constexpr std::array<KnownField, 15> kKnownFields = {
    {{"title", FieldKind::kString},
     {"body", FieldKind::kString},
     {"subtitle", FieldKind::kString},
     {"ttl", FieldKind::kNumber},
     {"expiration", FieldKind::kNumber},
     {"priority", FieldKind::kPriority},
     {"interruptionLevel", FieldKind::kInterruptionLevel},
     {"channelId", FieldKind::kString},
     {"categoryId", FieldKind::kString},
     {"mutableContent", FieldKind::kBoolean},
     {"icon", FieldKind::kString},
     {"richContent", FieldKind::kObject},
     {"collapseId", FieldKind::kString},
     {"tag", FieldKind::kString},
     {"_contentAvailable", FieldKind::kBoolean}}};

bool OneOf(const Json& value, std::initializer_list<std::string_view> names) {
  if (!value.is_string()) return false;
  const std::string& text = value.get_ref<const std::string&>();
  return std::find(names.begin(), names.end(), text) != names.end();
}

Status CheckField(const std::string& key, const Json& value) {
  auto field = std::find_if(kKnownFields.begin(), kKnownFields.end(),
                            [&](const KnownField& f) { return f.key == key; });
  if (field == kKnownFields.end()) return Status::Ok();  // Novu spreads the rest as they are
  switch (field->kind) {
    case FieldKind::kString:
      if (!value.is_string()) return OverrideError(key, "must be a string");
      break;
    case FieldKind::kNumber:
      if (!value.is_number() || value.get<double>() < 0) {
        return OverrideError(key, "must be a number of seconds, not negative");
      }
      break;
    case FieldKind::kBoolean:
      if (!value.is_boolean()) return OverrideError(key, "must be a boolean");
      break;
    case FieldKind::kObject:
      if (!value.is_object()) return OverrideError(key, "must be an object");
      break;
    case FieldKind::kPriority:
      if (!OneOf(value, {"default", "normal", "high"})) {
        return OverrideError(key, "must be default, normal or high");
      }
      break;
    case FieldKind::kInterruptionLevel:
      if (!OneOf(value, {"active", "critical", "passive", "time-sensitive"})) {
        return OverrideError(key, "must be active, critical, passive or time-sensitive");
      }
      break;
  }
  return Status::Ok();
}

// The Expo message for one device token, as Novu's Expo provider builds it (novu-api.md §5.1).
Result<OrderedJson> Message(const PushMessage& message) {
  const Json& overrides = message.overrides;
  OrderedJson out = {{"to", message.device_token}};
  if (!message.title.empty()) out["title"] = message.title;
  if (!message.content.empty()) out["body"] = message.content;
  ASSIGN_OR_RETURN(OrderedJson data, PayloadWithDataOverride(message));
  if (!data.empty()) out["data"] = std::move(data);
  // Novu sends a sound only when it is a string; Expo's critical-alert object is kept too.
  if (const Json* sound = JsonMember(overrides, "sound");
      sound && (sound->is_string() || sound->is_object())) {
    out["sound"] = *sound;
  }
  if (const Json* badge = JsonMember(overrides, "badge")) {
    if (!badge->is_number() || badge->get<double>() < 0) {
      return OverrideError("badge", "must be a number, not negative");
    }
    out["badge"] = *badge;
  }
  if (!overrides.is_object()) return out;
  for (const auto& [key, value] : overrides.items()) {
    // The recipient is the message's token; deviceTokens chose the tokens (the planner read it).
    if (value.is_null() || key == "to" || key == "deviceTokens" || key == "data" ||
        key == "sound" || key == "badge") {
      continue;
    }
    RETURN_IF_ERROR(CheckField(key, value));
    out[key] = value;
  }
  return out;
}

// ---- replies -----------------------------------------------------------------------------------

// An error in a ticket or a receipt, by its `details.error` (protocols.md §4.6).
Outcome FromErrorItem(const Json& item, std::string_view where) {
  const Json* details = JsonMember(item, "details");
  const std::string code = details ? JsonString(JsonMember(*details, "error")) : std::string();
  Outcome out;
  out.reason = code.empty() ? "EXPO_ERROR" : code;
  out.detail = "Expo " + std::string(where) + " error" + (code.empty() ? "" : " " + code);
  if (std::string text = JsonString(JsonMember(item, "message")); !text.empty()) {
    out.detail += ": " + text.substr(0, kMaxErrorText);
  }
  if (code == "DeviceNotRegistered") {
    out.verdict = Verdict::kFailedRemoveToken;
    out.unsubscribed = true;  // the app was uninstalled or its permission revoked
  } else if (code == "MessageRateExceeded" || code == "ProviderError" || code == "ExpoError") {
    out.verdict = Verdict::kRetry;
  } else if (code == "InvalidCredentials" || code == "MismatchSenderId") {
    out.verdict = Verdict::kFailedConfig;
  } else {
    out.verdict = Verdict::kFailed;  // MessageTooBig, DeveloperError, and errors without a type
  }
  return out;
}

Outcome FromTicket(const Json& ticket) {
  const std::string status = JsonString(JsonMember(ticket, "status"));
  if (status == "ok") {
    Outcome out;
    const std::string id = JsonString(JsonMember(ticket, "id"));
    out.verdict = id.empty() ? Verdict::kDelivered : Verdict::kAccepted;
    out.receipt = id;
    out.provider_message_id = id;
    return out;
  }
  if (status == "error") return FromErrorItem(ticket, "ticket");
  return {Verdict::kRetry, "BAD_TICKET", "Expo answered a ticket without an ok or error status"};
}

// A request Expo refused as a whole (`errors[]`, protocols.md §4.7), by its typed code.
Outcome RequestFailure(const http::Response& response, const Json& body) {
  Outcome out = ClassifyHttpStatus(response);  // 408, 429, 5xx retried with Retry-After
  const Json* errors = JsonMember(body, "errors");
  const Json* first = errors && errors->is_array() && !errors->empty() ? &(*errors)[0] : nullptr;
  const std::string code = first ? JsonString(JsonMember(*first, "code")) : std::string();
  const Json* transient = first ? JsonMember(*first, "isTransient") : nullptr;
  out.reason = !code.empty() ? code : "HTTP_" + std::to_string(response.status);
  out.detail =
      "Expo answered " + std::to_string(response.status) + (code.empty() ? "" : " " + code);
  const int status = response.status;
  if (code == "TOO_MANY_REQUESTS" || status == 429) {
    out.verdict = Verdict::kRetry;
    if (!out.retry_after) {
      if (std::string_view after = response.Header("retry-after"); !after.empty()) {
        out.retry_after = ParseRetryAfter(after, NowMs());
      }
    }
  } else if (code == "UNAUTHORIZED" || status == 401 || status == 403) {
    out.verdict = Verdict::kFailedConfig;  // the access token is missing, wrong or revoked
  } else if (status == 408 || status >= 500 ||
             (transient && transient->is_boolean() && transient->get<bool>())) {
    out.verdict = Verdict::kRetry;
  } else {
    out.verdict = Verdict::kFailed;  // PUSH_TOO_MANY_*, VALIDATION_ERROR, other 400s
  }
  return out;
}

// PUSH_TOO_MANY_EXPERIENCE_IDS: the batch mixed tokens of several Expo projects, and `details`
// lists each project's. The project with the most tokens is taken for the integration's: its
// messages go again (in batches without the others), the others fail (their tokens stay: they
// belong to another integration's project, not to nobody).
std::vector<Outcome> SplitByProject(const Outcome& failure, const Json& body,
                                    std::span<const PushMessage* const> messages) {
  const Json* errors = JsonMember(body, "errors");
  const Json* details = errors && errors->is_array() && !errors->empty()
                            ? JsonMember((*errors)[0], "details")
                            : nullptr;
  if (!details || !details->is_object()) return std::vector<Outcome>(messages.size(), failure);
  std::map<std::string, std::string, std::less<>> project_of;
  std::string kept;
  std::size_t most = 0;
  for (const auto& [project, tokens] : details->items()) {
    if (!tokens.is_array()) continue;
    std::size_t count = 0;
    for (const Json& token : tokens) {
      if (!token.is_string()) continue;
      project_of[token.get<std::string>()] = project;
      ++count;
    }
    if (count > most) {
      most = count;
      kept = project;
    }
  }
  std::vector<Outcome> out;
  out.reserve(messages.size());
  for (const PushMessage* message : messages) {
    auto it = project_of.find(message->device_token);
    if (it == project_of.end() || it->second == kept) {
      out.push_back({Verdict::kRetry, failure.reason,
                     "sent again without the tokens of other Expo projects than " + kept});
      out.back().retry_after = std::chrono::milliseconds(0);
    } else {
      out.push_back(
          {Verdict::kFailed, failure.reason,
           "the token belongs to Expo project " + it->second + ", the batch's to " + kept});
    }
  }
  return out;
}

std::vector<Outcome> Pending(std::size_t n, Outcome why) {
  why.verdict = Verdict::kPending;
  return std::vector<Outcome>(n, why);
}

class ExpoProvider final : public Provider, public ReceiptChecker {
 public:
  ExpoProvider(std::string origin, std::string access_token, std::chrono::milliseconds delay)
      : origin_(std::move(origin)), access_token_(std::move(access_token)), delay_(delay) {}

  const ReceiptChecker* receipts() const override { return this; }

  // ---- sends ---------------------------------------------------------------------------------
  std::size_t max_batch() const override { return kMaxMessages; }

  BatchPlan BuildBatch(std::span<const PushMessage* const> batch,
                       const AuthToken& /*token*/) const override {
    BatchPlan plan;
    BatchRequest part;
    OrderedJson array = OrderedJson::array();
    for (std::size_t i = 0; i < batch.size(); ++i) {
      const PushMessage& message = *batch[i];
      // Kept out of the batch: Expo refuses the whole request for some malformed tokens.
      if (!IsExpoPushToken(message.device_token)) {
        plan.refused.emplace_back(i, Outcome{Verdict::kFailedRemoveToken, "INVALID_TOKEN",
                                             "not an Expo push token (ExponentPushToken[...])"});
        continue;
      }
      Result<OrderedJson> built = Message(message);
      if (!built.ok()) {
        plan.refused.emplace_back(
            i, Outcome{Verdict::kFailed, ReasonOf(built.status(), "INVALID_MESSAGE"),
                       built.status().message()});
        continue;
      }
      array.push_back(std::move(*built));
      part.messages.push_back(i);
    }
    if (!part.messages.empty()) {
      part.request = Post(kSendPath, DumpOrdered(array));
      plan.requests.push_back(std::move(part));
    }
    return plan;
  }

  // One ticket per message, in order (protocols.md §4.4).
  std::vector<Outcome> ClassifyBatch(const http::Outcome& reply,
                                     std::span<const PushMessage* const> messages) const override {
    const std::size_t n = messages.size();
    if (!reply.ok()) return std::vector<Outcome>(n, ClassifyTransport(reply));
    const http::Response& response = reply.response;
    const Json body = ReadBody(response);
    if (response.status / 100 != 2 || JsonMember(body, "errors")) {
      Outcome failure = RequestFailure(response, body);
      if (failure.reason == "PUSH_TOO_MANY_EXPERIENCE_IDS") {
        return SplitByProject(failure, body, messages);
      }
      return std::vector<Outcome>(n, failure);
    }
    const Json* data = JsonMember(body, "data");
    if (response.body_truncated || !data) {
      return std::vector<Outcome>(
          n, Outcome{Verdict::kRetry, "UNREADABLE_REPLY", "Expo's tickets could not be read"});
    }
    if (!data->is_array() || data->size() != n) {
      // Which ticket belongs to which message is lost: all of them go again.
      const std::string got =
          data->is_array() ? std::to_string(data->size()) + " tickets" : "no list";
      return std::vector<Outcome>(
          n, Outcome{Verdict::kRetry, "TICKET_COUNT_MISMATCH",
                     "Expo answered " + got + " for " + std::to_string(n) +
                         " messages; every message of the request is sent again"});
    }
    std::vector<Outcome> out;
    out.reserve(n);
    for (const Json& ticket : *data) out.push_back(FromTicket(ticket));
    return out;
  }

  // ---- receipts ------------------------------------------------------------------------------
  std::size_t max_receipts() const override { return kMaxReceipts; }
  std::chrono::milliseconds first_check_after() const override { return delay_; }

  Result<http::Request> BuildCheck(std::span<const std::string> receipts,
                                   const AuthToken& /*token*/) const override {
    OrderedJson ids = OrderedJson::array();
    for (const std::string& id : receipts) ids.push_back(id);
    return Post(kReceiptsPath, DumpOrdered(OrderedJson{{"ids", std::move(ids)}}));
  }

  // {"data": {id: receipt}}; an id without a receipt yet is absent (protocols.md §4.5).
  std::vector<Outcome> ReadCheck(const http::Outcome& reply,
                                 std::span<const std::string> receipts) const override {
    const std::size_t n = receipts.size();
    if (!reply.ok()) return Pending(n, ClassifyTransport(reply));
    const http::Response& response = reply.response;
    const Json body = ReadBody(response);
    if (response.status / 100 != 2 || JsonMember(body, "errors")) {
      return Pending(n, RequestFailure(response, body));
    }
    const Json* data = JsonMember(body, "data");
    if (response.body_truncated || !data || !data->is_object()) {
      return Pending(n,
                     {Verdict::kPending, "UNREADABLE_REPLY", "Expo's receipts could not be read"});
    }
    std::vector<Outcome> out;
    out.reserve(n);
    for (const std::string& id : receipts) {
      const Json* receipt = JsonMember(*data, id);
      const std::string status =
          receipt ? JsonString(JsonMember(*receipt, "status")) : std::string();
      if (status == "ok") {
        out.push_back({Verdict::kDelivered, "", ""});
      } else if (status == "error") {
        out.push_back(FromErrorItem(*receipt, "receipt"));
      } else {
        out.push_back({Verdict::kPending, "RECEIPT_NOT_READY", "Expo has no receipt for it yet"});
      }
    }
    return out;
  }

  // ---- connection test -----------------------------------------------------------------------
  // A receipt check for an id no message has: Expo answers it without sending anything, and
  // refuses an access token it does not know (UNAUTHORIZED). Without a token it only shows that
  // Expo is reachable: whether the project requires one shows on the first send.
  Result<std::optional<http::Request>> BuildProbe(const AuthToken& /*token*/) const override {
    return std::optional<http::Request>(
        Post(kReceiptsPath,
             DumpOrdered(OrderedJson{{"ids", OrderedJson::array({std::string(kProbeReceipt)})}})));
  }
  ProbeResult ReadProbe(const http::Outcome& reply) const override {
    if (!reply.ok()) return ProbeFromTransport(reply);
    const Json body = ReadBody(reply.response);
    ProbeResult result;
    if (reply.response.status / 100 == 2 && !JsonMember(body, "errors") &&
        JsonMember(body, "data")) {
      result.ok = true;
      result.detail = access_token_.empty()
                          ? "Expo answered; no access token is set, so only a project without "
                            "enhanced push security accepts the sends"
                          : "Expo accepted the access token";
      return result;
    }
    Outcome failure = RequestFailure(reply.response, body);
    result.reason = failure.reason;
    result.detail = failure.detail;
    return result;
  }

 private:
  http::Request Post(std::string_view path, std::string body) const {
    http::Request request;
    request.method = "POST";
    request.url = origin_ + std::string(path);
    request.headers = {{"content-type", "application/json"},
                       {"accept", "application/json"},
                       {"accept-encoding", "gzip, deflate"}};
    if (!access_token_.empty()) {
      request.headers.emplace_back("authorization", "Bearer " + access_token_);
    }
    if (body.size() > kCompressAbove) {
      if (std::string packed = Gzip(body); !packed.empty()) {
        body = std::move(packed);
        request.headers.emplace_back("content-encoding", "gzip");
      }
    }
    request.body = std::move(body);
    return request;
  }

  std::string origin_;
  std::string access_token_;
  std::chrono::milliseconds delay_;
};

bool IsTokenChar(char c) {
  return IsAsciiAlnum(c) || c == '-' || c == '_' || c == '.' || c == ':' || c == '=';
}

}  // namespace

bool IsExpoPushToken(std::string_view token) {
  if (token.size() > kMaxTokenBytes || !token.ends_with(']')) return false;
  for (std::string_view prefix : {"ExponentPushToken[", "ExpoPushToken["}) {
    if (!token.starts_with(prefix) || token.size() < prefix.size() + 1) continue;
    std::string_view inside = token.substr(prefix.size(), token.size() - prefix.size() - 1);
    return !inside.empty() && AllOf(inside, IsTokenChar);
  }
  return false;
}

Result<std::unique_ptr<Provider>> NewExpoProvider(const Json& credentials,
                                                  const ExpoOptions& options) {
  return std::unique_ptr<Provider>(new ExpoProvider(ApiOrigin(credentials, kDefaultOrigin),
                                                    std::string(StringField(credentials, "apiKey")),
                                                    options.receipt_delay));
}

}  // namespace herald::providers
