#include "store/sqlite/sqlite_store.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <functional>
#include <future>
#include <mutex>
#include <set>
#include <span>
#include <thread>
#include <unordered_map>
#include <variant>

#include "core/ids.h"
#include "core/log.h"
#include "store/sqlite/db.h"
#include "store/sqlite/migrations.h"
#include "store/sqlite/writer.h"

namespace herald::store {

const char* DeliveryStateName(DeliveryState state) {
  switch (state) {
    case DeliveryState::kPending:
      return "pending";
    case DeliveryState::kDelivered:
      return "delivered";
    case DeliveryState::kFailed:
      return "failed";
    case DeliveryState::kCancelled:
      return "cancelled";
  }
  return "pending";
}

std::optional<DeliveryState> ParseDeliveryState(std::string_view name) {
  if (name == "pending") return DeliveryState::kPending;
  if (name == "delivered") return DeliveryState::kDelivered;
  if (name == "failed") return DeliveryState::kFailed;
  if (name == "cancelled") return DeliveryState::kCancelled;
  return std::nullopt;
}

const char* TokenStatusName(TokenStatus status) {
  switch (status) {
    case TokenStatus::kActive:
      return "active";
    case TokenStatus::kExpired:
      return "expired";
    case TokenStatus::kUnsubscribed:
      return "unsubscribed";
  }
  return "active";
}

std::optional<TokenStatus> ParseTokenStatus(std::string_view name) {
  if (name == "active") return TokenStatus::kActive;
  if (name == "expired") return TokenStatus::kExpired;
  if (name == "unsubscribed") return TokenStatus::kUnsubscribed;
  return std::nullopt;
}

namespace {

using sqlite::Db;
using sqlite::Durability;
using sqlite::Priority;
using sqlite::Stmt;
using sqlite::Undo;
using sqlite::WriteFn;
using sqlite::Writer;

Status TokenLimitExceeded(std::size_t count, std::size_t limit) {
  return Status::InvalidArgument("Device tokens limit exceeded: a channel holds at most " +
                                 std::to_string(limit) + " tokens")
      .WithExtra({{"currentCount", count}, {"limit", limit}});
}

constexpr long long kCountCap = 50000;

// ---- connections -------------------------------------------------------------------------------

// Copies the WAL back into the database from its own connection and thread, so that the
// writer's commits never pay for checkpoints (the writer runs with wal_autocheckpoint=0).
// PASSIVE checkpoints never block the writer or readers.
class Checkpointer {
 public:
  Checkpointer(std::unique_ptr<Db> db, std::string wal_path)
      : db_(std::move(db)), wal_path_(std::move(wal_path)), thread_([this] { Loop(); }) {}
  ~Checkpointer() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    cv_.notify_one();
    thread_.join();
  }

 private:
  // Under a steady stream of commits a passive checkpoint never catches up with the end of the
  // log, so the log would never start over and would grow without bound. Past this size a
  // RESTART checkpoint holds new writes back for the (short) rest of the copy, and the next
  // commit writes the log from its start again (journal_size_limit then trims the file).
  static constexpr std::uintmax_t kRestartAt = 64u << 20;

  void Loop() {
    SetThreadName("herald-ckpt");
    std::unique_lock lock(mu_);
    while (!stopping_) {
      cv_.wait_for(lock, std::chrono::milliseconds(200), [&] { return stopping_; });
      lock.unlock();
      (void)db_->ExecScript("PRAGMA wal_checkpoint(PASSIVE)");
      std::error_code ec;
      std::uintmax_t size = std::filesystem::file_size(wal_path_, ec);
      if (!ec && size > kRestartAt) (void)db_->ExecScript("PRAGMA wal_checkpoint(RESTART)");
      lock.lock();
    }
  }

  std::unique_ptr<Db> db_;
  const std::string wal_path_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;
};

class ReaderPool {
 public:
  void Add(std::unique_ptr<Db> db) { free_.push_back(std::move(db)); }

  template <typename F>
  auto Run(F&& f) {
    std::unique_ptr<Db> db;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return !free_.empty(); });
      db = std::move(free_.back());
      free_.pop_back();
    }
    (void)db->Run("BEGIN");
    auto result = f(*db);
    (void)db->Run("COMMIT");
    {
      std::lock_guard lock(mu_);
      free_.push_back(std::move(db));
    }
    cv_.notify_one();
    return result;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<Db>> free_;
};

// ---- JSON columns ------------------------------------------------------------------------------

std::optional<std::string> JsonColumn(const std::optional<Json>& value) {
  if (!value) return std::nullopt;
  return DumpJson(*value);
}

Json ParseColumn(const std::string& text) {
  Json value = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  return value.is_discarded() ? Json() : value;
}

std::optional<Json> ParseOptColumn(const std::optional<std::string>& text) {
  if (!text) return std::nullopt;
  return ParseColumn(*text);
}

// ---- row readers -------------------------------------------------------------------------------

constexpr std::string_view kSubscriberColumns =
    "id, environment_id, subscriber_id, first_name, last_name, email, phone, avatar, locale, "
    "timezone, data, created_at, updated_at";

SubscriberProfile ReadProfile(const Stmt& s, int first) {
  SubscriberProfile p;
  p.first_name = s.OptText(first);
  p.last_name = s.OptText(first + 1);
  p.email = s.OptText(first + 2);
  p.phone = s.OptText(first + 3);
  p.avatar = s.OptText(first + 4);
  p.locale = s.OptText(first + 5);
  p.timezone = s.OptText(first + 6);
  p.data = ParseOptColumn(s.OptText(first + 7));
  return p;
}

Subscriber ReadSubscriberRow(const Stmt& s) {
  Subscriber sub;
  sub.id = s.Text(0);
  sub.environment_id = s.Text(1);
  sub.subscriber_id = s.Text(2);
  sub.profile = ReadProfile(s, 3);
  sub.created_at = s.Int(11);
  sub.updated_at = s.Int(12);
  return sub;
}

constexpr std::string_view kTokenColumns =
    "token, identity, status, created_at, last_active_at, last_failure_reason";

DeviceToken ReadTokenRow(const Stmt& s, int first) {
  DeviceToken t;
  t.token = s.Text(first);
  t.identity = s.Text(first + 1);
  t.status = ParseTokenStatus(s.Text(first + 2)).value_or(TokenStatus::kActive);
  t.created_at = s.Int(first + 3);
  t.last_active_at = s.OptInt(first + 4);
  t.last_failure_reason = s.OptText(first + 5);
  return t;
}

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
        "dt.last_active_at, dt.last_failure_reason FROM subscriber_channels c "
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

// A subscriber as trigger planning sees it: without its tokens' last-active time and last
// failure, which deliveries rewrite all the time and planning never reads (see MessagePlanner).
Subscriber ForPlanning(Subscriber sub) {
  for (SubscriberChannel& channel : sub.channels) {
    for (DeviceToken& token : channel.tokens) {
      token.last_active_at.reset();
      token.last_failure_reason.reset();
    }
  }
  return sub;
}

// Subscribers as trigger planning sees them (ForPlanning), by environment and subscriberId, so
// that a subscriber who gets one notification after another is not read and copied for each. Used
// on the writer thread only, and kept in step with the database by clearing: the store clears it
// after every write that may change what it holds and whenever planning rolls back, and the writer
// after a rolled-back batch, so an entry never outlives the data it was read from. Each entry is a
// fresh snapshot number (see Subscriber::snapshot), unique in the process.
class SubscriberCache {
 public:
  std::shared_ptr<const Subscriber> Find(std::string_view env, std::string_view subscriber_id) {
    auto it = entries_.find(Key(env, subscriber_id));
    return it == entries_.end() ? nullptr : it->second;
  }

  std::shared_ptr<const Subscriber> Put(Subscriber sub) {
    if (entries_.size() >= kMaxEntries) entries_.clear();
    sub.snapshot = next_snapshot_.fetch_add(1, std::memory_order_relaxed);
    auto entry = std::make_shared<const Subscriber>(std::move(sub));
    entries_[Key(entry->environment_id, entry->subscriber_id)] = entry;
    return entry;
  }

  void Clear() { entries_.clear(); }

 private:
  static constexpr std::size_t kMaxEntries = 20000;
  static std::string Key(std::string_view env, std::string_view subscriber_id) {
    std::string key(env);
    key += '\n';
    key += subscriber_id;
    return key;
  }

  std::unordered_map<std::string, std::shared_ptr<const Subscriber>> entries_;
  // Shared by every store of the process: a planner may outlive one store and meet the same
  // subscriber through another.
  static inline std::atomic<std::uint64_t> next_snapshot_{1};
};

// Clears `cache` when it goes out of scope (also when the write it guards fails or throws),
// unless it was built with `clear` false or Keep() was called.
class ClearAfter {
 public:
  explicit ClearAfter(SubscriberCache& cache, bool clear = true)
      : cache_(clear ? &cache : nullptr) {}
  ~ClearAfter() {
    if (cache_) cache_->Clear();
  }
  ClearAfter(const ClearAfter&) = delete;
  ClearAfter& operator=(const ClearAfter&) = delete;
  void Keep() { cache_ = nullptr; }

 private:
  SubscriberCache* cache_;
};

std::optional<std::string> FindSubscriberPk(Db& db, std::string_view env,
                                            std::string_view subscriber_id) {
  Stmt s = db.Prepare("SELECT id FROM subscribers WHERE environment_id = ? AND subscriber_id = ?");
  s.Bind(1, env).Bind(2, subscriber_id);
  if (!s.Step()) return std::nullopt;
  return s.Text(0);
}

constexpr std::string_view kTopicColumns =
    "id, environment_id, topic_key, name, data, created_at, updated_at";

