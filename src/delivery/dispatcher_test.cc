// The dispatcher against a real SQLite store, with a provider and an HTTP client of the test's
// own (the network and the provider registry are the only parts replaced).
#include "delivery/dispatcher.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <future>
#include <mutex>
#include <thread>

#include "core/ids.h"
#include "core/time.h"
#include "store/sqlite/sqlite_store.h"

namespace herald::delivery {
namespace {

using namespace std::chrono_literals;

// Answers on its own thread, like the real client: 401 to a request whose bearer token is
// `stale_token`, 200 to any other. The first answer waits until `hold_first` requests are in.
class FakeClient : public http::Client {
 public:
  FakeClient(std::string stale_token, std::size_t hold_first)
      : stale_token_(std::move(stale_token)), hold_(hold_first) {
    thread_ = std::thread([this] { Run(); });
  }
  ~FakeClient() override { Shutdown(0ms); }

  void Send(http::Request request, http::Callback done) override {
    {
      std::lock_guard lock(mu_);
      if (!stopping_) {
        seen_.push_back(request.headers.empty() ? "" : request.headers.front().second);
        bodies_.push_back(request.body);
        queue_.emplace_back(std::move(request), std::move(done));
        cv_.notify_one();
        return;
      }
    }
    done(http::Outcome{http::TransportError::kShutdown, "stopping", {}});
  }
  void SetConcurrency(const std::string&, std::size_t) override {}
  std::size_t InFlight() const override {
    std::lock_guard lock(mu_);
    return queue_.size();
  }
  void Shutdown(std::chrono::milliseconds) override {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    cv_.notify_one();
    if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
  }
  std::vector<std::string> Seen() const {
    std::lock_guard lock(mu_);
    return seen_;
  }
  std::vector<std::string> Bodies() const {  // each request's body (the device token), in order
    std::lock_guard lock(mu_);
    return bodies_;
  }
  std::vector<std::string> Answered() const {  // the bodies of the requests it answered
    std::lock_guard lock(mu_);
    return answered_;
  }

 private:
  void Run() {
    std::unique_lock lock(mu_);
    for (;;) {
      cv_.wait(lock, [&] { return stopping_ || (!queue_.empty() && queue_.size() >= hold_); });
      if (queue_.empty()) return;
      hold_ = 0;
      auto [request, done] = std::move(queue_.front());
      queue_.pop_front();
      if (request.withdrawal && request.withdrawal->Withdrawn(request.withdrawal_tag)) {
        lock.unlock();
        done(http::Outcome{http::TransportError::kWithdrawn, "withdrawn", {}});
        lock.lock();
        continue;
      }
      answered_.push_back(request.body);
      lock.unlock();
      http::Outcome reply;
      bool stale = !request.headers.empty() && request.headers.front().second == stale_token_;
      reply.response.status = stale ? 401 : 200;
      done(std::move(reply));
      lock.lock();
    }
  }

  const std::string stale_token_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::size_t hold_;
  std::deque<std::pair<http::Request, http::Callback>> queue_;
  std::vector<std::string> seen_;  // each request's authorization header, in order
  std::vector<std::string> bodies_;
  std::vector<std::string> answered_;
  std::thread thread_;
};

// A provider whose every instance signs with its own token ("Bearer token-<n>", n counting
// instances), as one holding an OAuth access token would; 401 means that token is stale.
class AuthProvider : public providers::Provider {
 public:
  explicit AuthProvider(int generation) : generation_(generation) {}
  Result<http::Request> BuildRequest(const providers::PushMessage& message) const override {
    http::Request r;
    r.url = "https://push.example.com/send";
    r.headers = {{"authorization", "Bearer token-" + std::to_string(generation_)}};
    r.body = message.device_token;
    return r;
  }
  providers::Outcome Classify(const http::Outcome& reply) const override {
    if (reply.ok() && reply.response.status == 401) {
      return {providers::Verdict::kRefreshAuth, "UNAUTHENTICATED", "token expired", {}, ""};
    }
    return providers::ClassifyTransport(reply);
  }

