// Row readers: the functions that turn a statement row into a model struct, and the JSON
// column helpers they share with the writes.
#include "store/sqlite/rows.h"

#include "core/log.h"

namespace herald::store::sqlite {
namespace {

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

}  // namespace

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

DeviceToken ReadTokenRow(const Stmt& s, int first) {
  DeviceToken t;
  t.token = s.Text(first);
  t.identity = s.Text(first + 1);
  t.status = ParseTokenStatus(s.Text(first + 2)).value_or(TokenStatus::kActive);
  t.created_at = s.Int(first + 3);
  t.last_active_at = s.OptInt(first + 4);
  t.last_failure_reason = s.OptText(first + 5);
  t.registered_at = s.OptInt(first + 6);
  t.status_changed_at = s.OptInt(first + 7);
  return t;
}

Result<Integration> ReadIntegrationRow(const Stmt& s, const crypto::KeyRing& keys) {
  Integration i;
  i.id = s.Text(0);
  i.environment_id = s.Text(1);
  i.identifier = s.Text(2);
  i.name = s.Text(3);
  i.provider_id = s.Text(4);
  i.channel = s.Text(5);
  Result<std::string> plain = keys.Open(s.Text(6), i.id);
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

Topic ReadTopicRow(const Stmt& s, int first) {
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

TopicSubscription ReadSubscriptionRow(const Stmt& s, const Topic& topic) {
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
  m.receipt = s.OptText(28).value_or("");
  return m;
}

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

}  // namespace herald::store::sqlite
