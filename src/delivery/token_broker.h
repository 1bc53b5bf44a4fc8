// Auth tokens for providers that need one (providers::Authenticator): one token per (credential,
// scope), shared by every Provider built from that credential and kept when a Provider is
// rebuilt; minted locally or obtained by one exchange however many sends wait for it
// (single-flight); refreshed shortly before expiry, and once when a provider says it is stale.
//
// Dispatcher thread only: every method, and every callback it makes, runs there. An exchange's
// reply arrives on the HTTP client's thread and is handed back through `post`.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "http/client.h"
#include "providers/provider.h"

namespace herald::delivery {

class TokenBroker {
 public:
  using Ready = std::function<void(Result<providers::AuthToken>)>;
  // Runs a task on the dispatcher thread (soon, in order).
  using Post = std::function<void(std::function<void()>)>;

  TokenBroker(http::Client& client, Post post, std::chrono::milliseconds exchange_timeout);

  // Calls `ready` with a usable token of `provider->auth()` for `scope`: at once when one is
  // cached or can be minted, else when the exchange ends (started if none is in flight).
  // Unavailable when the token cannot be had now but may later; any other error code when the
  // credentials are refused. `provider` is kept alive until the exchange ends. `fresh`: an
  // exchanged token is obtained anew even if one is cached (a connection test).
  void Get(std::shared_ptr<const providers::Provider> provider, const std::string& scope,
           Ready ready, bool fresh = false);
  // A reply said `used` is stale: the next Get obtains a new token, unless `used` was already
  // replaced or is younger than the authenticator's min_refresh_age().
  void Invalidate(const providers::Authenticator& auth, const std::string& scope,
                  const providers::AuthToken& used);

  // Counted since construction, for tests and metrics (any thread).
  std::uint64_t mints() const { return mints_.load(); }
  std::uint64_t exchanges() const { return exchanges_.load(); }

 private:
  struct Entry {
    std::optional<providers::AuthToken> token;
    bool exchanging = false;
    std::vector<Ready> waiting;
  };
  void Exchanged(const std::string& key, const providers::Authenticator& auth,
                 const http::Outcome& reply);

  http::Client& client_;
  Post post_;
  std::chrono::milliseconds exchange_timeout_;
  std::unordered_map<std::string, Entry> entries_;  // by credential key + '\n' + scope
  std::atomic<std::uint64_t> mints_{0};
  std::atomic<std::uint64_t> exchanges_{0};
};

}  // namespace herald::delivery
