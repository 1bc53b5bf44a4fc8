// Every device token of an environment (the subscriptions table of the dashboard), and the sweep
// that retires tokens no provider has accepted anything for in a long time.
#include <charconv>
#include <string>
#include <utility>

#include "store/sqlite/internal.h"
#include "store/sqlite/paging.h"
#include "store/sqlite/rows.h"
#include "store/sqlite/sqlite_store.h"

namespace herald::store::sqlite {
namespace {

// A page cursor: the last row's created_at and rowid ("<ms>.<rowid>"), so that a page follows
// on even when that row is gone meanwhile.
std::string Cursor(std::int64_t created_at, std::int64_t rowid) {
  return std::to_string(created_at) + "." + std::to_string(rowid);
}

std::optional<std::pair<std::int64_t, std::int64_t>> ParseCursor(std::string_view text) {
  std::size_t dot = text.find('.');
  if (dot == std::string_view::npos) return std::nullopt;
  std::int64_t at = 0, rowid = 0;
  auto [p1, e1] = std::from_chars(text.data(), text.data() + dot, at);
  auto [p2, e2] = std::from_chars(text.data() + dot + 1, text.data() + text.size(), rowid);
  if (e1 != std::errc() || e2 != std::errc() || p1 != text.data() + dot ||
      p2 != text.data() + text.size()) {
    return std::nullopt;
  }
  return std::make_pair(at, rowid);
}

constexpr std::string_view kDeviceFrom =
    " FROM device_tokens dt JOIN subscriber_channels c ON c.id = dt.channel_pk "
    "JOIN subscribers s ON s.id = c.subscriber_pk JOIN integrations i ON i.id = c.integration_id ";

}  // namespace

Result<Page<DeviceRecord>> SqliteStore::ListDevices(const DeviceQuery& q) {
  std::optional<std::pair<std::int64_t, std::int64_t>> after;
  if (q.after) {
    after = ParseCursor(*q.after);
    if (!after) return Status::InvalidArgument("after is not a cursor of this list");
  }
  return Read([&](Db& db) -> Result<Page<DeviceRecord>> {
    std::string where = "WHERE s.environment_id = ?";
    std::vector<std::string> params = {q.environment_id};
    if (q.status) {
      where += " AND dt.status = ?";
      params.emplace_back(TokenStatusName(*q.status));
    }
    if (q.provider_id) {
      where += " AND c.provider_id = ?";
      params.push_back(*q.provider_id);
    }
    if (q.subscriber_id) {
      where += " AND s.subscriber_id = ?";
      params.push_back(*q.subscriber_id);
    }
    auto bind = [&](Stmt& s) {
      for (std::size_t i = 0; i < params.size(); ++i) s.Bind(static_cast<int>(i + 1), params[i]);
    };
    Page<DeviceRecord> page;
    page.total_count =
        CountCapped(db, std::string(kDeviceFrom) + where, bind, &page.total_count_capped);
    // kTokenColumns, qualified (the joined tables have created_at too).
    std::string sql =
        "SELECT dt.rowid, s.subscriber_id, c.integration_id, i.identifier, c.provider_id, "
        "dt.token, dt.identity, dt.status, dt.created_at, dt.last_active_at, "
        "dt.last_failure_reason, dt.registered_at, dt.status_changed_at" +
        std::string(kDeviceFrom) + where;
    if (after) sql += " AND (dt.created_at, dt.rowid) < (?, ?)";
    sql += " ORDER BY dt.created_at DESC, dt.rowid DESC LIMIT " + std::to_string(q.limit + 1);
    Stmt s = db.Prepare(sql);
    bind(s);
    if (after) {
      s.Bind(static_cast<int>(params.size() + 1), after->first);
      s.Bind(static_cast<int>(params.size() + 2), after->second);
    }
    while (s.Step()) {
      DeviceRecord d;
      d.subscriber_id = s.Text(1);
      d.integration_id = s.Text(2);
      d.integration_identifier = s.Text(3);
      d.provider_id = s.Text(4);
      d.token = ReadTokenRow(s, 5);
      d.id = Cursor(d.token.created_at, s.Int(0));
      page.items.push_back(std::move(d));
    }
    RETURN_IF_ERROR(s.status());
    if (page.items.size() > static_cast<std::size_t>(q.limit)) {
      page.items.pop_back();
      page.next = page.items.back().id;
    }
    return page;
  });
}

Result<std::size_t> SqliteStore::ExpireInactiveTokens(EpochMs inactive_since, EpochMs now) {
  // A quiet pass (nothing stale) costs a read, not a write transaction.
  Result<bool> any = AnyRow(
      "SELECT 1 FROM device_tokens WHERE status = 'active' AND MAX(COALESCE(last_active_at, "
      "0), COALESCE(registered_at, created_at)) < ? LIMIT 1",
      inactive_since);
  if (!any.ok()) return any.take_status();
  if (!*any) return std::size_t{0};
  return Write<std::size_t>(
      [&](Db& db) -> Result<std::size_t> {
        EventRecorder events(db, render_event_);
        // Last activity is the later of the last accepted delivery and the last registration.
        Stmt s = db.Prepare(
            "SELECT dt.rowid, dt.channel_pk, dt.identity, dt.token, s.environment_id, "
            "s.subscriber_id, c.integration_id, c.provider_id" +
            std::string(kDeviceFrom) +
            "WHERE dt.status = 'active' AND MAX(COALESCE(dt.last_active_at, 0), "
            "COALESCE(dt.registered_at, dt.created_at)) < ?");
        s.Bind(1, static_cast<std::int64_t>(inactive_since));
        struct Stale {
          std::int64_t rowid;
          std::string channel_pk, identity;
          DeliveryEvent event;
        };
        std::vector<Stale> stale;
        while (s.Step()) {
          DeliveryEvent e;
          e.type = kEventDeviceRemoved;
          e.at = now;
          e.device_token = s.Text(3);
          e.environment_id = s.Text(4);
          e.subscriber_id = s.Text(5);
          e.integration_id = s.Text(6);
          e.provider_id = s.Text(7);
          e.token_status = TokenStatus::kExpired;
          e.reason = "INACTIVE";
          stale.push_back({s.Int(0), s.Text(1), s.Text(2), std::move(e)});
        }
        RETURN_IF_ERROR(s.status());
        std::size_t retired = 0;
        for (Stale& t : stale) {
          Stmt u = db.Prepare(
              "UPDATE device_tokens SET status = 'expired', status_changed_at = ?, "
              "last_failure_reason = 'INACTIVE' WHERE rowid = ? AND status = 'active'");
          u.Bind(1, static_cast<std::int64_t>(now)).Bind(2, t.rowid);
          RETURN_IF_ERROR(u.Exec());
          if (db.Changes() == 0) continue;
          ++retired;
          RETURN_IF_ERROR(events.Record(std::move(t.event), "token:" + t.channel_pk + ":" +
                                                                 t.identity));
        }
        return retired;
      },
      Durability::kCommitted, Priority::kBackground);
}

}  // namespace herald::store::sqlite