 private:
  const int generation_;
};

class AuthSpec : public providers::ProviderSpec {
 public:
  std::string_view id() const override { return "test-auth"; }
  std::string_view display_name() const override { return "Test auth"; }
  const std::vector<providers::CredentialField>& fields() const override { return fields_; }
  Status ValidateCredentials(Json&) const override { return Status::Ok(); }
  Result<std::string> NormalizeDeviceToken(std::string_view token,
                                           const providers::TokenPolicy&) const override {
    return std::string(token);
  }
  Result<std::unique_ptr<providers::Provider>> Create(const Json&) const override {
    return std::unique_ptr<providers::Provider>(new AuthProvider(++created));
  }
  mutable std::atomic<int> created{0};

 private:
  std::vector<providers::CredentialField> fields_;
};

class DispatcherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("herald-dispatch-" + RandomAlnum(10));
    std::filesystem::create_directories(dir_);
    auto opened = store::OpenSqliteStore({(dir_ / "herald.db").string(), 2}, keys_);
    ASSERT_TRUE(opened.ok()) << opened.status().message();
    store_ = std::move(*opened);
    ASSERT_TRUE(
        store_->EnsureEnvironments({{NewObjectId(), "dev", "org", "hash", "sealed", 0}}).ok());
    env_ = store_->ListEnvironments()->at(0).id;

    store::Integration integration;
    integration.id = NewObjectId();
    integration.environment_id = env_;
    integration.identifier = integration.name = "auth";
    integration.provider_id = "test-auth";
    integration.active = true;
    ASSERT_TRUE(store_->CreateIntegration(integration).ok());
    bool created = false;
    ASSERT_TRUE(store_->UpsertSubscriber(env_, "u1", {}, false, &created).ok());
    store::CredentialsUpdate tokens;
    tokens.provider_id = "test-auth";
    tokens.tokens =
        std::vector<store::DeviceToken>{{"device-1", "device-1"}, {"device-2", "device-2"}};
    ASSERT_TRUE(store_->UpdateCredentials(env_, "u1", tokens).ok());
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  // Options for a dispatcher owned by `owner` that finds the test provider too.
  DispatcherOptions Options(const char* owner) {
    DispatcherOptions options;
    options.owner = owner;
    options.find_provider = [this](std::string_view id) -> const providers::ProviderSpec* {
      return id == spec_.id() ? &spec_ : providers::FindProvider(id);
    };
    return options;
  }

  // One message per token of the subscriber's channels.
  static store::MessagePlanner Planner() {
    return [](const store::Workflow&, const store::Subscriber& sub, const store::Notification&,
              const Json&) -> Result<std::vector<store::Message>> {
      std::vector<store::Message> out;
      for (const store::SubscriberChannel& ch : sub.channels) {
        for (const store::DeviceToken& t : ch.tokens) {
          store::Message m;
          m.step_pk = m.step_id = "push";
          m.integration_id = ch.integration_id;
          m.provider_id = ch.provider_id;
          m.channel_pk = ch.id;
          m.device_token = t.token;
          m.token_identity = t.identity;
          out.push_back(std::move(m));
        }
      }
      return out;
    };
  }

  // Queues a trigger of a one-step workflow to "u1" and decodes it as the API would.
  void Trigger(Dispatcher& dispatcher, const std::string& transaction_id) {
    dispatcher.SetTriggerDecoder(
        [](const store::QueuedTrigger& q) -> Result<store::TriggerRequest> {
          store::TriggerRequest r;
          r.environment_id = q.environment_id;
          r.transaction_id = q.transaction_id;
          auto workflow = std::make_shared<store::Workflow>();
          workflow->id = workflow->workflow_id = "wf";
          r.workflow = std::move(workflow);
          r.subscribers.push_back({"u1", {}, {}});
          return r;
        });
    store::QueuedTrigger q;
    q.environment_id = env_;
    q.transaction_id = transaction_id;
    q.event = {{"name", "wf"}, {"to", "u1"}};
    std::promise<Status> queued;
    store_->EnqueueTrigger(std::move(q), [&](Status st) { queued.set_value(std::move(st)); });
    ASSERT_TRUE(queued.get_future().get().ok());
  }

