// What the providers that send one notification to many recipients per request share (OneSignal,
// Pusher Beams, Pushpad): messages that would say the same thing go in one request, split under
// the provider's limits; and the small things the JSON API providers (those three and Expo) read
// and write alike (the API origin, typed override reads, JSON members and replies, the request
// and the connection test of an API answered by status).
#pragma once

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/json.h"
#include "core/status.h"
#include "providers/provider.h"

namespace herald::providers {

// What a provider sends for one message apart from its recipients, as JSON object text: both the
// grouping key (messages with the same text are identical to the provider) and the body part.
// A Refusal when the message cannot be expressed.
using ContentOf = std::function<Result<std::string>(const PushMessage&)>;

struct RecipientLimits {
  std::size_t max_recipients = 1;
  // The content plus the recipients' JSON strings stay under this; 0 = no byte limit.
  std::size_t max_body_bytes = 0;
};

// The messages of one request: the same content, each device token once, within the limits.
struct RecipientGroup {
  std::string content;
  std::vector<std::size_t> messages;  // indices into the batch, in batch order
};

// Groups `batch` by content in order of first appearance and splits each group into requests
// under `limits`. A token that appears twice in a group goes to another request of it (the
// provider would send once for both). Messages whose content cannot be built are appended to
// `refused` (kFailed, with the refusal's typed reason).
std::vector<RecipientGroup> GroupByContent(std::span<const PushMessage* const> batch,
                                           const RecipientLimits& limits,
                                           const ContentOf& content_of,
                                           std::vector<std::pair<std::size_t, Outcome>>& refused);

// The device tokens of `group`'s messages as a JSON array of strings.
std::string RecipientArray(std::span<const PushMessage* const> batch, const RecipientGroup& group);

// `object` (a JSON object's text) with `leading` members written before its own and `trailing`
// ones after (each "" or member text such as "\"a\":1,\"b\":[2]").
std::string WithMembers(std::string_view leading, std::string_view object,
                        std::string_view trailing);

// The `baseUrl` credential without trailing slashes, or `fallback` when there is none.
std::string ApiOrigin(const Json& credentials, std::string_view fallback);

// Member `key` of `object` when `object` is an object holding it with a non-null value.
const Json* JsonMember(const Json& object, std::string_view key);

// The string `value` points to, or "" when it is null or not a string.
std::string JsonString(const Json* value);

// Serialises without throwing (invalid UTF-8 replaced), as DumpJson does for Json.
std::string DumpOrdered(const OrderedJson& value);

bool IsUtf8(std::string_view text);

// A short printable excerpt of a reply body for a message record's detail (never read to decide).
std::string BodyExcerpt(std::string_view body);

// ---- requests and replies ------------------------------------------------------------------
// A request to a JSON API carrying `authorization`: Accept: application/json, and Content-Type:
// application/json when it is a POST.
http::Request JsonApiRequest(std::string method, std::string url, std::string authorization);

// A reply's body as JSON; not an object when it was cut short (too large to keep) or is not JSON.
Json ReplyJson(const http::Response& response);

// What a reply answered for a request as a whole (no response: as ClassifyTransport), by status
// (2xx delivered): a failing status is detailed "<provider> answered <status>: <body excerpt>",
// and is kFailedConfig for `config_statuses` (the credentials, or what they name, refused: every
// message of the integration would fail the same way).
Outcome RequestOutcome(const http::Outcome& reply, std::string_view provider,
                       std::initializer_list<int> config_statuses);

// A connection test read by status alone (no response: as ProbeFromTransport): a 2xx passes with
// `accepted` as its detail; another status fails as HTTP_<status>, "<provider> answered <status>:
// <body excerpt>".
ProbeResult ProbeByStatus(const http::Outcome& reply, std::string_view provider,
                          std::string_view accepted);

// ---- message overrides ---------------------------------------------------------------------
// A typed INVALID_OVERRIDES refusal naming `overrides.<key>`.
Status OverrideError(std::string_view key, std::string_view problem);
// Typed reads: an absent or null member leaves `out` unset; another type is an OverrideError.
Status ReadString(const Json& overrides, std::string_view key, std::optional<std::string>& out);
Status ReadBool(const Json& overrides, std::string_view key, std::optional<bool>& out);
Status ReadInteger(const Json& overrides, std::string_view key, std::int64_t min, std::int64_t max,
                   std::optional<std::int64_t>& out);

// The trigger payload a device receives (DevicePayload) with the members of `overrides.data`
// (an object) written over it.
Result<OrderedJson> PayloadWithDataOverride(const PushMessage& message);

// A refusal for content larger than `limit` bytes (MESSAGE_TOO_LARGE), else Ok.
Status CheckContentSize(std::string_view provider, std::size_t size, std::size_t limit);

}  // namespace herald::providers
