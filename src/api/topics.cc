// /v2/topics and their subscriptions (novu-api.md §2.1, §2.3).
#include "api/api.h"
#include "api/input.h"
#include "server/error_reply.h"
#include "wire/wire.h"

namespace herald::api {
namespace {

constexpr std::size_t kMaxSubscribersPerCall = 100;

// `subscriberIds: [id]` and `subscriptions: [id | {subscriberId, identifier?, name?}]`, merged.
Result<std::vector<std::string>> DecodeSubscriberIds(const Json& body) {
  ASSIGN_OR_RETURN(std::optional<std::vector<std::string>> ids,
                   OptStringArray(body, "subscriberIds"));
  std::vector<std::string> out = ids.value_or(std::vector<std::string>{});
  if (auto it = body.find("subscriptions"); it != body.end()) {
    if (!it->is_array()) return Status::InvalidArgument("subscriptions must be an array");
    for (const Json& item : *it) {
      if (item.is_string()) {
        out.push_back(item.get<std::string>());
      } else if (item.is_object() && item.contains("subscriberId") &&
                 item["subscriberId"].is_string()) {
        out.push_back(item["subscriberId"].get<std::string>());
      } else {
        return Status::InvalidArgument(
            "subscriptions items must be subscriber ids or objects with a subscriberId");
      }
    }
  }
  if (out.empty()) {
    return Status::InvalidArgument(
        "subscriberIds or subscriptions must name at least one subscriber");
  }
  if (out.size() > kMaxSubscribersPerCall) {
    return Status::InvalidArgument("at most " + std::to_string(kMaxSubscribersPerCall) +
                                   " subscribers per request");
  }
  for (const std::string& id : out) RETURN_IF_ERROR(CheckId(id, "subscriberId"));
  return out;
}

Json SubscriptionResultJson(const store::TopicSubscriptionResult& result, bool removing) {
  Json data = Json::array();
  for (const store::TopicSubscription& s : result.succeeded)
    data.push_back(wire::TopicSubscriptionJson(s));
  Json errors = Json::array();
  for (const std::string& id : result.missing_subscribers) {
    errors.push_back({{"subscriberId", id},
                      {"code", removing ? "SUBSCRIPTION_NOT_FOUND" : "SUBSCRIBER_NOT_FOUND"},
                      {"message", removing ? "Subscriber " + id + " is not subscribed to the topic"
                                           : "Subscriber with id " + id + " not found"}});
  }
  std::size_t total = result.succeeded.size() + result.missing_subscribers.size();
  return {{"data", std::move(data)},
          {"meta",
           {{"totalCount", total},
            {"successful", result.succeeded.size()},
            {"failed", result.missing_subscribers.size()}}},
          {"errors", std::move(errors)}};
}

}  // namespace

Api::Reply Api::CreateTopic(Req& r, const Env& env) {
  ASSIGN_OR_RETURN(Json body, ParseObjectBody(r));
  RETURN_IF_ERROR(RejectUnknownFields(body, {"key", "name", "data"}));
  store::Topic topic;
  topic.environment_id = env.id;
  ASSIGN_OR_RETURN(topic.key, RequiredString(body, "key"));
  RETURN_IF_ERROR(CheckId(topic.key, "key"));
  ASSIGN_OR_RETURN(topic.name, OptString(body, "name"));
  if (auto it = body.find("data"); it != body.end() && !it->is_null()) {
    if (!it->is_object()) return Status::InvalidArgument("data must be an object");
    topic.data = *it;
  }
  ASSIGN_OR_RETURN(bool fail_if_exists, QueryBool(r, "failIfExists", false));
  bool created = false;
  Result<store::Topic> result = store_.UpsertTopic(topic, fail_if_exists, &created);
  if (!result.ok() && result.status().code() == Code::kConflict) {
    // The SDK parses this 409 as a TopicResponseDto: the body is the existing topic.
    ASSIGN_OR_RETURN(store::Topic existing, store_.GetTopic(env.id, topic.key));
    return result.take_status().WithExtra(wire::TopicJson(existing));
  }
  if (!result.ok()) return result.take_status();
  return server::DataReply(wire::TopicJson(*result), created ? 201 : 200);
}

Api::Reply Api::ListTopics(Req& r, const Env& env) {
  ASSIGN_OR_RETURN(store::PageRequest page, DecodeCursorPage(r));
  std::optional<std::string> key, name;
  if (const std::string* v = r.Query("key")) key = *v;
  if (const std::string* v = r.Query("name")) name = *v;
  ASSIGN_OR_RETURN(store::Page<store::Topic> result, store_.ListTopics(env.id, key, name, page));
  return server::JsonReply(wire::CursorPageJson(result, wire::TopicJson));
}

Api::Reply Api::GetTopic(Req& r, const Env& env) {
  ASSIGN_OR_RETURN(store::Topic topic, store_.GetTopic(env.id, r.Param("key")));
  return server::DataReply(wire::TopicJson(topic));
}

Api::Reply Api::AddTopicSubscriptions(Req& r, const Env& env) {
  RETURN_IF_ERROR(CheckId(r.Param("key"), "key"));
  ASSIGN_OR_RETURN(Json body, ParseObjectBody(r));
  RETURN_IF_ERROR(RejectUnknownFields(
      body, {"subscriberIds", "subscriptions", "name", "context", "preferences"}));
  ASSIGN_OR_RETURN(std::vector<std::string> ids, DecodeSubscriberIds(body));
  ASSIGN_OR_RETURN(store::TopicSubscriptionResult result,
                   store_.AddTopicSubscribers(env.id, r.Param("key"), ids));
  return server::JsonReply(SubscriptionResultJson(result, /*removing=*/false), 201);
}

Api::Reply Api::ListTopicSubscriptions(Req& r, const Env& env) {
  ASSIGN_OR_RETURN(store::PageRequest page, DecodeCursorPage(r));
  std::optional<std::string> subscriber_id;
  if (const std::string* v = r.Query("subscriberId")) subscriber_id = *v;
  ASSIGN_OR_RETURN(store::Page<store::TopicSubscription> result,
                   store_.ListTopicSubscriptions(env.id, r.Param("key"), subscriber_id, page));
  return server::JsonReply(wire::CursorPageJson(result, wire::TopicSubscriptionJson));
}

Api::Reply Api::RemoveTopicSubscriptions(Req& r, const Env& env) {
  ASSIGN_OR_RETURN(Json body, ParseObjectBody(r));
  RETURN_IF_ERROR(RejectUnknownFields(body, {"subscriberIds", "subscriptions", "context"}));
  ASSIGN_OR_RETURN(std::vector<std::string> ids, DecodeSubscriberIds(body));
  ASSIGN_OR_RETURN(store::TopicSubscriptionResult result,
                   store_.RemoveTopicSubscribers(env.id, r.Param("key"), ids));
  return server::JsonReply(SubscriptionResultJson(result, /*removing=*/true));
}

}  // namespace herald::api
