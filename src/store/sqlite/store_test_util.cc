// The SqliteStore tests' helpers, and the fixture's two runs: through the WAL-combining VFS
// ("WalVfs") and through SQLite's default VFS ("DefaultVfs").
#include "store/sqlite/store_test_util.h"

#include <future>

namespace herald::store::sqlite {

INSTANTIATE_TEST_SUITE_P(Sqlite, SqliteStoreTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? "WalVfs" : "DefaultVfs";
                         });

MessagePlanner TokenPlanner() {
  return [](const Workflow&, const Subscriber& sub, const Notification&,
            const Json&) -> Result<std::vector<Message>> {
    std::vector<Message> out;
    for (const SubscriberChannel& ch : sub.channels) {
      for (const DeviceToken& t : ch.tokens) {
        Message m;
        m.step_pk = "st";
        m.step_id = "push";
        m.integration_id = ch.integration_id;
        m.provider_id = ch.provider_id;
        m.channel_pk = ch.id;
        m.device_token = t.token;
        m.token_identity = t.identity;
        m.title = "t";
        m.content = "c";
        out.push_back(std::move(m));
      }
    }
    return out;
  };
}

std::shared_ptr<const Workflow> TestWorkflow() {
  auto w = std::make_shared<Workflow>();
  w->id = "wf";
  w->workflow_id = "wf";
  return w;
}

std::vector<PlannedTrigger> PlanEachFor(const std::vector<QueuedTrigger>& queued,
                                        const std::string& to) {
  std::vector<PlannedTrigger> items;
  for (const QueuedTrigger& q : queued) {
    PlannedTrigger item;
    item.seq = q.seq;
    item.environment_id = q.environment_id;
    item.transaction_id = q.transaction_id;
    TriggerRequest r;
    r.environment_id = q.environment_id;
    r.transaction_id = q.transaction_id;
    r.workflow = TestWorkflow();
    r.subscribers.push_back({to, {}, {}});
    item.request = std::move(r);
    items.push_back(std::move(item));
  }
  return items;
}

Result<PlanReceipt> AcceptSync(Store& store, TriggerRequest request) {
  std::vector<PlannedTrigger> items(1);
  items[0].request = std::move(request);
  return store.PlanTriggers(std::move(items), TokenPlanner(), "", 0);
}

Status CompleteSync(Store& store, std::string owner, std::vector<MessageOutcome> outcomes) {
  std::promise<Status> done;
  store.CompleteMessages(std::move(owner), std::move(outcomes),
                         [&](Status st) { done.set_value(std::move(st)); });
  return done.get_future().get();
}

QueuedTrigger QueuedFor(const std::string& env, const std::string& transaction_id) {
  QueuedTrigger q;
  q.environment_id = env;
  q.transaction_id = transaction_id;
  q.event = {{"name", "wf"}, {"to", "u1"}, {"transactionId", transaction_id}};
  return q;
}

Status Enqueue(Store& store, QueuedTrigger trigger) {
  std::promise<Status> done;
  store.EnqueueTrigger(std::move(trigger), [&](Status st) { done.set_value(std::move(st)); });
  return done.get_future().get();
}

void EnqueueSync(Store& store, QueuedTrigger trigger) {
  Status st = Enqueue(store, std::move(trigger));
  ASSERT_TRUE(st.ok()) << st.message();
}

}  // namespace herald::store::sqlite
