// The delivery loop: leases due messages from the store in batches, sends each through its
// integration's Provider over the shared http::Client (asynchronously, bounded in-flight), folds
// the classified outcomes into one store write per batch, and expands topic and broadcast
// fan-outs in batches. One thread; the network runs on the client's I/O thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "delivery/retry_policy.h"
#include "delivery/token_broker.h"
#include "http/client.h"
#include "providers/registry.h"
#include "store/store.h"

namespace herald::delivery {

struct DispatcherOptions {
  std::string owner;                 // lease owner id (unique per process)
  std::size_t max_in_flight = 4096;  // messages sent and not yet completed
  std::size_t claim_batch = 512;
  // Queued triggers read and planned per pass. The store plans them in small background writes
  // that let waiting acknowledgements go first, so a large pass does not hold triggers back
  // (measured: bench/HISTORY.md).
  std::size_t plan_batch = 128;
  std::size_t fanout_batch = 500;  // subscribers expanded per fan-out transaction
  // How long a claimed message stays with this process. The embedded store has one owner and
  // frees every lease on start, so the lease only has to outlast the longest queueing of a send.
  std::chrono::milliseconds lease{3600000};
  std::chrono::milliseconds request_timeout{15000};
  // How long a built Provider is reused (an integration changed through the API is read again at
  // once: ForgetIntegration). Auth tokens live in the TokenBroker and outlast a rebuild.
  std::chrono::milliseconds integration_ttl{5000};
  RetryPolicy retry;
  // A token no provider accepted anything for in this long (nor was registered again) is
  // retired as expired by a periodic sweep.
  std::chrono::milliseconds token_inactivity{60LL * 24 * 3600 * 1000};
  int thread_nice = 0;  // added to the dispatcher thread's nice value (see LowerThreadPriority)
  // The provider registry (tests put their own providers in front of it).
  std::function<const providers::ProviderSpec*(std::string_view)> find_provider =
      providers::FindProvider;
};

// Decodes a queued trigger for planning (api::Api::DecodeQueued; wired by app/).
using TriggerDecoder = std::function<Result<store::TriggerRequest>(const store::QueuedTrigger&)>;

class Dispatcher : private http::Withdrawal {
 public:
  Dispatcher(store::Store& store, http::Client& client, store::MessagePlanner planner,
             DispatcherOptions options);
  ~Dispatcher();

  // Call once, before Start().
  void SetTriggerDecoder(TriggerDecoder decoder) { decoder_ = std::move(decoder); }
  void Start();
  // New work may exist (a trigger was queued): run a pass now instead of at the next tick.
  void Wake();
  // Stops claiming, waits up to `grace` for in-flight sends and records their outcomes; what is
  // left stays durable in the store and is taken back on the next start.
  void Stop(std::chrono::milliseconds grace);
  // Any thread, after the store made `what` unwanted (a cancelled transaction, a deleted
  // subscriber or integration): sends of it still waiting for a connection are taken back, also
  // those planned just before the change and handed over after it (for ten minutes).
  void Withdraw(store::UnwantedSends what);
  // Any thread, after an integration changed or went: its next send reads it again.
  void ForgetIntegration(const std::string& integration_id);

  // Any thread: sends one push through the integration now, outside the queue (no message is
  // recorded), and calls `done` with the provider's verdict (on an internal thread).
  void SendTest(std::string environment_id, std::string integration_id, std::string device_token,
                std::string title, std::string body, std::function<void(Result<providers::Outcome>)> done);
  // Any thread: checks the integration's credentials against the provider without reaching a
  // user (providers::Provider::BuildProbe), and calls `done` with what it found.
  void TestConnection(std::string environment_id, std::string integration_id,
                      std::function<void(Result<providers::ProbeResult>)> done);

 private:
  struct CachedProvider {
    std::shared_ptr<const providers::Provider> provider;  // null: `error` says why
    std::string error_id, error_text;
    bool transient = false;  // the error may go away (database busy): retry, do not fail
    bool remove_dead_tokens = true;  // the integration's configurations.removeDeadTokens
    std::chrono::steady_clock::time_point loaded;
  };

  void Loop();
  bool FlushCompletions();
  bool PlanQueued();
  bool ClaimAndSend();
  bool RunPosted();
  // Runs `task` on the dispatcher thread at its next pass (any thread).
  void Post(std::function<void()> task);
  // Marks `messages` in flight (skipping any already being sent) and sends them.
  void SendAll(std::vector<store::Message> messages);
  std::size_t Room();  // messages that may still be put in flight
  // A message handed to the HTTP client, until its outcome is recorded (what Withdraw matches).
  struct Target {
    std::string environment_id, transaction_id, subscriber_id, integration_id;
    std::string withdrawn_reason, withdrawn_text;  // set when its send was taken back
  };
  struct Unwanted {
    store::UnwantedSends what;
    std::chrono::steady_clock::time_point until;
  };
  bool Withdrawn(std::uint64_t tag) const override;  // http::Withdrawal, on the client's thread
  static bool Matches(const store::UnwantedSends& what, const Target& target);

