// Environments and integrations (credentials sealed at rest with the store's key ring).
#include <string>

#include "store/sqlite/internal.h"
#include "store/sqlite/rows.h"
#include "store/sqlite/sqlite_store.h"

namespace herald::store::sqlite {

Status SqliteStore::EnsureEnvironments(const std::vector<Environment>& wanted) {
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

Result<std::vector<Environment>> SqliteStore::ListEnvironments() {
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

Result<Integration> SqliteStore::LoadIntegration(Db& db, std::string_view env,
                                                 std::string_view id) {
  Stmt s = db.Prepare(std::string("SELECT ") + std::string(kIntegrationColumns) +
                      " FROM integrations WHERE environment_id = ? AND id = ?");
  s.Bind(1, env).Bind(2, id);
  if (!s.Step()) {
    if (!s.status().ok()) return s.status();
    return Status::NotFound("Integration with id " + std::string(id) + " not found");
  }
  return ReadIntegrationRow(s, keys_);
}

Status SqliteStore::WriteIntegration(Db& db, const Integration& i, bool insert) {
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

Result<Integration> SqliteStore::CreateIntegration(const Integration& integration) {
  return Write<Integration>([&](Db& db) -> Result<Integration> {
    RETURN_IF_ERROR(WriteIntegration(db, integration, /*insert=*/true));
    return integration;
  });
}

Result<std::vector<Integration>> SqliteStore::ListIntegrations(std::string_view env,
                                                               bool active_only) {
  return Read([&](Db& db) -> Result<std::vector<Integration>> {
    std::vector<Integration> out;
    Stmt s = db.Prepare(std::string("SELECT ") + std::string(kIntegrationColumns) +
                        " FROM integrations WHERE environment_id = ? AND (active = 1 OR ? = 0) "
                        "ORDER BY created_at, id");
    s.Bind(1, env).Bind(2, active_only);
    while (s.Step()) {
      ASSIGN_OR_RETURN(Integration i, ReadIntegrationRow(s, keys_));
      out.push_back(std::move(i));
    }
    if (!s.status().ok()) return s.status();
    return out;
  });
}

Result<Integration> SqliteStore::GetIntegration(std::string_view env, std::string_view id) {
  return Read([&](Db& db) { return LoadIntegration(db, env, id); });
}

Result<Integration> SqliteStore::UpdateIntegration(const Integration& integration) {
  return Write<Integration>([&](Db& db) -> Result<Integration> {
    RETURN_IF_ERROR(WriteIntegration(db, integration, /*insert=*/false));
    return integration;
  });
}

Status SqliteStore::DeleteIntegration(std::string_view env, std::string_view id) {
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

}  // namespace herald::store::sqlite