Topic ReadTopicRow(const Stmt& s, int first = 0) {
  Topic t;
  t.id = s.Text(first);
  t.environment_id = s.Text(first + 1);
  t.key = s.Text(first + 2);
  t.name = s.OptText(first + 3);
  t.data = ParseOptColumn(s.OptText(first + 4));
  t.created_at = s.Int(first + 5);
  t.updated_at = s.Int(first + 6);
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

// ---- cursor pages ------------------------------------------------------------------------------

// Builds "ORDER BY" and the cursor condition for a keyset page over `table` (alias-free) sorted
// by (`column`, id). The cursor row is looked up by id inside the same statement.
struct KeysetSql {
  std::string where;      // " AND (col, id) > (SELECT ...)" or empty
  std::string order;      // " ORDER BY col ASC, id ASC"
  bool reversed = false;  // fetched in reverse order (a `before` page)
};

std::string SortColumn(const PageRequest& page) {
  if (page.order_by == "updatedAt") return "updated_at";
  if (page.order_by == "_id") return "id";
  return "created_at";
}

// `alias` qualifies the outer columns when the page query joins other tables ("ts.").
KeysetSql Keyset(const std::string& table, const PageRequest& page, const std::string& alias = "") {
  KeysetSql k;
  std::string col = SortColumn(page);
  k.reversed = page.before.has_value() && !page.after.has_value();
  bool desc = k.reversed ? !page.descending : page.descending;
  const char* dir = desc ? "DESC" : "ASC";
  k.order = " ORDER BY " + alias + col + " " + dir + ", " + alias + "id " + dir;
  if (page.after || page.before) {
    k.where = " AND (" + alias + col + ", " + alias + "id) " + (desc ? "<" : ">") + " (SELECT " +
              col + ", id FROM " + table + " WHERE id = ?)";
  }
  return k;
}

// Fills next/previous for a page fetched with `limit + 1` rows.
template <typename T>
void FinishPage(Page<T>& page, const PageRequest& request, const KeysetSql& k,
                std::vector<std::string> ids) {
  bool more = page.items.size() > static_cast<std::size_t>(request.limit);
  if (more) {
    page.items.pop_back();
    ids.pop_back();
  }
  if (k.reversed) {
    std::reverse(page.items.begin(), page.items.end());
    std::reverse(ids.begin(), ids.end());
  }
  if (ids.empty()) return;
  bool has_after = k.reversed ? true : more;
  bool has_before = k.reversed ? more : (request.after.has_value());
  if (has_after) page.next = ids.back();
  if (has_before) page.previous = ids.front();
}

long long CountCapped(Db& db, const std::string& from_where, const std::function<void(Stmt&)>& bind,
                      bool* capped) {
  Stmt s = db.Prepare("SELECT COUNT(*) FROM (SELECT 1 " + from_where + " LIMIT " +
                      std::to_string(kCountCap + 1) + ")");
  bind(s);
  long long n = s.Step() ? s.Int(0) : 0;
  *capped = n > kCountCap;
  return std::min(n, kCountCap);
}

// A `%text%` LIKE pattern with the wildcards in `text` escaped (use with ESCAPE '\\').
std::string ContainsPattern(std::string_view text) {
  std::string pattern = "%";
  for (char c : text) {
    if (c == '%' || c == '_' || c == '\\') pattern.push_back('\\');
    pattern.push_back(c);
  }
  return pattern + "%";
}

// One keyset page of `table` (rows with an `id` member): `from` is " FROM <table> WHERE ...",
// whose placeholders take `params` in order.
template <typename T, typename ReadRow>
Result<Page<T>> KeysetPage(Db& db, const std::string& table, std::string_view columns,
                           const std::string& from, const std::vector<std::string>& params,
                           const PageRequest& request, ReadRow read_row) {
  auto bind = [&](Stmt& s) {
    for (std::size_t i = 0; i < params.size(); ++i) s.Bind(static_cast<int>(i + 1), params[i]);
  };
  Page<T> page;
  page.total_count = CountCapped(db, from, bind, &page.total_count_capped);
  KeysetSql k = Keyset(table, request);
  Stmt s = db.Prepare("SELECT " + std::string(columns) + from + k.where + k.order + " LIMIT " +
                      std::to_string(request.limit + 1));
  bind(s);
  if (!k.where.empty()) {
    s.Bind(static_cast<int>(params.size() + 1), k.reversed ? *request.before : *request.after);
  }
  std::vector<std::string> ids;
  while (s.Step()) {
    page.items.push_back(read_row(s));
    ids.push_back(page.items.back().id);
  }
  RETURN_IF_ERROR(s.status());
  FinishPage(page, request, k, std::move(ids));
  return page;
}

// ---- integrations ------------------------------------------------------------------------------

constexpr std::string_view kIntegrationColumns =
    "id, environment_id, identifier, name, provider_id, channel, credentials_sealed, active, "
    "conditions, configurations, created_at, updated_at";

// ---- workflows ---------------------------------------------------------------------------------

constexpr std::string_view kWorkflowColumns =
    "id, environment_id, workflow_id, name, description, tags, active, severity, payload_schema, "
    "preferences, steps, created_at, updated_at";

Json StepsToJson(const std::vector<WorkflowStep>& steps) {
  Json out = Json::array();
  for (const WorkflowStep& st : steps) {
    out.push_back({{"_id", st.id},
                   {"stepId", st.step_id},
                   {"name", st.name},
                   {"type", st.type},
                   {"controlValues", st.control_values}});
  }
  return out;
}

std::vector<WorkflowStep> StepsFromJson(const Json& json) {
  std::vector<WorkflowStep> steps;
  if (!json.is_array()) return steps;
  for (const Json& j : json) {
    WorkflowStep st;
    st.id = j.value("_id", "");
    st.step_id = j.value("stepId", "");
    st.name = j.value("name", "");
    st.type = j.value("type", "");
    st.control_values = j.value("controlValues", Json::object());
    steps.push_back(std::move(st));
  }
  return steps;
}

Workflow ReadWorkflowRow(const Stmt& s) {
  Workflow w;
  w.id = s.Text(0);
  w.environment_id = s.Text(1);
  w.workflow_id = s.Text(2);
  w.name = s.Text(3);
  w.description = s.Text(4);
  Json tags = ParseColumn(s.Text(5));
  if (tags.is_array()) {
    for (const Json& t : tags) {
      if (t.is_string()) w.tags.push_back(t.get<std::string>());
    }
  }
  w.active = s.Int(6) != 0;
  w.severity = s.Text(7);
  w.payload_schema = ParseOptColumn(s.OptText(8)).value_or(Json());
  w.preferences = ParseOptColumn(s.OptText(9)).value_or(Json());
  w.steps = StepsFromJson(ParseColumn(s.Text(10)));
  w.created_at = s.Int(11);
  w.updated_at = s.Int(12);
  return w;
}

Result<Workflow> LoadWorkflow(Db& db, std::string_view env, std::string_view id_or_workflow_id) {
  Stmt s = db.Prepare(std::string("SELECT ") + std::string(kWorkflowColumns) +
                      " FROM workflows WHERE environment_id = ? AND (workflow_id = ? OR id = ?) "
                      "ORDER BY workflow_id = ? DESC LIMIT 1");
  s.Bind(1, env).Bind(2, id_or_workflow_id).Bind(3, id_or_workflow_id).Bind(4, id_or_workflow_id);
  if (!s.Step()) {
    if (!s.status().ok()) return s.status();
    return Status::NotFound("Workflow '" + std::string(id_or_workflow_id) + "' was not found");
  }
  return ReadWorkflowRow(s);
}

Status BindWorkflow(Stmt& s, const Workflow& w) {
  Json tags = w.tags;
  s.Bind(1, w.id)
      .Bind(2, w.environment_id)
      .Bind(3, w.workflow_id)
      .Bind(4, w.name)
      .Bind(5, w.description)
      .Bind(6, DumpJson(tags))
      .Bind(7, w.active)
      .Bind(8, w.severity)
      .Bind(9, w.payload_schema.is_null() ? std::nullopt
                                          : std::optional<std::string>(DumpJson(w.payload_schema)))
      .Bind(10, w.preferences.is_null() ? std::nullopt
                                        : std::optional<std::string>(DumpJson(w.preferences)))
      .Bind(11, DumpJson(StepsToJson(w.steps)))
      .Bind(12, static_cast<std::int64_t>(w.created_at))
      .Bind(13, static_cast<std::int64_t>(w.updated_at));
  return s.Exec();
}

// ---- delivery rows -----------------------------------------------------------------------------

// Messages are always read joined with their bodies: "FROM messages m JOIN message_bodies b".
constexpr std::string_view kMessageColumns =
    "m.id, m.environment_id, m.notification_id, m.transaction_id, m.subscriber_pk, "
    "m.subscriber_id, m.workflow_pk, m.workflow_id, m.step_pk, m.step_id, m.integration_id, "
    "m.provider_id, m.channel_pk, m.device_token, m.token_identity, b.title, b.content, "
    "b.payload, b.overrides, m.state, m.attempts, m.next_attempt_at, m.last_attempt_at, "
    "m.error_id, m.error_text, m.provider_response_id, m.created_at, m.updated_at";
constexpr std::string_view kMessageFrom =
    " FROM messages m JOIN message_bodies b ON b.message_id = m.id";

Message ReadMessageRow(const Stmt& s) {
  Message m;
  m.id = s.Text(0);
  m.environment_id = s.Text(1);
  m.notification_id = s.Text(2);
  m.transaction_id = s.Text(3);
  m.subscriber_pk = s.Text(4);
  m.subscriber_id = s.Text(5);
  m.workflow_pk = s.Text(6);
  m.workflow_id = s.Text(7);
  m.step_pk = s.Text(8);
  m.step_id = s.Text(9);
  m.integration_id = s.Text(10);
  m.provider_id = s.Text(11);
  m.channel_pk = s.OptText(12);
  m.device_token = s.Text(13);
  m.token_identity = s.Text(14);
  m.title = s.Text(15);
  m.content = s.Text(16);
  m.payload_json = s.Text(17);
  m.overrides = ParseColumn(s.Text(18));
  m.state = ParseDeliveryState(s.Text(19)).value_or(DeliveryState::kPending);
  m.attempts = static_cast<int>(s.Int(20));
  m.next_attempt_at = s.OptInt(21);
  m.last_attempt_at = s.OptInt(22);
  m.error_id = s.OptText(23);
  m.error_text = s.OptText(24);
  m.provider_response_id = s.OptText(25);
  m.created_at = s.Int(26);
  m.updated_at = s.Int(27);
  return m;
}

// Records that `transaction_id` is taken in `env`: false if it already was (a repeat, which is
// never delivered again).
Result<bool> TakeTransactionId(Db& db, std::string_view env, std::string_view transaction_id,
                               std::string_view workflow_id, EpochMs now) {
  Stmt tx = db.Prepare(
      "INSERT INTO transactions (environment_id, transaction_id, workflow_id, created_at) "
      "VALUES (?, ?, ?, ?) ON CONFLICT (environment_id, transaction_id) DO NOTHING");
  tx.Bind(1, env).Bind(2, transaction_id).Bind(3, workflow_id);
  tx.Bind(4, static_cast<std::int64_t>(now));
  RETURN_IF_ERROR(tx.Exec());
  return db.Changes() > 0;
}

// Adds `part`'s counts and leased messages to `total`.
void Absorb(PlanReceipt& total, PlanReceipt&& part) {
  total.planned += part.planned;
  total.duplicates += part.duplicates;
  total.skipped += part.skipped;
  total.dropped += part.dropped;
  total.notifications += part.notifications;
  total.messages += part.messages;
  total.fanouts += part.fanouts;
  for (Message& m : part.leased) total.leased.push_back(std::move(m));
}

// Who new messages are leased to as they are written (nobody when `owner` is empty).
struct NewLease {
  std::string_view owner;
  EpochMs until = 0;
};

Status InsertMessage(Db& db, const Message& m, const NewLease& lease) {
  Stmt s = db.Prepare(
      "INSERT INTO messages (id, environment_id, notification_id, transaction_id, subscriber_pk, "
      "subscriber_id, workflow_pk, workflow_id, step_pk, step_id, integration_id, provider_id, "
      "channel_pk, device_token, token_identity, state, attempts, next_attempt_at, created_at, "
      "updated_at, lease_owner, lease_until) "
      "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', 0, ?, ?, ?, ?, ?)");
  s.BindRef(1, m.id).BindRef(2, m.environment_id).BindRef(3, m.notification_id);
  s.BindRef(4, m.transaction_id).BindRef(5, m.subscriber_pk).BindRef(6, m.subscriber_id);
  s.BindRef(7, m.workflow_pk).BindRef(8, m.workflow_id).BindRef(9, m.step_pk);
  s.BindRef(10, m.step_id).BindRef(11, m.integration_id).BindRef(12, m.provider_id);
  s.BindRef(13, m.channel_pk).BindRef(14, m.device_token).BindRef(15, m.token_identity);
  s.Bind(16, m.next_attempt_at);
  s.Bind(17, static_cast<std::int64_t>(m.created_at));
  s.Bind(18, static_cast<std::int64_t>(m.created_at));
  if (lease.owner.empty()) {
    s.Bind(19, std::optional<std::string>()).Bind(20, std::optional<std::int64_t>());
  } else {
    s.Bind(19, lease.owner).Bind(20, static_cast<std::int64_t>(lease.until));
  }
  RETURN_IF_ERROR(s.Exec());
  Stmt body = db.Prepare(
      "INSERT INTO message_bodies (message_id, title, content, payload, overrides) "
      "VALUES (?, ?, ?, ?, ?)");
  const std::string overrides = DumpJson(m.overrides);
  body.BindRef(1, m.id).BindRef(2, m.title).BindRef(3, m.content).BindRef(4, m.payload_json);
  body.BindRef(5, overrides);
  return body.Exec();
}

constexpr std::string_view kNotificationColumns =
    "id, environment_id, transaction_id, workflow_pk, workflow_id, workflow_name, subscriber_pk, "
    "subscriber_id, payload, created_at, severity, topics";

Notification ReadNotificationRow(const Stmt& s) {
  Notification n;
  n.id = s.Text(0);
  n.environment_id = s.Text(1);
  n.transaction_id = s.Text(2);
  n.workflow_pk = s.Text(3);
  n.workflow_id = s.Text(4);
  n.workflow_name = s.Text(5);
  n.subscriber_pk = s.Text(6);
  n.subscriber_id = s.Text(7);
  n.payload = ParseColumn(s.Text(8));
  n.created_at = s.Int(9);
  n.severity = s.OptText(10).value_or("none");
  if (std::optional<std::string> topics = s.OptText(11)) n.topics = ParseColumn(*topics);
  return n;
}

// A notification's severity: the trigger's `overrides.severity` if it names one, else the
// workflow's.
std::string NotificationSeverity(const Workflow& workflow, const Json& overrides) {
  auto it = overrides.find("severity");
  if (it != overrides.end() && it->is_string()) {
    const std::string& value = it->get_ref<const std::string&>();
    if (value == "high" || value == "medium" || value == "low" || value == "none") return value;
  }
  return workflow.severity;
}

// Writes the notification for `sub` and the messages the planner gives it. Returns how many
// messages were written.
// `leased` (if set) receives a copy of each message written, as a claim would return it.
// `topics`: for a topic fan-out, the trigger's topics ([{_topicId, topicKey}]).
Result<std::size_t> WriteNotification(Db& db, const Workflow& workflow, const Subscriber& sub,
                                      const std::string& transaction_id, const Json& payload,
                                      const std::string& payload_text, const Json& overrides,
                                      const MessagePlanner& planner, EpochMs now,
                                      const NewLease& lease = {},
                                      std::vector<Message>* leased = nullptr,
                                      const Json* topics = nullptr) {
  Notification n;
  n.id = NewObjectId();
  n.environment_id = sub.environment_id;
  n.transaction_id = transaction_id;
  n.workflow_pk = workflow.id;
  n.workflow_id = workflow.workflow_id;
  n.workflow_name = workflow.name;
  n.subscriber_pk = sub.id;
  n.subscriber_id = sub.subscriber_id;
  n.payload = payload;
  n.payload_text = payload_text;
  n.severity = NotificationSeverity(workflow, overrides);
  if (topics) n.topics = *topics;
  n.created_at = now;
  const std::string stored_payload = DumpJson(payload);
  Stmt s = db.Prepare(
      "INSERT INTO notifications (id, environment_id, transaction_id, workflow_pk, workflow_id, "
      "workflow_name, subscriber_pk, subscriber_id, payload, created_at, severity, topics) "
      "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
  s.BindRef(1, n.id).BindRef(2, n.environment_id).BindRef(3, n.transaction_id);
  s.BindRef(4, n.workflow_pk).BindRef(5, n.workflow_id).BindRef(6, n.workflow_name);
  s.BindRef(7, n.subscriber_pk).BindRef(8, n.subscriber_id).BindRef(9, stored_payload);
  s.Bind(10, static_cast<std::int64_t>(now));
  // NULL for the common values: most rows are "none" and made by no topic.
  s.Bind(11, n.severity == "none" ? std::optional<std::string>() : n.severity);
  s.Bind(12, n.topics.empty() ? std::optional<std::string>() : DumpJson(n.topics));
  RETURN_IF_ERROR(s.Exec());
  ASSIGN_OR_RETURN(std::vector<Message> messages, planner(workflow, sub, n, overrides));
  for (Message& m : messages) {
    m.id = NewObjectId();
    m.environment_id = n.environment_id;
    m.notification_id = n.id;
    m.transaction_id = n.transaction_id;
    m.subscriber_pk = sub.id;
    m.subscriber_id = sub.subscriber_id;
    m.workflow_pk = workflow.id;
    m.workflow_id = workflow.workflow_id;
    m.created_at = now;
    m.updated_at = now;
    // A leased message falls due again when its lease runs out (see ClaimDueMessages).
    m.next_attempt_at = lease.owner.empty() ? now : lease.until;
    RETURN_IF_ERROR(InsertMessage(db, m, lease));
    if (leased) leased->push_back(std::move(m));
  }
  return messages.size();
}

// ---- the store ---------------------------------------------------------------------------------

class SqliteStore final : public Store {
 public:
  SqliteStore(std::unique_ptr<Db> writer_db, std::string wal_path,
              std::unique_ptr<Db> checkpoint_db, const crypto::KeyRing& keys,
              std::int64_t max_queued_triggers)
      : keys_(keys),
        max_queued_triggers_(max_queued_triggers),
        writer_(std::move(writer_db), wal_path, Writer::kDefaultLazySyncDelay,
                Writer::kDefaultBackgroundBudget, [this] { subscribers_.Clear(); }),
        checkpointer_(std::move(checkpoint_db), wal_path) {}

  void AddReader(std::unique_ptr<Db> db) { readers_.Add(std::move(db)); }

  // Whether a write may change what the subscriber cache holds (subscribers, their channels and
  // tokens, integrations, topics): then the cache is cleared after it runs.
  enum class Touches { kSubscribers, kNothingCached };

  // Runs `f(db)` inside the writer's batch; `f` returns Result<T>.
  template <typename T, typename F>
  Result<T> Write(F&& f, Durability durability = Durability::kSynced,
                  Priority priority = Priority::kForeground,
                  Touches touches = Touches::kSubscribers) {
    std::optional<T> out;
    Status st = writer_.Run(
        [&](Db& db) -> Status {
          ClearAfter clear(subscribers_, touches == Touches::kSubscribers);
          Result<T> r = f(db);
          if (!r.ok()) return r.take_status();
          out = std::move(r.value());
          return Status::Ok();
        },
        durability, priority);
    if (!st.ok()) return st;
    return std::move(*out);
  }

  // Delivery bookkeeping that a restart can replay: behind waiting API writes, not synced alone.
  // It leaves subscribers alone.
  template <typename T, typename F>
  Result<T> WriteBackground(F&& f) {
    return Write<T>(std::forward<F>(f), Durability::kCommitted, Priority::kBackground,
                    Touches::kNothingCached);
  }

  Status WriteStatus(WriteFn f) {
    return writer_.Run([this, f = std::move(f)](Db& db) {
      ClearAfter clear(subscribers_);
      return f(db);
    });
  }

  // Like Write, but returns at once; `done` runs on the writer thread after the commit.
  template <typename T, typename F>
  void WriteAsync(F f, std::function<void(Result<T>)> done,
                  Touches touches = Touches::kSubscribers) {
    auto out = std::make_shared<std::optional<T>>();
    writer_.Submit(
        [this, f = std::move(f), out, touches](Db& db) -> Status {
          ClearAfter clear(subscribers_, touches == Touches::kSubscribers);
          Result<T> r = f(db);
          if (!r.ok()) return r.take_status();
          *out = std::move(r.value());
          return Status::Ok();
        },
        [out, done = std::move(done)](Status st) {
          if (!st.ok()) {
            done(std::move(st));
          } else {
            done(std::move(**out));
          }
        });
  }

  template <typename F>
  auto Read(F&& f) {
    return readers_.Run(std::forward<F>(f));
  }

  // Whether `sql` finds a row, asked of a reader (so a pass with nothing to do costs no write
  // transaction); `param`, if set, is its one parameter.
  Result<bool> AnyRow(std::string_view sql, std::optional<std::int64_t> param = std::nullopt) {
    return Read([&](Db& db) -> Result<bool> {
      Stmt s = db.Prepare(sql);
      if (param) s.Bind(1, *param);
      bool found = s.Step();
      RETURN_IF_ERROR(s.status());
      return found;
    });
  }

  // ---- environments ----
  Status EnsureEnvironments(const std::vector<Environment>& wanted) override {
    return WriteStatus([&](Db& db) -> Status {
      for (const Environment& e : wanted) {
        Stmt s = db.Prepare(
            "INSERT INTO environments (id, name, organization_id, api_key_hash, api_key_sealed, "
            "created_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO NOTHING");
        s.Bind(1, e.id).Bind(2, e.name).Bind(3, e.organization_id).Bind(4, e.api_key_hash);
        s.Bind(5, e.api_key_sealed).Bind(6, static_cast<std::int64_t>(e.created_at));
        RETURN_IF_ERROR(s.Exec());
      }
      return Status::Ok();
    });
  }

  Result<std::vector<Environment>> ListEnvironments() override {
    return Read([&](Db& db) -> Result<std::vector<Environment>> {
      std::vector<Environment> out;
      Stmt s = db.Prepare(
          "SELECT id, name, organization_id, api_key_hash, api_key_sealed, created_at "
          "FROM environments ORDER BY created_at, name");
      while (s.Step()) {
        out.push_back({s.Text(0), s.Text(1), s.Text(2), s.Text(3), s.Text(4), s.Int(5)});
      }
      if (!s.status().ok()) return s.status();
      return out;
    });
  }

  // ---- integrations ----
  Result<Integration> ReadIntegrationRow(const Stmt& s) const {
    Integration i;
    i.id = s.Text(0);
    i.environment_id = s.Text(1);
    i.identifier = s.Text(2);
    i.name = s.Text(3);
    i.provider_id = s.Text(4);
    i.channel = s.Text(5);
    Result<std::string> plain = keys_.Open(s.Text(6), i.id);
    if (!plain.ok()) {
      spdlog::error("integration credentials cannot be opened id={}: {}", i.id,
                    plain.status().message());
      return Status::Internal("integration credentials cannot be decrypted (wrong secret key?)");
    }
    i.credentials = ParseColumn(*plain);
    i.active = s.Int(7) != 0;
    i.conditions = ParseColumn(s.Text(8));
    i.configurations = ParseColumn(s.Text(9));
    i.created_at = s.Int(10);
    i.updated_at = s.Int(11);
    return i;
  }

  Result<Integration> LoadIntegration(Db& db, std::string_view env, std::string_view id) {
    Stmt s = db.Prepare(std::string("SELECT ") + std::string(kIntegrationColumns) +
                        " FROM integrations WHERE environment_id = ? AND id = ?");
    s.Bind(1, env).Bind(2, id);
    if (!s.Step()) {
      if (!s.status().ok()) return s.status();
      return Status::NotFound("Integration with id " + std::string(id) + " not found");
    }
    return ReadIntegrationRow(s);
  }

  Status WriteIntegration(Db& db, const Integration& i, bool insert) {
    const char* sql =
        insert ? "INSERT INTO integrations (identifier, name, provider_id, channel, "
                 "credentials_sealed, active, conditions, configurations, created_at, updated_at, "
                 "id, environment_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
               : "UPDATE integrations SET identifier = ?, name = ?, provider_id = ?, channel = ?, "
                 "credentials_sealed = ?, active = ?, conditions = ?, configurations = ?, "
                 "created_at = ?, updated_at = ? WHERE id = ? AND environment_id = ?";
    Stmt s = db.Prepare(sql);
    s.Bind(1, i.identifier).Bind(2, i.name).Bind(3, i.provider_id).Bind(4, i.channel);
    s.Bind(5, keys_.Seal(DumpJson(i.credentials), i.id)).Bind(6, i.active);
    s.Bind(7, DumpJson(i.conditions)).Bind(8, DumpJson(i.configurations));
    s.Bind(9, static_cast<std::int64_t>(i.created_at));
    s.Bind(10, static_cast<std::int64_t>(i.updated_at));
    s.Bind(11, i.id).Bind(12, i.environment_id);
    Status st = s.Exec();
    if (st.code() == Code::kConflict) {
      return Status::Conflict("Integration with identifier already exists");
    }
    RETURN_IF_ERROR(st);
    if (!insert && db.Changes() == 0) {
      return Status::NotFound("Integration with id " + i.id + " not found");
    }
    return Status::Ok();
  }

  Result<Integration> CreateIntegration(const Integration& integration) override {
    return Write<Integration>([&](Db& db) -> Result<Integration> {
      RETURN_IF_ERROR(WriteIntegration(db, integration, /*insert=*/true));
      return integration;
    });
  }

  Result<std::vector<Integration>> ListIntegrations(std::string_view env,
                                                    bool active_only) override {
    return Read([&](Db& db) -> Result<std::vector<Integration>> {
      std::vector<Integration> out;
      Stmt s = db.Prepare(std::string("SELECT ") + std::string(kIntegrationColumns) +
                          " FROM integrations WHERE environment_id = ? AND (active = 1 OR ? = 0) "
                          "ORDER BY created_at, id");
      s.Bind(1, env).Bind(2, active_only);
      while (s.Step()) {
        ASSIGN_OR_RETURN(Integration i, ReadIntegrationRow(s));
        out.push_back(std::move(i));
      }
      if (!s.status().ok()) return s.status();
      return out;
    });
  }

  Result<Integration> GetIntegration(std::string_view env, std::string_view id) override {
    return Read([&](Db& db) { return LoadIntegration(db, env, id); });
  }

  Result<Integration> UpdateIntegration(const Integration& integration) override {
    return Write<Integration>([&](Db& db) -> Result<Integration> {
      RETURN_IF_ERROR(WriteIntegration(db, integration, /*insert=*/false));
      return integration;
    });
  }

  Status DeleteIntegration(std::string_view env, std::string_view id) override {
    return WriteStatus([&](Db& db) -> Status {
      Stmt s = db.Prepare("DELETE FROM integrations WHERE environment_id = ? AND id = ?");
      s.Bind(1, env).Bind(2, id);
      RETURN_IF_ERROR(s.Exec());
      if (db.Changes() == 0) {
        return Status::NotFound("Integration with id " + std::string(id) + " not found");
      }
      return FailUnsent(db, "environment_id = ? AND integration_id = ?",
                        {std::string(env), std::string(id)}, "integration_deleted",
                        "the integration was deleted before the message was sent");
    });
  }

  // Fails the messages not sent yet that `where` selects (with `params`), saying why: their
  // subscriber, integration or token is gone. Leases stay: a send already in flight still
  // records what came of it.
  static Status FailUnsent(Db& db, std::string_view where, const std::vector<std::string>& params,
                           std::string_view reason, std::string_view text) {
    // Every message not sent yet has a next_attempt_at (its due time or its lease end): the
    // partial index messages_due holds exactly those, so only they are visited (the planner
    // would otherwise walk every message of the environment).
    Stmt s = db.Prepare(
        "UPDATE messages INDEXED BY messages_due SET state = 'failed', next_attempt_at = NULL, "
        "error_id = ?, error_text = ?, updated_at = ? WHERE next_attempt_at IS NOT NULL AND "
        "state = 'pending' AND " +
        std::string(where));
    s.Bind(1, reason).Bind(2, text).Bind(3, static_cast<std::int64_t>(NowMs()));
    for (std::size_t i = 0; i < params.size(); ++i) s.Bind(static_cast<int>(i) + 4, params[i]);
    return s.Exec();
  }

  static constexpr std::string_view kTokenRemoved =
      "the device token was removed before the message was sent";

  // ---- subscribers ----
  static void ApplyPatch(Subscriber& sub, const SubscriberPatch& p) {
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

  static Status SaveProfile(Db& db, const Subscriber& sub, bool insert) {
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

  // Creates or updates (fields set in `profile`) a subscriber inside the current transaction.
  static Result<Subscriber> UpsertInTx(Db& db, std::string_view env, std::string_view subscriber_id,
                                       const SubscriberPatch& profile, bool fail_if_exists,
                                       bool* created) {
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

  Result<Subscriber> UpsertSubscriber(std::string_view env, std::string_view subscriber_id,
                                      const SubscriberPatch& profile, bool fail_if_exists,
                                      bool* created) override {
    return Write<Subscriber>([&](Db& db) {
      return UpsertInTx(db, env, subscriber_id, profile, fail_if_exists, created);
    });
  }

  Result<Subscriber> GetSubscriber(std::string_view env, std::string_view subscriber_id) override {
    return Read([&](Db& db) { return LoadSubscriber(db, env, subscriber_id); });
  }

  Result<Subscriber> PatchSubscriber(std::string_view env, std::string_view subscriber_id,
                                     const SubscriberPatch& patch) override {
    return Write<Subscriber>([&](Db& db) -> Result<Subscriber> {
      ASSIGN_OR_RETURN(Subscriber sub, LoadSubscriber(db, env, subscriber_id));
      if (patch.empty()) return sub;
      ApplyPatch(sub, patch);
      sub.updated_at = NowMs();
      RETURN_IF_ERROR(SaveProfile(db, sub, /*insert=*/false));
      return sub;
    });
  }

  Status DeleteSubscriber(std::string_view env, std::string_view subscriber_id) override {
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

  Result<Page<Subscriber>> SearchSubscribers(std::string_view env, const SubscriberFilter& filter,
                                             const PageRequest& request) override {
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

  // Novu §4: resolves the integration (newest active of the provider, or by identifier),
  // creates the channel if needed and replaces or appends its tokens.
  // Novu: the newest active integration of the provider, optionally by identifier.
  static Result<std::string> FindActiveIntegration(Db& db, std::string_view env,
                                                   const std::string& provider_id,
                                                   const std::optional<std::string>& identifier) {
    Stmt find = db.Prepare(
        "SELECT id FROM integrations WHERE environment_id = ? AND provider_id = ? AND "
        "active = 1 AND (? IS NULL OR identifier = ?) ORDER BY created_at DESC, id DESC LIMIT 1");
    find.Bind(1, env).Bind(2, provider_id).Bind(3, identifier).Bind(4, identifier);
    if (find.Step()) return find.Text(0);
    RETURN_IF_ERROR(find.status());
    if (identifier) {
      return Status::InvalidArgument("Integration with identifier " + *identifier +
                                     " and provider " + provider_id +
                                     " is not active or does not exist.");
    }
    return Status::InvalidArgument("Subscribers environment (" + std::string(env) +
                                   ") do not have active " + provider_id + " integration.");
  }

  static Status ApplyCredentials(Db& db, std::string_view env, const std::string& sub_pk,
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
        merged.status = TokenStatus::kActive;
        merged.last_failure_reason.reset();
        if (update.mode == TokenWriteMode::kAppend) {
          // Already placed by the loop above; refresh it in place.
          auto placed = std::find_if(wanted.begin(), wanted.end(), [&](const DeviceToken& w) {
            return w.identity == t.identity;
          });
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
          "last_active_at, last_failure_reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
      s.Bind(1, channel_pk).Bind(2, static_cast<std::int64_t>(i)).Bind(3, t.token);
      s.Bind(4, t.identity).Bind(5, TokenStatusName(t.status));
      s.Bind(6, static_cast<std::int64_t>(t.created_at));
      s.Bind(7, t.last_active_at).Bind(8, t.last_failure_reason);
      RETURN_IF_ERROR(s.Exec());
    }
    return Status::Ok();
  }

  Result<Subscriber> UpdateCredentials(std::string_view env, std::string_view subscriber_id,
                                       const CredentialsUpdate& update) override {
    return Write<Subscriber>([&](Db& db) -> Result<Subscriber> {
      std::optional<std::string> sub_pk = FindSubscriberPk(db, env, subscriber_id);
      if (!sub_pk) {
        return Status::InvalidArgument("SubscriberId: " + std::string(subscriber_id) +
                                       " not found");
      }
      EpochMs now = NowMs();
      RETURN_IF_ERROR(ApplyCredentials(db, env, *sub_pk, update, now));
      Stmt touch = db.Prepare("UPDATE subscribers SET updated_at = ? WHERE id = ?");
      touch.Bind(1, static_cast<std::int64_t>(now)).Bind(2, *sub_pk);
      RETURN_IF_ERROR(touch.Exec());
      return LoadSubscriber(db, env, subscriber_id);
    });
  }

  Status DeleteCredentials(std::string_view env, std::string_view subscriber_id,
                           std::string_view provider_id) override {
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

  // ---- topics ----
  Result<Topic> UpsertTopic(const Topic& topic, bool fail_if_exists, bool* created) override {
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

  static Result<Topic> InsertTopic(Db& db, Topic t) {
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

  Result<Topic> GetTopic(std::string_view env, std::string_view key) override {
    return Read([&](Db& db) { return LoadTopic(db, env, key); });
  }

  Result<Page<Topic>> ListTopics(std::string_view env, std::optional<std::string> key,
                                 std::optional<std::string> name,
                                 const PageRequest& request) override {
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

  static constexpr std::string_view kSubscriptionSelect =
      "SELECT ts.id, ts.identifier, ts.created_at, ts.updated_at, s.id, s.subscriber_id, "
      "s.first_name, s.last_name, s.email, s.phone, s.avatar, s.locale, s.timezone, s.data "
      "FROM topic_subscriptions ts JOIN subscribers s ON s.id = ts.subscriber_pk ";

  static TopicSubscription ReadSubscriptionRow(const Stmt& s, const Topic& topic) {
    TopicSubscription sub;
    sub.id = s.Text(0);
    sub.identifier = s.Text(1);
    sub.created_at = s.Int(2);
    sub.updated_at = s.Int(3);
    sub.subscriber_pk = s.Text(4);
    sub.subscriber_id = s.Text(5);
    sub.subscriber_profile = ReadProfile(s, 6);
    sub.topic = topic;
    return sub;
  }

  static std::optional<TopicSubscription> LoadSubscription(Db& db, const Topic& topic,
                                                           const std::string& subscriber_pk) {
    Stmt s = db.Prepare(std::string(kSubscriptionSelect) +
                        "WHERE ts.topic_id = ? AND ts.subscriber_pk = ?");
    s.Bind(1, topic.id).Bind(2, subscriber_pk);
    if (!s.Step()) return std::nullopt;
    return ReadSubscriptionRow(s, topic);
  }

  Result<TopicSubscriptionResult> AddTopicSubscribers(
      std::string_view env, std::string_view key,
      const std::vector<std::string>& subscriber_ids) override {
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

  Result<TopicSubscriptionResult> RemoveTopicSubscribers(
      std::string_view env, std::string_view key,
      const std::vector<std::string>& subscriber_ids) override {
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

  Result<Page<TopicSubscription>> ListTopicSubscriptions(std::string_view env, std::string_view key,
                                                         std::optional<std::string> subscriber_id,
                                                         const PageRequest& request) override {
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

  // ---- workflows ----
  Result<Workflow> CreateWorkflow(const Workflow& workflow) override {
    return Write<Workflow>([&](Db& db) -> Result<Workflow> {
      Stmt s = db.Prepare(
          "INSERT INTO workflows (id, environment_id, workflow_id, name, description, tags, "
          "active, severity, payload_schema, preferences, steps, created_at, updated_at) "
          "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
      Status st = BindWorkflow(s, workflow);
      if (st.code() == Code::kConflict) {
        return Status::Conflict("Workflow with id " + workflow.workflow_id + " already exists");
      }
      RETURN_IF_ERROR(st);
      return workflow;
    });
  }

  Result<Workflow> GetWorkflow(std::string_view env, std::string_view id) override {
    return Read([&](Db& db) { return LoadWorkflow(db, env, id); });
  }

  Result<std::vector<Workflow>> ListWorkflows(std::string_view env, int offset, int limit,
                                              std::optional<std::string> query,
                                              long long* total) override {
    return Read([&](Db& db) -> Result<std::vector<Workflow>> {
      std::string from = " FROM workflows WHERE environment_id = ?";
      std::string pattern;
      if (query) {
        from += " AND (name LIKE ? ESCAPE '\\' OR workflow_id LIKE ? ESCAPE '\\')";
        pattern = ContainsPattern(*query);
      }
      auto bind_filters = [&](Stmt& s) {
        s.Bind(1, env);
        if (query) s.Bind(2, pattern).Bind(3, pattern);
      };
      bool capped = false;
      *total = CountCapped(db, from, bind_filters, &capped);
      Stmt s = db.Prepare("SELECT " + std::string(kWorkflowColumns) + from +
                          " ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?");
      bind_filters(s);
      int next = query ? 4 : 2;
      s.Bind(next, limit).Bind(next + 1, offset);
      std::vector<Workflow> out;
      while (s.Step()) out.push_back(ReadWorkflowRow(s));
      if (!s.status().ok()) return s.status();
      return out;
    });
  }

  Result<Workflow> UpdateWorkflow(const Workflow& workflow) override {
    return Write<Workflow>([&](Db& db) -> Result<Workflow> {
      Stmt del = db.Prepare("DELETE FROM workflows WHERE id = ? AND environment_id = ?");
      del.Bind(1, workflow.id).Bind(2, workflow.environment_id);
      RETURN_IF_ERROR(del.Exec());
      if (db.Changes() == 0) {
        return Status::NotFound("Workflow '" + workflow.workflow_id + "' was not found");
      }
      Stmt s = db.Prepare(
          "INSERT INTO workflows (id, environment_id, workflow_id, name, description, tags, "
          "active, severity, payload_schema, preferences, steps, created_at, updated_at) "
          "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
      Status st = BindWorkflow(s, workflow);
      if (st.code() == Code::kConflict) {
        return Status::Conflict("Workflow with id " + workflow.workflow_id + " already exists");
      }
      RETURN_IF_ERROR(st);
      return workflow;
    });
  }

  Status DeleteWorkflow(std::string_view env, std::string_view id) override {
    return WriteStatus([&](Db& db) -> Status {
      ASSIGN_OR_RETURN(Workflow w, LoadWorkflow(db, env, id));
      Stmt s = db.Prepare("DELETE FROM workflows WHERE id = ?");
      s.Bind(1, w.id);
      return s.Exec();
    });
  }

  // ---- triggers ----
  // Upserts a trigger target and persists its JIT channels (PATCH semantics); returns it loaded.
  static Result<Subscriber> UpsertTarget(Db& db, std::string_view env, const SubscriberTarget& t,
                                         std::size_t max_tokens, EpochMs now) {
    bool created = false;
    ASSIGN_OR_RETURN(Subscriber sub,
                     UpsertInTx(db, env, t.subscriber_id, t.profile, false, &created));
    if (t.channels.empty()) return sub;
    for (const JitChannel& ch : t.channels) {
      CredentialsUpdate update{ch.provider_id, ch.integration_identifier, ch.tokens, ch.webhook_url,
                               std::nullopt,   TokenWriteMode::kAppend,   max_tokens};
      RETURN_IF_ERROR(ApplyCredentials(db, env, sub.id, update, now));
    }
    return LoadSubscriber(db, env, t.subscriber_id);
  }

  // The topics of `r` that the environment has. Novu's worker logs the others and goes on: the
  // subscribers named on their own and the topics that exist still get the trigger.
  static Result<std::vector<const TopicTarget*>> ExistingTopics(Db& db, const TriggerRequest& r) {
    std::vector<const TopicTarget*> found;
    for (const TopicTarget& topic : r.topics) {
      Result<Topic> loaded = LoadTopic(db, r.environment_id, topic.key);
      if (loaded.ok()) {
        found.push_back(&topic);
      } else if (loaded.status().code() == Code::kNotFound) {
        spdlog::warn("trigger_topic_not_found transaction_id={} topic_key={}", r.transaction_id,
                     topic.key);
      } else {
        return loaded.take_status();
      }
    }
    return found;
  }

  // A trigger's subscriber as planning needs it. A plain subscriberId comes from the cache, or is
  // read (and cached) if it exists; a subscriber object with a profile or channels, or one that
  // does not exist yet, is written first and not cached (and the cache is cleared: the write may
  // have changed an entry).
  static Result<std::shared_ptr<const Subscriber>> PlanningTarget(Db& db, SubscriberCache& cache,
                                                                  std::string_view env,
                                                                  const SubscriberTarget& target,
                                                                  std::size_t max_tokens,
                                                                  EpochMs now) {
    if (target.profile.empty() && target.channels.empty()) {
      if (std::shared_ptr<const Subscriber> hit = cache.Find(env, target.subscriber_id)) return hit;
      Result<Subscriber> stored = LoadSubscriber(db, env, target.subscriber_id);
      if (stored.ok()) return cache.Put(ForPlanning(std::move(stored.value())));
      if (stored.status().code() != Code::kNotFound) return stored.take_status();
    }
    ClearAfter clear(cache);
    ASSIGN_OR_RETURN(Subscriber written, UpsertTarget(db, env, target, max_tokens, now));
    return std::make_shared<const Subscriber>(ForPlanning(std::move(written)));
  }

  // Plans one trigger (see PlanTriggers); the caller holds a savepoint around it.
  static Status PlanOne(Db& db, SubscriberCache& cache, const TriggerRequest& r,
                        const MessagePlanner& planner, const NewLease& lease,
                        PlanReceipt& receipt) {
    if (!r.workflow) return Status::InvalidArgument("trigger without a workflow");
    EpochMs now = NowMs();
    ASSIGN_OR_RETURN(bool fresh, TakeTransactionId(db, r.environment_id, r.transaction_id,
                                                   r.workflow->workflow_id, now));
    if (!fresh) {
      receipt.duplicates += 1;
      return Status::Ok();
    }
    ASSIGN_OR_RETURN(std::vector<const TopicTarget*> topics_found, ExistingTopics(db, r));
    std::vector<std::string> exclude;
    if (r.actor) {
      Result<std::shared_ptr<const Subscriber>> actor =
          PlanningTarget(db, cache, r.environment_id, *r.actor, r.max_tokens, now);
      if (!actor.ok()) return actor.take_status();
      exclude.push_back(r.actor->subscriber_id);
    }
    std::vector<Message>* leased = lease.owner.empty() ? nullptr : &receipt.leased;
    for (const SubscriberTarget& target : r.subscribers) {
      ASSIGN_OR_RETURN(std::shared_ptr<const Subscriber> sub,
                       PlanningTarget(db, cache, r.environment_id, target, r.max_tokens, now));
      ASSIGN_OR_RETURN(std::size_t written,
                       WriteNotification(db, *r.workflow, *sub, r.transaction_id, r.payload,
                                         r.payload_text, r.overrides, planner, now, lease, leased));
      receipt.notifications += 1;
      receipt.messages += written;
      exclude.push_back(target.subscriber_id);
    }
    if (!topics_found.empty() || r.broadcast) {
      // Left out of the whole fan-out: the subscribers named on their own, the actor, and every
      // topic's `exclude` (Novu gathers them all into one list, whichever topic names them).
      Json topics = Json::array();
      Json excluded = exclude;
      for (const TopicTarget* topic : topics_found) {
        topics.push_back(topic->key);
        for (const std::string& id : topic->exclude) excluded.push_back(id);
      }
      Json fanout = {
          {"workflow", r.workflow->id}, {"payload", r.payload}, {"payload_text", r.payload_text},
          {"overrides", r.overrides},   {"topics", topics},     {"exclude", excluded},
          {"broadcast", r.broadcast}};
      Stmt s = db.Prepare(
          "INSERT INTO fanouts (id, environment_id, transaction_id, topic_key, request, "
          "cursor, created_at) VALUES (?, ?, ?, ?, ?, '', ?)");
      s.Bind(1, NewObjectId()).Bind(2, r.environment_id).Bind(3, r.transaction_id);
      s.Bind(4, topics_found.empty() ? std::optional<std::string>()
                                     : std::optional<std::string>(topics_found[0]->key));
      s.Bind(5, DumpJson(fanout)).Bind(6, static_cast<std::int64_t>(now));
      RETURN_IF_ERROR(s.Exec());
      receipt.fanouts += 1;
    }
    receipt.planned += 1;
    return Status::Ok();
  }

  void EnqueueTrigger(QueuedTrigger trigger, std::function<void(Status)> done) override {
    auto row = std::make_shared<QueuedTrigger>(std::move(trigger));
    std::string event = row->event_text.empty() ? DumpJson(row->event) : std::move(row->event_text);
    writer_.Submit(
        [this, row, event = std::move(event)](Db& db) -> Status {
          RETURN_IF_ERROR(CheckInboxRoom(db));
          Stmt s = db.Prepare(
              "INSERT INTO trigger_inbox (environment_id, transaction_id, broadcast, event, "
              "created_at) VALUES (?, ?, ?, ?, ?)");
          s.BindRef(1, row->environment_id).BindRef(2, row->transaction_id);
          s.Bind(3, row->broadcast).BindRef(4, event).Bind(5, static_cast<std::int64_t>(NowMs()));
          RETURN_IF_ERROR(s.Exec());
          inbox_estimate_ += 1;
          return Status::Ok();
        },
        // One INSERT (after reads): a failed one leaves nothing to undo.
        std::move(done), Durability::kSynced, Priority::kForeground, Undo::kSelf);
  }

  // Unavailable when max_queued_triggers_ rows wait in the inbox. Runs on the writer. The count
  // is taken (two lookups at the ends of the rowid tree: an upper bound when rows in the middle
  // were cancelled) every kInboxRecountEvery enqueues and whenever the estimate, which only
  // grows in between, says the inbox may be full.
  Status CheckInboxRoom(Db& db) {
    if (++enqueues_since_count_ >= kInboxRecountEvery || inbox_estimate_ >= max_queued_triggers_) {
      Stmt depth = db.Prepare(
          "SELECT (SELECT MAX(seq) FROM trigger_inbox) - (SELECT MIN(seq) FROM trigger_inbox)");
      std::int64_t waiting = depth.Step() ? depth.OptInt(0).value_or(-1) + 1 : 0;
      RETURN_IF_ERROR(depth.status());
      while (depth.Step()) {
      }
      inbox_estimate_ = waiting;
      enqueues_since_count_ = 0;
    }
    if (inbox_estimate_ >= max_queued_triggers_) {
      return Status::Unavailable("the trigger queue is full (" + std::to_string(inbox_estimate_) +
                                 " triggers waiting to be planned); retry later");
    }
    return Status::Ok();
  }

  Result<std::vector<QueuedTrigger>> ReadQueuedTriggers(std::size_t limit) override {
    return Read([&](Db& db) -> Result<std::vector<QueuedTrigger>> {
      Stmt s = db.Prepare(
          "SELECT seq, environment_id, transaction_id, broadcast, event, created_at "
          "FROM trigger_inbox ORDER BY seq LIMIT ?");
      s.Bind(1, static_cast<std::int64_t>(limit));
      std::vector<QueuedTrigger> out;
      while (s.Step()) {
        QueuedTrigger q;
        q.seq = s.Int(0);
        q.environment_id = s.Text(1);
        q.transaction_id = s.Text(2);
        q.broadcast = s.Int(3) != 0;
        q.event_text = s.Text(4);
        q.event = ParseColumn(q.event_text);
        q.created_at = s.Int(5);
        out.push_back(std::move(q));
      }
      RETURN_IF_ERROR(s.status());
      return out;
    });
  }

  Status CheckTriggerTargets(const TriggerRequest& r) override {
    return Read([&](Db& db) -> Status {
      std::vector<const SubscriberTarget*> targets;
      if (r.actor) targets.push_back(&*r.actor);
      for (const SubscriberTarget& t : r.subscribers) targets.push_back(&t);
      for (const SubscriberTarget* t : targets) {
        std::optional<std::string> subscriber_pk =
            t->channels.empty() ? std::nullopt
                                : FindSubscriberPk(db, r.environment_id, t->subscriber_id);
        for (const JitChannel& ch : t->channels) {
          Result<std::string> found = FindActiveIntegration(db, r.environment_id, ch.provider_id,
                                                            ch.integration_identifier);
          if (!found.ok()) return found.take_status();
          // JIT tokens are appended: the channel must still fit the token limit afterwards.
          std::set<std::string> identities;
          for (const DeviceToken& token : ch.tokens) identities.insert(token.identity);
          if (subscriber_pk) {
            Stmt held = db.Prepare(
                "SELECT dt.identity FROM device_tokens dt JOIN subscriber_channels c ON "
                "c.id = dt.channel_pk WHERE c.subscriber_pk = ? AND c.integration_id = ?");
            held.Bind(1, *subscriber_pk).Bind(2, *found);
            while (held.Step()) identities.insert(held.Text(0));
            RETURN_IF_ERROR(held.status());
          }
          if (identities.size() > r.max_tokens) {
            return TokenLimitExceeded(identities.size(), r.max_tokens);
          }
        }
      }
      return Status::Ok();
    });
  }

  // Planning runs as background writes of kPlanChunk triggers each, all queued at once: a
  // trigger's acknowledgement waits behind one chunk at most, not behind a whole batch.
  static constexpr std::size_t kPlanChunk = 8;

  // Shared by the chunks of one PlanTriggers call (touched on the writer thread only).
  struct PlanProgress {
    bool started = false;    // an item was planned (or skipped)
    std::size_t leased = 0;  // messages leased by the items planned so far
  };

  // Plans a chunk under one savepoint. Only if a trigger fails does the chunk run again with a
  // savepoint per trigger, so that the failing one alone is dropped or left queued (a savepoint
  // costs about 1 us; failures are rare).
  Result<PlanReceipt> PlanChunk(Db& db, std::span<const PlannedTrigger> items,
                                const MessagePlanner& planner, const NewLease& lease,
                                std::size_t max_leased, PlanProgress& progress) {
    const PlanProgress before = progress;
    RETURN_IF_ERROR(db.Run("SAVEPOINT c"));
    Result<PlanReceipt> all =
        PlanItems(db, items, planner, lease, max_leased, progress, /*isolate=*/false);
    if (all.ok()) {
      RETURN_IF_ERROR(db.Run("RELEASE c"));
      return all;
    }
    (void)db.Run("ROLLBACK TO c");
    (void)db.Run("RELEASE c");
    subscribers_.Clear();  // it may hold what the chunk wrote
    if (!db.InTransaction()) return all.status();
    progress = before;
    return PlanItems(db, items, planner, lease, max_leased, progress, /*isolate=*/true);
  }

  // Plans `items` in order. With `isolate`, each trigger runs inside its own savepoint: one that
  // fails for good is dropped, one that fails transiently fails the call (the chunk stays
  // queued). Without, the first failure fails the call and leaves the rollback to the caller.
  Result<PlanReceipt> PlanItems(Db& db, std::span<const PlannedTrigger> items,
                                const MessagePlanner& planner, const NewLease& lease,
                                std::size_t max_leased, PlanProgress& progress, bool isolate) {
    PlanReceipt receipt;
    for (const PlannedTrigger& item : items) {
      // The first item is always planned; after it, stop once enough messages were leased.
      if (progress.started && progress.leased >= max_leased) break;  // the rest stays queued
      progress.started = true;
      if (item.seq > 0) {
        // Sequence numbers can be reused once the newest row is gone: the row must still be
        // the one that was read.
        Stmt del = db.Prepare(
            "DELETE FROM trigger_inbox WHERE seq = ? AND environment_id = ? AND "
            "transaction_id = ?");
        del.Bind(1, item.seq).Bind(2, item.environment_id).Bind(3, item.transaction_id);
        RETURN_IF_ERROR(del.Exec());
        if (db.Changes() == 0) {
          receipt.skipped += 1;
          continue;
        }
      }
      if (!item.request) {
        spdlog::warn("trigger dropped transaction_id={} reason=\"{}\"", item.transaction_id,
                     item.error);
        receipt.dropped += 1;
        continue;
      }
      if (isolate) RETURN_IF_ERROR(db.Run("SAVEPOINT t"));
      PlanReceipt attempt;
      Status st;
      try {
        st = PlanOne(db, subscribers_, *item.request, planner, lease, attempt);
      } catch (const std::exception& e) {  // a bug in planning this one: never retry it
        st = Status::InvalidArgument(std::string("planning threw: ") + e.what());
      }
      if (!st.ok() && !isolate) return st;
      if (!st.ok()) {
        (void)db.Run("ROLLBACK TO t");
        (void)db.Run("RELEASE t");
        subscribers_.Clear();
        if (!db.InTransaction() || !IsPermanentTriggerError(st.code()))
          return st;  // the whole chunk stays queued
        spdlog::warn("trigger dropped transaction_id={} reason=\"{}\"",
                     item.request->transaction_id, st.message());
        receipt.dropped += 1;
        continue;
      }
      if (isolate) RETURN_IF_ERROR(db.Run("RELEASE t"));
      progress.leased += attempt.leased.size();
      Absorb(receipt, std::move(attempt));
    }
    return receipt;
  }

  Result<PlanReceipt> PlanTriggers(std::vector<PlannedTrigger> items, const MessagePlanner& planner,
                                   std::string_view owner, EpochMs lease_until,
                                   std::size_t max_leased) override {
    if (items.empty()) return PlanReceipt{};
    const std::string lease_owner(owner);
    const NewLease lease{lease_owner, lease_until};
    PlanProgress progress;
    std::vector<std::optional<Result<PlanReceipt>>> parts((items.size() + kPlanChunk - 1) /
                                                          kPlanChunk);
    std::promise<void> all_done;
    std::size_t remaining = parts.size();  // counted down by the callbacks (one thread, in order)
    for (std::size_t c = 0; c < parts.size(); ++c) {
      std::span<const PlannedTrigger> chunk(items.data() + c * kPlanChunk,
                                            std::min(kPlanChunk, items.size() - c * kPlanChunk));
      writer_.Submit(
          [&, c, chunk](Db& db) -> Status {
            // A chunk that fails (or throws) is rolled back by the writer: what the cache took
            // in meanwhile goes too.
            ClearAfter clear_on_failure(subscribers_);
            parts[c] = PlanChunk(db, chunk, planner, lease, max_leased, progress);
            if (!parts[c]->ok()) return parts[c]->status();
            clear_on_failure.Keep();
            return Status::Ok();
          },
          [&, c](Status st) {
            // A chunk whose own work succeeded can still fail as part of its batch.
            if (!st.ok() && (!parts[c] || parts[c]->ok())) parts[c] = std::move(st);
            if (--remaining == 0) all_done.set_value();
          },
          // Replayable: a plan lost with a power failure puts its inbox rows back.
          Durability::kCommitted, Priority::kBackground);
    }
    all_done.get_future().wait();
    // Chunks that failed leave their triggers queued for the next pass; the others' messages are
    // leased and must be sent, so they are returned even then.
    PlanReceipt receipt;
    std::size_t leased = 0;
    for (const std::optional<Result<PlanReceipt>>& part : parts) {
      if (part->ok()) leased += part->value().leased.size();
    }
    receipt.leased.reserve(leased);  // one allocation, not a doubling per chunk
    std::optional<Status> first_error;
    bool any_ok = false;
    for (std::optional<Result<PlanReceipt>>& part : parts) {
      if (!part->ok()) {
        if (!first_error) first_error = part->status();
        continue;
      }
      any_ok = true;
      Absorb(receipt, std::move(part->value()));
    }
    if (!any_ok) return *first_error;
    if (first_error) spdlog::error("planning left triggers queued: {}", first_error->message());
    return receipt;
  }

  Result<bool> CancelTransaction(std::string_view env, std::string_view transaction_id) override {
    return Write<bool>([&](Db& db) -> Result<bool> {
      EpochMs now = NowMs();
      Stmt m = db.Prepare(
          "UPDATE messages SET state = 'cancelled', next_attempt_at = NULL, updated_at = ? "
          "WHERE environment_id = ? AND transaction_id = ? AND state = 'pending'");
      m.Bind(1, static_cast<std::int64_t>(now)).Bind(2, env).Bind(3, transaction_id);
      RETURN_IF_ERROR(m.Exec());
      std::int64_t changed = db.Changes();
      Stmt f = db.Prepare("DELETE FROM fanouts WHERE environment_id = ? AND transaction_id = ?");
      f.Bind(1, env).Bind(2, transaction_id);
      RETURN_IF_ERROR(f.Exec());
      changed += db.Changes();
      // Not planned yet: it never will be (the inbox is short, so a scan is fine), and its id
      // stays taken so that a repeat is not delivered either.
      Stmt q = db.Prepare(
          "DELETE FROM trigger_inbox WHERE environment_id = ? AND transaction_id = ? "
          "RETURNING json_extract(event, '$.name')");
      q.Bind(1, env).Bind(2, transaction_id);
      bool removed = false;
      std::string workflow;
      while (q.Step()) {
        removed = true;
        workflow = q.OptText(0).value_or("");
      }
      RETURN_IF_ERROR(q.status());
      if (removed) {
        changed += 1;
        Result<bool> taken = TakeTransactionId(db, env, transaction_id, workflow, now);
        if (!taken.ok()) return taken.take_status();
      }
      return changed > 0;
    });
  }

  // ---- the delivery queue ----
  Result<std::vector<Message>> ClaimDueMessages(std::string_view owner, EpochMs now,
                                                EpochMs lease_until, std::size_t limit) override {
    // A leased message's next_attempt_at is the end of its lease, so the due range of the index
    // holds only what can be claimed. Most passes find nothing: ask a reader first.
    Result<bool> any = AnyRow(
        "SELECT 1 FROM messages WHERE next_attempt_at IS NOT NULL AND next_attempt_at <= ? LIMIT 1",
        now);
    if (!any.ok()) return any.take_status();
    if (!*any) return std::vector<Message>{};
    return WriteBackground<std::vector<Message>>([&](Db& db) -> Result<std::vector<Message>> {
      Stmt s = db.Prepare("SELECT " + std::string(kMessageColumns) + std::string(kMessageFrom) +
                          " WHERE m.next_attempt_at IS NOT NULL AND m.next_attempt_at <= ? AND "
                          "(m.lease_until IS NULL OR m.lease_until < ?) "
                          "ORDER BY m.next_attempt_at LIMIT ?");
      s.Bind(1, static_cast<std::int64_t>(now)).Bind(2, static_cast<std::int64_t>(now));
      s.Bind(3, static_cast<std::int64_t>(limit));
      std::vector<Message> out;
      while (s.Step()) out.push_back(ReadMessageRow(s));
      RETURN_IF_ERROR(s.status());
      for (const Message& m : out) {
        Stmt lease = db.Prepare(
            "UPDATE messages SET lease_owner = ?, lease_until = ?2, next_attempt_at = ?2 "
            "WHERE id = ?3");
        lease.Bind(1, owner).Bind(2, static_cast<std::int64_t>(lease_until)).Bind(3, m.id);
        RETURN_IF_ERROR(lease.Exec());
      }
      return out;
    });
  }

  void CompleteMessages(std::string owner_id, std::vector<MessageOutcome> outcome_list,
                        std::function<void(Status)> done) override {
    auto work = [this, owner = std::move(owner_id),
                 outcomes = std::move(outcome_list)](Db& db) -> Status {
      EpochMs now = NowMs();
      for (const MessageOutcome& o : outcomes) {
        using Kind = MessageOutcome::Kind;
        const char* sql =
            o.kind == Kind::kDelivered
                ? "UPDATE messages SET state = 'delivered', next_attempt_at = NULL, "
                  "provider_response_id = ?, error_id = NULL, error_text = NULL, "
                  "attempts = attempts + 1, last_attempt_at = ?, lease_owner = NULL, "
                  "lease_until = NULL, updated_at = ? WHERE id = ? AND lease_owner = ?"
            : o.kind == Kind::kRetry
                ? "UPDATE messages SET next_attempt_at = CASE WHEN state = 'pending' THEN ? "
                  "ELSE NULL END, error_id = ?, error_text = ?, "
                  "attempts = attempts + 1, last_attempt_at = ?, lease_owner = NULL, "
                  "lease_until = NULL, updated_at = ? WHERE id = ? AND lease_owner = ?"
                : "UPDATE messages SET state = CASE WHEN state IN ('cancelled', 'failed') "
                  "THEN state ELSE 'failed' END, next_attempt_at = NULL, "
                  "error_id = CASE WHEN state = 'failed' THEN error_id ELSE ? END, "
                  "error_text = CASE WHEN state = 'failed' THEN error_text ELSE ? END, "
                  "attempts = attempts + ?, last_attempt_at = COALESCE(?, last_attempt_at), "
                  "lease_owner = NULL, lease_until = NULL, updated_at = ? "
                  "WHERE id = ? AND lease_owner = ?";
        Stmt s = db.Prepare(sql);
        int i = 1;
        if (o.kind == Kind::kDelivered) {
          s.Bind(i++, o.provider_response_id);
        } else {
          if (o.kind == Kind::kRetry) s.Bind(i++, static_cast<std::int64_t>(o.retry_at));
          s.Bind(i++, o.error_id);
          s.Bind(i++, o.error_text);
        }
        if (o.kind == Kind::kFailed) {
          s.Bind(i++, o.attempted ? 1 : 0);
          s.Bind(i++, o.attempted ? std::optional<std::int64_t>(o.at) : std::nullopt);
        } else {
          s.Bind(i++, static_cast<std::int64_t>(o.at));
        }
        s.Bind(i++, static_cast<std::int64_t>(now));
        s.Bind(i++, o.message_id);
        s.Bind(i++, owner);
        RETURN_IF_ERROR(s.Exec());
        if (db.Changes() == 0) continue;  // lease lost: someone else owns the outcome
        if (!o.channel_pk) continue;      // the token came from an override
        if (o.kind == Kind::kDelivered && !o.touch_token) continue;
        Stmt t = db.Prepare(
            // Last-active has second precision: a token that keeps receiving is not rewritten
            // on every delivery.
            o.kind == Kind::kDelivered
                ? "UPDATE device_tokens SET last_active_at = ?1, last_failure_reason = NULL "
                  "WHERE channel_pk = ?2 AND identity = ?3 AND (last_active_at IS NULL OR "
                  "last_active_at < ?1 - 1000 OR last_failure_reason IS NOT NULL)"
                : "UPDATE device_tokens SET last_failure_reason = ?, status = CASE WHEN ? = 1 "
                  "THEN 'expired' ELSE status END WHERE channel_pk = ? AND identity = ?");
        if (o.kind == Kind::kDelivered) {
          t.Bind(1, static_cast<std::int64_t>(o.at));
        } else {
          // A failure can expire the token, which planning then skips. (A delivery's last-active
          // time is not what planning reads.)
          subscribers_.Clear();
          t.Bind(1, o.error_id + (o.error_text.empty() ? "" : ": " + o.error_text));
          t.Bind(2, o.kind == Kind::kFailed && o.expire_token);
        }
        int base = o.kind == Kind::kDelivered ? 2 : 3;
        t.Bind(base, *o.channel_pk).Bind(base + 1, o.token_identity);
        RETURN_IF_ERROR(t.Exec());
      }
      return Status::Ok();
    };
    // Replayable: an outcome lost with a power failure leaves its message leased, so it is sent
    // again after the restart (at least once).
    writer_.Submit(std::move(work), std::move(done), Durability::kCommitted, Priority::kBackground);
  }

  Status ReleaseAllLeases() override {
    return WriteStatus([](Db& db) {
      // Due at once (a leased message was due when it was leased).
      return db.ExecScript(
          "UPDATE messages SET lease_owner = NULL, lease_until = NULL, next_attempt_at = CASE "
          "WHEN next_attempt_at IS NULL THEN NULL ELSE MIN(next_attempt_at, created_at) END "
          "WHERE lease_owner IS NOT NULL");
    });
  }

  Result<std::optional<EpochMs>> NextDueAt() override {
    return Read([](Db& db) -> Result<std::optional<EpochMs>> {
      Stmt s =
          db.Prepare("SELECT MIN(next_attempt_at) FROM messages WHERE next_attempt_at IS NOT NULL");
      if (!s.Step())
        return s.status().ok() ? Result<std::optional<EpochMs>>(std::nullopt) : s.status();
      return s.OptInt(0);
    });
  }

  Result<std::size_t> RunFanoutBatch(std::size_t batch, const MessagePlanner& planner) override {
    // Most passes find nothing to do: answer those from a reader, without a write transaction.
    Result<bool> any = AnyRow("SELECT 1 FROM fanouts LIMIT 1");
    if (!any.ok()) return any.take_status();
    if (!*any) return std::size_t{0};
    return WriteBackground<std::size_t>([&](Db& db) -> Result<std::size_t> {
      Stmt pick = db.Prepare(
          "SELECT id, environment_id, transaction_id, request, cursor FROM fanouts "
          "ORDER BY created_at, id LIMIT 1");
      if (!pick.Step()) {
        RETURN_IF_ERROR(pick.status());
        return std::size_t{0};
      }
      std::string id = pick.Text(0), env = pick.Text(1), tx = pick.Text(2);
      Json request = ParseColumn(pick.Text(3));
      std::string cursor = pick.Text(4);
      while (pick.Step()) {
      }
      std::set<std::string> exclude;
      for (const Json& e : request.value("exclude", Json::array())) {
        if (e.is_string()) exclude.insert(e.get<std::string>());
      }
      const std::string payload_text = request.value("payload_text", "");
      Result<Workflow> workflow = LoadWorkflow(db, env, request.value("workflow", ""));
      std::vector<std::pair<std::string, std::string>> members;  // (pk, subscriber_id)
      if (workflow.ok()) {
        const Json& topics = request.value("topics", Json::array());
        std::string sql;
        if (topics.empty()) {
          sql =
              "SELECT id, subscriber_id FROM subscribers WHERE environment_id = ? AND id > ? "
              "ORDER BY id LIMIT ?";
        } else {
          std::string marks;
          for (std::size_t i = 0; i < topics.size(); ++i) marks += i ? ", ?" : "?";
          sql =
              "SELECT s.id, s.subscriber_id FROM subscribers s WHERE s.environment_id = ? AND "
              "s.id > ? AND EXISTS (SELECT 1 FROM topic_subscriptions ts JOIN topics t ON "
              "t.id = ts.topic_id WHERE ts.subscriber_pk = s.id AND t.topic_key IN (" +
              marks + ")) ORDER BY s.id LIMIT ?";
        }
        Stmt s = db.Prepare(sql);
        int i = 1;
        s.Bind(i++, env);
        s.Bind(i++, cursor);
        for (const Json& key : topics) s.Bind(i++, key.get<std::string>());
        s.Bind(i, static_cast<std::int64_t>(batch));
        while (s.Step()) members.emplace_back(s.Text(0), s.Text(1));
        RETURN_IF_ERROR(s.status());
        Json topic_refs = Json::array();  // what the notifications record: [{_topicId, topicKey}]
        if (!topics.empty() && !members.empty()) {
          Stmt t = db.Prepare("SELECT id, topic_key FROM topics WHERE environment_id = ? AND " +
                              std::string("topic_key IN (SELECT value FROM json_each(?)) ") +
                              "ORDER BY topic_key");
          t.Bind(1, env).Bind(2, DumpJson(topics));
          while (t.Step()) topic_refs.push_back({{"_topicId", t.Text(0)}, {"topicKey", t.Text(1)}});
          RETURN_IF_ERROR(t.status());
        }
        EpochMs now = NowMs();
        for (const auto& [pk, subscriber_id] : members) {
          if (exclude.count(subscriber_id)) continue;
          ASSIGN_OR_RETURN(Subscriber sub, LoadSubscriber(db, env, subscriber_id));
          ASSIGN_OR_RETURN(
              std::size_t written,
              WriteNotification(db, *workflow, ForPlanning(std::move(sub)), tx, request["payload"],
                                payload_text, request["overrides"], planner, now, {}, nullptr,
                                topic_refs.empty() ? nullptr : &topic_refs));
          (void)written;
        }
      }
      if (!workflow.ok() || members.size() < batch) {
        Stmt del = db.Prepare("DELETE FROM fanouts WHERE id = ?");
        del.Bind(1, id);
        RETURN_IF_ERROR(del.Exec());
      } else {
        Stmt upd = db.Prepare("UPDATE fanouts SET cursor = ? WHERE id = ?");
        upd.Bind(1, members.back().first).Bind(2, id);
        RETURN_IF_ERROR(upd.Exec());
      }
      Stmt count = db.Prepare("SELECT COUNT(*) FROM fanouts");
      std::size_t remaining = count.Step() ? static_cast<std::size_t>(count.Int(0)) : 0;
      while (count.Step()) {
      }
      return remaining;
    });
  }

  // ---- messages and activity ----
  Result<std::vector<Message>> ListMessages(const MessageQuery& q, long long* total) override {
    return Read([&](Db& db) -> Result<std::vector<Message>> {
      std::string from = std::string(kMessageFrom) + " WHERE m.environment_id = ?";
      if (q.subscriber_id) from += " AND m.subscriber_id = ?";
      if (!q.transaction_ids.empty()) {
        from += " AND m.transaction_id IN (";
        for (std::size_t i = 0; i < q.transaction_ids.size(); ++i) from += i ? ", ?" : "?";
        from += ")";
      }
      auto bind = [&](Stmt& s) {
        int i = 1;
        s.Bind(i++, q.environment_id);
        if (q.subscriber_id) s.Bind(i++, *q.subscriber_id);
        for (const std::string& tx : q.transaction_ids) s.Bind(i++, tx);
        return i;
      };
      bool capped = false;
      *total = CountCapped(
          db, from, [&](Stmt& s) { bind(s); }, &capped);
      Stmt s = db.Prepare("SELECT " + std::string(kMessageColumns) + from +
                          " ORDER BY m.id DESC LIMIT ? OFFSET ?");  // ids are time-ordered
      int i = bind(s);
      s.Bind(i, q.limit).Bind(i + 1, static_cast<std::int64_t>(q.page) * q.limit);
      std::vector<Message> out;
      while (s.Step()) out.push_back(ReadMessageRow(s));
      RETURN_IF_ERROR(s.status());
      return out;
    });
  }

  Status DeleteMessage(std::string_view env, std::string_view id) override {
    return WriteStatus([&](Db& db) -> Status {
      Stmt s = db.Prepare("DELETE FROM messages WHERE environment_id = ? AND id = ?");
      s.Bind(1, env).Bind(2, id);
      RETURN_IF_ERROR(s.Exec());
      if (db.Changes() == 0)
        return Status::NotFound("Message with id " + std::string(id) + " not found");
      return Status::Ok();
    });
  }

  Result<std::vector<NotificationWithMessages>> ListNotifications(const NotificationQuery& q,
                                                                  long long* total) override {
    return Read([&](Db& db) -> Result<std::vector<NotificationWithMessages>> {
      // The filters as SQL, with their parameters in order.
      std::string from = " FROM notifications WHERE environment_id = ?";
      std::vector<std::variant<std::string, std::int64_t>> params{q.environment_id};
      auto in_list = [&](const std::vector<std::string>& values) {
        std::string sql = " IN (";
        for (std::size_t i = 0; i < values.size(); ++i) sql += i ? ", ?" : "?";
        params.insert(params.end(), values.begin(), values.end());
        return sql + ")";
      };
      if (!q.transaction_ids.empty()) from += " AND transaction_id" + in_list(q.transaction_ids);
      if (!q.workflow_pks.empty()) from += " AND workflow_pk" + in_list(q.workflow_pks);
      if (!q.severities.empty()) from += " AND coalesce(severity, 'none')" + in_list(q.severities);
      std::vector<std::string> who;  // the subscriber criteria: any of them
      if (!q.subscriber_ids.empty()) who.push_back("subscriber_id" + in_list(q.subscriber_ids));
      if (!q.emails.empty()) {
        params.push_back(q.environment_id);
        who.push_back(
            "subscriber_pk IN (SELECT id FROM subscribers WHERE environment_id = ? AND email" +
            in_list(q.emails) + ")");
      }
      if (q.search) {
        params.insert(params.end(), {q.environment_id, *q.search, *q.search});
        who.push_back(
            "subscriber_pk IN (SELECT id FROM subscribers WHERE environment_id = ? AND "
            "(instr(lower(coalesce(email, '')), lower(?)) > 0 OR subscriber_id = ?))");
      }
      for (std::size_t i = 0; i < who.size(); ++i) {
        from += (i ? " OR " : " AND (") + who[i] + (i + 1 == who.size() ? ")" : "");
      }
      if (q.topic_key) {
        params.push_back(*q.topic_key);
        from +=
            " AND EXISTS (SELECT 1 FROM json_each(notifications.topics) "
            "WHERE json_extract(value, '$.topicKey') = ?)";
      }
      if (q.subscription_id) {
        params.push_back(*q.subscription_id);
        from +=
            " AND EXISTS (SELECT 1 FROM topic_subscriptions ts, json_each(notifications.topics) t "
            "WHERE ts.id = ? AND ts.subscriber_pk = notifications.subscriber_pk AND "
            "json_extract(t.value, '$._topicId') = ts.topic_id)";
      }
      if (q.after) {
        from += " AND created_at >= ?";
        params.push_back(*q.after);
      }
      if (q.before) {
        from += " AND created_at <= ?";
        params.push_back(*q.before);
      }
      auto bind = [&](Stmt& s) {
        int i = 1;
        for (const auto& p : params) std::visit([&](const auto& v) { s.Bind(i++, v); }, p);
        return i;
      };
      bool capped = false;
      *total = CountCapped(
          db, from, [&](Stmt& s) { bind(s); }, &capped);
      Stmt s = db.Prepare("SELECT " + std::string(kNotificationColumns) + from +
                          " ORDER BY id DESC LIMIT ? OFFSET ?");  // ids are time-ordered
      int i = bind(s);
      s.Bind(i, q.limit).Bind(i + 1, static_cast<std::int64_t>(q.page) * q.limit);
      std::vector<NotificationWithMessages> out;
      while (s.Step()) out.push_back({ReadNotificationRow(s), {}});
      RETURN_IF_ERROR(s.status());
      for (NotificationWithMessages& n : out) {
        Stmt m = db.Prepare("SELECT " + std::string(kMessageColumns) + std::string(kMessageFrom) +
                            " WHERE m.environment_id = ? AND m.transaction_id = ? AND "
                            "m.notification_id = ? ORDER BY m.created_at, m.id");
        m.Bind(1, n.notification.environment_id).Bind(2, n.notification.transaction_id);
        m.Bind(3, n.notification.id);
        while (m.Step()) n.messages.push_back(ReadMessageRow(m));
        RETURN_IF_ERROR(m.status());
      }
      return out;
    });
  }

  // ---- idempotency ----
  void BeginIdempotent(std::string env, std::string key, std::string body_hash, EpochMs now,
                       EpochMs in_progress_until,
                       std::function<void(Result<IdempotencyRecord>)> done) override {
    WriteAsync<IdempotencyRecord>(
        [env = std::move(env), key = std::move(key), body_hash = std::move(body_hash), now,
         in_progress_until](Db& db) -> Result<IdempotencyRecord> {
          Stmt s = db.Prepare(
              "SELECT body_hash, status, body, expires_at FROM idempotency_keys "
              "WHERE environment_id = ? AND idem_key = ?");
          s.Bind(1, env).Bind(2, key);
          if (s.Step() && s.Int(3) > now) {
            IdempotencyRecord record;
            if (s.Text(0) != body_hash) {
              record.state = IdempotencyState::kMismatch;
            } else if (s.IsNull(1)) {
              record.state = IdempotencyState::kInProgress;
            } else {
              record.state = IdempotencyState::kReplay;
              record.status = static_cast<int>(s.Int(1));
              record.body = s.Text(2);
            }
            return record;
          }
          RETURN_IF_ERROR(s.status());
          Stmt put = db.Prepare(
              "INSERT INTO idempotency_keys (environment_id, idem_key, body_hash, status, body, "
              "expires_at) VALUES (?, ?, ?, NULL, NULL, ?) ON CONFLICT (environment_id, idem_key) "
              "DO UPDATE SET body_hash = excluded.body_hash, status = NULL, body = NULL, "
              "expires_at = excluded.expires_at");
          put.Bind(1, env).Bind(2, key).Bind(3, body_hash);
          put.Bind(4, static_cast<std::int64_t>(in_progress_until));
          RETURN_IF_ERROR(put.Exec());
          return IdempotencyRecord{};
        },
        std::move(done), Touches::kNothingCached);
  }

  void FinishIdempotent(std::string env, std::string key, int status, std::string body,
                        EpochMs expires_at) override {
    writer_.Submit(
        [env = std::move(env), key = std::move(key), status, body = std::move(body),
         expires_at](Db& db) -> Status {
          Stmt s = db.Prepare(
              "UPDATE idempotency_keys SET status = ?, body = ?, expires_at = ? "
              "WHERE environment_id = ? AND idem_key = ?");
          s.Bind(1, status).Bind(2, body).Bind(3, static_cast<std::int64_t>(expires_at));
          s.Bind(4, env).Bind(5, key);
          return s.Exec();
        },
        [](Status st) {
          if (!st.ok()) spdlog::warn("idempotency record not saved: {}", st.message());
        });
  }

  // The writer runs writes and their callbacks in submission order, so an empty write is a
  // barrier behind everything queued before it.
  Status Flush() override {
    // Background (each class runs in order, foreground ahead), so it runs after every write of
    // both classes submitted before it; synced, so its sync covers them all.
    return writer_.Run([](Db&) { return Status::Ok(); }, Durability::kSynced,
                       Priority::kBackground);
  }

  Status PurgeExpired(EpochMs now) override {
    return WriteStatus([now](Db& db) -> Status {
      Stmt s = db.Prepare("DELETE FROM idempotency_keys WHERE expires_at < ?");
      s.Bind(1, static_cast<std::int64_t>(now));
      return s.Exec();
    });
  }

 private:
  const crypto::KeyRing& keys_;
  const std::int64_t max_queued_triggers_;
  // Writer-thread only: see CheckInboxRoom.
  static constexpr int kInboxRecountEvery = 64;
  std::int64_t inbox_estimate_ = 0;
  int enqueues_since_count_ = kInboxRecountEvery;
  SubscriberCache subscribers_;  // writer thread only; before writer_, which uses it
  Writer writer_;
  Checkpointer checkpointer_;
  ReaderPool readers_;
};

Status Migrate(Db& db) {
  RETURN_IF_ERROR(
      db.ExecScript("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
                    "name TEXT NOT NULL, applied_at INTEGER NOT NULL)"));
  int current = 0;
  {
    Stmt s = db.Prepare("SELECT COALESCE(MAX(version), 0) FROM schema_migrations");
    if (s.Step()) current = static_cast<int>(s.Int(0));
  }
  for (const sqlite::Migration& m : sqlite::Migrations()) {
    if (m.version <= current) continue;
    RETURN_IF_ERROR(db.ExecScript("BEGIN IMMEDIATE"));
    Status st = db.ExecScript(m.sql);
    if (st.ok()) {
      Stmt s =
          db.Prepare("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)");
      s.Bind(1, m.version).Bind(2, m.name).Bind(3, static_cast<std::int64_t>(NowMs()));
      st = s.Exec();
    }
    if (!st.ok()) {
      (void)db.ExecScript("ROLLBACK");
      return Status::Internal("migration " + std::to_string(m.version) +
                              " failed: " + st.message());
    }
    RETURN_IF_ERROR(db.ExecScript("COMMIT"));
    spdlog::info("schema migrated version={} name={}", m.version, m.name);
  }
  return Status::Ok();
}

}  // namespace

Result<std::unique_ptr<Store>> OpenSqliteStore(const SqliteOptions& options,
                                               const crypto::KeyRing& keys) {
  ASSIGN_OR_RETURN(std::unique_ptr<Db> writer, Db::Open(options.path, /*read_only=*/false));
  RETURN_IF_ERROR(Migrate(*writer));
  RETURN_IF_ERROR(
      writer->ExecScript("PRAGMA wal_autocheckpoint=0; PRAGMA journal_size_limit=67108864"));
  ASSIGN_OR_RETURN(std::unique_ptr<Db> checkpoint_db, Db::Open(options.path, /*read_only=*/false));
  std::string wal_path = writer->WalPath();
  auto store = std::make_unique<SqliteStore>(std::move(writer), wal_path, std::move(checkpoint_db),
                                             keys, options.max_queued_triggers);
  for (int i = 0; i < std::max(1, options.read_connections); ++i) {
    ASSIGN_OR_RETURN(std::unique_ptr<Db> reader, Db::Open(options.path, /*read_only=*/true));
    store->AddReader(std::move(reader));
  }
  return std::unique_ptr<Store>(std::move(store));
}

Result<int> SqliteSchemaVersion(const std::string& path) {
  ASSIGN_OR_RETURN(std::unique_ptr<Db> db, Db::Open(path, /*read_only=*/true));
  Stmt s = db->Prepare("SELECT COALESCE(MAX(version), 0) FROM schema_migrations");
  if (!s.Step()) return Status::Internal("cannot read schema version");
  return static_cast<int>(s.Int(0));
}

}  // namespace herald::store
