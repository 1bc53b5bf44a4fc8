// GET/DELETE /v1/messages and the activity feed GET /v1/notifications (novu-api.md §2.3).
#include <algorithm>
#include <utility>

#include "api/api.h"
#include "api/input.h"
#include "core/time.h"
#include "server/error_reply.h"
#include "wire/wire.h"

namespace herald::api {
namespace {

Status ReadPaging(const server::Request& r, int* page, int* limit) {
  ASSIGN_OR_RETURN(std::optional<long long> p, QueryInt(r, "page", 0, 1000000));
  ASSIGN_OR_RETURN(std::optional<long long> l, QueryInt(r, "limit", 1, 1000));
  *page = static_cast<int>(p.value_or(0));
  *limit = static_cast<int>(l.value_or(10));
  return Status::Ok();
}

// Novu's offset page: {data, hasMore, page, pageSize, totalCount}.
server::Reply OffsetPageReply(Json data, int page, int limit, long long total) {
  return server::JsonReply({{"data", std::move(data)},
                            {"hasMore", static_cast<long long>(page + 1) * limit < total},
                            {"page", page},
                            {"pageSize", limit},
                            {"totalCount", total}});
}

}  // namespace

Api::Reply Api::ListMessages(Req& r, const Env& env) {
  store::MessageQuery query;
  query.environment_id = env.id;
  RETURN_IF_ERROR(ReadPaging(r, &query.page, &query.limit));
  bool other_channel = false;
  if (const std::string* channel = r.Query("channel")) {
    if (!IsNovuChannelType(*channel)) {
      return Status::InvalidArgument(
          "channel must be one of: in_app, email, sms, chat, push, tool");
    }
    other_channel = *channel != "push";  // Herald only has push messages
  }
  if (const std::string* subscriber = r.Query("subscriberId")) query.subscriber_id = *subscriber;
  query.transaction_ids = r.QueryAll("transactionId");
  std::vector<store::Message> messages;
  long long total = 0;
  if (!other_channel) {
    ASSIGN_OR_RETURN(messages, store_.ListMessages(query, &total));
  }
  Json data = Json::array();
  for (const store::Message& m : messages)
    data.push_back(wire::MessageJson(m, env.organization_id));
  return OffsetPageReply(std::move(data), query.page, query.limit, total);
}

Api::Reply Api::DeleteMessage(Req& r, const Env& env) {
  RETURN_IF_ERROR(store_.DeleteMessage(env.id, r.Param("messageId")));
  return server::DataReply({{"acknowledged", true}, {"status", "deleted"}});
}

Api::Reply Api::ListNotifications(Req& r, const Env& env) {
  store::NotificationQuery query;
  query.environment_id = env.id;
  RETURN_IF_ERROR(ReadPaging(r, &query.page, &query.limit));
  // Herald's notifications are all push; a channel filter without push matches none of them.
  bool none = false;
  if (std::vector<std::string> channels = r.QueryAll("channels"); !channels.empty()) {
    for (const std::string& channel : channels) {
      if (!IsNovuChannelType(channel)) {
        return Status::InvalidArgument(
            "each value in channels must be one of: in_app, email, sms, chat, push, tool");
      }
    }
    none = std::find(channels.begin(), channels.end(), "push") == channels.end();
  }
  query.severities = r.QueryAll("severity");
  for (const std::string& severity : query.severities) {
    if (severity != "high" && severity != "medium" && severity != "low" && severity != "none") {
      return Status::InvalidArgument(
          "each value in severity must be one of: high, medium, low, none");
    }
  }
  // Herald has no contexts: no notification carries context keys.
  if (!r.QueryAll("contextKeys").empty()) none = true;
  query.transaction_ids = r.QueryAll("transactionId");
  query.subscriber_ids = r.QueryAll("subscriberIds");
  query.emails = r.QueryAll("emails");
  query.workflow_pks = r.QueryAll("templates");
  if (const std::string* search = r.Query("search"); search && !search->empty()) {
    query.search = *search;
  }
  if (const std::string* key = r.Query("topicKey"); key && !key->empty()) query.topic_key = *key;
  if (const std::string* id = r.Query("subscriptionId"); id && !id->empty()) {
    query.subscription_id = *id;
  }
  for (auto [name, field] :
       {std::pair{"after", &query.after}, std::pair{"before", &query.before}}) {
    if (const std::string* text = r.Query(name)) {
      *field = ParseTimestamp(*text);
      if (!*field) {
        return Status::InvalidArgument(std::string("Invalid \"") + name +
                                       "\" date: use ISO 8601, e.g. 2024-01-31T12:00:00Z");
      }
    }
  }
  if (query.after && query.before && *query.after > *query.before) {
    return Status::InvalidArgument(
        "Invalid date range: start date (after) must be earlier than end date (before)");
  }
  long long total = 0;
  std::vector<store::NotificationWithMessages> items;
  if (!none) {
    ASSIGN_OR_RETURN(items, store_.ListNotifications(query, &total));
  }
  Json data = Json::array();
  for (const auto& item : items) data.push_back(wire::NotificationJson(item, env.organization_id));
  return OffsetPageReply(std::move(data), query.page, query.limit, total);
}

}  // namespace herald::api
