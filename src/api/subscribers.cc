// /v2/subscribers, /v1/subscribers and device-token credentials (novu-api.md §2.1, §4).
#include <set>

#include "api/api.h"
#include "api/input.h"
#include "server/error_reply.h"
#include "wire/wire.h"

namespace herald::api {
namespace {

constexpr std::string_view kProfileFields[] = {"firstName", "lastName", "email",    "phone",
                                               "avatar",    "locale",   "timezone", "data"};
constexpr std::string_view kCreateV2Fields[] = {"subscriberId", "firstName", "lastName",
                                                "email",        "phone",     "avatar",
                                                "locale",       "timezone",  "data"};

Result<store::SubscriberPatch> DecodeProfile(const Json& body) {
  store::SubscriberPatch p;
  std::pair<const char*, std::optional<std::optional<std::string>>*> fields[] = {
      {"firstName", &p.first_name}, {"lastName", &p.last_name}, {"email", &p.email},
      {"phone", &p.phone},          {"avatar", &p.avatar},      {"locale", &p.locale},
      {"timezone", &p.timezone}};
  for (auto& [key, target] : fields) {
    ASSIGN_OR_RETURN(*target, OptNullableString(body, key));
    if (*target && **target && (**target)->size() > 1024) {
      return Status::InvalidArgument(std::string(key) + " must be at most 1024 characters");
    }
  }
  if (auto it = body.find("data"); it != body.end()) {
    if (it->is_null()) {
      p.data = std::optional<Json>();
    } else if (it->is_object()) {
      p.data = std::optional<Json>(*it);
    } else {
      return Status::InvalidArgument("data must be an object");
    }
  }
  return p;
}

Result<bool> QueryBool(const server::Request& r, std::string_view key, bool fallback) {
  const std::string* raw = r.Query(key);
  if (!raw) return fallback;
  if (*raw == "true") return true;
  if (*raw == "false") return false;
  return Status::InvalidArgument(std::string(key) + " must be true or false");
}

Json Deleted() { return {{"acknowledged", true}, {"status", "deleted"}}; }

}  // namespace

Api::Reply Api::CreateSubscriberV2(Req& r, const Env& env) {
  ASSIGN_OR_RETURN(Json body, ParseObjectBody(r));
  RETURN_IF_ERROR(RejectUnknownFields(body, kCreateV2Fields));
  ASSIGN_OR_RETURN(std::string subscriber_id, RequiredString(body, "subscriberId"));
  RETURN_IF_ERROR(CheckId(subscriber_id, "subscriberId"));
  ASSIGN_OR_RETURN(bool fail_if_exists, QueryBool(r, "failIfExists", false));
  ASSIGN_OR_RETURN(store::SubscriberPatch profile, DecodeProfile(body));
  bool created = false;
  Result<store::Subscriber> sub =
      store_.UpsertSubscriber(env.id, subscriber_id, profile, fail_if_exists, &created);
  if (!sub.ok() && sub.status().code() == Code::kConflict) {
    // The SDK parses this 409 as a SubscriberResponseDto: the body is the existing subscriber.
    ASSIGN_OR_RETURN(store::Subscriber existing, store_.GetSubscriber(env.id, subscriber_id));
    return sub.take_status().WithExtra(wire::SubscriberJson(existing, env.organization_id));
  }
  if (!sub.ok()) return sub.take_status();
  return server::DataReply(wire::SubscriberJson(*sub, env.organization_id), 201);
}

Api::Reply Api::GetSubscriber(Req& r, const Env& env) {
  ASSIGN_OR_RETURN(store::Subscriber sub, store_.GetSubscriber(env.id, r.Param("subscriberId")));
  return server::DataReply(wire::SubscriberJson(sub, env.organization_id));
}

Api::Reply Api::PatchSubscriberV2(Req& r, const Env& env) {
  ASSIGN_OR_RETURN(Json body, ParseObjectBody(r, /*allow_empty=*/true));
  RETURN_IF_ERROR(RejectUnknownFields(body, kProfileFields));
  ASSIGN_OR_RETURN(store::SubscriberPatch patch, DecodeProfile(body));
  ASSIGN_OR_RETURN(store::Subscriber sub,
                   store_.PatchSubscriber(env.id, r.Param("subscriberId"), patch));
  return server::DataReply(wire::SubscriberJson(sub, env.organization_id));
}

Api::Reply Api::DeleteSubscriberV2(Req& r, const Env& env) {
  RETURN_IF_ERROR(store_.DeleteSubscriber(env.id, r.Param("subscriberId")));
  return server::DataReply(Deleted());
}

Api::Reply Api::SearchSubscribers(Req& r, const Env& env) {
  ASSIGN_OR_RETURN(store::PageRequest page, DecodeCursorPage(r));
  store::SubscriberFilter filter;
  if (const std::string* v = r.Query("email")) filter.email = *v;
  if (const std::string* v = r.Query("name")) filter.name = *v;
  if (const std::string* v = r.Query("phone")) filter.phone = *v;
  if (const std::string* v = r.Query("subscriberId")) filter.subscriber_id = *v;
  ASSIGN_OR_RETURN(store::Page<store::Subscriber> result,
                   store_.SearchSubscribers(env.id, filter, page));
  return server::JsonReply(wire::CursorPageJson(result, [&](const store::Subscriber& s) {
    return wire::SubscriberJson(s, env.organization_id);
  }));
}

Api::Reply Api::CreateSubscriberV1(Req& r, const Env& env) {
  ASSIGN_OR_RETURN(Json body, ParseObjectBody(r));
  ASSIGN_OR_RETURN(std::string subscriber_id, RequiredString(body, "subscriberId"));
  RETURN_IF_ERROR(CheckId(subscriber_id, "subscriberId"));
  ASSIGN_OR_RETURN(store::SubscriberPatch profile, DecodeProfile(body));
  bool created = false;
  ASSIGN_OR_RETURN(store::Subscriber sub,
                   store_.UpsertSubscriber(env.id, subscriber_id, profile,
                                           /*fail_if_exists=*/false, &created));
  return server::DataReply(wire::SubscriberJson(sub, env.organization_id), 201);
}

Api::Reply Api::UpdateSubscriberV1(Req& r, const Env& env) {
  ASSIGN_OR_RETURN(Json body, ParseObjectBody(r, /*allow_empty=*/true));
  ASSIGN_OR_RETURN(store::SubscriberPatch patch, DecodeProfile(body));
  ASSIGN_OR_RETURN(store::Subscriber sub,
                   store_.PatchSubscriber(env.id, r.Param("subscriberId"), patch));
  return server::DataReply(wire::SubscriberJson(sub, env.organization_id));
}

Api::Reply Api::DeleteSubscriberV1(Req& r, const Env& env) {
  RETURN_IF_ERROR(store_.DeleteSubscriber(env.id, r.Param("subscriberId")));
  return server::DataReply(Deleted());
}

Api::Reply Api::PutCredentials(Req& r, const Env& env) {
  return UpdateCredentials(r, env, store::TokenWriteMode::kReplace);
}

Api::Reply Api::PatchCredentials(Req& r, const Env& env) {
  return UpdateCredentials(r, env, store::TokenWriteMode::kAppend);
}

Api::Reply Api::UpdateCredentials(Req& r, const Env& env, store::TokenWriteMode mode) {
  ASSIGN_OR_RETURN(Json body, ParseObjectBody(r));
  RETURN_IF_ERROR(
      RejectUnknownFields(body, {"providerId", "integrationIdentifier", "credentials"}));
  store::CredentialsUpdate update;
  update.mode = mode;
  update.max_tokens = options_.max_tokens_per_channel;
  ASSIGN_OR_RETURN(update.provider_id, RequiredString(body, "providerId"));
  const providers::ProviderSpec* spec = providers::FindProvider(update.provider_id);
  if (!spec) {
    return Status::InvalidArgument("providerId " + update.provider_id +
                                   " is not a supported push provider");
  }
  ASSIGN_OR_RETURN(update.integration_identifier, OptString(body, "integrationIdentifier"));
  auto credentials = body.find("credentials");
  if (credentials == body.end() || !credentials->is_object()) {
    return Status::InvalidArgument("credentials must be an object");
  }
  ASSIGN_OR_RETURN(update.webhook_url,
                   OptString(*credentials, "webhookUrl", "credentials.webhookUrl"));
  ASSIGN_OR_RETURN(update.channel, OptString(*credentials, "channel", "credentials.channel"));
  ASSIGN_OR_RETURN(std::optional<std::vector<std::string>> raw_tokens,
                   OptStringArray(*credentials, "deviceTokens", "credentials.deviceTokens"));
  // Novu: leaving deviceTokens out resets them to [] (§4); canonicalise and de-duplicate the rest.
  std::vector<store::DeviceToken> tokens;
  std::set<std::string> seen;
  for (std::size_t i = 0; raw_tokens && i < raw_tokens->size(); ++i) {
    Result<std::string> token = spec->NormalizeDeviceToken((*raw_tokens)[i], options_.token_policy);
    if (!token.ok()) {
      return Status::InvalidArgument("credentials.deviceTokens[" + std::to_string(i) +
                                     "]: " + token.status().message());
    }
    std::string identity = spec->TokenIdentity(*token);
    if (!seen.insert(identity).second) continue;
    store::DeviceToken t;
    t.token = std::move(*token);
    t.identity = std::move(identity);
    tokens.push_back(std::move(t));
  }
  if (tokens.size() > update.max_tokens) {
    return Status::InvalidArgument("Device tokens limit exceeded: a channel holds at most " +
                                   std::to_string(update.max_tokens) + " tokens")
        .WithExtra({{"currentCount", tokens.size()}, {"limit", update.max_tokens}});
  }
  update.tokens = std::move(tokens);
  ASSIGN_OR_RETURN(store::Subscriber sub,
                   store_.UpdateCredentials(env.id, r.Param("subscriberId"), update));
  return server::DataReply(wire::SubscriberJson(sub, env.organization_id));
}

Api::Reply Api::DeleteCredentials(Req& r, const Env& env) {
  RETURN_IF_ERROR(CheckId(r.Param("providerId"), "providerId"));
  RETURN_IF_ERROR(store_.DeleteCredentials(env.id, r.Param("subscriberId"), r.Param("providerId")));
  server::Reply reply;
  reply.status = 204;
  return reply;
}

Api::Reply Api::ListDevices(Req& r, const Env& env) {
  ASSIGN_OR_RETURN(store::Subscriber sub, store_.GetSubscriber(env.id, r.Param("subscriberId")));
  return server::DataReply(wire::DevicesJson(sub));
}

}  // namespace herald::api
