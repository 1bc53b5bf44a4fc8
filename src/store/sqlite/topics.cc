// Topics and their subscriptions.
#include <string>

#include "core/ids.h"
#include "store/sqlite/internal.h"
#include "store/sqlite/paging.h"
#include "store/sqlite/rows.h"
#include "store/sqlite/sqlite_store.h"

namespace herald::store::sqlite {
namespace {

std::optional<TopicSubscription> LoadSubscription(Db& db, const Topic& topic,
                                                  const std::string& subscriber_pk) {
  Stmt s = db.Prepare(std::string(kSubscriptionSelect) +
                      "WHERE ts.topic_id = ? AND ts.subscriber_pk = ?");
  s.Bind(1, topic.id).Bind(2, subscriber_pk);
  if (!s.Step()) return std::nullopt;
  return ReadSubscriptionRow(s, topic);
}

}  // namespace

Result<Topic> InsertTopic(Db& db, Topic t) {
  if (t.id.empty()) t.id = NewObjectId();
  t.created_at = t.updated_at = NowMs();
  Stmt s = db.Prepare(
      "INSERT INTO topics (id, environment_id, topic_key, name, data, created_at, updated_at) "
      "VALUES (?, ?, ?, ?, ?, ?, ?)");
  s.Bind(1, t.id).Bind(2, t.environment_id).Bind(3, t.key).Bind(4, t.name);
  s.Bind(5, JsonColumn(t.data)).Bind(6, static_cast<std::int64_t>(t.created_at));
  s.Bind(7, static_cast<std::int64_t>(t.updated_at));
  RETURN_IF_ERROR(s.Exec());
  return t;
}

Result<Topic> LoadTopic(Db& db, std::string_view env, std::string_view key) {
  Stmt s = db.Prepare(std::string("SELECT ") + std::string(kTopicColumns) +
                      " FROM topics WHERE environment_id = ? AND topic_key = ?");
  s.Bind(1, env).Bind(2, key);
  if (!s.Step()) {
    if (!s.status().ok()) return s.status();
    return Status::NotFound("Topic with key '" + std::string(key) + "' was not found");
  }
  return ReadTopicRow(s);
}

Result<Topic> SqliteStore::UpsertTopic(const Topic& topic, bool fail_if_exists, bool* created) {
  return Write<Topic>([&](Db& db) -> Result<Topic> {
    Result<Topic> existing = LoadTopic(db, topic.environment_id, topic.key);
    if (existing.ok()) {
      *created = false;
      if (fail_if_exists) {
        return Status::Conflict("Topic exists with key " + topic.key);
      }
      Topic t = std::move(existing.value());
      if (!topic.name && !topic.data) return t;
      if (topic.name) t.name = topic.name;
      if (topic.data) t.data = topic.data;
      t.updated_at = NowMs();
      Stmt s = db.Prepare("UPDATE topics SET name = ?, data = ?, updated_at = ? WHERE id = ?");
      s.Bind(1, t.name).Bind(2, JsonColumn(t.data));
      s.Bind(3, static_cast<std::int64_t>(t.updated_at)).Bind(4, t.id);
      RETURN_IF_ERROR(s.Exec());
      return t;
    }
    if (existing.status().code() != Code::kNotFound) return existing.take_status();
    *created = true;
    return InsertTopic(db, topic);
  });
}

Result<Topic> SqliteStore::GetTopic(std::string_view env, std::string_view key) {
  return Read([&](Db& db) { return LoadTopic(db, env, key); });
}

Result<Page<Topic>> SqliteStore::ListTopics(std::string_view env, std::optional<std::string> key,
                                            std::optional<std::string> name,
                                            const PageRequest& request) {
  return Read([&](Db& db) -> Result<Page<Topic>> {
    std::string from = " FROM topics WHERE environment_id = ?";
    std::vector<std::string> params{std::string(env)};
    if (key) from += " AND topic_key = ?", params.push_back(*key);
    if (name) from += " AND name = ?", params.push_back(*name);
    ASSIGN_OR_RETURN(Page<Topic> page,
                     KeysetPage<Topic>(db, "topics", kTopicColumns, from, params, request,
                                       [](const Stmt& row) { return ReadTopicRow(row); }));
    return page;
  });
}

Result<TopicSubscriptionResult> SqliteStore::AddTopicSubscribers(
    std::string_view env, std::string_view key, const std::vector<std::string>& subscriber_ids) {
  return Write<TopicSubscriptionResult>([&](Db& db) -> Result<TopicSubscriptionResult> {
    Result<Topic> topic = LoadTopic(db, env, key);
    if (!topic.ok()) {
      if (topic.status().code() != Code::kNotFound) return topic.take_status();
      Topic fresh;
      fresh.environment_id = std::string(env);
      fresh.key = std::string(key);
      topic = InsertTopic(db, std::move(fresh));
      if (!topic.ok()) return topic.take_status();
    }
    TopicSubscriptionResult result;
    EpochMs now = NowMs();
    for (const std::string& id : subscriber_ids) {
      std::optional<std::string> pk = FindSubscriberPk(db, env, id);
      if (!pk) {
        result.missing_subscribers.push_back(id);
        continue;
      }
      Stmt s = db.Prepare(
          "INSERT INTO topic_subscriptions (id, topic_id, subscriber_pk, identifier, created_at, "
          "updated_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (topic_id, subscriber_pk) DO "
          "NOTHING");
      s.Bind(1, NewObjectId()).Bind(2, topic->id).Bind(3, *pk);
      s.Bind(4, std::string(key) + ":" + id).Bind(5, static_cast<std::int64_t>(now));
      s.Bind(6, static_cast<std::int64_t>(now));
      RETURN_IF_ERROR(s.Exec());
      if (auto sub = LoadSubscription(db, *topic, *pk)) result.succeeded.push_back(*sub);
    }
    return result;
  });
}

Result<TopicSubscriptionResult> SqliteStore::RemoveTopicSubscribers(
    std::string_view env, std::string_view key, const std::vector<std::string>& subscriber_ids) {
  return Write<TopicSubscriptionResult>([&](Db& db) -> Result<TopicSubscriptionResult> {
    ASSIGN_OR_RETURN(Topic topic, LoadTopic(db, env, key));
    TopicSubscriptionResult result;
    for (const std::string& id : subscriber_ids) {
      std::optional<std::string> pk = FindSubscriberPk(db, env, id);
      std::optional<TopicSubscription> sub;
      if (pk) sub = LoadSubscription(db, topic, *pk);
      if (!sub) {
        result.missing_subscribers.push_back(id);
        continue;
      }
      Stmt s = db.Prepare("DELETE FROM topic_subscriptions WHERE id = ?");
      s.Bind(1, sub->id);
      RETURN_IF_ERROR(s.Exec());
      result.succeeded.push_back(std::move(*sub));
    }
    return result;
  });
}

Result<Page<TopicSubscription>> SqliteStore::ListTopicSubscriptions(
    std::string_view env, std::string_view key, std::optional<std::string> subscriber_id,
    const PageRequest& request) {
  return Read([&](Db& db) -> Result<Page<TopicSubscription>> {
    ASSIGN_OR_RETURN(Topic topic, LoadTopic(db, env, key));
    std::string from = " FROM topic_subscriptions WHERE topic_id = ?";
    if (subscriber_id) {
      from +=
          " AND subscriber_pk IN (SELECT id FROM subscribers WHERE environment_id = ? AND "
          "subscriber_id = ?)";
    }
    auto bind_filters = [&](Stmt& s) {
      s.Bind(1, topic.id);
      if (subscriber_id) s.Bind(2, env).Bind(3, *subscriber_id);
    };
    Page<TopicSubscription> page;
    page.total_count = CountCapped(db, from, bind_filters, &page.total_count_capped);
    KeysetSql k = Keyset("topic_subscriptions", request, "ts.");
    std::string sql = std::string(kSubscriptionSelect) + "WHERE ts.topic_id = ?";
    if (subscriber_id) sql += " AND s.subscriber_id = ?";
    sql += k.where + k.order + " LIMIT " + std::to_string(request.limit + 1);
    Stmt s = db.Prepare(sql);
    int next = 1;
    s.Bind(next++, topic.id);
    if (subscriber_id) s.Bind(next++, *subscriber_id);
    if (!k.where.empty()) s.Bind(next, k.reversed ? *request.before : *request.after);
    std::vector<std::string> ids;
    while (s.Step()) {
      page.items.push_back(ReadSubscriptionRow(s, topic));
      ids.push_back(page.items.back().id);
    }
    if (!s.status().ok()) return s.status();
    FinishPage(page, request, k, std::move(ids));
    return page;
  });
}

}  // namespace herald::store::sqlite
