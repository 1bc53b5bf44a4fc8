#include "delivery/planner.h"

#include <cstdint>
#include <memory>
#include <mutex>
#include <set>
#include <string_view>
#include <unordered_map>

#include "providers/registry.h"
#include "wire/wire.h"

namespace herald::delivery {
namespace {

const Json* Find(const Json& object, std::string_view key) {
  if (!object.is_object()) return nullptr;
  auto it = object.find(key);
  return it == object.end() ? nullptr : &*it;
}

std::string Render(tmpl::TemplateCache& templates, const Json& source, const Json& context) {
  if (!source.is_string()) return "";
  const std::string& text = source.get_ref<const std::string&>();
  Result<std::shared_ptr<const tmpl::Template>> compiled = templates.Get(text);
  // Templates are validated when the workflow is saved; a failure here can only come from a
  // workflow stored by an older version, and the raw text is the most useful fallback.
  return compiled.ok() ? (*compiled)->Render(context) : text;
}

// What templates see as {{subscriber.*}}: the profile with Novu's field names.
Json TemplateSubscriber(const store::Subscriber& s) {
  Json out = {{"subscriberId", s.subscriber_id}};
  const store::SubscriberProfile& p = s.profile;
  auto put = [&](const char* key, const std::optional<std::string>& v) {
    if (v) out[key] = *v;
  };
  put("firstName", p.first_name);
  put("lastName", p.last_name);
  put("email", p.email);
  put("phone", p.phone);
  put("avatar", p.avatar);
  put("locale", p.locale);
  put("timezone", p.timezone);
  if (p.data) out["data"] = *p.data;
  return out;
}

// Novu's push payload, {...payload, subscriber, step}: the trigger's payload, in which a key
// named `subscriber` or `step` keeps its place and takes Novu's value, then those of the two keys
// it did not have. `payload_text` is the payload as the trigger sent it
// (TriggerRequest::payload_text); without it the members of `payload` come in Json's sorted order
// and keys of those two names go last. `subscriber` is the subscriber document as JSON text.
std::string NovuPayloadJson(const Json& payload, const std::string& payload_text,
                            const std::string& subscriber) {
  constexpr std::string_view kStep = R"({"digest":false})";
  std::string out;
  if (payload_text.size() >= 2 && payload_text.front() == '{' && payload_text.back() == '}') {
    using store::TriggerRequest;
    out.reserve(payload_text.size() + subscriber.size() + 48);
    const std::string_view body(payload_text.data(), payload_text.size() - 1);  // without '}'
    constexpr char kSlots[] = {TriggerRequest::kSubscriberSlot, TriggerRequest::kStepSlot, '\0'};
    bool has_subscriber = false, has_step = false;
    std::size_t from = 0;
    for (std::size_t at; (at = body.find_first_of(kSlots, from)) != std::string_view::npos;) {
      out.append(body, from, at - from);
      if (body[at] == TriggerRequest::kSubscriberSlot) {
        out += subscriber;
        has_subscriber = true;
      } else {
        out += kStep;
        has_step = true;
      }
      from = at + 1;
    }
    out.append(body, from);
    if (!has_subscriber) {
      out += out.size() > 1 ? ",\"subscriber\":" : "\"subscriber\":";
      out += subscriber;
    }
    if (!has_step) {
      out += ",\"step\":";
      out += kStep;
    }
    out += '}';
    return out;
  }
  out = "{";
  auto append = [&out](const std::string& key, const Json& value) {
    if (out.size() > 1) out += ',';
    AppendJsonString(out, key);
    out += ':';
    out += DumpJson(value);
  };
  if (payload.is_object()) {
    for (const auto& [key, value] : payload.items()) {
      if (key != "subscriber" && key != "step") append(key, value);
    }
  }
  out += out.size() > 1 ? ",\"subscriber\":" : "\"subscriber\":";
  out += subscriber;
  out += ",\"step\":";
  out += kStep;
  out += '}';
  return out;
}

// What the planner derives from a subscriber alone: the same for every notification it gets.
struct SubscriberDocs {
  std::uint64_t snapshot = 0;
  std::string document;  // the subscriber document (JSON text) in the push payload
  Json template_view;    // {{subscriber.*}}
};

// SubscriberDocs of the subscribers planned lately, reused while the store hands out the same
// snapshot of a subscriber (Subscriber::snapshot); bounded.
class DocsMemo {
 public:
  std::shared_ptr<const SubscriberDocs> Get(const store::Subscriber& subscriber,
                                            std::string_view organization_id) {
    std::lock_guard lock(mu_);
    if (subscriber.snapshot != 0) {
      auto it = entries_.find(subscriber.id);
      if (it != entries_.end() && it->second->snapshot == subscriber.snapshot) return it->second;
    }
    auto docs = std::make_shared<SubscriberDocs>();
    docs->snapshot = subscriber.snapshot;
    docs->document = DumpJson(wire::SubscriberJson(subscriber, organization_id));
    docs->template_view = TemplateSubscriber(subscriber);
    if (subscriber.snapshot != 0) {
      if (entries_.size() >= kMaxEntries) entries_.clear();
      entries_[subscriber.id] = docs;
    }
    return docs;
  }

