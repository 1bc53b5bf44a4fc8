// The dispatcher's send path: from a message with its Provider to a classified outcome. Batches
// per integration and auth scope, auth tokens through the TokenBroker, one resend with a new
// token when a provider says its token is stale, test sends and connection tests.
#include <algorithm>

#include "core/ids.h"
#include "core/log.h"
#include "delivery/dispatcher.h"

namespace herald::delivery {
namespace {

using providers::Outcome;
using providers::Verdict;

// The outcome of messages whose token could not be had.
Outcome AuthFailure(const Status& status) {
  Outcome out;
  out.verdict = status.code() == Code::kUnavailable ? Verdict::kRetry : Verdict::kFailedConfig;
  out.reason = providers::ReasonOf(status, "AUTH_FAILED");
  out.detail = status.message();
  return out;
}

}  // namespace

void Dispatcher::Post(std::function<void()> task) {
  {
    std::lock_guard lock(mu_);
    posted_.push_back(std::move(task));
  }
  cv_.notify_all();
}

bool Dispatcher::RunPosted() {
  std::vector<std::function<void()>> tasks;
  {
    std::lock_guard lock(mu_);
    tasks.swap(posted_);
  }
  for (auto& task : tasks) task();
  FlushBatches();  // resends of batching providers gathered by the tasks
  return !tasks.empty();
}

void Dispatcher::Route(const std::shared_ptr<const providers::Provider>& provider, ItemPtr item) {
  if (!item->sent.receipt.empty()) return RouteCheck(provider, std::move(item));
  const providers::Authenticator* auth = provider->auth();
  std::string scope = auth ? auth->Scope(item->push) : std::string();
  if (provider->max_batch() <= 1) {
    WithToken(provider, std::move(scope), {std::move(item)});
    return;
  }
  auto key = std::make_pair(item->target->integration_id, scope);
  PendingBatch& batch = batches_[key];
  batch.provider = provider;
  batch.items.push_back(std::move(item));
  if (batch.items.size() >= provider->max_batch()) {
    std::vector<ItemPtr> full = std::move(batch.items);
    batches_.erase(key);
    WithToken(provider, std::move(scope), std::move(full));
  }
}

void Dispatcher::FlushBatches() {
  auto batches = std::move(batches_);
  batches_.clear();
  for (auto& [key, batch] : batches) {
    WithToken(std::move(batch.provider), key.second, std::move(batch.items));
  }
  auto checks = std::move(checks_);
  checks_.clear();
  for (auto& [integration, batch] : checks) {
    WithToken(std::move(batch.provider), "", std::move(batch.items), /*checks=*/true);
  }
}

void Dispatcher::RouteCheck(const std::shared_ptr<const providers::Provider>& provider,
                            ItemPtr item) {
  const providers::ReceiptChecker* receipts = provider->receipts();
  if (receipts == nullptr) {  // cannot happen unless the provider changed its mind
    Finish(*item, {Verdict::kDelivered, "", "accepted; the provider confirms no receipts"});
    return;
  }
  const std::string& integration = item->target->integration_id;
  PendingBatch& batch = checks_[integration];
  batch.provider = provider;
  batch.items.push_back(std::move(item));
  if (batch.items.size() >= std::max<std::size_t>(1, receipts->max_receipts())) {
    std::vector<ItemPtr> full = std::move(batch.items);
    checks_.erase(integration);
    WithToken(provider, "", std::move(full), /*checks=*/true);
  }
}

void Dispatcher::TransmitChecks(const SentWithPtr& with, std::vector<ItemPtr> items) {
  std::vector<std::string> receipts;
  receipts.reserve(items.size());
  for (const ItemPtr& item : items) receipts.push_back(item->sent.receipt);
  Result<http::Request> request = with->provider->receipts()->BuildCheck(receipts, with->token);
  if (!request.ok()) {
    for (const ItemPtr& item : items) {
      Finish(*item, {Verdict::kPending, providers::ReasonOf(request.status(), "RECEIPT_CHECK"),
                     request.status().message()});
    }
    return;
  }
  Stamp(*request, *items.front(), /*withdrawable=*/false);
  client_.Send(std::move(*request), [this, with, items = std::move(items),
                                     receipts = std::move(receipts)](http::Outcome reply) mutable {
    if (reply.error == http::TransportError::kShutdown) {
      for (const ItemPtr& item : items) SettleUnsent(item, reply);
      return;
    }
    Post([this, with, items = std::move(items), receipts = std::move(receipts),
          reply = std::move(reply)] {
      std::vector<Outcome> outcomes = with->provider->receipts()->ReadCheck(reply, receipts);
      for (std::size_t i = 0; i < items.size(); ++i) {
        Outcome outcome = i < outcomes.size()
                              ? std::move(outcomes[i])
                              : Outcome{Verdict::kPending, "RECEIPT_MISSING", "no answer for it"};
        Settle(with, items[i], std::move(outcome));
      }
    });
  });
}

void Dispatcher::WithToken(std::shared_ptr<const providers::Provider> provider, std::string scope,
                           std::vector<ItemPtr> items, bool checks) {
  auto with = std::make_shared<SentWith>();
  with->provider = provider;
  with->scope = scope;
  if (provider->auth() == nullptr) {
    return checks ? TransmitChecks(with, std::move(items)) : Transmit(with, std::move(items));
  }
  tokens_->Get(std::move(provider), scope,
               [this, with, checks, items = std::move(items)](Result<providers::AuthToken> token) mutable {
                 if (!token.ok()) {
                   Outcome failed = AuthFailure(token.status());
                   // A receipt is asked again later; a send follows the retry schedule.
                   if (checks && failed.verdict == Verdict::kRetry) failed.verdict = Verdict::kPending;
                   for (const ItemPtr& item : items) Finish(*item, failed);
                   return;
                 }
                 with->token = std::move(*token);
                 if (checks) return TransmitChecks(with, std::move(items));
                 Transmit(with, std::move(items));
               });
}

void Dispatcher::Stamp(http::Request& request, const Item& item, bool withdrawable) {
  request.timeout = options_.request_timeout;
  request.concurrency_key = item.target->integration_id;
  if (withdrawable && !item.on_done) {
    request.withdrawal = this;
    request.withdrawal_tag =
        static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(item.target));
  }
}

