// The token broker with a provider and an HTTP client of the test's own; the test thread plays
// the dispatcher thread (it runs what the broker posts).
#include "delivery/token_broker.h"

#include <gtest/gtest.h>

#include <deque>
#include <functional>
#include <mutex>

#include "core/time.h"

namespace herald::delivery {
namespace {

using providers::AuthToken;

// Keeps every request; the test answers them when it likes.
class HeldClient : public http::Client {
 public:
  void Send(http::Request request, http::Callback done) override {
    std::lock_guard lock(mu_);
    held_.emplace_back(std::move(request), std::move(done));
  }
  void SetConcurrency(const std::string&, std::size_t) override {}
  std::size_t InFlight() const override {
    std::lock_guard lock(mu_);
    return held_.size();
  }
  void Shutdown(std::chrono::milliseconds) override {}

  std::size_t held() const { return InFlight(); }
  // Answers the oldest request with `status` and `body`.
  void Answer(int status, std::string body) {
    std::pair<http::Request, http::Callback> next;
    {
      std::lock_guard lock(mu_);
      next = std::move(held_.front());
      held_.pop_front();
    }
    http::Outcome reply;
    reply.response.status = status;
    reply.response.body = std::move(body);
    next.second(std::move(reply));
  }

 private:
  mutable std::mutex mu_;
  std::deque<std::pair<http::Request, http::Callback>> held_;
};

// An exchanged token: the reply body is the token, valid for `lifetime_ms`; a 401 refuses the
// credential, a 503 is transient.
class ExchangeProvider : public providers::Provider, public providers::Authenticator {
 public:
  explicit ExchangeProvider(std::string credential, Kind kind = Kind::kExchanged)
      : credential_(std::move(credential)), kind_(kind) {}
  const Authenticator* auth() const override { return this; }
  Kind kind() const override { return kind_; }
  std::string CredentialKey() const override { return credential_; }
  std::chrono::milliseconds min_refresh_age() const override { return min_age; }
  Result<AuthToken> Mint(std::string_view scope, EpochMs now) const override {
    return AuthToken{"minted-" + std::string(scope) + "-" + std::to_string(++minted), now,
                     now + lifetime_ms};
  }
  Result<http::Request> BuildExchange(EpochMs) const override {
    http::Request request;
    request.url = "https://oauth.example.com/token";
    request.body = credential_;
    return request;
  }
  Result<AuthToken> ReadExchange(const http::Outcome& reply, EpochMs now) const override {
    if (reply.response.status == 503) return Status::Unavailable("try later");
    if (reply.response.status != 200) {
      return providers::Refusal("invalid_grant", "refused", Code::kFailedPrecondition);
    }
    return AuthToken{reply.response.body, now, now + lifetime_ms};
  }

  std::int64_t lifetime_ms = 3600000;
  std::chrono::milliseconds min_age{0};
  mutable int minted = 0;

 private:
  std::string credential_;
  Kind kind_;
};

class TokenBrokerTest : public ::testing::Test {
 protected:
  TokenBrokerTest()
      : broker_(client_, [this](std::function<void()> task) { posted_.push_back(std::move(task)); },
                std::chrono::seconds(5)) {}

  void RunPosted() {
    while (!posted_.empty()) {
      auto task = std::move(posted_.front());
      posted_.pop_front();
      task();
    }
  }
  // Asks for a token and records what comes back (nothing until it is ready).
  void Ask(const std::shared_ptr<ExchangeProvider>& provider, const std::string& scope = "") {
    broker_.Get(provider, scope, [this](Result<AuthToken> token) {
      answers_.push_back(token.ok() ? token->value : "error:" + providers::ReasonOf(token.status(), "?") +
                                                         (token.status().code() == Code::kUnavailable
                                                              ? ":unavailable"
                                                              : ""));
    });
  }

