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
#include <map>
#include <mutex>
#include <thread>

#include "core/ids.h"
#include "core/time.h"
#include "store/sqlite/sqlite_store.h"

namespace herald::delivery {
namespace {

using namespace std::chrono_literals;

// Which bearer tokens FakeClient refuses with 401.
enum class Stale { kNone, kFirst, kAll };

// Answers on its own thread, like the real client. A request to the token endpoint gets a new
// token ("token-<n>"); a send whose bearer token is stale gets 401, any other 200 with its
// device token as the id. The first answer waits until `hold_first` requests are in.
class FakeClient : public http::Client {
 public:
  FakeClient(Stale stale, std::size_t hold_first) : stale_(stale), hold_(hold_first) {
    thread_ = std::thread([this] { Run(); });
  }
  ~FakeClient() override { Shutdown(0ms); }

  void Send(http::Request request, http::Callback done) override {
    {
      std::lock_guard lock(mu_);
      if (!stopping_) {
        if (request.url != kTokenUrl) {
          seen_.push_back(request.headers.empty() ? "" : request.headers.front().second);
          bodies_.push_back(request.body);
        }
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
  std::vector<std::string> Seen() const {  // each send's authorization header, in order
    std::lock_guard lock(mu_);
    return seen_;
  }
  std::vector<std::string> Bodies() const {  // each send's body (the device token), in order
    std::lock_guard lock(mu_);
    return bodies_;
  }
  std::vector<std::string> Answered() const {  // the bodies of the sends it answered
    std::lock_guard lock(mu_);
    return answered_;
  }
  int exchanges() const {
    std::lock_guard lock(mu_);
    return issued_;
  }
  std::thread::id thread_id() const { return thread_.get_id(); }

  static constexpr const char* kTokenUrl = "https://oauth.example.com/token";

 private:
  void Run() {
    std::unique_lock lock(mu_);
    for (;;) {
      // Token requests are answered at once; the first send waits for `hold_` sends.
      cv_.wait(lock, [&] {
        if (stopping_) return true;
        if (queue_.empty()) return false;
        if (queue_.front().first.url == kTokenUrl) return true;
        return static_cast<std::size_t>(std::count_if(queue_.begin(), queue_.end(), [](const auto& q) {
                 return q.first.url != kTokenUrl;
               })) >= hold_;
      });
      if (queue_.empty()) return;
      if (queue_.front().first.url != kTokenUrl) hold_ = 0;
      auto [request, done] = std::move(queue_.front());
      queue_.pop_front();
      if (request.withdrawal && request.withdrawal->Withdrawn(request.withdrawal_tag)) {
        lock.unlock();
        done(http::Outcome{http::TransportError::kWithdrawn, "withdrawn", {}});
        lock.lock();
        continue;
      }
      http::Outcome reply;
      if (request.url == kTokenUrl) {
        reply.response.status = 200;
        reply.response.body = "token-" + std::to_string(++issued_);
      } else {
        answered_.push_back(request.body);
        std::string auth = request.headers.empty() ? "" : request.headers.front().second;
        bool stale = stale_ == Stale::kAll || (stale_ == Stale::kFirst && auth == "Bearer token-1");
        reply.response.status = stale ? 401 : 200;
        reply.response.body = request.body;
      }
      lock.unlock();
      done(std::move(reply));
      lock.lock();
    }
  }

  const Stale stale_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::size_t hold_;
  int issued_ = 0;
  std::deque<std::pair<http::Request, http::Callback>> queue_;
  std::vector<std::string> seen_;
  std::vector<std::string> bodies_;
  std::vector<std::string> answered_;
  std::thread thread_;
};

// A provider whose requests carry an OAuth-like token from an exchange with FakeClient's token
// endpoint; 401 means that token is stale. With `batch` > 1 it sends that many messages per
// request (the body lists their device tokens, one per line) and records the thread that
// classified each reply.
class AuthProvider : public providers::Provider,
                     public providers::Authenticator,
                     public providers::ReceiptChecker {
 public:
  AuthProvider(std::size_t batch, bool receipts) : batch_(batch), receipts_(receipts) {}
  const Authenticator* auth() const override { return this; }
  // With receipts: a send is accepted with its device token as the receipt; the check answers
  // "device-1" delivered, "device-2" dead (the app is gone).
  const ReceiptChecker* receipts() const override { return receipts_ ? this : nullptr; }
  std::size_t max_receipts() const override { return 10; }
  std::chrono::milliseconds first_check_after() const override { return 20ms; }
  Result<http::Request> BuildCheck(std::span<const std::string> receipts,
                                   const providers::AuthToken& token) const override {
    http::Request r;
    r.url = "https://push.example.com/receipts";
    r.headers = {{"authorization", "Bearer " + token.value}};
    for (const std::string& receipt : receipts) r.body += receipt + "\n";
    return r;
  }
  std::vector<providers::Outcome> ReadCheck(const http::Outcome& reply,
                                            std::span<const std::string> receipts) const override {
    std::vector<providers::Outcome> out;
    for (const std::string& receipt : receipts) {
      providers::Outcome o;
      if (!reply.ok() || reply.response.status != 200) {
        o.verdict = providers::Verdict::kPending;
      } else if (receipt == "device-2") {
        o = {providers::Verdict::kFailedRemoveToken, "DeviceNotRegistered", "gone"};
        o.unsubscribed = true;
      }
      out.push_back(o);
    }
    return out;
  }
  Kind kind() const override { return Kind::kExchanged; }
  std::string CredentialKey() const override { return "test-credential"; }
  Result<http::Request> BuildExchange(EpochMs) const override {
    http::Request r;
    r.url = FakeClient::kTokenUrl;
    return r;
  }
  Result<providers::AuthToken> ReadExchange(const http::Outcome& reply, EpochMs now) const override {
    if (!reply.ok() || reply.response.status != 200) return Status::Unavailable("no token");
    return providers::AuthToken{reply.response.body, now, now + 3600000};
  }

  Result<http::Request> BuildRequest(const providers::PushMessage& message,
                                     const providers::AuthToken& token) const override {
    http::Request r;
    r.url = "https://push.example.com/send";
    r.headers = {{"authorization", "Bearer " + token.value}};
    r.body = message.device_token;
    return r;
  }
  providers::Outcome Classify(const http::Outcome& reply) const override {
    if (reply.ok() && reply.response.status == 401) {
      return {providers::Verdict::kRefreshAuth, "UNAUTHENTICATED", "token expired"};
    }
    providers::Outcome out = providers::ClassifyTransport(reply);
    if (reply.ok()) out.provider_message_id = reply.response.body;
    if (receipts_ && out.verdict == providers::Verdict::kDelivered) {
      out.verdict = providers::Verdict::kAccepted;
      out.receipt = reply.response.body;
    }
    return out;
  }

  std::size_t max_batch() const override { return batch_; }
  providers::BatchPlan BuildBatch(std::span<const providers::PushMessage* const> batch,
                                  const providers::AuthToken& token) const override {
    providers::BatchPlan plan;
    providers::BatchRequest request;
    request.request.url = "https://push.example.com/batch";
    request.request.headers = {{"authorization", "Bearer " + token.value}};
    for (std::size_t i = 0; i < batch.size(); ++i) {
      request.request.body += batch[i]->device_token + "\n";
      request.messages.push_back(i);
    }
    plan.requests.push_back(std::move(request));
    return plan;
  }
  std::vector<providers::Outcome> ClassifyBatch(
      const http::Outcome& reply,
      std::span<const providers::PushMessage* const> messages) const override {
    {
      std::lock_guard lock(mu_);
      classified_on.push_back(std::this_thread::get_id());
      batch_sizes.push_back(messages.size());
    }
    std::vector<providers::Outcome> out;
    for (const providers::PushMessage* message : messages) {
      providers::Outcome outcome = Classify(reply);
      if (outcome.verdict == providers::Verdict::kDelivered) {
        outcome.provider_message_id = message->device_token;
      }
      out.push_back(outcome);
    }
    return out;
  }

  mutable std::mutex mu_;
  mutable std::vector<std::thread::id> classified_on;
  mutable std::vector<std::size_t> batch_sizes;

 private:
  const std::size_t batch_;
  const bool receipts_;
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
    ++created;
    auto provider = std::make_unique<AuthProvider>(batch, receipts);
    last = provider.get();
    return std::unique_ptr<providers::Provider>(std::move(provider));
  }
  mutable std::atomic<int> created{0};
  mutable std::atomic<AuthProvider*> last{nullptr};
  std::size_t batch = 1;
  bool receipts = false;

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
    integration_id_ = integration.id;
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
                  const std::string& owner, EpochMs lease_until, std::size_t messages = 2) {
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
    ASSERT_EQ(receipt->messages, messages);
    ASSERT_EQ(receipt->leased.size(), owner.empty() ? 0u : messages);
  }

  // The trigger's two messages (one per token) once neither is pending (or as they are after
  // 10 s).
  std::vector<store::Message> Settled(const std::string& transaction_id, std::size_t count = 2) {
    std::vector<store::Message> last;
    for (auto deadline = std::chrono::steady_clock::now() + 10s;
         std::chrono::steady_clock::now() < deadline; std::this_thread::sleep_for(10ms)) {
      store::MessageQuery query;
      query.environment_id = env_;
      query.transaction_ids = {transaction_id};
      long long total = 0;
      auto messages = store_->ListMessages(query, &total);
      if (!messages.ok() || messages->size() != count) continue;
      last = *messages;
      if (std::none_of(last.begin(), last.end(), [](const store::Message& m) {
            return m.state == store::DeliveryState::kPending;
          })) {
        break;
      }
    }
    return last;
  }

  // What one trigger of the one-step workflow to "u1" came to, sent through a dispatcher of its
  // own over a FakeClient refusing `stale` tokens: the messages once settled, and what the
  // client was asked.
  struct Run {
    std::vector<store::Message> messages;
    std::vector<std::string> bodies;
    int exchanges = 0;
  };
  Run TriggerOnce(Stale stale, const std::string& transaction_id) {
    FakeClient client(stale, /*hold_first=*/0);
    Dispatcher dispatcher(*store_, client, Planner(), Options("test"));
    Trigger(dispatcher, transaction_id);
    dispatcher.Start();
    dispatcher.Wake();
    Run run;
    run.messages = Settled(transaction_id);
    dispatcher.Stop(1s);
    run.bodies = client.Bodies();
    run.exchanges = client.exchanges();
    return run;
  }

  std::filesystem::path dir_;
  crypto::KeyRing keys_{"k1", {{"k1", std::string(32, 'k')}}};
  std::unique_ptr<store::Store> store_;
  std::string env_;
  std::string integration_id_;
  AuthSpec spec_;
};

// A reply classified refresh-auth drops the token that was refused and resends the message at
// once with a new one: both tokens' first sends come back 401 on the same stale token, one new
// exchange serves both resends, the provider is never rebuilt, and a later trigger uses the new
// token without an exchange. The resend is part of the same attempt.
TEST_F(DispatcherTest, RefreshAuthExchangesOnceAndResendsAtOnce) {
  FakeClient client(Stale::kFirst, /*hold_first=*/2);  // both first sends on token-1
  DispatcherOptions options = Options("test");
  options.integration_ttl = std::chrono::hours(1);
  Dispatcher dispatcher(*store_, client, Planner(), options);
  Trigger(dispatcher, "tx-refresh");
  dispatcher.Start();
  dispatcher.Wake();
  std::vector<store::Message> first = Settled("tx-refresh");
  Trigger(dispatcher, "tx-after");
  dispatcher.Wake();
  std::vector<store::Message> second = Settled("tx-after");
  dispatcher.Stop(1s);

  for (const auto* messages : {&first, &second}) {
    ASSERT_EQ(messages->size(), 2u);
    for (const store::Message& m : *messages) {
      EXPECT_EQ(m.state, store::DeliveryState::kDelivered) << m.error_text.value_or("");
      EXPECT_EQ(m.attempts, 1);
      EXPECT_EQ(m.provider_response_id.value_or(""), m.device_token);
    }
  }
  EXPECT_EQ(spec_.created.load(), 1);
  EXPECT_EQ(client.exchanges(), 2);
  EXPECT_EQ(client.Seen(),
            (std::vector<std::string>{"Bearer token-1", "Bearer token-1", "Bearer token-2",
                                      "Bearer token-2", "Bearer token-2", "Bearer token-2"}));
}

// A provider that refuses the new token too: the message fails as a configuration error after
// one resend, without waiting for the retry schedule.
TEST_F(DispatcherTest, RefusedAgainWithANewTokenIsAConfigurationFailure) {
  Run run = TriggerOnce(Stale::kAll, "tx-refused");
  const std::vector<store::Message>& messages = run.messages;

  ASSERT_EQ(messages.size(), 2u);
  for (const store::Message& m : messages) {
    EXPECT_EQ(m.state, store::DeliveryState::kFailed);
    EXPECT_EQ(m.error_id.value_or(""), "UNAUTHENTICATED");
    EXPECT_NE(m.error_text.value_or("").find("refused again with a new auth token"),
              std::string::npos);
    EXPECT_EQ(m.attempts, 1);
  }
  EXPECT_EQ(run.bodies.size(), 4u);
  EXPECT_LE(run.exchanges, 3);  // one, then one refresh (a second only if the first refresh
                                // landed before the other message's 401)
}

// A batching provider gets the messages of one integration in requests of at most max_batch,
// and its replies are classified on the dispatcher thread, not the client's.
TEST_F(DispatcherTest, BatchesAreBuiltPerIntegrationAndClassifiedOffTheClientThread) {
  spec_.batch = 2;
  bool created = false;
  ASSERT_TRUE(store_->UpsertSubscriber(env_, "u5", {}, false, &created).ok());
  store::CredentialsUpdate tokens;
  tokens.provider_id = "test-auth";
  tokens.tokens = std::vector<store::DeviceToken>{
      {"b-1", "b-1"}, {"b-2", "b-2"}, {"b-3", "b-3"}, {"b-4", "b-4"}, {"b-5", "b-5"}};
  ASSERT_TRUE(store_->UpdateCredentials(env_, "u5", tokens).ok());
  PlanLeased("tx-batch", "u5", "", 0, 5);

  FakeClient client(Stale::kFirst, /*hold_first=*/0);
  Dispatcher dispatcher(*store_, client, Planner(), Options("test"));
  dispatcher.Start();
  dispatcher.Wake();
  std::vector<store::Message> messages = Settled("tx-batch", 5);
  dispatcher.Stop(1s);

  ASSERT_EQ(messages.size(), 5u);
  for (const store::Message& m : messages) {
    EXPECT_EQ(m.state, store::DeliveryState::kDelivered) << m.error_text.value_or("");
    EXPECT_EQ(m.provider_response_id.value_or(""), m.device_token);
  }
  AuthProvider* provider = spec_.last.load();
  ASSERT_NE(provider, nullptr);
  std::lock_guard lock(provider->mu_);
  std::vector<std::size_t> sizes = provider->batch_sizes;
  std::sort(sizes.begin(), sizes.end());
  // token-1 is stale: the first requests come back 401 and their messages are resent.
  std::size_t total = 0;
  for (std::size_t size : sizes) {
    EXPECT_LE(size, 2u);
    total += size;
  }
  EXPECT_GE(total, 5u);
  for (std::thread::id id : provider->classified_on) EXPECT_NE(id, client.thread_id());
}

// A test send goes through the same path (auth, refresh) without a message record, and a
// connection test runs the exchange, then the provider's probe.
TEST_F(DispatcherTest, TestSendAndConnectionTest) {
  FakeClient client(Stale::kFirst, /*hold_first=*/0);
  Dispatcher dispatcher(*store_, client, Planner(), Options("test"));
  dispatcher.Start();
  std::promise<Result<providers::Outcome>> sent;
  dispatcher.SendTest(env_, integration_id_, "probe-device", "T", "B",
                      [&](Result<providers::Outcome> outcome) { sent.set_value(outcome); });
  Result<providers::Outcome> outcome = sent.get_future().get();
  ASSERT_TRUE(outcome.ok()) << outcome.status().message();
  EXPECT_EQ(outcome->verdict, providers::Verdict::kDelivered);  // after one refresh
  EXPECT_EQ(outcome->provider_message_id, "probe-device");

  std::promise<Result<providers::ProbeResult>> probed;
  dispatcher.TestConnection(env_, integration_id_, [&](Result<providers::ProbeResult> result) {
    probed.set_value(result);
  });
  Result<providers::ProbeResult> probe = probed.get_future().get();
  ASSERT_TRUE(probe.ok());
  EXPECT_TRUE(probe->ok);

  std::promise<Result<providers::ProbeResult>> missing;
  dispatcher.TestConnection(env_, "no-such-integration", [&](Result<providers::ProbeResult> r) {
    missing.set_value(r);
  });
  EXPECT_EQ(missing.get_future().get().status().code(), Code::kNotFound);
  dispatcher.Stop(1s);
  EXPECT_EQ(client.Bodies(), (std::vector<std::string>{"probe-device", "probe-device"}));
}

// A provider that confirms later: the messages wait pending with their receipts, which are
// checked in one request after first_check_after(); the check settles each message, and a dead
// token found by it leaves the subscriber.
TEST_F(DispatcherTest, ReceiptsAreCheckedLater) {
  spec_.receipts = true;
  Run run = TriggerOnce(Stale::kNone, "tx-receipts");
  const std::vector<store::Message>& messages = run.messages;

  ASSERT_EQ(messages.size(), 2u);
  std::map<std::string, store::Message> by_token;
  for (const store::Message& m : messages) by_token[m.device_token] = m;
  EXPECT_EQ(by_token["device-1"].state, store::DeliveryState::kDelivered);
  EXPECT_EQ(by_token["device-1"].provider_response_id.value_or(""), "device-1");
  EXPECT_EQ(by_token["device-1"].attempts, 2);  // the send, then the check
  EXPECT_EQ(by_token["device-2"].state, store::DeliveryState::kFailed);
  EXPECT_EQ(by_token["device-2"].error_id.value_or(""), "DeviceNotRegistered");
  // The two sends, then the check. Each receipt falls due first_check_after() from its own send's
  // reply: replies settled in different milliseconds can fall due apart, and a claim between them
  // checks them in two requests (seen now and then, most often under the sanitizers).
  const std::vector<std::string>& bodies = run.bodies;
  ASSERT_GE(bodies.size(), 3u) << ::testing::PrintToString(bodies);
  ASSERT_LE(bodies.size(), 4u) << ::testing::PrintToString(bodies);
  std::string checked;
  for (std::size_t i = 2; i < bodies.size(); ++i) checked += bodies[i];
  EXPECT_TRUE(checked == "device-1\ndevice-2\n" || checked == "device-2\ndevice-1\n")
      << ::testing::PrintToString(bodies);
  Result<store::Subscriber> subscriber = store_->GetSubscriber(env_, "u1");
  ASSERT_TRUE(subscriber.ok());
  for (const store::DeviceToken& t : subscriber->channels.at(0).tokens) {
    EXPECT_EQ(t.status, t.token == "device-2" ? store::TokenStatus::kUnsubscribed
                                              : store::TokenStatus::kActive);
  }
}

// Receipts due together are checked in one request (as many as max_receipts() allows).
TEST_F(DispatcherTest, ReceiptsDueTogetherAreCheckedInOneRequest) {
  spec_.receipts = true;
  PlanLeased("tx-due", "u1", "earlier", NowMs() + 3600000);
  // What an earlier run left: both accepted, their receipts due at the same moment.
  EpochMs now = NowMs();
  std::vector<store::MessageOutcome> accepted;
  store::MessageQuery query;
  query.environment_id = env_;
  query.transaction_ids = {"tx-due"};
  long long total = 0;
  Result<std::vector<store::Message>> leased = store_->ListMessages(query, &total);
  ASSERT_TRUE(leased.ok());
  for (const store::Message& m : *leased) {
    store::MessageOutcome o{m.id, store::MessageOutcome::Kind::kAwaitingReceipt, now, now};
    o.receipt = m.device_token;
    accepted.push_back(o);
  }
  ASSERT_EQ(accepted.size(), 2u);
  std::promise<Status> recorded;
  store_->CompleteMessages("earlier", accepted, [&](Status st) { recorded.set_value(st); });
  ASSERT_TRUE(recorded.get_future().get().ok());
  ASSERT_TRUE(store_->ReleaseAllLeases().ok());

  FakeClient client(Stale::kNone, /*hold_first=*/0);
  Dispatcher dispatcher(*store_, client, Planner(), Options("test"));
  dispatcher.Start();
  dispatcher.Wake();
  std::vector<store::Message> messages = Settled("tx-due");
  dispatcher.Stop(1s);
  for (const store::Message& m : messages) EXPECT_TRUE(m.receipt.empty()) << m.device_token;
  std::vector<std::string> bodies = client.Bodies();
  ASSERT_EQ(bodies.size(), 1u) << ::testing::PrintToString(bodies);
  EXPECT_TRUE(bodies[0] == "device-1\ndevice-2\n" || bodies[0] == "device-2\ndevice-1\n")
      << bodies[0];
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

  FakeClient client(Stale::kNone, /*hold_first=*/0);
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
  FakeClient client(Stale::kNone, /*hold_first=*/4);  // answers nothing until four requests are in
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