void Dispatcher::Transmit(const SentWithPtr& with, std::vector<ItemPtr> items) {
  const providers::Provider& provider = *with->provider;
  if (provider.max_batch() > 1) return TransmitBatch(with, std::move(items));
  for (ItemPtr& item : items) {
    Result<http::Request> request = provider.BuildRequest(item->push, with->token);
    if (!request.ok()) {
      Finish(*item, {Verdict::kFailed, providers::ReasonOf(request.status(), "INVALID_MESSAGE"),
                     request.status().message()});
      continue;
    }
    Stamp(*request, *item, /*withdrawable=*/true);
    // Per-message replies are small: classified on the client's thread as they arrive.
    client_.Send(std::move(*request), [this, with, item = std::move(item)](http::Outcome reply) {
      if (SettleUnsent(item, reply)) return;
      Settle(with, item, with->provider->Classify(reply));
    });
  }
}

void Dispatcher::TransmitBatch(const SentWithPtr& with, std::vector<ItemPtr> items) {
  std::vector<const providers::PushMessage*> pushes;
  pushes.reserve(items.size());
  for (const ItemPtr& item : items) pushes.push_back(&item->push);
  providers::BatchPlan plan = with->provider->BuildBatch(pushes, with->token);
  for (auto& [index, outcome] : plan.refused) {
    if (index < items.size()) Finish(*items[index], outcome);
  }
  for (providers::BatchRequest& part : plan.requests) {
    std::vector<ItemPtr> carried;
    for (std::size_t index : part.messages) {
      if (index < items.size()) carried.push_back(items[index]);
    }
    if (carried.empty()) continue;
    // One request for many messages: never taken back for one of them.
    Stamp(part.request, *carried.front(), /*withdrawable=*/false);
    client_.Send(std::move(part.request), [this, with, carried](http::Outcome reply) mutable {
      if (reply.error == http::TransportError::kShutdown) {
        for (const ItemPtr& item : carried) SettleUnsent(item, reply);
        return;
      }
      // A large reply (a hundred tickets) is read on the dispatcher thread, not the client's.
      Post([this, with, carried = std::move(carried), reply = std::move(reply)] {
        const EpochMs read_at = NowMs();
        const EpochMs retry_at = BatchRetryAt(carried.front()->sent.attempts + 1);
        for (const ItemPtr& item : carried) {
          item->sent.batch_at = read_at;
          item->sent.batch_retry_at = retry_at;
        }
        std::vector<const providers::PushMessage*> messages;
        messages.reserve(carried.size());
        for (const ItemPtr& item : carried) messages.push_back(&item->push);
        std::vector<Outcome> outcomes = with->provider->ClassifyBatch(reply, messages);
        for (std::size_t i = 0; i < carried.size(); ++i) {
          Outcome outcome =
              i < outcomes.size()
                  ? std::move(outcomes[i])
                  : Outcome{Verdict::kRetry, "BATCH_REPLY_SHORT",
                            "the provider answered fewer messages than the request carried"};
          Settle(with, carried[i], std::move(outcome));
        }
      });
    });
  }
}

void Dispatcher::Settle(const SentWithPtr& with, ItemPtr item, Outcome outcome) {
  if ((outcome.verdict == Verdict::kAccepted || outcome.verdict == Verdict::kPending) &&
      !outcome.retry_after) {
    const providers::ReceiptChecker* receipts = with->provider->receipts();
    if (receipts) outcome.retry_after = receipts->first_check_after();
  }
  if (outcome.verdict == Verdict::kRefreshAuth) {
    if (with->provider->auth() != nullptr && !item->auth_refreshed) {
      item->auth_refreshed = true;
      // Resent once, at once, with a new token (the first reply on a stale token drops it; the
      // others find it replaced), by the integration's current Provider.
      Post([this, with, item = std::move(item)]() mutable {
        tokens_->Invalidate(*with->provider->auth(), with->scope, with->token);
        // A test send keeps the Provider it was built with (it is not the integration's cached one).
        std::shared_ptr<const providers::Provider> provider =
            item->on_done ? with->provider : ProviderOrFinish(*item);
        if (provider) Route(provider, std::move(item));
      });
      return;
    }
    outcome.verdict = Verdict::kFailedConfig;
    outcome.detail = "refused again with a new auth token: " + outcome.detail;
  }
  Finish(*item, outcome);
}

