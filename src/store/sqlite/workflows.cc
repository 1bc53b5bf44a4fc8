// Workflows and their steps.
#include <string>

#include "store/sqlite/internal.h"
#include "store/sqlite/paging.h"
#include "store/sqlite/rows.h"
#include "store/sqlite/sqlite_store.h"

namespace herald::store::sqlite {
namespace {

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

}  // namespace

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

Result<Workflow> SqliteStore::CreateWorkflow(const Workflow& workflow) {
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

Result<Workflow> SqliteStore::GetWorkflow(std::string_view env, std::string_view id) {
  return Read([&](Db& db) { return LoadWorkflow(db, env, id); });
}

Result<std::vector<Workflow>> SqliteStore::ListWorkflows(std::string_view env, int offset,
                                                         int limit,
                                                         std::optional<std::string> query,
                                                         long long* total) {
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

Result<Workflow> SqliteStore::UpdateWorkflow(const Workflow& workflow) {
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

Status SqliteStore::DeleteWorkflow(std::string_view env, std::string_view id) {
  return WriteStatus([&](Db& db) -> Status {
    ASSIGN_OR_RETURN(Workflow w, LoadWorkflow(db, env, id));
    Stmt s = db.Prepare("DELETE FROM workflows WHERE id = ?");
    s.Bind(1, w.id);
    return s.Exec();
  });
}

}  // namespace herald::store::sqlite