 private:
  static constexpr std::size_t kMaxEntries = 20000;
  std::mutex mu_;
  std::unordered_map<std::string, std::shared_ptr<const SubscriberDocs>> entries_;
};

}  // namespace

Json MergedOverrides(const Json& overrides, const std::string& provider_id,
                     const std::string& step_id) {
  Json merged = Json::object();
  auto apply = [&](const Json* layer) {
    if (layer && layer->is_object()) merged.merge_patch(*layer);
  };
  apply(Find(overrides, provider_id));
  if (const Json* providers = Find(overrides, "providers")) apply(Find(*providers, provider_id));
  if (const Json* steps = Find(overrides, "steps")) {
    if (const Json* step = Find(*steps, step_id)) {
      if (const Json* providers = Find(*step, "providers")) apply(Find(*providers, provider_id));
    }
  }
  return merged;
}

store::MessagePlanner MakePlanner(tmpl::TemplateCache& templates,
                                  std::map<std::string, std::string> organization_of) {
  return [&templates, organization_of = std::move(organization_of),
          memo = std::make_shared<DocsMemo>()](
             const store::Workflow& workflow, const store::Subscriber& subscriber,
             const store::Notification& notification,
             const Json& overrides) -> Result<std::vector<store::Message>> {
    std::vector<store::Message> out;
    auto org = organization_of.find(subscriber.environment_id);
    std::shared_ptr<const SubscriberDocs> docs =
        memo->Get(subscriber, org == organization_of.end() ? std::string_view() : org->second);
    Json context = {{"subscriber", docs->template_view}, {"payload", notification.payload}};
    const std::string payload_json =
        NovuPayloadJson(notification.payload, notification.payload_text, docs->document);

    for (const store::WorkflowStep& step : workflow.steps) {
      if (step.type != "push") continue;
      const Json& cv = step.control_values;
      const Json* title_source = Find(cv, "title");
      if (!title_source) title_source = Find(cv, "subject");
      std::string title = title_source ? Render(templates, *title_source, context) : "";
      const Json* body_source = Find(cv, "body");
      std::string content = body_source ? Render(templates, *body_source, context) : "";

      for (const store::SubscriberChannel& channel : subscriber.channels) {
        if (!channel.integration_active || !providers::FindProvider(channel.provider_id)) continue;
        Json provider_overrides = MergedOverrides(overrides, channel.provider_id, step.step_id);
        std::vector<std::pair<std::string, std::string>> targets;  // (token, identity)
        std::optional<std::string> channel_pk = channel.id;
        const Json* override_tokens = Find(provider_overrides, "deviceTokens");
        if (override_tokens && override_tokens->is_array()) {
          channel_pk.reset();  // tokens given by the trigger are not the subscriber's devices
          std::set<std::string> seen;
          for (const Json& t : *override_tokens) {
            if (t.is_string() && seen.insert(t.get<std::string>()).second) {
              targets.emplace_back(t.get<std::string>(), t.get<std::string>());
            }
          }
        } else {
          for (const store::DeviceToken& t : channel.tokens) {
            if (t.status == store::TokenStatus::kActive) targets.emplace_back(t.token, t.identity);
          }
        }
        for (auto& [token, identity] : targets) {
          store::Message m;
          m.step_pk = step.id;
          m.step_id = step.step_id;
          m.integration_id = channel.integration_id;
          m.provider_id = channel.provider_id;
          m.channel_pk = channel_pk;
          m.device_token = token;
          m.token_identity = identity;
          m.title = title;
          m.content = content;
          m.payload_json = payload_json;
          m.overrides = provider_overrides;
          out.push_back(std::move(m));
        }
      }
    }
    return out;
  };
}

}  // namespace herald::delivery