  // A trigger of the one-step workflow to `subscriber_id`, planned and leased to `owner` until
  // `lease_until` (what a process that is sending it has in the store).
  void PlanLeased(const std::string& transaction_id, const std::string& subscriber_id,
                  const std::string& owner, EpochMs lease_until) {
    std::vector<store::PlannedTrigger> items(1);
    store::TriggerRequest r;
    r.environment_id = env_;
    r.transaction_id = transaction_id;
    auto workflow = std::make_shared<store::Workflow>();
    workflow->id = workflow->workflow_id = "wf";
    r.workflow = std::move(workflow);
    r.subscribers.push_back({subscriber_id, {}, {}});
    items[0].request = std::move(r);
    auto receipt = store_->PlanTriggers(std::move(items), Planner(), owner, lease_until);
    ASSERT_TRUE(receipt.ok()) << receipt.status().message();
    ASSERT_EQ(receipt->leased.size(), 2u);
  }

  // The trigger's two messages (one per token) once neither is pending (or as they are after
  // 10 s).
  std::vector<store::Message> Settled(const std::string& transaction_id) {
    std::vector<store::Message> last;
    for (auto deadline = std::chrono::steady_clock::now() + 10s;
         std::chrono::steady_clock::now() < deadline; std::this_thread::sleep_for(10ms)) {
      store::MessageQuery query;
      query.environment_id = env_;
      query.transaction_ids = {transaction_id};
      long long total = 0;
      auto messages = store_->ListMessages(query, &total);
      if (!messages.ok() || messages->size() != 2) continue;
      last = *messages;
      if (std::none_of(last.begin(), last.end(), [](const store::Message& m) {
            return m.state == store::DeliveryState::kPending;
          })) {
        break;
      }
    }
    return last;
  }

