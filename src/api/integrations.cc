// /v1/integrations (novu-api.md §2.1, §7).
#include <cctype>

#include "api/api.h"
#include "api/input.h"
#include "core/ids.h"
#include "server/error_reply.h"
#include "wire/wire.h"

namespace herald::api {
namespace {

constexpr std::string_view kCreateFields[] = {
    "name",        "identifier", "_environmentId", "providerId", "channel",       "kind",
    "credentials", "active",     "check",          "conditions", "configurations"};
constexpr std::string_view kUpdateFields[] = {"name",       "identifier",    "_environmentId",
                                              "active",     "credentials",   "check",
                                              "conditions", "configurations"};

Status CheckEnvironmentField(const Json& body, const store::Environment& env) {
  ASSIGN_OR_RETURN(std::optional<std::string> wanted, OptString(body, "_environmentId"));
  if (wanted && *wanted != env.id) {
    return Status::InvalidArgument("_environmentId does not match the API key's environment");
  }
  return Status::Ok();
}

// Reads the optional `conditions`/`configurations`/`active`/`name`/`identifier` members shared
// by create and update into `integration`.
Status ApplyCommonFields(const Json& body, store::Integration& integration) {
  ASSIGN_OR_RETURN(std::optional<std::string> name, OptString(body, "name"));
  if (name) {
    RETURN_IF_ERROR(CheckId(*name, "name"));
    integration.name = *name;
  }
  ASSIGN_OR_RETURN(std::optional<std::string> identifier, OptString(body, "identifier"));
  if (identifier) {
    RETURN_IF_ERROR(CheckId(*identifier, "identifier"));
    integration.identifier = *identifier;
  }
  ASSIGN_OR_RETURN(std::optional<bool> active, OptBool(body, "active"));
  if (active) integration.active = *active;
  ASSIGN_OR_RETURN(std::optional<bool> check, OptBool(body, "check"));
  (void)check;  // push providers have no credential check at save time (Novu: email/SMS only)
  if (auto it = body.find("conditions"); it != body.end()) {
    if (!it->is_array()) return Status::InvalidArgument("conditions must be an array");
    integration.conditions = *it;
  }
  if (auto it = body.find("configurations"); it != body.end()) {
    if (!it->is_object()) return Status::InvalidArgument("configurations must be an object");
    // Herald's own: whether a token the provider calls dead leaves the subscriber (default).
    if (auto remove = it->find("removeDeadTokens");
        remove != it->end() && !remove->is_boolean() && !remove->is_null()) {
      return Status::InvalidArgument("configurations.removeDeadTokens must be a boolean");
    }
    integration.configurations = *it;
  }
  return Status::Ok();
}

Result<Json> ListJson(store::Store& store, const store::Environment& env, bool active_only) {
  ASSIGN_OR_RETURN(std::vector<store::Integration> list,
                   store.ListIntegrations(env.id, active_only));
  Json out = Json::array();
  for (const store::Integration& i : list)
    out.push_back(wire::IntegrationJson(i, env.organization_id));
  return out;
}

}  // namespace

Api::Reply Api::CreateIntegration(Req& r, const Env& env) {
  ASSIGN_OR_RETURN(Json body, ParseObjectBody(r));
  RETURN_IF_ERROR(RejectUnknownFields(body, kCreateFields));
  RETURN_IF_ERROR(CheckEnvironmentField(body, env));
  ASSIGN_OR_RETURN(std::string provider_id, RequiredString(body, "providerId"));
  ASSIGN_OR_RETURN(std::string channel, RequiredString(body, "channel"));
  if (!IsNovuChannelType(channel)) {
    return Status::InvalidArgument("channel must be one of: in_app, email, sms, chat, push, tool");
  }
  if (channel != "push") {
    return Status::InvalidArgument("Channel " + channel +
                                   " is not supported: Herald delivers push");
  }
  ASSIGN_OR_RETURN(const providers::ProviderSpec* spec,
                   RequirePushProvider(provider_id, "providerId"));
  if (auto kind = OptString(body, "kind"); !kind.ok()) return kind.take_status();

  store::Integration integration;
  integration.id = NewObjectId();
  integration.environment_id = env.id;
  integration.provider_id = provider_id;
  integration.channel = "push";
  integration.name = std::string(spec->display_name());
  RETURN_IF_ERROR(ApplyCommonFields(body, integration));
  if (!body.contains("identifier")) {
    integration.identifier = Slugify(integration.name, "integration") + "-" + RandomAlnum(6);
  }
  Json credentials = body.value("credentials", Json::object());
  if (!credentials.is_object()) return Status::InvalidArgument("credentials must be an object");
  RETURN_IF_ERROR(spec->ValidateCredentials(credentials));
  integration.credentials = std::move(credentials);
  integration.created_at = integration.updated_at = NowMs();

  ASSIGN_OR_RETURN(store::Integration created, store_.CreateIntegration(integration));
  return server::DataReply(wire::IntegrationJson(created, env.organization_id), 201);
}

Api::Reply Api::ListIntegrations(Req&, const Env& env) {
  ASSIGN_OR_RETURN(Json list, ListJson(store_, env, /*active_only=*/false));
  return server::DataReply(list);
}

Api::Reply Api::ListActiveIntegrations(Req&, const Env& env) {
  ASSIGN_OR_RETURN(Json list, ListJson(store_, env, /*active_only=*/true));
  return server::DataReply(list);
}

Api::Reply Api::UpdateIntegration(Req& r, const Env& env) {
  ASSIGN_OR_RETURN(Json body, ParseObjectBody(r, /*allow_empty=*/true));
  RETURN_IF_ERROR(RejectUnknownFields(body, kUpdateFields));
  bool has_update = false;
  for (std::string_view key :
       {"name", "identifier", "active", "credentials", "conditions", "configurations"}) {
    has_update = has_update || body.contains(key);
  }
  if (!has_update) return Status::InvalidArgument("No properties found for update");
  RETURN_IF_ERROR(CheckEnvironmentField(body, env));
  ASSIGN_OR_RETURN(store::Integration integration, store_.GetIntegration(env.id, r.Param("id")));
  const providers::ProviderSpec* spec = providers::FindProvider(integration.provider_id);
  if (!spec) return Status::Internal("stored integration has an unknown provider");
  RETURN_IF_ERROR(ApplyCommonFields(body, integration));
  if (auto it = body.find("credentials"); it != body.end()) {
    if (!it->is_object()) return Status::InvalidArgument("credentials must be an object");
    // Replaced wholesale (as Novu does), except that a masked secret sent back unchanged keeps
    // the stored value: a read-modify-write of a listed integration must not lose its secret.
    Json credentials = *it;
    for (auto& [key, value] : credentials.items()) {
      auto old = integration.credentials.find(key);
      if (value.is_string() && old != integration.credentials.end() && old->is_string() &&
          providers::IsMaskOf(value.get<std::string>(), old->get<std::string>())) {
        value = *old;
      }
    }
    RETURN_IF_ERROR(spec->ValidateCredentials(credentials));
    integration.credentials = std::move(credentials);
  }
  integration.updated_at = NowMs();
  ASSIGN_OR_RETURN(store::Integration updated, store_.UpdateIntegration(integration));
  if (options_.on_integration_changed) options_.on_integration_changed(updated.id);
  return server::DataReply(wire::IntegrationJson(updated, env.organization_id));
}

Api::Reply Api::DeleteIntegration(Req& r, const Env& env) {
  RETURN_IF_ERROR(store_.DeleteIntegration(env.id, r.Param("id")));
  if (options_.on_integration_changed) options_.on_integration_changed(r.Param("id"));
  if (options_.on_unwanted) {
    options_.on_unwanted({env.id, std::nullopt, std::nullopt, r.Param("id"), "integration_deleted",
                          "the integration was deleted before the message was sent"});
  }
  ASSIGN_OR_RETURN(Json list, ListJson(store_, env, /*active_only=*/false));
  return server::DataReply(list);
}

Api::Reply Api::SetPrimaryIntegration(Req& r, const Env& env) {
  ASSIGN_OR_RETURN(store::Integration integration, store_.GetIntegration(env.id, r.Param("id")));
  // Every Herald integration is a push integration; Novu has no primary for push.
  return Status::InvalidArgument("Channel " + integration.channel + " does not support primary");
}

Api::Reply Api::GetVapidPublicKey(Req& r, const Env& env) {
  ASSIGN_OR_RETURN(store::Integration integration, store_.GetIntegration(env.id, r.Param("id")));
  if (integration.provider_id != "web-push") {
    return Status::InvalidArgument("integration " + integration.identifier +
                                   " is not a web-push integration");
  }
  // The public half only: what a page passes to pushManager.subscribe().
  return server::DataReply(
      Json{{"publicKey", integration.credentials.value("apiKey", "")},
           {"integrationIdentifier", integration.identifier}});
}

namespace {

// What an integration check answers: 200 with the verdict, whatever it is (a refused credential
// is a result, not an error of the request); 4xx/5xx only when the check could not run.
void ReplyWith(server::Done& done, const std::string& target, Result<Json> result) {
  if (!result.ok()) return done(server::ErrorReply(result.status(), target));
  done(server::DataReply(*result));
}

const char* VerdictName(providers::Verdict verdict) {
  switch (verdict) {
    case providers::Verdict::kDelivered:
      return "delivered";
    case providers::Verdict::kAccepted:
      return "accepted";
    case providers::Verdict::kPending:
      return "pending";
    case providers::Verdict::kRetry:
      return "retry";
    case providers::Verdict::kRefreshAuth:
      return "refresh-auth";
    case providers::Verdict::kFailed:
      return "failed";
    case providers::Verdict::kFailedRemoveToken:
      return "failed-remove-token";
    case providers::Verdict::kFailedConfig:
      return "failed-config";
  }
  return "failed";
}

}  // namespace

// Checks run on a store reader thread (the integration is read), then in delivery; the reply
// comes back from there.
void Api::TestIntegration(Req& r, const Env& env, server::Done done) {
  blocking_.Post([this, &r, env_id = env.id, done = std::move(done)]() mutable {
    Result<store::Integration> integration = store_.GetIntegration(env_id, r.Param("id"));
    if (!integration.ok()) return done(server::ErrorReply(integration.status(), r.target));
    if (!options_.test_connection) {
      return done(server::ErrorReply(Status::Unavailable("delivery is not running"), r.target));
    }
    options_.test_connection(
        env_id, integration->id,
        [done, target = r.target](Result<providers::ProbeResult> probe) mutable {
          if (!probe.ok()) return ReplyWith(done, target, probe.status());
          Json data = {{"ok", probe->ok}, {"detail", probe->detail}};
          if (!probe->ok) data["reason"] = probe->reason;
          ReplyWith(done, target, std::move(data));
        });
  });
}

void Api::SendTestPush(Req& r, const Env& env, server::Done done) {
  blocking_.Post([this, &r, env_id = env.id, done = std::move(done)]() mutable {
    auto fail = [&](const Status& status) { done(server::ErrorReply(status, r.target)); };
    Result<Json> body = ParseObjectBody(r);
    if (!body.ok()) return fail(body.status());
    if (Status st = RejectUnknownFields(*body, {"token", "title", "body"}); !st.ok()) {
      return fail(st);
    }
    Result<store::Integration> integration = store_.GetIntegration(env_id, r.Param("id"));
    if (!integration.ok()) return fail(integration.status());
    const providers::ProviderSpec* spec = providers::FindProvider(integration->provider_id);
    if (!spec) return fail(Status::Internal("stored integration has an unknown provider"));
    // A web-push token may come as the PushSubscription object itself.
    auto token_it = body->find("token");
    std::string token;
    if (token_it != body->end() && token_it->is_object() && integration->provider_id == "web-push") {
      token = DumpJson(*token_it);
    } else {
      Result<std::string> text = RequiredString(*body, "token");
      if (!text.ok()) return fail(text.status());
      token = std::move(*text);
    }
    Result<std::string> normalized = spec->NormalizeDeviceToken(token, options_.token_policy);
    if (!normalized.ok()) {
      return fail(Status::InvalidArgument("token: " + normalized.status().message()));
    }
    Result<std::optional<std::string>> title = OptString(*body, "title");
    if (!title.ok()) return fail(title.status());
    Result<std::optional<std::string>> text = OptString(*body, "body");
    if (!text.ok()) return fail(text.status());
    if (!options_.send_test) {
      return fail(Status::Unavailable("delivery is not running"));
    }
    options_.send_test(
        env_id, integration->id, std::move(*normalized), title->value_or("Herald test"),
        text->value_or("A test push from Herald"),
        [done, target = r.target](Result<providers::Outcome> outcome) mutable {
          if (!outcome.ok()) return ReplyWith(done, target, outcome.status());
          Json data = {{"ok", outcome->verdict == providers::Verdict::kDelivered ||
                                  outcome->verdict == providers::Verdict::kAccepted},
                       {"verdict", VerdictName(outcome->verdict)},
                       {"reason", outcome->reason},
                       {"detail", outcome->detail},
                       {"providerResponseId", outcome->provider_message_id}};
          ReplyWith(done, target, std::move(data));
        });
  });
}

}  // namespace herald::api
