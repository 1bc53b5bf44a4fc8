// /v2/workflows: workflows with ordered push steps whose templates are validated on save.
#include <cctype>
#include <set>

#include "api/api.h"
#include "api/input.h"
#include "core/ids.h"
#include "server/error_reply.h"
#include "wire/wire.h"

namespace herald::api {
namespace {

constexpr std::size_t kMaxSteps = 20;
constexpr std::size_t kMaxTemplateBytes = 64 << 10;

constexpr std::string_view kWorkflowFields[] = {"name",
                                                "workflowId",
                                                "steps",
                                                "description",
                                                "tags",
                                                "active",
                                                "isTranslationEnabled",
                                                "__source",
                                                "preferences",
                                                "payloadSchema",
                                                "validatePayload",
                                                "severity",
                                                "origin",
                                                "agent"};

}  // namespace

Status Api::DecodeWorkflow(const Json& body, store::Workflow& w, bool is_update) {
  RETURN_IF_ERROR(RejectUnknownFields(body, kWorkflowFields));
  ASSIGN_OR_RETURN(w.name, RequiredString(body, "name"));
  RETURN_IF_ERROR(CheckId(w.name, "name"));
  ASSIGN_OR_RETURN(std::optional<std::string> workflow_id, OptString(body, "workflowId"));
  if (workflow_id) {
    RETURN_IF_ERROR(CheckId(*workflow_id, "workflowId"));
    w.workflow_id = *workflow_id;
  } else if (!is_update) {
    return Status::InvalidArgument("workflowId is required");
  }
  ASSIGN_OR_RETURN(std::optional<std::string> description, OptString(body, "description"));
  w.description = description.value_or(w.description);
  ASSIGN_OR_RETURN(std::optional<std::vector<std::string>> tags, OptStringArray(body, "tags"));
  if (tags) w.tags = *tags;
  ASSIGN_OR_RETURN(std::optional<bool> active, OptBool(body, "active"));
  if (active) w.active = *active;
  for (const char* flag : {"isTranslationEnabled", "validatePayload"}) {
    if (auto b = OptBool(body, flag); !b.ok()) return b.take_status();
  }
  ASSIGN_OR_RETURN(std::optional<std::string> severity, OptString(body, "severity"));
  if (severity) {
    if (*severity != "high" && *severity != "medium" && *severity != "low" && *severity != "none") {
      return Status::InvalidArgument("severity must be one of: high, medium, low, none");
    }
    w.severity = *severity;
  }
  if (auto it = body.find("payloadSchema"); it != body.end()) {
    if (!it->is_null() && !it->is_object()) {
      return Status::InvalidArgument("payloadSchema must be an object");
    }
    w.payload_schema = *it;
  }
  if (auto it = body.find("preferences"); it != body.end()) {
    if (!it->is_null() && !it->is_object()) {
      return Status::InvalidArgument("preferences must be an object");
    }
    w.preferences = *it;
  }

  auto steps = body.find("steps");
  if (steps == body.end() || !steps->is_array()) {
    return Status::InvalidArgument("steps must be an array");
  }
  if (steps->size() > kMaxSteps) {
    return Status::InvalidArgument("a workflow has at most " + std::to_string(kMaxSteps) +
                                   " steps");
  }
  std::vector<store::WorkflowStep> previous = std::move(w.steps);
  w.steps.clear();
  std::set<std::string> step_ids;
  for (std::size_t i = 0; i < steps->size(); ++i) {
    const Json& s = (*steps)[i];
    std::string where = "steps[" + std::to_string(i) + "]";
    if (!s.is_object()) return Status::InvalidArgument(where + " must be an object");
    RETURN_IF_ERROR(RejectUnknownFields(s, {"_id", "id", "stepId", "name", "type", "controlValues"},
                                        where + "."));
    store::WorkflowStep step;
    ASSIGN_OR_RETURN(step.name, RequiredString(s, "name", where + ".name"));
    RETURN_IF_ERROR(CheckId(step.name, where + ".name"));
    where = "Step \"" + step.name + "\" (" + where + ")";
    ASSIGN_OR_RETURN(step.type, RequiredString(s, "type", where + ": type"));
    if (step.type != "push") {
      return Status::InvalidArgument(where + ": type " + step.type +
                                     " is not supported; Herald delivers push steps");
    }
    ASSIGN_OR_RETURN(std::optional<std::string> step_id,
                     OptString(s, "stepId", where + ": stepId"));
    step.step_id = step_id.value_or(Slugify(step.name, "step"));
    RETURN_IF_ERROR(CheckId(step.step_id, where + ": stepId"));
    if (!step_ids.insert(step.step_id).second) {
      return Status::InvalidArgument(where + ": stepId " + step.step_id + " is used twice");
    }
    // Keep the _id of a step that survives an update (matched by _id or stepId).
    std::string given_id = s.value("_id", s.value("id", ""));
    for (const store::WorkflowStep& old : previous) {
      if ((!given_id.empty() && old.id == given_id) || old.step_id == step.step_id)
        step.id = old.id;
    }
    if (step.id.empty()) step.id = NewObjectId();
    step.control_values = s.value("controlValues", Json::object());
    if (!step.control_values.is_object()) {
      return Status::InvalidArgument(where + ": controlValues must be an object");
    }
    // Novu's push control calls the title `subject`; Herald accepts `title` as well.
    for (const char* key : {"title", "subject", "body"}) {
      auto it = step.control_values.find(key);
      if (it == step.control_values.end()) continue;
      if (!it->is_string()) {
        return Status::InvalidArgument(where + ": controlValues." + key + " must be a string");
      }
      const std::string& source = it->get_ref<const std::string&>();
      if (source.size() > kMaxTemplateBytes) {
        return Status::InvalidArgument(where + ": controlValues." + key + " is too long");
      }
      Result<std::shared_ptr<const tmpl::Template>> compiled = templates_.Get(source);
      if (!compiled.ok()) {
        return Status::InvalidArgument(where + ": controlValues." + key + ": " +
                                       compiled.status().message());
      }
    }
    w.steps.push_back(std::move(step));
  }
  return Status::Ok();
}

Api::Reply Api::CreateWorkflow(Req& r, const Env& env) {
  ASSIGN_OR_RETURN(Json body, ParseObjectBody(r));
  store::Workflow w;
  w.id = NewObjectId();
  w.environment_id = env.id;
  RETURN_IF_ERROR(DecodeWorkflow(body, w, /*is_update=*/false));
  w.created_at = w.updated_at = NowMs();
  ASSIGN_OR_RETURN(store::Workflow created, store_.CreateWorkflow(w));
  WorkflowsChanged();
  return server::DataReply(wire::WorkflowJson(created), 201);
}

Api::Reply Api::ListWorkflows(Req& r, const Env& env) {
  ASSIGN_OR_RETURN(std::optional<long long> limit, QueryInt(r, "limit", 1, 100));
  ASSIGN_OR_RETURN(std::optional<long long> offset, QueryInt(r, "offset", 0, 1000000000));
  std::optional<std::string> query;
  if (const std::string* q = r.Query("query"); q && !q->empty()) query = *q;
  long long total = 0;
  ASSIGN_OR_RETURN(std::vector<store::Workflow> list,
                   store_.ListWorkflows(env.id, static_cast<int>(offset.value_or(0)),
                                        static_cast<int>(limit.value_or(10)), query, &total));
  Json items = Json::array();
  for (const store::Workflow& w : list) items.push_back(wire::WorkflowListItemJson(w));
  return server::DataReply({{"workflows", std::move(items)}, {"totalCount", total}});
}

Api::Reply Api::GetWorkflow(Req& r, const Env& env) {
  ASSIGN_OR_RETURN(store::Workflow w, store_.GetWorkflow(env.id, r.Param("workflowId")));
  return server::DataReply(wire::WorkflowJson(w));
}

Api::Reply Api::UpdateWorkflow(Req& r, const Env& env) {
  ASSIGN_OR_RETURN(Json body, ParseObjectBody(r));
  ASSIGN_OR_RETURN(store::Workflow w, store_.GetWorkflow(env.id, r.Param("workflowId")));
  RETURN_IF_ERROR(DecodeWorkflow(body, w, /*is_update=*/true));
  w.updated_at = NowMs();
  Result<store::Workflow> updated = store_.UpdateWorkflow(w);
  WorkflowsChanged();  // also when it failed: whatever it did is read afresh
  if (!updated.ok()) return updated.take_status();
  return server::DataReply(wire::WorkflowJson(*updated));
}

Api::Reply Api::DeleteWorkflow(Req& r, const Env& env) {
  Status deleted = store_.DeleteWorkflow(env.id, r.Param("workflowId"));
  WorkflowsChanged();
  RETURN_IF_ERROR(deleted);
  server::Reply reply;
  reply.status = 204;
  return reply;
}

}  // namespace herald::api

namespace herald::api {

Result<std::shared_ptr<const store::Workflow>> Api::CachedWorkflow(const std::string& env,
                                                                   const std::string& key) {
  constexpr std::size_t kMaxCached = 1024;
  std::string slot = env + '\n' + key;
  std::uint64_t generation = workflow_generation_.load();
  {
    std::lock_guard lock(workflow_mu_);
    auto it = workflows_.find(slot);
    if (it != workflows_.end() && it->second.generation == generation) return it->second.workflow;
  }
  // Read after taking the generation: a write that lands meanwhile bumps it past this entry.
  ASSIGN_OR_RETURN(store::Workflow loaded, store_.GetWorkflow(env, key));
  auto workflow = std::make_shared<const store::Workflow>(std::move(loaded));
  std::lock_guard lock(workflow_mu_);
  if (workflows_.size() >= kMaxCached) workflows_.clear();
  workflows_[slot] = CachedEntry{generation, workflow};
  return workflow;
}

}  // namespace herald::api
