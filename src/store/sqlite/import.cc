// Bulk import of subscribers: every subscriber an import yields, with its device tokens and topic
// memberships, written in one transaction.
//
// Subscribers are taken in batches of kBatch, and what is new is written with multi-row
// INSERT ... ON CONFLICT DO NOTHING statements, one per table and batch: a statement's fixed cost
// (cursors on the table and each of its indexes, foreign-key checks) is then paid once for many
// rows, which halves the cost of a row (21 -> 12 us per subscriber with a token and a topic,
// measured on this project's 2-core machine). Nothing is read for a subscriber that is new: the
// statement's change count says whether every row was. Only what already existed is read and
// updated row by row (its subscriber's id, its channel, the tokens that channel holds).
// Integrations and topics are looked up once per import. (No RETURNING: SQLite fills a temporary
// table for every statement that has one, which cost more than the insert itself.)
#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/ids.h"
#include "store/sqlite/internal.h"
#include "store/sqlite/rows.h"
#include "store/sqlite/sqlite_store.h"

namespace herald::store::sqlite {
namespace {

// Subscribers per batch, and rows per multi-row statement (at most 13 parameters a row: far
// below SQLite's limit of 32766 per statement).
constexpr std::size_t kBatch = 64;

// A statement for one table inserting `rows` rows: `head` + `rows` times `row` + `tail`.
struct MultiRow {
  std::string_view head, row, tail;
  int params;  // per row

