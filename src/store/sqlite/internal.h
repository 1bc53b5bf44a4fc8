// Helpers that the store's operations share across files, each defined in the file of its
// concern. Used only inside store/sqlite/.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "core/time.h"
#include "store/sqlite/db.h"
#include "store/store.h"

namespace herald::store::sqlite {

// ---- subscribers and device tokens (subscribers.cc) --------------------------------------------

// The subscriber with its channels, tokens and topics; NotFound if absent.
Result<Subscriber> LoadSubscriber(Db& db, std::string_view env, std::string_view subscriber_id);
// The subscriber's internal id (_id), if it exists.
std::optional<std::string> FindSubscriberPk(Db& db, std::string_view env,
                                            std::string_view subscriber_id);
// Creates or updates (fields set in `profile`) a subscriber inside the current transaction.
Result<Subscriber> UpsertInTx(Db& db, std::string_view env, std::string_view subscriber_id,
                              const SubscriberPatch& profile, bool fail_if_exists, bool* created);
// Novu: the newest active integration of the provider, optionally by identifier.
Result<std::string> FindActiveIntegration(Db& db, std::string_view env,
                                          const std::string& provider_id,
                                          const std::optional<std::string>& identifier);
// Novu §4: resolves the integration (newest active of the provider, or by identifier),
// creates the channel if needed and replaces or appends its tokens. `sub_pk`: the subscriber's _id.
Status ApplyCredentials(Db& db, std::string_view env, const std::string& sub_pk,
                        const CredentialsUpdate& update, EpochMs now);
// InvalidArgument: a channel would hold `count` tokens, more than `limit`.
Status TokenLimitExceeded(std::size_t count, std::size_t limit);

// ---- topics (topics.cc) ------------------------------------------------------------------------

// NotFound if absent.
Result<Topic> LoadTopic(Db& db, std::string_view env, std::string_view key);
// Inserts `topic` (a new id unless it has one; created and updated now); Conflict if its key is
// taken.
Result<Topic> InsertTopic(Db& db, Topic topic);

// ---- workflows (workflows.cc) ------------------------------------------------------------------

// By workflowId or _id (a workflowId match first); NotFound if absent.
Result<Workflow> LoadWorkflow(Db& db, std::string_view env, std::string_view id_or_workflow_id);

// ---- planning (planning.cc) --------------------------------------------------------------------

// Who new messages are leased to as they are written (nobody when `owner` is empty).
struct NewLease {
  std::string_view owner;
  EpochMs until = 0;
};

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
                                      const Json* topics = nullptr);

// ---- the delivery queue (queue.cc) -------------------------------------------------------------

// Fails the messages not sent yet that `where` selects (with `params`), saying why: their
// subscriber, integration or token is gone. Leases stay: a send already in flight still
// records what came of it.
Status FailUnsent(Db& db, std::string_view where, const std::vector<std::string>& params,
                  std::string_view reason, std::string_view text);

// ---- event webhooks (events.cc) ----------------------------------------------------------------

// Records events inside one write transaction: for each, the endpoints of its environment that
// want its type get a delivery, and the body is rendered once. Asks once whether any endpoint
// exists at all, so a store without endpoints pays nothing per outcome.
class EventRecorder {
 public:
  EventRecorder(Db& db, const EventRenderer& render) : db_(db), render_(render) {}
  // Whether any endpoint exists (events would reach someone).
  Result<bool> Wanted();
  // `order_key`: deliveries of one endpoint with the same key go out in the order recorded.
  Status Record(DeliveryEvent event, std::string_view order_key);

 private:
  Db& db_;
  const EventRenderer& render_;
  std::optional<bool> wanted_;
};

// The message row with this id, if it exists.
std::optional<Message> LoadMessage(Db& db, std::string_view id);

}  // namespace herald::store::sqlite
