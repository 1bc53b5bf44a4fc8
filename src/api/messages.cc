// GET/DELETE /v1/messages and the activity feed GET /v1/notifications (novu-api.md §2.3).
#include "api/api.h"
#include "api/input.h"
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
  query.transaction_ids = r.QueryAll("transactionId");
  query.subscriber_ids = r.QueryAll("subscriberIds");
  long long total = 0;
  ASSIGN_OR_RETURN(std::vector<store::NotificationWithMessages> items,
                   store_.ListNotifications(query, &total));
  Json data = Json::array();
  for (const auto& item : items) data.push_back(wire::NotificationJson(item, env.organization_id));
  return OffsetPageReply(std::move(data), query.page, query.limit, total);
}

}  // namespace herald::api