  // What is remembered of a message while its request is in the air.
  struct Sent {
    std::string id;
    std::optional<std::string> channel_pk;
    std::string token_identity;
    int attempts = 0;
    std::string receipt;  // being confirmed: what the provider's receipt service knows it by
    bool remove_dead_tokens = true;
    // Set for the messages of one batch request: when a retry is due for all of them (unless the
    // provider says when), so they fall due together and are batched together again (a provider
    // whose idempotency key is made of the message ids then sends the same key).
    EpochMs batch_retry_at = 0;
    EpochMs batch_at = 0;  // when the batch's reply was read (a Retry-After counts from it)
  };
  // One message on its way: from SendAll (or SendTest) to its outcome.
  struct Item {
    Sent sent;
    providers::PushMessage push;
    const Target* target = nullptr;  // in sending_, or own_target for a test send
    std::unique_ptr<Target> own_target;
    std::string provider_id;
    bool auth_refreshed = false;  // already resent once with a new token
    std::function<void(const providers::Outcome&)> on_done;  // a test send's answer
  };
  using ItemPtr = std::shared_ptr<Item>;
  // Dispatcher thread: the send path (dispatcher_send.cc).
  void Route(const std::shared_ptr<const providers::Provider>& provider, ItemPtr item);
  void FlushBatches();
  // A message waiting for the provider's confirmation: its receipt is checked, in batches.
  void RouteCheck(const std::shared_ptr<const providers::Provider>& provider, ItemPtr item);
  // What a request was sent with, for its reply.
  struct SentWith {
    std::shared_ptr<const providers::Provider> provider;
    providers::AuthToken token;
    std::string scope;
  };
  using SentWithPtr = std::shared_ptr<const SentWith>;
  void WithToken(std::shared_ptr<const providers::Provider> provider, std::string scope,
                 std::vector<ItemPtr> items, bool checks = false);
  void Transmit(const SentWithPtr& with, std::vector<ItemPtr> items);
  void TransmitBatch(const SentWithPtr& with, std::vector<ItemPtr> items);
  void TransmitChecks(const SentWithPtr& with, std::vector<ItemPtr> items);
  void Stamp(http::Request& request, const Item& item, bool withdrawable);
  // Any thread: what to do with a classified outcome (resend once on refresh-auth, else done).
  void Settle(const SentWithPtr& with, ItemPtr item, providers::Outcome outcome);
  // Any thread: a reply that is not an outcome (shutdown, withdrawn), else false.
  bool SettleUnsent(const ItemPtr& item, const http::Outcome& reply);
  void Finish(const Item& item, const providers::Outcome& outcome, bool attempted = true);
  // A retry time shared by the messages of one batch request (0: no attempt left).
  EpochMs BatchRetryAt(int attempts);
  void Complete(const Sent& message, const providers::Outcome& outcome, bool attempted = true);
  bool TouchToken(const Sent& message, EpochMs at);
  static std::string TokenKey(const Sent& message);
  const CachedProvider& ProviderFor(const std::string& environment_id,
                                    const std::string& integration_id,
                                    const std::string& provider_id);
  // The current Provider of the item's integration (and its dead-token setting, into the item),
  // or null after finishing the item with the reason there is none.
  std::shared_ptr<const providers::Provider> ProviderOrFinish(Item& item);
  void DropForgottenIntegrations();  // dispatcher thread
  // A Provider for a test send or a connection test (not cached), or why there is none.
  Result<std::shared_ptr<const providers::Provider>> BuildForTest(const std::string& environment_id,
                                                                 const std::string& integration_id);

  store::Store& store_;
  http::Client& client_;
  store::MessagePlanner planner_;
  DispatcherOptions options_;
  TriggerDecoder decoder_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool wake_ = false;
  bool stopping_ = false;
  bool draining_ = false;
  bool fanouts_pending_ = true;
  std::size_t in_flight_ = 0;
  int recording_ = 0;  // CompleteMessages calls not yet called back
  std::chrono::steady_clock::time_point record_again_at_{};  // after a failed recording
  std::vector<store::MessageOutcome> completions_;
  std::unordered_map<std::string, Target> sending_;   // by id: sent, outcome not yet recorded
  std::vector<Unwanted> unwanted_;                    // see Withdraw
  std::atomic<bool> any_unwanted_{false};             // unwanted_ is not empty (read without mu_)
  std::vector<std::string> forgotten_integrations_;   // see ForgetIntegration
  std::atomic<bool> any_forgotten_{false};  // forgotten_integrations_ is not empty
  std::unordered_map<std::string, EpochMs> touched_;  // token -> last-active last written
  std::vector<std::function<void()>> posted_;         // see Post

  // Dispatcher thread only: no claim pass before this (set when one found nothing due).
  std::chrono::steady_clock::time_point claim_again_at_{};
  std::map<std::string, CachedProvider> providers_;  // by integration id; dispatcher thread only
  // Messages of batching providers gathered during one SendAll, by integration and auth scope.
  struct PendingBatch {
    std::shared_ptr<const providers::Provider> provider;
    std::vector<ItemPtr> items;
  };
  std::map<std::pair<std::string, std::string>, PendingBatch> batches_;
  std::map<std::string, PendingBatch> checks_;  // receipts to check, by integration
  std::unique_ptr<TokenBroker> tokens_;  // dispatcher thread only
  std::mt19937_64 random_{std::random_device{}()};
  std::thread thread_;
};

}  // namespace herald::delivery
