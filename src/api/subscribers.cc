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

Status Api::DeleteSubscriber(const Env& env, const std::string& subscriber_id) {
  RETURN_IF_ERROR(store_.DeleteSubscriber(env.id, subscriber_id));
  if (options_.on_unwanted) {
    options_.on_unwanted({env.id, std::nullopt, subscriber_id, std::nullopt, "subscriber_deleted",
                          "the subscriber was deleted before the message was sent"});
  }
  return Status::Ok();
}

Api::Reply Api::DeleteSubscriberV2(Req& r, const Env& env) {
  RETURN_IF_ERROR(DeleteSubscriber(env, r.Param("subscriberId")));
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
  ASSIGN_OR_RETURN(NewSubscriber fields, DecodeNewSubscriber(body));
  bool created = false;
  ASSIGN_OR_RETURN(store::Subscriber sub,
                   store_.UpsertSubscriber(env.id, fields.subscriber_id, fields.profile,
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
  RETURN_IF_ERROR(DeleteSubscriber(env, r.Param("subscriberId")));
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
  ASSIGN_OR_RETURN(const providers::ProviderSpec* spec,
                   RequirePushProvider(update.provider_id, "providerId"));
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
  // Novu: leaving deviceTokens out resets them to [] (§4). The store enforces the per-channel
  // limit on the final list, in the same transaction.
  ASSIGN_OR_RETURN(update.tokens,
                   NormalizeTokens(*spec, raw_tokens.value_or(std::vector<std::string>{}),
                                   options_.token_policy, "credentials.deviceTokens"));
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
