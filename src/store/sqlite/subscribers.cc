// Subscribers and their device tokens (credentials): profiles, search, and the push channels
// with their tokens.
#include <algorithm>
#include <set>
#include <string>

#include "core/ids.h"
#include "store/sqlite/internal.h"
#include "store/sqlite/paging.h"
#include "store/sqlite/rows.h"
#include "store/sqlite/sqlite_store.h"

namespace herald::store::sqlite {
namespace {

constexpr std::string_view kTokenRemoved =
    "the device token was removed before the message was sent";

std::vector<DeviceToken> LoadTokens(Db& db, const std::string& channel_pk) {
  std::vector<DeviceToken> tokens;
  Stmt s = db.Prepare("SELECT " + std::string(kTokenColumns) +
                      " FROM device_tokens WHERE channel_pk = ? ORDER BY position");
  s.Bind(1, channel_pk);
  while (s.Step()) tokens.push_back(ReadTokenRow(s, 0));
  return tokens;
}

Status LoadSubscriberDetails(Db& db, Subscriber& sub) {
  {
    // Channels with their tokens in one statement (it runs for every trigger's subscriber): a
    // row per token, or one with NULL token columns for a channel without tokens.
    Stmt s = db.Prepare(
        "SELECT c.id, c.integration_id, i.identifier, c.provider_id, c.webhook_url, "
        "c.chat_channel, i.active, dt.token, dt.identity, dt.status, dt.created_at, "
        "dt.last_active_at, dt.last_failure_reason, dt.registered_at, dt.status_changed_at "
        "FROM subscriber_channels c "
        "JOIN integrations i ON i.id = c.integration_id "
        "LEFT JOIN device_tokens dt ON dt.channel_pk = c.id "
        "WHERE c.subscriber_pk = ? ORDER BY c.created_at, c.id, dt.position");
    s.Bind(1, sub.id);
    while (s.Step()) {
      if (sub.channels.empty() || sub.channels.back().id != s.Text(0)) {
        SubscriberChannel ch;
        ch.id = s.Text(0);
        ch.integration_id = s.Text(1);
        ch.integration_identifier = s.Text(2);
        ch.provider_id = s.Text(3);
        ch.webhook_url = s.OptText(4);
        ch.channel = s.OptText(5);
        ch.integration_active = s.Int(6) != 0;
        sub.channels.push_back(std::move(ch));
      }
      if (!s.IsNull(7)) sub.channels.back().tokens.push_back(ReadTokenRow(s, 7));
    }
    RETURN_IF_ERROR(s.status());
  }
  Stmt s = db.Prepare(
      "SELECT t.topic_key FROM topic_subscriptions ts JOIN topics t ON t.id = ts.topic_id "
      "WHERE ts.subscriber_pk = ? ORDER BY t.topic_key");
  s.Bind(1, sub.id);
  while (s.Step()) sub.topics.push_back(s.Text(0));
  return s.status();
}

void ApplyPatch(Subscriber& sub, const SubscriberPatch& p) {
  SubscriberProfile& pr = sub.profile;
  if (p.first_name) pr.first_name = *p.first_name;
  if (p.last_name) pr.last_name = *p.last_name;
  if (p.email) pr.email = *p.email;
  if (p.phone) pr.phone = *p.phone;
  if (p.avatar) pr.avatar = *p.avatar;
  if (p.locale) pr.locale = *p.locale;
  if (p.timezone) pr.timezone = *p.timezone;
  if (p.data) pr.data = *p.data;
}

Status SaveProfile(Db& db, const Subscriber& sub, bool insert) {
  const char* sql =
      insert ? "INSERT INTO subscribers (first_name, last_name, email, phone, avatar, locale, "
               "timezone, data, updated_at, created_at, id, environment_id, subscriber_id) "
               "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
             : "UPDATE subscribers SET first_name = ?, last_name = ?, email = ?, phone = ?, "
               "avatar = ?, locale = ?, timezone = ?, data = ?, updated_at = ? "
               "WHERE ? IS NOT NULL AND id = ? AND environment_id = ? AND subscriber_id = ?";
  const SubscriberProfile& p = sub.profile;
  Stmt s = db.Prepare(sql);
  s.Bind(1, p.first_name).Bind(2, p.last_name).Bind(3, p.email).Bind(4, p.phone);
  s.Bind(5, p.avatar).Bind(6, p.locale).Bind(7, p.timezone).Bind(8, JsonColumn(p.data));
  s.Bind(9, static_cast<std::int64_t>(sub.updated_at));
  s.Bind(10, static_cast<std::int64_t>(sub.created_at));
  s.Bind(11, sub.id).Bind(12, sub.environment_id).Bind(13, sub.subscriber_id);
  return s.Exec();
}

}  // namespace

Status TokenLimitExceeded(std::size_t count, std::size_t limit) {
  return Status::InvalidArgument("Device tokens limit exceeded: a channel holds at most " +
                                 std::to_string(limit) + " tokens")
      .WithExtra({{"currentCount", count}, {"limit", limit}});
}

Result<Subscriber> LoadSubscriber(Db& db, std::string_view env, std::string_view subscriber_id) {
  Stmt s = db.Prepare(std::string("SELECT ") + std::string(kSubscriberColumns) +
                      " FROM subscribers WHERE environment_id = ? AND subscriber_id = ?");
  s.Bind(1, env).Bind(2, subscriber_id);
  if (!s.Step()) {
    if (!s.status().ok()) return s.status();
    return Status::NotFound("Subscriber '" + std::string(subscriber_id) + "' was not found");
  }
  Subscriber sub = ReadSubscriberRow(s);
  RETURN_IF_ERROR(LoadSubscriberDetails(db, sub));
  return sub;
}

std::optional<std::string> FindSubscriberPk(Db& db, std::string_view env,
                                            std::string_view subscriber_id) {
  Stmt s = db.Prepare("SELECT id FROM subscribers WHERE environment_id = ? AND subscriber_id = ?");
  s.Bind(1, env).Bind(2, subscriber_id);
  if (!s.Step()) return std::nullopt;
  return s.Text(0);
}

Result<Subscriber> UpsertInTx(Db& db, std::string_view env, std::string_view subscriber_id,
                              const SubscriberPatch& profile, bool fail_if_exists, bool* created) {
  Result<Subscriber> existing = LoadSubscriber(db, env, subscriber_id);
  if (existing.ok()) {
    *created = false;
    if (fail_if_exists) {
      return Status::Conflict("Subscriber with subscriberId: " + std::string(subscriber_id) +
                              " already exists");
    }
    if (profile.empty()) return existing;
    Subscriber sub = std::move(existing.value());
    ApplyPatch(sub, profile);
    sub.updated_at = NowMs();
    RETURN_IF_ERROR(SaveProfile(db, sub, /*insert=*/false));
    return sub;
  }
  if (existing.status().code() != Code::kNotFound) return existing.take_status();
  *created = true;
  Subscriber sub;
  sub.id = NewObjectId();
  sub.environment_id = std::string(env);
  sub.subscriber_id = std::string(subscriber_id);
  ApplyPatch(sub, profile);
  sub.created_at = sub.updated_at = NowMs();
  RETURN_IF_ERROR(SaveProfile(db, sub, /*insert=*/true));
  return sub;
}

Result<Subscriber> SqliteStore::UpsertSubscriber(std::string_view env,
                                                 std::string_view subscriber_id,
                                                 const SubscriberPatch& profile,
                                                 bool fail_if_exists, bool* created) {
  return Write<Subscriber>(
      [&](Db& db) { return UpsertInTx(db, env, subscriber_id, profile, fail_if_exists, created); });
}

Result<Subscriber> SqliteStore::GetSubscriber(std::string_view env,
                                              std::string_view subscriber_id) {
  return Read([&](Db& db) { return LoadSubscriber(db, env, subscriber_id); });
}

Result<Subscriber> SqliteStore::PatchSubscriber(std::string_view env,
                                                std::string_view subscriber_id,
                                                const SubscriberPatch& patch) {
  return Write<Subscriber>([&](Db& db) -> Result<Subscriber> {
    ASSIGN_OR_RETURN(Subscriber sub, LoadSubscriber(db, env, subscriber_id));
    if (patch.empty()) return sub;
    ApplyPatch(sub, patch);
    sub.updated_at = NowMs();
    RETURN_IF_ERROR(SaveProfile(db, sub, /*insert=*/false));
    return sub;
  });
}

Status SqliteStore::DeleteSubscriber(std::string_view env, std::string_view subscriber_id) {
  return WriteStatus([&](Db& db) -> Status {
    Stmt s = db.Prepare("DELETE FROM subscribers WHERE environment_id = ? AND subscriber_id = ?");
    s.Bind(1, env).Bind(2, subscriber_id);
    RETURN_IF_ERROR(s.Exec());
    if (db.Changes() == 0) {
      return Status::NotFound("Subscriber '" + std::string(subscriber_id) + "' was not found");
    }
    return FailUnsent(db, "environment_id = ? AND subscriber_id = ?",
                      {std::string(env), std::string(subscriber_id)}, "subscriber_deleted",
                      "the subscriber was deleted before the message was sent");
  });
}

Result<Page<Subscriber>> SqliteStore::SearchSubscribers(std::string_view env,
                                                        const SubscriberFilter& filter,
                                                        const PageRequest& request) {
  return Read([&](Db& db) -> Result<Page<Subscriber>> {
    std::string from = " FROM subscribers WHERE environment_id = ?";
    std::vector<std::string> params{std::string(env)};
    if (filter.email) from += " AND email = ?", params.push_back(*filter.email);
    if (filter.phone) from += " AND phone = ?", params.push_back(*filter.phone);
    if (filter.subscriber_id) {
      from += " AND subscriber_id = ?", params.push_back(*filter.subscriber_id);
    }
    if (filter.name) {
      from +=
          " AND (COALESCE(first_name, '') || ' ' || COALESCE(last_name, '')) LIKE ? ESCAPE '\\'";
      params.push_back(ContainsPattern(*filter.name));
    }
    ASSIGN_OR_RETURN(Page<Subscriber> page,
                     KeysetPage<Subscriber>(db, "subscribers", kSubscriberColumns, from, params,
                                            request, ReadSubscriberRow));
    for (Subscriber& sub : page.items) RETURN_IF_ERROR(LoadSubscriberDetails(db, sub));
    return page;
  });
}

Result<std::string> FindActiveIntegration(Db& db, std::string_view env,
                                          const std::string& provider_id,
                                          const std::optional<std::string>& identifier) {
  Stmt find = db.Prepare(
      "SELECT id FROM integrations WHERE environment_id = ? AND provider_id = ? AND "
      "active = 1 AND (? IS NULL OR identifier = ?) ORDER BY created_at DESC, id DESC LIMIT 1");
  find.Bind(1, env).Bind(2, provider_id).Bind(3, identifier).Bind(4, identifier);
  if (find.Step()) return find.Text(0);
  RETURN_IF_ERROR(find.status());
  if (identifier) {
    return Status::InvalidArgument("Integration with identifier " + *identifier + " and provider " +
                                   provider_id + " is not active or does not exist.");
  }
  return Status::InvalidArgument("Subscribers environment (" + std::string(env) +
                                 ") do not have active " + provider_id + " integration.");
}

Status ApplyCredentials(Db& db, std::string_view env, const std::string& sub_pk,
                        const CredentialsUpdate& update, EpochMs now) {
  ASSIGN_OR_RETURN(
      std::string integration_id,
      FindActiveIntegration(db, env, update.provider_id, update.integration_identifier));

  std::string channel_pk;
  {
    Stmt s = db.Prepare(
        "SELECT id FROM subscriber_channels WHERE subscriber_pk = ? AND integration_id = ?");
    s.Bind(1, sub_pk).Bind(2, integration_id);
    if (s.Step()) channel_pk = s.Text(0);
  }
  if (channel_pk.empty()) {
    channel_pk = NewObjectId();
    Stmt s = db.Prepare(
        "INSERT INTO subscriber_channels (id, subscriber_pk, integration_id, provider_id, "
        "webhook_url, chat_channel, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
    s.Bind(1, channel_pk).Bind(2, sub_pk).Bind(3, integration_id).Bind(4, update.provider_id);
    s.Bind(5, update.webhook_url).Bind(6, update.channel);
    s.Bind(7, static_cast<std::int64_t>(now)).Bind(8, static_cast<std::int64_t>(now));
    RETURN_IF_ERROR(s.Exec());
  } else {
    Stmt s = db.Prepare(
        "UPDATE subscriber_channels SET webhook_url = COALESCE(?, webhook_url), "
        "chat_channel = COALESCE(?, chat_channel), updated_at = ? WHERE id = ?");
    s.Bind(1, update.webhook_url).Bind(2, update.channel);
    s.Bind(3, static_cast<std::int64_t>(now)).Bind(4, channel_pk);
    RETURN_IF_ERROR(s.Exec());
  }

  // Tokens: PUT replaces, PATCH appends (existing order first); identity de-duplicates.
  // Re-registering a token keeps its history but makes it active again.
  std::vector<DeviceToken> existing = LoadTokens(db, channel_pk);
  std::vector<DeviceToken> wanted;
  std::set<std::string> seen;
  auto add = [&](const DeviceToken& t) {
    if (seen.insert(t.identity).second) wanted.push_back(t);
  };
  if (update.mode == TokenWriteMode::kAppend) {
    for (const DeviceToken& t : existing) add(t);
  }
  for (const DeviceToken& t : update.tokens.value_or(std::vector<DeviceToken>{})) {
    auto old = std::find_if(existing.begin(), existing.end(),
                            [&](const DeviceToken& e) { return e.identity == t.identity; });
    if (old != existing.end()) {
      DeviceToken merged = *old;
      merged.token = t.token;
      if (merged.status != TokenStatus::kActive) merged.status_changed_at = now;
      merged.status = TokenStatus::kActive;
      merged.last_failure_reason.reset();
      merged.registered_at = now;
      if (update.mode == TokenWriteMode::kAppend) {
        // Already placed by the loop above; refresh it in place.
        auto placed = std::find_if(wanted.begin(), wanted.end(),
                                   [&](const DeviceToken& w) { return w.identity == t.identity; });
        *placed = merged;
      } else {
        add(merged);
      }
    } else {
      DeviceToken fresh = t;
      fresh.created_at = now;
      fresh.status = TokenStatus::kActive;
      add(fresh);
    }
  }
  if (wanted.size() > update.max_tokens) {
    return TokenLimitExceeded(wanted.size(), update.max_tokens);
  }
  // Messages not sent yet to a token this removes are failed: no retry goes to it.
  for (const DeviceToken& old : existing) {
    if (seen.count(old.identity)) continue;
    RETURN_IF_ERROR(FailUnsent(db, "channel_pk = ? AND token_identity = ?",
                               {channel_pk, old.identity}, "token_removed", kTokenRemoved));
  }
  Stmt clear = db.Prepare("DELETE FROM device_tokens WHERE channel_pk = ?");
  clear.Bind(1, channel_pk);
  RETURN_IF_ERROR(clear.Exec());
  for (std::size_t i = 0; i < wanted.size(); ++i) {
    const DeviceToken& t = wanted[i];
    Stmt s = db.Prepare(
        "INSERT INTO device_tokens (channel_pk, position, token, identity, status, created_at, "
        "last_active_at, last_failure_reason, registered_at, status_changed_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
    s.Bind(1, channel_pk).Bind(2, static_cast<std::int64_t>(i)).Bind(3, t.token);
    s.Bind(4, t.identity).Bind(5, TokenStatusName(t.status));
    s.Bind(6, static_cast<std::int64_t>(t.created_at));
    s.Bind(7, t.last_active_at).Bind(8, t.last_failure_reason);
    s.Bind(9, t.registered_at).Bind(10, t.status_changed_at);
    RETURN_IF_ERROR(s.Exec());
  }
  return Status::Ok();
}

Result<Subscriber> SqliteStore::UpdateCredentials(std::string_view env,
                                                  std::string_view subscriber_id,
                                                  const CredentialsUpdate& update) {
  return Write<Subscriber>([&](Db& db) -> Result<Subscriber> {
    std::optional<std::string> sub_pk = FindSubscriberPk(db, env, subscriber_id);
    if (!sub_pk) {
      return Status::InvalidArgument("SubscriberId: " + std::string(subscriber_id) + " not found");
    }
    EpochMs now = NowMs();
    RETURN_IF_ERROR(ApplyCredentials(db, env, *sub_pk, update, now));
    Stmt touch = db.Prepare("UPDATE subscribers SET updated_at = ? WHERE id = ?");
    touch.Bind(1, static_cast<std::int64_t>(now)).Bind(2, *sub_pk);
    RETURN_IF_ERROR(touch.Exec());
    return LoadSubscriber(db, env, subscriber_id);
  });
}

Status SqliteStore::DeleteCredentials(std::string_view env, std::string_view subscriber_id,
                                      std::string_view provider_id) {
  return WriteStatus([&](Db& db) -> Status {
    std::optional<std::string> sub_pk = FindSubscriberPk(db, env, subscriber_id);
    if (!sub_pk) {
      return Status::NotFound("Subscriber '" + std::string(subscriber_id) + "' was not found");
    }
    RETURN_IF_ERROR(FailUnsent(db,
                               "channel_pk IN (SELECT id FROM subscriber_channels WHERE "
                               "subscriber_pk = ? AND provider_id = ?)",
                               {*sub_pk, std::string(provider_id)}, "token_removed",
                               kTokenRemoved));
    Stmt s =
        db.Prepare("DELETE FROM subscriber_channels WHERE subscriber_pk = ? AND provider_id = ?");
    s.Bind(1, *sub_pk).Bind(2, provider_id);
    return s.Exec();
  });
}

}  // namespace herald::store::sqlite