  std::filesystem::path dir_;
  crypto::KeyRing keys_{"k1", {{"k1", std::string(32, 'k')}}};
  std::unique_ptr<store::Store> store_;
  std::string env_;
  AuthSpec spec_;
};

// A reply classified refresh-auth drops the provider that sent it: the retries go out from one
// new instance (a new token), long before the provider cache would have expired, and it stays
// cached: both tokens' first sends come back 401 from the same stale provider, which is rebuilt
// once, and a later trigger is sent by the rebuilt one.
TEST_F(DispatcherTest, RefreshAuthBuildsTheProviderAgainOnceAndRetries) {
  FakeClient client("Bearer token-1", /*hold_first=*/2);  // both first sends on the stale token
  DispatcherOptions options = Options("test");
  options.integration_ttl = std::chrono::hours(1);
  options.retry.base = 5ms;
  options.retry.cap = 20ms;
  options.retry.max_attempts = 4;
  Dispatcher dispatcher(*store_, client, Planner(), options);
  Trigger(dispatcher, "tx-refresh");
  dispatcher.Start();
  dispatcher.Wake();
  std::vector<store::Message> first = Settled("tx-refresh");
  Trigger(dispatcher, "tx-after");
  dispatcher.Wake();
  std::vector<store::Message> second = Settled("tx-after");
  dispatcher.Stop(1s);

  ASSERT_EQ(first.size(), 2u);
  for (const store::Message& m : first) {
    EXPECT_EQ(m.state, store::DeliveryState::kDelivered) << m.error_text.value_or("");
    EXPECT_EQ(m.attempts, 2);
  }
  ASSERT_EQ(second.size(), 2u);
  for (const store::Message& m : second) {
    EXPECT_EQ(m.state, store::DeliveryState::kDelivered) << m.error_text.value_or("");
    EXPECT_EQ(m.attempts, 1);
  }
  EXPECT_EQ(spec_.created.load(), 2);
  EXPECT_EQ(client.Seen(),
            (std::vector<std::string>{"Bearer token-1", "Bearer token-1", "Bearer token-2",
                                      "Bearer token-2", "Bearer token-2", "Bearer token-2"}));
}

// What a crashed process had in flight is taken back on start and sent before the triggers
// waiting in the inbox, which arrived after it.
TEST_F(DispatcherTest, SendsInFlightAtACrashGoOutBeforeTheInboxBacklog) {
  bool created = false;
  ASSERT_TRUE(store_->UpsertSubscriber(env_, "u-old", {}, false, &created).ok());
  store::CredentialsUpdate tokens;
  tokens.provider_id = "test-auth";
  tokens.tokens = std::vector<store::DeviceToken>{{"old-1", "old-1"}, {"old-2", "old-2"}};
  ASSERT_TRUE(store_->UpdateCredentials(env_, "u-old", tokens).ok());
  PlanLeased("tx-in-flight", "u-old", "crashed", NowMs() + 3600000);

  FakeClient client("none", /*hold_first=*/0);
  DispatcherOptions options = Options("restarted");
  Dispatcher dispatcher(*store_, client, Planner(), options);
  Trigger(dispatcher, "tx-backlog");
  dispatcher.Start();
  dispatcher.Wake();
  std::vector<store::Message> in_flight = Settled("tx-in-flight");
  std::vector<store::Message> backlog = Settled("tx-backlog");
  dispatcher.Stop(1s);

  for (const auto* messages : {&in_flight, &backlog}) {
    ASSERT_EQ(messages->size(), 2u);
    for (const store::Message& m : *messages) {
      EXPECT_EQ(m.state, store::DeliveryState::kDelivered) << m.error_text.value_or("");
    }
  }
  std::vector<std::string> bodies = client.Bodies();
  ASSERT_EQ(bodies.size(), 4u);
  std::sort(bodies.begin(), bodies.begin() + 2);
  std::sort(bodies.begin() + 2, bodies.end());
  EXPECT_EQ(bodies, (std::vector<std::string>{"old-1", "old-2", "device-1", "device-2"}));
}

// Sends made unwanted while they wait for a connection (a cancelled transaction) are taken back:
// never sent, failed with the reason given and no attempt counted; others go out.
TEST_F(DispatcherTest, WithdrawnSendsWaitingForAConnectionAreNeverSent) {
  FakeClient client("none", /*hold_first=*/4);  // answers nothing until four requests are in
  DispatcherOptions options = Options("test");
  Dispatcher dispatcher(*store_, client, Planner(), options);
  Trigger(dispatcher, "tx-cancelled");
  dispatcher.Start();
  dispatcher.Wake();
  for (int i = 0; i < 500 && client.Bodies().size() < 2; ++i) std::this_thread::sleep_for(5ms);
  ASSERT_EQ(client.Bodies().size(), 2u);  // both waiting inside the client
  dispatcher.Withdraw({env_, "tx-cancelled", std::nullopt, std::nullopt, "cancelled",
                       "the transaction was cancelled before it was sent"});
  dispatcher.Withdraw({"another-env", std::nullopt, std::nullopt, std::nullopt, "x", "y"});
  Trigger(dispatcher, "tx-kept");
  dispatcher.Wake();
  std::vector<store::Message> cancelled = Settled("tx-cancelled");
  std::vector<store::Message> kept = Settled("tx-kept");
  dispatcher.Stop(1s);

  ASSERT_EQ(cancelled.size(), 2u);
  for (const store::Message& m : cancelled) {
    EXPECT_EQ(m.state, store::DeliveryState::kFailed);
    EXPECT_EQ(m.error_id.value_or(""), "cancelled");
    EXPECT_EQ(m.attempts, 0);
    EXPECT_FALSE(m.last_attempt_at.has_value());
  }
  ASSERT_EQ(kept.size(), 2u);
  for (const store::Message& m : kept) {
    EXPECT_EQ(m.state, store::DeliveryState::kDelivered) << m.error_text.value_or("");
  }
  EXPECT_EQ(client.Answered().size(), 2u);  // only tx-kept's
}

}  // namespace
}  // namespace herald::delivery