  std::string Sql(std::size_t rows) const {
    std::string sql(head);
    for (std::size_t i = 0; i < rows; ++i) {
      if (i > 0) sql += ", ";
      sql += row;
    }
    sql += tail;
    return sql;
  }
};

// Profile columns first_name ... data: set or not, each as its own parameter.
constexpr MultiRow kSubscribers{
    "INSERT INTO subscribers (id, environment_id, subscriber_id, first_name, last_name, email, "
    "phone, avatar, locale, timezone, data, created_at, updated_at) VALUES ",
    "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    " ON CONFLICT (environment_id, subscriber_id) DO NOTHING", 13};

constexpr MultiRow kChannels{
    "INSERT INTO subscriber_channels (id, subscriber_pk, integration_id, provider_id, "
    "webhook_url, created_at, updated_at) VALUES ",
    "(?, ?, ?, ?, ?, ?, ?)", "", 7};

constexpr MultiRow kTokens{
    "INSERT INTO device_tokens (channel_pk, position, token, identity, status, created_at) "
    "VALUES ",
    "(?, ?, ?, ?, 'active', ?)", "", 5};

constexpr MultiRow kSubscriptions{
    "INSERT INTO topic_subscriptions (id, topic_id, subscriber_pk, identifier, created_at, "
    "updated_at) VALUES ",
    "(?, ?, ?, ?, ?, ?)", " ON CONFLICT (topic_id, subscriber_pk) DO NOTHING", 6};

// Patches an existing subscriber (?1: its id): the profile fields whose bit is set in ?12 (a bit
// per field, in the order of the columns).
constexpr std::string_view kPatchSubscriber =
    "UPDATE subscribers SET "
    "first_name = iif(?12 & 1, ?3, first_name), last_name = iif(?12 & 2, ?4, last_name), "
    "email = iif(?12 & 4, ?5, email), phone = iif(?12 & 8, ?6, phone), "
    "avatar = iif(?12 & 16, ?7, avatar), locale = iif(?12 & 32, ?8, locale), "
    "timezone = iif(?12 & 64, ?9, timezone), data = iif(?12 & 128, ?10, data), updated_at = ?11 "
    "WHERE id = ?1";

// A channel that may exist: one change if it is new.
constexpr std::string_view kInsertChannelIfNew =
    "INSERT INTO subscriber_channels (id, subscriber_pk, integration_id, provider_id, "
    "webhook_url, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6) "
    "ON CONFLICT (subscriber_pk, integration_id) DO NOTHING";

constexpr std::string_view kTouchChannel =
    "UPDATE subscriber_channels SET webhook_url = COALESCE(?2, webhook_url), updated_at = ?3 "
    "WHERE id = ?1";

// A token for a channel that holds some: one change if it is new (last, at position ?2).
constexpr std::string_view kInsertTokenIfNew =
    "INSERT INTO device_tokens (channel_pk, position, token, identity, status, created_at) "
    "VALUES (?1, ?2, ?3, ?4, 'active', ?5) ON CONFLICT (channel_pk, identity) DO NOTHING";

// A token given again is registered again, as ApplyCredentials does (subscribers.cc).
constexpr std::string_view kReregisterToken =
    "UPDATE device_tokens SET token = ?3, status = 'active', last_failure_reason = NULL, "
    "registered_at = ?4, status_changed_at = iif(status = 'active', status_changed_at, ?4) "
    "WHERE channel_pk = ?1 AND identity = ?2";

// `status` about `item`: "<where>: <prefix><message>", its code and extra members kept.
Status About(const ImportedSubscriber& item, std::string_view prefix, const Status& status) {
  return Status(status.code(), item.where + ": " + std::string(prefix) + status.message())
      .WithExtra(status.extra());
}

// Applies an import batch by batch inside its transaction, keeping what the import looked up
// (integrations, topics) and what it did (the receipt).
class Importer {
 public:
  Importer(Db& db, std::string_view env, std::size_t max_tokens)
      : db_(db), env_(env), max_tokens_(max_tokens), now_(NowMs()) {}

  // Writes `items` (at most kBatch), in order.
  Status Apply(std::span<const ImportedSubscriber> items) {
    RETURN_IF_ERROR(WriteSubscribers(items));
    RETURN_IF_ERROR(WriteChannels(items));
    return WriteSubscriptions(items);
  }

  ImportReceipt Take() { return std::move(receipt_); }

 private:
  // A channel of the batch: the item it belongs to (and its place there), its integration, and
  // its id once known.
  struct ChannelRow {
    std::size_t item, index;
    const JitChannel* channel;
    const std::string* integration_id;
    std::string id;
  };

  // Runs `table`'s insert for `count` rows, kBatch rows a statement (the rest one by one, so that
  // only two statements per table are ever prepared); `bind(stmt, first_param, row)` binds a row.
  // Returns how many rows were inserted.
  template <typename Bind>
  Result<std::size_t> InsertRows(const MultiRow& table, std::size_t count, Bind&& bind) {
    std::size_t inserted = 0;
    for (std::size_t done = 0; done < count;) {
      std::size_t rows = count - done >= kBatch ? kBatch : 1;
      Stmt s = db_.Prepare(rows == kBatch ? Sql(table) : table.Sql(1));
      for (std::size_t r = 0; r < rows; ++r) {
        bind(s, static_cast<int>(r) * table.params + 1, done + r);
      }
      RETURN_IF_ERROR(s.Exec());
      inserted += static_cast<std::size_t>(db_.Changes());
      done += rows;
    }
    return inserted;
  }

  // The kBatch-row statement of `table`, built once per import.
  const std::string& Sql(const MultiRow& table) {
    auto it = sql_.find(&table);
    if (it == sql_.end()) it = sql_.emplace(&table, table.Sql(kBatch)).first;
    return it->second;
  }

  // Inserts the batch's subscribers that are new, patches those that exist; fills pks_ and
  // created_.
  Status WriteSubscribers(std::span<const ImportedSubscriber> items) {
    const std::size_t n = items.size();
    pks_.resize(n);
    created_.assign(n, true);
    data_.resize(n);
    for (std::size_t i = 0; i < n; ++i) {
      pks_[i] = NewObjectId();
      const auto& data = items[i].profile.data;
      data_[i] = data ? JsonColumn(*data) : std::nullopt;
    }
    ASSIGN_OR_RETURN(std::size_t inserted,
                     InsertRows(kSubscribers, n, [&](Stmt& s, int p, std::size_t i) {
                       const ImportedSubscriber& item = items[i];
                       s.BindRef(p, pks_[i]).Bind(p + 1, env_).BindRef(p + 2, item.subscriber_id);
                       BindProfile(s, p + 3, item.profile, data_[i]);
                       s.Bind(p + 11, now_).Bind(p + 12, now_);
                     }));
    if (inserted < n) {
      // Some existed (or were named twice): their ids are read back (kBatch parameters, those
      // past the batch NULL, which matches nothing). A subscriber kept the id proposed for it
      // only where it was inserted, by the first item that named it.
      if (select_ids_.empty()) {
        select_ids_ =
            "SELECT subscriber_id, id FROM subscribers WHERE environment_id = ? AND "
            "subscriber_id IN (?";
        for (std::size_t i = 1; i < kBatch; ++i) select_ids_ += ", ?";
        select_ids_ += ")";
      }
      Stmt s = db_.Prepare(select_ids_);
      s.Bind(1, env_);
      for (std::size_t i = 0; i < n; ++i) {
        s.BindRef(static_cast<int>(i) + 2, items[i].subscriber_id);
      }
      std::unordered_map<std::string, std::string> ids;
      while (s.Step()) ids.emplace(s.Text(0), s.Text(1));
      RETURN_IF_ERROR(s.status());
      for (std::size_t i = 0; i < n; ++i) {
        auto it = ids.find(items[i].subscriber_id);
        if (it == ids.end()) return Status::Internal("imported subscriber not found");
        created_[i] = it->second == pks_[i];
        pks_[i] = it->second;
      }
    }
    for (std::size_t i = 0; i < n; ++i) {
      receipt_.item_created.push_back(created_[i]);
      ++(created_[i] ? receipt_.created : receipt_.updated);
      if (created_[i]) continue;
      Stmt s = db_.Prepare(kPatchSubscriber);
      s.BindRef(1, pks_[i]);
      std::int64_t mask = BindProfile(s, 3, items[i].profile, data_[i]);
      s.Bind(11, now_).Bind(12, mask);
      RETURN_IF_ERROR(s.Exec());
    }
    return Status::Ok();
  }

  // Binds first_name ... data from parameter `first` on, a field that is not set as NULL (a new
  // subscriber does not have it; a patch leaves it alone). Returns the set fields as a bit mask.
  static std::int64_t BindProfile(Stmt& s, int first, const SubscriberPatch& p,
                                  const std::optional<std::string>& data) {
    const std::optional<std::optional<std::string>>* texts[] = {
        &p.first_name, &p.last_name, &p.email, &p.phone, &p.avatar, &p.locale, &p.timezone};
    std::int64_t mask = 0;
    for (std::size_t i = 0; i < std::size(texts); ++i) {
      if (!*texts[i]) continue;
      mask |= std::int64_t{1} << i;
      s.BindRef(first + static_cast<int>(i), **texts[i]);
    }
    if (p.data) mask |= 128;
    s.BindRef(first + 7, data);
    return mask;
  }

  // A new subscriber's channels are new, and so are their tokens: inserted many rows a
  // statement. Any other channel may exist already and is written on its own, after them (it
  // may be one of them, named again later in the batch).
  Status WriteChannels(std::span<const ImportedSubscriber> items) {
    std::vector<ChannelRow> fresh, others;
    for (std::size_t i = 0; i < items.size(); ++i) {
      const ImportedSubscriber& item = items[i];
      for (std::size_t c = 0; c < item.channels.size(); ++c) {
        const JitChannel& channel = item.channels[c];
        std::string at = "channels[" + std::to_string(c) + "]: ";
        Result<const std::string*> integration = IntegrationId(channel);
        if (!integration.ok()) return About(item, at, integration.status());
        if (channel.tokens.size() > max_tokens_) {
          return About(item, at, TokenLimitExceeded(channel.tokens.size(), max_tokens_));
        }
        bool repeated = false;  // an earlier channel of this subscriber has the integration
        for (std::size_t e = 0; e < c && !repeated; ++e) {
          repeated = *IntegrationId(item.channels[e]).value() == **integration;
        }
        ChannelRow row{i, c, &channel, *integration, {}};
        if (created_[i] && !repeated) {
          row.id = NewObjectId();
          fresh.push_back(std::move(row));
        } else {
          others.push_back(std::move(row));
        }
      }
    }
    // No ON CONFLICT: these cannot exist, and if one did the import would fail rather than
    // lose its tokens.
    Result<std::size_t> channels =
        InsertRows(kChannels, fresh.size(), [&](Stmt& s, int p, std::size_t r) {
          const ChannelRow& row = fresh[r];
          s.BindRef(p, row.id).BindRef(p + 1, pks_[row.item]).BindRef(p + 2, *row.integration_id);
          s.BindRef(p + 3, row.channel->provider_id).BindRef(p + 4, row.channel->webhook_url);
          s.Bind(p + 5, now_).Bind(p + 6, now_);
        });
    if (!channels.ok()) return channels.take_status();
    std::vector<std::pair<const ChannelRow*, std::size_t>> tokens;  // (channel, position)
    for (const ChannelRow& row : fresh) {
      for (std::size_t t = 0; t < row.channel->tokens.size(); ++t) tokens.emplace_back(&row, t);
    }
    ASSIGN_OR_RETURN(std::size_t added,
                     InsertRows(kTokens, tokens.size(), [&](Stmt& s, int p, std::size_t r) {
                       const auto& [row, position] = tokens[r];
                       const DeviceToken& token = row->channel->tokens[position];
                       s.BindRef(p, row->id).Bind(p + 1, static_cast<std::int64_t>(position));
                       s.BindRef(p + 2, token.token).BindRef(p + 3, token.identity);
                       s.Bind(p + 4, now_);
                     }));
    receipt_.tokens_added += added;
    for (const ChannelRow& row : others) {
      Status st = AddToChannel(pks_[row.item], *row.integration_id, *row.channel);
      if (!st.ok() && st.code() == Code::kInvalidArgument) {
        return About(items[row.item], "channels[" + std::to_string(row.index) + "]: ", st);
      }
      RETURN_IF_ERROR(st);
    }
    return Status::Ok();
  }

  // Adds tokens to the subscriber's channel of an integration, which may exist: new tokens go
  // last, one already there is registered again; the channel must still fit max_tokens_.
  Status AddToChannel(const std::string& subscriber_pk, const std::string& integration_id,
                      const JitChannel& channel) {
    std::string channel_pk = NewObjectId();
    {
      Stmt s = db_.Prepare(kInsertChannelIfNew);
      s.BindRef(1, channel_pk).BindRef(2, subscriber_pk).BindRef(3, integration_id);
      s.BindRef(4, channel.provider_id).BindRef(5, channel.webhook_url).Bind(6, now_);
      RETURN_IF_ERROR(s.Exec());
    }
    std::int64_t held = 0, next = 0;
    if (db_.Changes() == 0) {
      Stmt find = db_.Prepare(
          "SELECT id FROM subscriber_channels WHERE subscriber_pk = ? AND integration_id = ?");
      find.BindRef(1, subscriber_pk).BindRef(2, integration_id);
      if (!find.Step()) {
        RETURN_IF_ERROR(find.status());
        return Status::Internal("imported channel not found");
      }
      channel_pk = find.Text(0);
      Stmt touch = db_.Prepare(kTouchChannel);
      touch.BindRef(1, channel_pk).BindRef(2, channel.webhook_url).Bind(3, now_);
      RETURN_IF_ERROR(touch.Exec());
      Stmt count = db_.Prepare(
          "SELECT COUNT(*), COALESCE(MAX(position) + 1, 0) FROM device_tokens "
          "WHERE channel_pk = ?");
      count.BindRef(1, channel_pk);
      if (count.Step()) {
        held = count.Int(0);
        next = count.Int(1);
      }
      RETURN_IF_ERROR(count.status());
    }
    for (const DeviceToken& t : channel.tokens) {
      {
        Stmt s = db_.Prepare(kInsertTokenIfNew);
        s.BindRef(1, channel_pk).Bind(2, next).BindRef(3, t.token).BindRef(4, t.identity);
        s.Bind(5, now_);
        RETURN_IF_ERROR(s.Exec());
      }
      if (db_.Changes() > 0) {
        ++held, ++next, ++receipt_.tokens_added;
        continue;
      }
      Stmt s = db_.Prepare(kReregisterToken);
      s.BindRef(1, channel_pk).BindRef(2, t.identity).BindRef(3, t.token).Bind(4, now_);
      RETURN_IF_ERROR(s.Exec());
    }
    if (held > static_cast<std::int64_t>(max_tokens_)) {
      return TokenLimitExceeded(static_cast<std::size_t>(held), max_tokens_);
    }
    return Status::Ok();
  }

  // Topic memberships, many rows a statement; one that exists is left as it is.
  Status WriteSubscriptions(std::span<const ImportedSubscriber> items) {
    struct Row {
      std::size_t item;
      const std::string* key;
      const std::string* topic_id;
    };
    std::vector<Row> rows;
    for (std::size_t i = 0; i < items.size(); ++i) {
      for (const std::string& key : items[i].topics) {
        ASSIGN_OR_RETURN(const std::string* topic_id, TopicId(key));
        rows.push_back({i, &key, topic_id});
      }
    }
    ASSIGN_OR_RETURN(std::size_t added,
                     InsertRows(kSubscriptions, rows.size(), [&](Stmt& s, int p, std::size_t r) {
                       const Row& row = rows[r];
                       s.Bind(p, NewObjectId()).BindRef(p + 1, *row.topic_id);
                       s.BindRef(p + 2, pks_[row.item]);
                       s.Bind(p + 3, *row.key + ":" + items[row.item].subscriber_id);
                       s.Bind(p + 4, now_).Bind(p + 5, now_);
                     }));
    receipt_.topic_subscriptions_added += added;
    return Status::Ok();
  }

  // The integration a channel's tokens go to (Novu's rule: FindActiveIntegration), looked up
  // once per import.
  Result<const std::string*> IntegrationId(const JitChannel& channel) {
    auto key = std::make_pair(channel.provider_id, channel.integration_identifier);
    auto it = integrations_.find(key);
    if (it == integrations_.end()) {
      ASSIGN_OR_RETURN(std::string id, FindActiveIntegration(db_, env_, channel.provider_id,
                                                             channel.integration_identifier));
      it = integrations_.emplace(std::move(key), std::move(id)).first;
    }
    return &it->second;
  }

  // The topic's id, the topic created if the environment does not have it.
  Result<const std::string*> TopicId(const std::string& key) {
    auto it = topics_.find(key);
    if (it != topics_.end()) return &it->second;
    std::string id;
    Stmt s = db_.Prepare("SELECT id FROM topics WHERE environment_id = ? AND topic_key = ?");
    s.Bind(1, env_).Bind(2, key);
    if (s.Step()) {
      id = s.Text(0);
    } else {
      RETURN_IF_ERROR(s.status());
      Topic topic;
      topic.environment_id = std::string(env_);
      topic.key = key;
      ASSIGN_OR_RETURN(Topic inserted, InsertTopic(db_, std::move(topic)));
      id = std::move(inserted.id);
      ++receipt_.topics_created;
    }
    return &topics_.emplace(key, std::move(id)).first->second;
  }

  Db& db_;
  const std::string_view env_;
  const std::size_t max_tokens_;
  const std::int64_t now_;
  ImportReceipt receipt_;
  std::map<std::pair<std::string, std::optional<std::string>>, std::string> integrations_;
  std::unordered_map<std::string, std::string> topics_;
  std::unordered_map<const MultiRow*, std::string> sql_;
  std::string select_ids_;
  // Of the batch being written, by item: the subscriber's id, whether this item created it, its
  // `data` as a column.
  std::vector<std::string> pks_;
  std::vector<bool> created_;
  std::vector<std::optional<std::string>> data_;
};

}  // namespace

Result<ImportReceipt> SqliteStore::ImportSubscribers(std::string_view env,
                                                     const SubscriberSource& next,
                                                     std::size_t max_tokens) {
  // One write: the writer runs it inside a savepoint of its own, so a failure at any row rolls
  // every row back. Write() then clears the planning subscriber cache, as after any write to
  // subscribers.
  return Write<ImportReceipt>([&](Db& db) -> Result<ImportReceipt> {
    Importer importer(db, env, max_tokens);
    std::vector<ImportedSubscriber> batch(kBatch);
    for (bool more = true; more;) {
      std::size_t n = 0;
      while (n < kBatch) {
        ASSIGN_OR_RETURN(more, next(batch[n]));
        if (!more) break;
        ++n;
      }
      if (n > 0) RETURN_IF_ERROR(importer.Apply(std::span(batch.data(), n)));
    }
    return importer.Take();
  });
}

}  // namespace herald::store::sqlite
