#include "delivery/token_broker.h"

#include "core/log.h"
#include "core/time.h"

namespace herald::delivery {
namespace {

std::string KeyOf(const providers::Authenticator& auth, const std::string& scope) {
  return auth.CredentialKey() + '\n' + scope;
}

bool Usable(const std::optional<providers::AuthToken>& token, EpochMs now) {
  return token && now < token->refresh_at;
}

}  // namespace

TokenBroker::TokenBroker(http::Client& client, Post post,
                         std::chrono::milliseconds exchange_timeout)
    : client_(client), post_(std::move(post)), exchange_timeout_(exchange_timeout) {}

void TokenBroker::Get(std::shared_ptr<const providers::Provider> provider,
                      const std::string& scope, Ready ready, bool fresh) {
  const providers::Authenticator& auth = *provider->auth();
  const std::string key = KeyOf(auth, scope);
  Entry& entry = entries_[key];
  const EpochMs now = NowMs();
  const bool minted = auth.kind() == providers::Authenticator::Kind::kMinted;
  if (Usable(entry.token, now) && (minted || !fresh)) return ready(*entry.token);

  if (minted) {
    Result<providers::AuthToken> minted = auth.Mint(scope, now);
    if (minted.ok()) {
      ++mints_;
      entry.token = *minted;
    }
    return ready(std::move(minted));
  }

  entry.waiting.push_back(std::move(ready));
  if (entry.exchanging) return;
  Result<http::Request> request = auth.BuildExchange(now);
  if (!request.ok()) {
    std::vector<Ready> waiting = std::move(entry.waiting);
    entry.waiting.clear();
    for (Ready& waiter : waiting) waiter(request.status());
    return;
  }
  entry.exchanging = true;
  ++exchanges_;
  request->timeout = exchange_timeout_;
  client_.Send(std::move(*request),
               [this, key, provider = std::move(provider)](http::Outcome reply) mutable {
                 // The client's thread: the reply is read where the token is kept.
                 post_([this, key, provider = std::move(provider), reply = std::move(reply)] {
                   Exchanged(key, *provider->auth(), reply);
                 });
               });
}

void TokenBroker::Exchanged(const std::string& key, const providers::Authenticator& auth,
                            const http::Outcome& reply) {
  Entry& entry = entries_[key];
  entry.exchanging = false;
  Result<providers::AuthToken> token = Status::Unavailable("the http client is shutting down");
  if (reply.error != http::TransportError::kShutdown) token = auth.ReadExchange(reply, NowMs());
  if (token.ok()) {
    entry.token = *token;
  } else {
    spdlog::warn("auth_exchange_failed reason=\"{}\"", token.status().message());
  }
  std::vector<Ready> waiting = std::move(entry.waiting);
  entry.waiting.clear();
  for (Ready& waiter : waiting) waiter(token);
}

void TokenBroker::Invalidate(const providers::Authenticator& auth, const std::string& scope,
                             const providers::AuthToken& used) {
  auto it = entries_.find(KeyOf(auth, scope));
  if (it == entries_.end() || !it->second.token) return;
  const providers::AuthToken& held = *it->second.token;
  if (held.value != used.value) return;  // already replaced
  if (NowMs() - held.issued_at < auth.min_refresh_age().count()) return;
  it->second.token.reset();
}

}  // namespace herald::delivery
