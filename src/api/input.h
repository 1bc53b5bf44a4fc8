// Reading untrusted JSON request bodies into typed values, with 400 errors that name the field.
#pragma once

#include <initializer_list>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/json.h"
#include "core/status.h"
#include "providers/registry.h"
#include "server/http.h"
#include "store/store.h"

namespace herald::api {

// The body as a JSON object. An empty body is `{}` when `allow_empty`; anything that is not an
// object, malformed JSON, invalid UTF-8 or too-deep nesting is InvalidArgument.
Result<Json> ParseObjectBody(const server::Request& request, bool allow_empty = false);

// InvalidArgument naming the first member of `object` that is not in `allowed`
// ("property foo should not exist", as Novu's validator words it).
Status RejectUnknownFields(const Json& object, std::span<const std::string_view> allowed,
                           std::string_view prefix = "");
inline Status RejectUnknownFields(const Json& object,
                                  std::initializer_list<std::string_view> allowed,
                                  std::string_view prefix = "") {
  return RejectUnknownFields(object, std::span(allowed.begin(), allowed.size()), prefix);
}

// Typed member readers. Absent -> nullopt; wrong type -> InvalidArgument "<field> must be a
// string". `field` is the name used in messages (e.g. "credentials.webhookUrl").
Result<std::optional<std::string>> OptString(const Json& object, std::string_view key,
                                             std::string_view field = {});
// Like OptString but also accepts null (-> engaged nullopt): for nullable profile fields.
Result<std::optional<std::optional<std::string>>> OptNullableString(const Json& object,
                                                                    std::string_view key,
                                                                    std::string_view field = {});
Result<std::optional<bool>> OptBool(const Json& object, std::string_view key);
Result<std::string> RequiredString(const Json& object, std::string_view key,
                                   std::string_view field = {});
Result<std::optional<std::vector<std::string>>> OptStringArray(const Json& object,
                                                               std::string_view key,
                                                               std::string_view field = {});

// Identifiers from paths or bodies: non-empty, at most 256 bytes, no control characters.
Status CheckId(std::string_view value, std::string_view field);

// True for Novu's channel types: in_app, email, sms, chat, push, tool.
bool IsNovuChannelType(std::string_view channel);

// A `true`/`false` query flag; `fallback` when absent, InvalidArgument otherwise.
Result<bool> QueryBool(const server::Request& request, std::string_view key, bool fallback);

// The subscriber profile members of `body` (names, email, phone, avatar, locale, timezone:
// nullable strings of at most 1024 characters; data: object or null). Members that are absent
// stay unset; `prefix` goes before field names in messages ("to[2].").
Result<store::SubscriberPatch> DecodeProfile(const Json& body, std::string_view prefix = "");

// A subscriber to create or update as POST /v1/subscribers takes it: `subscriberId` (required,
// CheckId) and the profile members (DecodeProfile); other members are not read. `prefix` goes
// before field names in messages ("subscribers[3].").
struct NewSubscriber {
  std::string subscriber_id;
  store::SubscriberPatch profile;
};
Result<NewSubscriber> DecodeNewSubscriber(const Json& body, std::string_view prefix = "");

// A push channel with its credentials, as a trigger's subscriber carries it just in time (Novu's
// `channels[]` item): {providerId, integrationIdentifier?, credentials?: {deviceTokens?,
// webhookUrl?}}. The tokens are checked and made canonical for the provider (NormalizeTokens),
// as PUT /v1/subscribers/{id}/credentials checks them; `at` names the item in messages
// ("to.channels[0]").
Result<store::JitChannel> DecodeJitChannel(const Json& channel, const std::string& at,
                                           const providers::TokenPolicy& policy);

// The push provider named `id`, or InvalidArgument naming `field`.
Result<const providers::ProviderSpec*> RequirePushProvider(const std::string& id,
                                                           std::string_view field);

// Canonical device tokens for `spec`, de-duplicated by identity (first kept, order kept);
// InvalidArgument names the bad element ("<field>[3]: ...").
Result<std::vector<store::DeviceToken>> NormalizeTokens(const providers::ProviderSpec& spec,
                                                        const std::vector<std::string>& tokens,
                                                        const providers::TokenPolicy& policy,
                                                        std::string_view field);

// Lowercase letters and digits with single '-' between words ("Order shipped!" -> "order-shipped");
// `fallback` when nothing is left.
std::string Slugify(std::string_view name, std::string_view fallback);

// Novu's cursor paging query: limit (1..100, default 10), after, before, orderBy (createdAt,
// updatedAt, _id), orderDirection (ASC, DESC).
Result<store::PageRequest> DecodeCursorPage(const server::Request& request);

// Query parameter helpers: integers within [min, max] (InvalidArgument otherwise).
Result<std::optional<long long>> QueryInt(const server::Request& request, std::string_view key,
                                          long long min, long long max);

}  // namespace herald::api