  HeldClient client_;
  std::deque<std::function<void()>> posted_;
  TokenBroker broker_;
  std::vector<std::string> answers_;
};

TEST_F(TokenBrokerTest, OneExchangeHoweverManyWait) {
  auto provider = std::make_shared<ExchangeProvider>("account-1");
  for (int i = 0; i < 50; ++i) Ask(provider);
  EXPECT_EQ(client_.held(), 1u);
  EXPECT_TRUE(answers_.empty());  // they wait; nothing blocks
  client_.Answer(200, "token-A");
  EXPECT_TRUE(answers_.empty());  // the reply is read on the dispatcher thread
  RunPosted();
  ASSERT_EQ(answers_.size(), 50u);
  for (const std::string& answer : answers_) EXPECT_EQ(answer, "token-A");
  // Cached: a rebuilt provider of the same credential gets it without an exchange.
  Ask(std::make_shared<ExchangeProvider>("account-1"));
  EXPECT_EQ(answers_.back(), "token-A");
  EXPECT_EQ(client_.held(), 0u);
  EXPECT_EQ(broker_.exchanges(), 1u);
}

TEST_F(TokenBrokerTest, InvalidateReplacesOnlyTheStaleToken) {
  auto provider = std::make_shared<ExchangeProvider>("account-1");
  Ask(provider);
  client_.Answer(200, "token-A");
  RunPosted();
  const AuthToken stale{"token-A", NowMs(), NowMs() + 1000};
  broker_.Invalidate(*provider, "", stale);
  broker_.Invalidate(*provider, "", stale);  // a second reply on the same token: no-op
  Ask(provider);
  Ask(provider);
  EXPECT_EQ(client_.held(), 1u);
  client_.Answer(200, "token-B");
  RunPosted();
  // A late reply on the old token does not drop the new one.
  broker_.Invalidate(*provider, "", stale);
  Ask(provider);
  EXPECT_EQ(answers_, (std::vector<std::string>{"token-A", "token-B", "token-B", "token-B"}));
  EXPECT_EQ(broker_.exchanges(), 2u);
}

TEST_F(TokenBrokerTest, FailedExchangeTellsEveryWaiterWhy) {
  auto provider = std::make_shared<ExchangeProvider>("account-1");
  Ask(provider);
  Ask(provider);
  client_.Answer(401, "");
  RunPosted();
  Ask(provider);  // not cached: a new exchange
  client_.Answer(503, "");
  RunPosted();
  EXPECT_EQ(answers_, (std::vector<std::string>{"error:invalid_grant", "error:invalid_grant",
                                                "error:?:unavailable"}));
}

TEST_F(TokenBrokerTest, TokensAreRefreshedBeforeTheyExpire) {
  auto provider = std::make_shared<ExchangeProvider>("account-1");
  provider->lifetime_ms = -1;  // already due for refresh when it arrives
  Ask(provider);
  client_.Answer(200, "token-A");
  RunPosted();
  Ask(provider);
  EXPECT_EQ(client_.held(), 1u);
}

TEST_F(TokenBrokerTest, MintedTokensPerScopeAndNotRefreshedTooSoon) {
  auto provider = std::make_shared<ExchangeProvider>("key-1", providers::Authenticator::Kind::kMinted);
  provider->min_age = std::chrono::minutes(20);
  Ask(provider, "https://a.example");
  Ask(provider, "https://a.example");
  Ask(provider, "https://b.example");
  EXPECT_EQ(answers_, (std::vector<std::string>{"minted-https://a.example-1",
                                                "minted-https://a.example-1",
                                                "minted-https://b.example-2"}));
  // Asked to refresh a token minted just now: kept (Apple refuses new ones more often).
  broker_.Invalidate(*provider, "https://a.example", {"minted-https://a.example-1", NowMs(), 0});
  Ask(provider, "https://a.example");
  EXPECT_EQ(answers_.back(), "minted-https://a.example-1");
  provider->min_age = std::chrono::minutes(0);
  broker_.Invalidate(*provider, "https://a.example", {"minted-https://a.example-1", NowMs(), 0});
  Ask(provider, "https://a.example");
  EXPECT_EQ(answers_.back(), "minted-https://a.example-3");
  EXPECT_EQ(broker_.mints(), 3u);
  EXPECT_EQ(client_.held(), 0u);
}

}  // namespace
}  // namespace herald::delivery