bool Dispatcher::SettleUnsent(const ItemPtr& item, const http::Outcome& reply) {
  if (reply.error == http::TransportError::kShutdown) {
    if (item->on_done) {
      item->on_done({Verdict::kRetry, "SHUTDOWN", reply.error_message});
      return true;
    }
    // Stopping: leave the message leased; the next start takes it back.
    std::lock_guard lock(mu_);
    --in_flight_;
    sending_.erase(item->sent.id);
    cv_.notify_all();
    return true;
  }
  if (reply.error == http::TransportError::kWithdrawn) {  // never sent: no attempt counted
    Outcome withdrawn{Verdict::kFailed, "", ""};
    {
      std::lock_guard lock(mu_);
      withdrawn.reason = item->target->withdrawn_reason;
      withdrawn.detail = item->target->withdrawn_text;
    }
    Finish(*item, withdrawn, /*attempted=*/false);
    return true;
  }
  return false;
}

void Dispatcher::Finish(const Item& item, const Outcome& outcome, bool attempted) {
  if (item.on_done) {
    item.on_done(outcome);
    return;
  }
  Complete(item.sent, outcome, attempted);
}

// ---- outside the queue -------------------------------------------------------------------------

Result<std::shared_ptr<const providers::Provider>> Dispatcher::BuildForTest(
    const std::string& environment_id, const std::string& integration_id) {
  ASSIGN_OR_RETURN(store::Integration integration,
                   store_.GetIntegration(environment_id, integration_id));
  const providers::ProviderSpec* spec = options_.find_provider(integration.provider_id);
  if (!spec) {
    return Status::InvalidArgument("provider " + integration.provider_id + " is not supported");
  }
  Result<std::unique_ptr<providers::Provider>> built = spec->Create(integration.credentials);
  if (!built.ok()) return built.take_status();
  return std::shared_ptr<const providers::Provider>(std::move(built.value()));
}

void Dispatcher::SendTest(std::string environment_id, std::string integration_id,
                          std::string device_token, std::string title, std::string body,
                          std::function<void(Result<Outcome>)> done) {
  Post([this, environment_id = std::move(environment_id),
        integration_id = std::move(integration_id), device_token = std::move(device_token),
        title = std::move(title), body = std::move(body), done = std::move(done)]() mutable {
    Result<std::shared_ptr<const providers::Provider>> provider =
        BuildForTest(environment_id, integration_id);
    if (!provider.ok()) return done(provider.take_status());
    auto item = std::make_shared<Item>();
    item->own_target = std::make_unique<Target>();
    item->own_target->environment_id = std::move(environment_id);
    item->own_target->integration_id = std::move(integration_id);
    item->target = item->own_target.get();
    item->push = {NewObjectId(), std::move(device_token), std::move(title), std::move(body), "{}",
                  Json::object()};
    item->sent.id = item->push.message_id;
    item->on_done = [done = std::move(done)](const Outcome& outcome) { done(outcome); };
    Route(*provider, std::move(item));
    FlushBatches();
  });
}

void Dispatcher::TestConnection(std::string environment_id, std::string integration_id,
                                std::function<void(Result<providers::ProbeResult>)> done) {
  Post([this, environment_id = std::move(environment_id),
        integration_id = std::move(integration_id), done = std::move(done)]() mutable {
    Result<std::shared_ptr<const providers::Provider>> built =
        BuildForTest(environment_id, integration_id);
    if (!built.ok()) return done(built.take_status());
    std::shared_ptr<const providers::Provider> provider = std::move(*built);
    auto probe = [this, provider, integration_id, done](const providers::AuthToken& token) {
      Result<std::optional<http::Request>> request = provider->BuildProbe(token);
      if (!request.ok()) {
        return done(providers::ProbeResult{false, "INVALID_CREDENTIALS",
                                           request.status().message()});
      }
      if (!request->has_value()) {
        return done(providers::ProbeResult{true, "", "credentials checked locally"});
      }
      http::Request probe_request = std::move(**request);
      probe_request.timeout = options_.request_timeout;
      probe_request.concurrency_key = integration_id;
      client_.Send(std::move(probe_request), [provider, done](http::Outcome reply) {
        done(provider->ReadProbe(reply));
      });
    };
    if (!provider->probe_uses_token()) return probe({});
    tokens_->Get(provider, "", [probe, done](Result<providers::AuthToken> token) {
      if (!token.ok()) {
        Outcome failed = AuthFailure(token.status());
        return done(providers::ProbeResult{false, failed.reason, failed.detail});
      }
      probe(*token);
    }, /*fresh=*/true);
  });
}

}  // namespace herald::delivery
