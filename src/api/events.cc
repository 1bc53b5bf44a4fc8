// /v1/events/trigger, /bulk, /broadcast and cancel (novu-api.md §2.1, §3). A trigger is
// validated here (body, workflow, JIT integrations; an unknown topic is accepted and skipped when
// planned, as Novu's worker does), stored in the store's inbox and
// answered once that row is durable (the writer commits concurrent triggers together). The
// dispatcher then decodes inbox rows again (DecodeQueued) and plans them in large batches.
#include <algorithm>
#include <atomic>
#include <map>
#include <set>

#include "api/api.h"
#include "api/input.h"
#include "core/ids.h"
#include "server/error_reply.h"

namespace herald::api {
namespace {

constexpr std::size_t kMaxRecipients = 100;
constexpr std::size_t kMaxBulkEvents = 100;

// Novu answers trigger validation errors with a PayloadValidationExceptionDto: the SDK requires
// `type` and `errors: []` on these 400s.
Status TriggerError(std::string message) {
  return Status::InvalidArgument(std::move(message))
      .WithExtra({{"type", "BadRequestException"}, {"errors", Json::array()}});
}

Status AsTriggerError(Status status) {
  if (status.code() != Code::kInvalidArgument) return status;
  return TriggerError(status.message());
}

// The event's payload (already checked to be an object, or absent) as Novu's worker would print
// it (TriggerRequest::payload_text). Empty if the event text is not at hand.
std::string PayloadAsSent(std::string_view event_text) {
  if (event_text.empty()) return {};
  std::optional<OrderedJson> payload;
  std::optional<std::string_view> member = FindMemberText(event_text, "payload");
  if (member && member->empty()) return "{}";       // no payload
  if (member) payload = ParseOrderedJson(*member);  // only the payload, not the recipients
  if (!payload) {  // the quick look could not tell: the whole event
    std::optional<OrderedJson> event = ParseOrderedJson(event_text);
    if (!event || !event->is_object()) return {};
    auto it = event->find("payload");
    if (it == event->end()) return "{}";
    payload = std::move(*it);
  }
  if (!payload->is_object()) return "{}";  // null: Novu spreads nothing
  std::string out;
  AppendJsonLikeJavaScript(out, *payload,
                           {{"subscriber", store::TriggerRequest::kSubscriberSlot},
                            {"step", store::TriggerRequest::kStepSlot}});
  return out;
}

struct DecodedEvent {
  store::TriggerRequest request;
  std::string workflow_key;
  bool has_tenant = false;
};

Result<store::SubscriberTarget> DecodeSubscriber(const Json& to, std::string_view where,
                                                 const ApiOptions& options) {
  store::SubscriberTarget target;
  auto id = to.find("subscriberId");
  if (id == to.end() || !id->is_string()) {
    return Status::InvalidArgument(std::string(where) + ".subscriberId must be a string");
  }
  target.subscriber_id = id->get<std::string>();
  RETURN_IF_ERROR(CheckId(target.subscriber_id, std::string(where) + ".subscriberId"));
  std::string prefix = std::string(where) + ".";
  ASSIGN_OR_RETURN(target.profile, DecodeProfile(to, prefix));
  // Novu applies a trigger's profile fields only when they are not null (email may be cleared).
  for (auto* slot : {&target.profile.first_name, &target.profile.last_name, &target.profile.phone,
                     &target.profile.avatar, &target.profile.locale, &target.profile.timezone}) {
    if (*slot && !**slot) slot->reset();
  }
  if (target.profile.data && !*target.profile.data) target.profile.data.reset();
  if (auto channels = to.find("channels"); channels != to.end()) {
    if (!channels->is_array()) {
      return Status::InvalidArgument(std::string(where) + ".channels must be an array");
    }
    for (std::size_t i = 0; i < channels->size(); ++i) {
      ASSIGN_OR_RETURN(store::JitChannel jit,
                       DecodeJitChannel((*channels)[i],
                                        std::string(where) + ".channels[" + std::to_string(i) + "]",
                                        options.token_policy));
      target.channels.push_back(std::move(jit));
    }
  }
  return target;
}

// The device tokens a trigger sends to instead of the subscriber's, under every provider key of
// `by_provider` (an object of provider id -> overrides): each list is checked like a subscriber's
// tokens for that provider (400 naming the first bad one) and replaced by its canonical form,
// de-duplicated by identity. Keys that name no push provider are left as they are.
Status NormalizeOverrideTokens(Json& by_provider, const std::string& where,
                               const ApiOptions& options) {
  if (!by_provider.is_object()) return Status::Ok();
  for (auto& [id, value] : by_provider.items()) {
    const providers::ProviderSpec* spec = providers::FindProvider(id);
    if (spec == nullptr || !value.is_object()) continue;
    auto tokens = value.find("deviceTokens");
    if (tokens == value.end() || tokens->is_null()) continue;
    const std::string at = where + "." + id + ".deviceTokens";
    if (!tokens->is_array() ||
        !std::all_of(tokens->begin(), tokens->end(), [](const Json& t) { return t.is_string(); })) {
      return Status::InvalidArgument(at + " must be an array of strings");
    }
    ASSIGN_OR_RETURN(
        std::vector<store::DeviceToken> normalized,
        NormalizeTokens(*spec, tokens->get<std::vector<std::string>>(), options.token_policy, at));
    if (normalized.size() > options.max_tokens_per_channel) {
      return Status::InvalidArgument(at + " holds " + std::to_string(normalized.size()) +
                                     " device tokens; the limit is " +
                                     std::to_string(options.max_tokens_per_channel));
    }
    Json canonical = Json::array();
    for (store::DeviceToken& t : normalized) canonical.push_back(std::move(t.token));
    *tokens = std::move(canonical);
  }
  return Status::Ok();
}

// Override tokens in all three places Novu reads them: overrides.<provider>,
// overrides.providers.<provider> and overrides.steps.<step>.providers.<provider>.
Status NormalizeAllOverrideTokens(Json& overrides, const ApiOptions& options) {
  RETURN_IF_ERROR(NormalizeOverrideTokens(overrides, "overrides", options));
  if (auto it = overrides.find("providers"); it != overrides.end()) {
    RETURN_IF_ERROR(NormalizeOverrideTokens(*it, "overrides.providers", options));
  }
  auto steps = overrides.find("steps");
  if (steps == overrides.end() || !steps->is_object()) return Status::Ok();
  for (auto& [step_id, step] : steps->items()) {
    if (!step.is_object()) continue;
    if (auto it = step.find("providers"); it != step.end()) {
      RETURN_IF_ERROR(
          NormalizeOverrideTokens(*it, "overrides.steps." + step_id + ".providers", options));
    }
  }
  return Status::Ok();
}

bool IsTopicTarget(const Json& item) {
  auto type = item.find("type");
  if (type != item.end()) return type->is_string() && *type == "Topic";  // else a subscriber
  return item.contains("topicKey") && !item.contains("subscriberId");    // lenient: no type at all
}

// Splits `to` (Novu §3): ids, subscriber objects (de-duplicated, last wins) and topics.
Status DecodeRecipients(const Json& to, store::TriggerRequest& request, const ApiOptions& options) {
  std::vector<const Json*> items;
  if (to.is_array()) {
    if (to.empty()) return Status::InvalidArgument("to must name at least one recipient");
    if (to.size() > kMaxRecipients) {
      return Status::InvalidArgument("to accepts at most " + std::to_string(kMaxRecipients) +
                                     " recipients; use a topic or broadcast for more");
    }
    for (const Json& item : to) items.push_back(&item);
  } else {
    items.push_back(&to);
  }
  std::map<std::string, std::size_t> position;  // subscriberId -> index in request.subscribers
  for (std::size_t i = 0; i < items.size(); ++i) {
    const Json& item = *items[i];
    std::string where = to.is_array() ? "to[" + std::to_string(i) + "]" : "to";
    store::SubscriberTarget target;
    if (item.is_string()) {
      target.subscriber_id = item.get<std::string>();
      RETURN_IF_ERROR(CheckId(target.subscriber_id, where));
    } else if (item.is_object() && IsTopicTarget(item)) {
      store::TopicTarget topic;
      ASSIGN_OR_RETURN(topic.key, RequiredString(item, "topicKey", where + ".topicKey"));
      RETURN_IF_ERROR(CheckId(topic.key, where + ".topicKey"));
      ASSIGN_OR_RETURN(std::optional<std::vector<std::string>> exclude,
                       OptStringArray(item, "exclude", where + ".exclude"));
      topic.exclude = exclude.value_or(std::vector<std::string>{});
      request.topics.push_back(std::move(topic));
      continue;
    } else if (item.is_object()) {
      ASSIGN_OR_RETURN(target, DecodeSubscriber(item, where, options));
    } else {
      return Status::InvalidArgument(where + " must be a subscriberId, a subscriber or a topic");
    }
    auto [it, inserted] = position.emplace(target.subscriber_id, request.subscribers.size());
    if (inserted) {
      request.subscribers.push_back(std::move(target));
    } else {
      request.subscribers[it->second] = std::move(target);  // last one wins
    }
  }
  return Status::Ok();
}

// Reads one event body (trigger, a bulk item or a broadcast) into a request.
Result<DecodedEvent> DecodeEvent(const Json& body, const store::Environment& env, bool broadcast,
                                 const ApiOptions& options) {
  if (!body.is_object()) return Status::InvalidArgument("each event must be an object");
  DecodedEvent event;
  store::TriggerRequest& r = event.request;
  r.environment_id = env.id;
  r.max_tokens = options.max_tokens_per_channel;
  r.broadcast = broadcast;
  ASSIGN_OR_RETURN(event.workflow_key, RequiredString(body, "name"));
  RETURN_IF_ERROR(CheckId(event.workflow_key, "name"));
  if (!broadcast) {
    auto to = body.find("to");
    if (to == body.end() || to->is_null()) return Status::InvalidArgument("to is required");
    RETURN_IF_ERROR(DecodeRecipients(*to, r, options));
  }
  if (broadcast) {  // required there (novu-api.md §2.1), optional on a trigger
    auto payload = body.find("payload");
    if (payload == body.end() || payload->is_null()) {
      return Status::InvalidArgument("payload should not be null or undefined");
    }
  }
  for (const char* key : {"payload", "overrides"}) {
    auto it = body.find(key);
    if (it == body.end() || it->is_null()) continue;
    if (!it->is_object()) return Status::InvalidArgument(std::string(key) + " must be an object");
    (std::string_view(key) == "payload" ? r.payload : r.overrides) = *it;
  }
  RETURN_IF_ERROR(NormalizeAllOverrideTokens(r.overrides, options));
  ASSIGN_OR_RETURN(std::optional<std::string> transaction_id, OptString(body, "transactionId"));
  if (transaction_id) RETURN_IF_ERROR(CheckId(*transaction_id, "transactionId"));
  // Not value_or: that would generate (and throw away) a UUID for every id the caller gave.
  r.transaction_id = transaction_id ? std::move(*transaction_id) : NewUuid();
  if (auto actor = body.find("actor"); actor != body.end() && !actor->is_null()) {
    if (actor->is_string()) {
      store::SubscriberTarget a;
      a.subscriber_id = actor->get<std::string>();
      RETURN_IF_ERROR(CheckId(a.subscriber_id, "actor"));
      r.actor = std::move(a);
    } else if (actor->is_object()) {
      ASSIGN_OR_RETURN(r.actor, DecodeSubscriber(*actor, "actor", options));
    } else {
      return Status::InvalidArgument("actor must be a subscriberId or a subscriber");
    }
  }
  if (auto tenant = body.find("tenant"); tenant != body.end() && !tenant->is_null()) {
    if (!tenant->is_string() && !tenant->is_object()) {
      return Status::InvalidArgument("tenant must be a string or an object");
    }
    event.has_tenant = true;
  }
  return event;
}

TriggerAck Ack(std::string_view status, std::optional<std::string> transaction_id = std::nullopt) {
  return {status, std::move(transaction_id)};
}

// 201 with the result, or the error; a full trigger queue says when to come back.
server::Reply EventReply(const Result<TriggerAck>& result, const std::string& target) {
  if (result.ok()) return AckReply(*result);
  server::Reply reply = server::ErrorReply(result.status(), target);
  if (result.status().code() == Code::kUnavailable) reply.headers.emplace_back("Retry-After", "1");
  return reply;
}

}  // namespace

Json AckJson(const TriggerAck& ack) {
  Json out = {{"acknowledged", true}, {"status", std::string(ack.status)}};
  if (ack.transaction_id) out["transactionId"] = *ack.transaction_id;
  return out;
}

server::Reply AckReply(const TriggerAck& ack) {
  server::Reply reply;
  reply.status = 201;
  reply.body.reserve(96);
  reply.body = R"({"data":{"acknowledged":true,"status":)";  // AckJson's members, sorted
  AppendJsonString(reply.body, ack.status);
  if (ack.transaction_id) {
    reply.body += R"(,"transactionId":)";
    AppendJsonString(reply.body, *ack.transaction_id);
  }
  reply.body += "}}";
  return reply;
}

void Api::AcceptEvent(const Json& body, const Env& env, bool broadcast, std::string_view text,
                      std::function<void(Result<TriggerAck>)> done) {
  Result<DecodedEvent> decoded = Status::Internal("event not decoded");
  try {
    decoded = DecodeEvent(body, env, broadcast, options_);
  } catch (const std::exception& e) {  // a decoding bug must fail this event only
    decoded = Status::InvalidArgument(std::string("event could not be read: ") + e.what());
  }
  if (!decoded.ok()) return done(AsTriggerError(decoded.take_status()));
  DecodedEvent& event = *decoded;
  Result<std::shared_ptr<const store::Workflow>> workflow =
      CachedWorkflow(env.id, event.workflow_key);
  if (!workflow.ok()) {
    if (workflow.status().code() == Code::kNotFound) {
      return done(
          Status::Unprocessable("workflow_not_found").WithExtra({{"errors", Json::object()}}));
    }
    return done(workflow.take_status());
  }
  // Herald has no tenants: Novu answers an unknown tenant like this and sends nothing.
  if (event.has_tenant) return done(Ack("no_tenant_found", event.request.transaction_id));
  if (!(*workflow)->active) {
    return done(Ack("trigger_not_active", event.request.transaction_id));
  }
  if ((*workflow)->steps.empty()) {
    return done(Ack("no_workflow_steps_defined", event.request.transaction_id));
  }
  event.request.workflow = std::move(workflow.value());
  const store::TriggerRequest& request = event.request;
  bool needs_check = request.actor && !request.actor->channels.empty();
  for (const store::SubscriberTarget& t : request.subscribers) {
    needs_check = needs_check || !t.channels.empty();
  }
  if (needs_check) {
    if (Status st = store_.CheckTriggerTargets(request); !st.ok()) {
      return done(AsTriggerError(std::move(st)));
    }
  }
  store::QueuedTrigger queued;
  queued.environment_id = env.id;
  queued.transaction_id = request.transaction_id;
  queued.broadcast = broadcast;
  // The transactionId (given or generated) travels in its own column.
  if (text.empty()) {
    queued.event_text = DumpJson(body);
  } else {
    queued.event_text = std::string(text);
  }
  store_.EnqueueTrigger(std::move(queued), [this, transaction_id = request.transaction_id,
                                            done = std::move(done)](Status st) {
    if (!st.ok()) return done(AsTriggerError(std::move(st)));
    if (options_.on_work) options_.on_work();
    // A repeated transactionId is answered like the first and not delivered again.
    done(Ack("processed", transaction_id));
  });
}

Result<store::TriggerRequest> Api::DecodeQueued(const store::QueuedTrigger& queued) {
  const Env* env = nullptr;
  for (const Env& e : environments_) {
    if (e.id == queued.environment_id) env = &e;
  }
  if (!env) return Status::NotFound("environment " + queued.environment_id + " is gone");
  ASSIGN_OR_RETURN(DecodedEvent event, DecodeEvent(queued.event, *env, queued.broadcast, options_));
  ASSIGN_OR_RETURN(std::shared_ptr<const store::Workflow> workflow,
                   CachedWorkflow(env->id, event.workflow_key));
  if (!workflow->active) return Status(Code::kFailedPrecondition, "workflow is no longer active");
  event.request.workflow = std::move(workflow);
  event.request.transaction_id = queued.transaction_id;
  event.request.payload_text = PayloadAsSent(queued.event_text);
  return std::move(event.request);
}

void Api::Trigger(Req& r, const Env& env, server::Done done) {
  Result<Json> body = ParseObjectBody(r);
  if (!body.ok()) return done(server::ErrorReply(AsTriggerError(body.take_status()), r.target));
  AcceptEvent(*body, env, /*broadcast=*/false, r.body,
              [target = r.target, done = std::move(done)](Result<TriggerAck> result) {
                done(EventReply(result, target));
              });
}

void Api::TriggerBroadcast(Req& r, const Env& env, server::Done done) {
  Result<Json> body = ParseObjectBody(r);
  if (!body.ok()) return done(server::ErrorReply(AsTriggerError(body.take_status()), r.target));
  if (body->contains("to")) {
    return done(
        server::ErrorReply(TriggerError("property to should not exist on a broadcast"), r.target));
  }
  AcceptEvent(*body, env, /*broadcast=*/true, r.body,
              [target = r.target, done = std::move(done)](Result<TriggerAck> result) {
                done(EventReply(result, target));
              });
}

// Each event is accepted on its own; a failing one becomes {acknowledged, status: "error",
// error: [message]} in its slot and never fails the whole request (Novu's bulk behaviour).
void Api::TriggerBulk(Req& r, const Env& env, server::Done done) {
  Result<Json> body = ParseObjectBody(r);
  if (!body.ok()) return done(server::ErrorReply(AsTriggerError(body.take_status()), r.target));
  auto events = body->find("events");
  if (events == body->end() || !events->is_array() || events->empty() ||
      events->size() > kMaxBulkEvents) {
    return done(server::ErrorReply(TriggerError("events must be an array of 1 to " +
                                                std::to_string(kMaxBulkEvents) + " trigger events"),
                                   r.target));
  }
  struct Gather {
    std::mutex mu;
    Json results;
    std::size_t remaining;
    server::Done done;
  };
  auto gather = std::make_shared<Gather>();
  gather->results = Json::array();
  for (std::size_t i = 0; i < events->size(); ++i) gather->results.push_back(nullptr);
  gather->remaining = events->size();
  gather->done = std::move(done);
  Json copy = *events;  // the request body may go away before the last event commits
  // Each event is enqueued as its own text, members in the order the client sent them (push
  // bodies keep the payload's order, as Novu's do).
  std::optional<OrderedJson> ordered = ParseOrderedJson(r.body);
  const OrderedJson* ordered_events = nullptr;
  if (ordered && ordered->is_object()) {
    auto it = ordered->find("events");
    if (it != ordered->end() && it->is_array() && it->size() == copy.size()) ordered_events = &*it;
  }
  for (std::size_t i = 0; i < copy.size(); ++i) {
    std::string text;
    if (ordered_events != nullptr && (*ordered_events)[i].is_object()) {
      text = (*ordered_events)[i].dump(-1, ' ', false, OrderedJson::error_handler_t::replace);
    }
    AcceptEvent(copy[i], env, /*broadcast=*/false, text, [gather, i](Result<TriggerAck> result) {
      Json item = result.ok() ? AckJson(*result)
                              : Json{{"acknowledged", true},
                                     {"status", "error"},
                                     {"error", Json::array({result.status().message()})}};
      std::unique_lock lock(gather->mu);
      gather->results[i] = std::move(item);
      if (--gather->remaining > 0) return;
      Json all = std::move(gather->results);
      lock.unlock();
      gather->done(server::DataReply(all, 201));
    });
  }
}

Api::Reply Api::CancelTrigger(Req& r, const Env& env) {
  RETURN_IF_ERROR(CheckId(r.Param("transactionId"), "transactionId"));
  ASSIGN_OR_RETURN(bool cancelled, store_.CancelTransaction(env.id, r.Param("transactionId")));
  if (cancelled && options_.on_unwanted) {
    options_.on_unwanted({env.id, r.Param("transactionId"), std::nullopt, std::nullopt, "cancelled",
                          "the transaction was cancelled before it was sent"});
  }
  return server::DataReply(cancelled);
}

}  // namespace herald::api
