#include "delivery/dispatcher.h"

#include <algorithm>
#include <cstdint>

#include "core/log.h"
#include "core/time.h"

namespace herald::delivery {
namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kIdleTick = std::chrono::milliseconds(1000);
// Floor of an idle wait, so that a due message that cannot be claimed never makes a busy loop.
constexpr auto kMinWait = std::chrono::milliseconds(5);
constexpr auto kHousekeepingEvery = std::chrono::minutes(10);
constexpr auto kMinSweepGap = std::chrono::milliseconds(250);
// After a claim pass found nothing due, the next one waits this long while the dispatcher is
// busy planning (new triggers bring their messages leased; only retries and unleased fan-out
// messages need a claim, and a few milliseconds more do not matter to them).
constexpr auto kClaimIdleGap = std::chrono::milliseconds(5);
// After a failed attempt to record outcomes, the next one waits this long.
constexpr auto kRecordRetryDelay = std::chrono::milliseconds(200);

}  // namespace

Dispatcher::Dispatcher(store::Store& store, http::Client& client, store::MessagePlanner planner,
                       DispatcherOptions options)
    : store_(store), client_(client), planner_(std::move(planner)), options_(std::move(options)) {
  tokens_ = std::make_unique<TokenBroker>(
      client_, [this](std::function<void()> task) { Post(std::move(task)); },
      options_.request_timeout);
}

Dispatcher::~Dispatcher() { Stop(std::chrono::milliseconds(0)); }

void Dispatcher::Start() {
  if (Status st = store_.ReleaseAllLeases(); !st.ok()) {
    spdlog::error("cannot take back leases: {}", st.message());
  }
  thread_ = std::thread([this] {
    SetThreadName("herald-dispatch");
    LowerThreadPriority(options_.thread_nice);
    Loop();
  });
}

void Dispatcher::Wake() {
  {
    std::lock_guard lock(mu_);
    wake_ = true;
  }
  cv_.notify_one();
}

void Dispatcher::Stop(std::chrono::milliseconds grace) {
  if (!thread_.joinable()) return;
  {
    std::unique_lock lock(mu_);
    draining_ = true;  // no new claims
    cv_.wait_for(lock, grace, [&] { return in_flight_ == 0; });
  }
  // Whatever is still in the air is abandoned: its lease is released on the next start.
  client_.Shutdown(std::chrono::milliseconds(0));
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_one();
  thread_.join();
  FlushCompletions();
  // Outcomes being recorded call back into this object: wait for them (bounded by the store).
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return recording_ == 0; });
}

void Dispatcher::Loop() {
  auto last_housekeeping = Clock::now();
  auto next_sweep = Clock::now();
  while (true) {
    bool progressed = RunPosted();
    progressed = FlushCompletions() || progressed;
    bool drain = false;
    {
      std::lock_guard lock(mu_);
      if (stopping_) return;
      drain = draining_;
    }
    if (!drain) {
      bool fanouts = false;
      {
        // Cleared before the pass: a Wake(true) arriving meanwhile sets it again.
        std::lock_guard lock(mu_);
        fanouts = fanouts_pending_;
        fanouts_pending_ = false;
      }
      if (fanouts) {
        Result<std::size_t> remaining = store_.RunFanoutBatch(options_.fanout_batch, planner_);
        if (!remaining.ok()) {
          spdlog::error("fan-out failed: {}", remaining.status().message());  // next idle tick
        } else {
          claim_again_at_ = {};  // the batch wrote unleased messages: claim them now
          if (*remaining > 0) {
            std::lock_guard lock(mu_);
            fanouts_pending_ = true;
            progressed = true;
          }
        }
      }
      // Due work first, in each pass: retries, and on start what a crashed process had in
      // flight, are older than what waits in the inbox, and go out ahead of it.
      progressed = ClaimAndSend() || progressed;
      progressed = PlanQueued() || progressed;
      if (Clock::now() - last_housekeeping > kHousekeepingEvery) {
        last_housekeeping = Clock::now();
        if (Status st = store_.PurgeExpired(NowMs()); !st.ok()) {
          spdlog::warn("purging expired records failed: {}", st.message());  // next pass
        }
      }
      if (Clock::now() >= next_sweep) {
        // A few sweeps per inactivity period, at least every housekeeping interval.
        next_sweep = Clock::now() + std::clamp<std::chrono::milliseconds>(
                                        options_.token_inactivity / 4, kMinSweepGap,
                                        std::chrono::duration_cast<std::chrono::milliseconds>(
                                            kHousekeepingEvery));
        EpochMs now = NowMs();
        Result<std::size_t> expired =
            store_.ExpireInactiveTokens(now - options_.token_inactivity.count(), now);
        if (!expired.ok()) {
          spdlog::warn("expiring inactive tokens failed: {}", expired.status().message());
        } else if (*expired > 0) {
          spdlog::info("expired inactive device tokens count={}", *expired);
        }
      }
    }
    if (progressed) continue;

    // Idle: sleep until woken, a completion arrives, or the next retry falls due (only worth
    // waiting for when a claim could take it: not while draining or at the in-flight cap).
    auto wait = kIdleTick;
    if (!drain && Room() > 0) {
      if (Result<std::optional<EpochMs>> due = store_.NextDueAt(); due.ok() && due->has_value()) {
        wait = std::clamp(std::chrono::milliseconds(**due - NowMs()), kMinWait, wait);
      }
    }
    std::unique_lock lock(mu_);
    bool backing_off = Clock::now() < record_again_at_;
    if (backing_off) {
      wait = std::clamp(
          std::chrono::duration_cast<std::chrono::milliseconds>(record_again_at_ - Clock::now()),
          kMinWait, wait);
    }
    bool signalled = cv_.wait_for(lock, wait, [&] {
      return wake_ || stopping_ || (!completions_.empty() && !backing_off) || fanouts_pending_ ||
             !posted_.empty();
    });
    // A quiet tick re-checks fan-outs (a cheap read when there are none), e.g. after an error.
    if (!signalled && wait == kIdleTick) fanouts_pending_ = true;
    wake_ = false;
  }
}

bool Dispatcher::FlushCompletions() {
  auto batch = std::make_shared<std::vector<store::MessageOutcome>>();
  {
    std::lock_guard lock(mu_);
    if (completions_.empty() || Clock::now() < record_again_at_) return false;
    batch->swap(completions_);
    ++recording_;
  }
  // Recorded in the background: the dispatcher goes on planning and sending meanwhile. A message
  // stays in flight (counted, and never sent again by this process) until its outcome is durable.
  store_.CompleteMessages(options_.owner, *batch, [this, batch](Status st) {
    std::lock_guard lock(mu_);
    --recording_;
    if (!st.ok()) {
      // Kept for the next pass; if the process dies first, the messages are still leased
      // pending and are sent again after the restart (at-least-once).
      spdlog::error("cannot record {} outcomes: {}", batch->size(), st.message());
      completions_.insert(completions_.begin(), std::make_move_iterator(batch->begin()),
                          std::make_move_iterator(batch->end()));
      record_again_at_ = Clock::now() + kRecordRetryDelay;  // not in a tight loop
    } else {
      in_flight_ -= batch->size();
      for (const store::MessageOutcome& outcome : *batch) sending_.erase(outcome.message_id);
      wake_ = true;  // room for more
    }
    cv_.notify_all();
  });
  return true;
}

std::size_t Dispatcher::Room() {
  std::lock_guard lock(mu_);
  return options_.max_in_flight > in_flight_ ? options_.max_in_flight - in_flight_ : 0;
}

bool Dispatcher::ClaimAndSend() {
  std::size_t room = std::min(Room(), options_.claim_batch);
  if (room == 0 || Clock::now() < claim_again_at_) return false;
  EpochMs now = NowMs();
  Result<std::vector<store::Message>> claimed =
      store_.ClaimDueMessages(options_.owner, now, now + options_.lease.count(), room);
  if (!claimed.ok()) {
    spdlog::error("claim failed: {}", claimed.status().message());
    return false;
  }
  if (claimed->empty()) {
    claim_again_at_ = Clock::now() + kClaimIdleGap;
    return false;
  }
  SendAll(std::move(*claimed));
  return true;
}

bool Dispatcher::PlanQueued() {
  if (!decoder_) return false;
  std::size_t room = Room();
  if (room == 0) return false;
  Result<std::vector<store::QueuedTrigger>> queued = store_.ReadQueuedTriggers(options_.plan_batch);
  if (!queued.ok()) {
    spdlog::error("cannot read queued triggers: {}", queued.status().message());
    return false;
  }
  std::vector<store::PlannedTrigger> items;
  items.reserve(queued->size());
  for (const store::QueuedTrigger& q : *queued) {
    store::PlannedTrigger item;
    item.seq = q.seq;
    item.environment_id = q.environment_id;
    item.transaction_id = q.transaction_id;
    Result<store::TriggerRequest> decoded = Status::Internal("not decoded");
    try {
      decoded = decoder_(q);
    } catch (const std::exception& e) {  // a bug: this trigger can never be decoded
      decoded = Status::InvalidArgument(std::string("cannot decode: ") + e.what());
    }
    if (decoded.ok()) {
      item.request = std::move(decoded.value());
    } else if (store::IsPermanentTriggerError(decoded.status().code())) {
      item.error = decoded.status().message();  // dropped by the store, its reason logged
    } else {
      // Could not be read now (the database was busy, say): it and what follows wait for the
      // next pass, in order.
      spdlog::warn("trigger decoding deferred transaction_id={} reason=\"{}\"", q.transaction_id,
                   decoded.status().message());
      break;
    }
    items.push_back(std::move(item));
  }
  if (items.empty()) return false;
  EpochMs now = NowMs();
  Result<store::PlanReceipt> receipt = store_.PlanTriggers(
      std::move(items), planner_, options_.owner, now + options_.lease.count(), room);
  if (!receipt.ok()) {  // nothing was written: the rows are read again on the next pass
    spdlog::error("cannot plan {} triggers: {}", queued->size(), receipt.status().message());
    return false;
  }
  if (receipt->fanouts > 0) {
    std::lock_guard lock(mu_);
    fanouts_pending_ = true;
  }
  SendAll(std::move(receipt->leased));
  return true;
}

void Dispatcher::SendAll(std::vector<store::Message> messages) {
  // A lease can only outlive its send if a request waited longer than the lease; never send a
  // message twice from this process.
  std::vector<ItemPtr> fresh;
  fresh.reserve(messages.size());
  {
    std::lock_guard lock(mu_);
    for (store::Message& message : messages) {
      auto [it, inserted] = sending_.try_emplace(message.id);
      if (!inserted) continue;
      // Moved, not copied: the send reads them from here (a node's address is stable until its
      // outcome is recorded).
      Target& target = it->second;
      target.environment_id = std::move(message.environment_id);
      target.transaction_id = std::move(message.transaction_id);
      target.subscriber_id = std::move(message.subscriber_id);
      target.integration_id = std::move(message.integration_id);
      auto item = std::make_shared<Item>();
      item->sent = {message.id, std::move(message.channel_pk), std::move(message.token_identity),
                    message.attempts, std::move(message.receipt)};
      item->push = {std::move(message.id),           std::move(message.device_token),
                    std::move(message.title),        std::move(message.content),
                    std::move(message.payload_json), std::move(message.overrides)};
      item->target = &target;
      item->provider_id = std::move(message.provider_id);
      fresh.push_back(std::move(item));
    }
    in_flight_ += fresh.size();
  }
  for (ItemPtr& item : fresh) {
    if (std::shared_ptr<const providers::Provider> provider = ProviderOrFinish(*item)) {
      Route(provider, std::move(item));
    }
  }
  FlushBatches();
}

std::shared_ptr<const providers::Provider> Dispatcher::ProviderOrFinish(Item& item) {
  const Target& target = *item.target;
  const CachedProvider& cached =
      ProviderFor(target.environment_id, target.integration_id, item.provider_id);
  if (!cached.provider) {
    Finish(item, {cached.transient ? providers::Verdict::kRetry : providers::Verdict::kFailedConfig,
                  cached.error_id, cached.error_text});
    return nullptr;
  }
  item.sent.remove_dead_tokens = cached.remove_dead_tokens;
  return cached.provider;
}

void Dispatcher::Withdraw(store::UnwantedSends what) {
  constexpr std::size_t kMaxRemembered = 1000;
  constexpr auto kRemembered = std::chrono::minutes(10);
  std::lock_guard lock(mu_);
  auto now = Clock::now();
  std::erase_if(unwanted_, [&](const Unwanted& u) { return u.until < now; });
  if (unwanted_.size() >= kMaxRemembered) unwanted_.erase(unwanted_.begin());
  unwanted_.push_back({std::move(what), now + kRemembered});
  any_unwanted_.store(true, std::memory_order_release);
}

bool Dispatcher::Matches(const store::UnwantedSends& what, const Target& target) {
  return what.environment_id == target.environment_id &&
         (!what.transaction_id || *what.transaction_id == target.transaction_id) &&
         (!what.subscriber_id || *what.subscriber_id == target.subscriber_id) &&
         (!what.integration_id || *what.integration_id == target.integration_id);
}

bool Dispatcher::Withdrawn(std::uint64_t tag) const {
  if (!any_unwanted_.load(std::memory_order_acquire)) return false;
  auto& target = *reinterpret_cast<Target*>(static_cast<std::uintptr_t>(tag));
  std::lock_guard lock(mu_);
  for (const Unwanted& u : unwanted_) {
    if (u.until < Clock::now() || !Matches(u.what, target)) continue;
    target.withdrawn_reason = u.what.reason;
    target.withdrawn_text = u.what.text;
    return true;
  }
  return false;
}

void Dispatcher::ForgetIntegration(const std::string& integration_id) {
  std::lock_guard lock(mu_);
  forgotten_integrations_.push_back(integration_id);
  any_forgotten_.store(true, std::memory_order_release);
}

void Dispatcher::DropForgottenIntegrations() {
  std::vector<std::string> integrations;
  {
    std::lock_guard lock(mu_);
    integrations.swap(forgotten_integrations_);
    any_forgotten_.store(false, std::memory_order_relaxed);
  }
  for (const std::string& id : integrations) providers_.erase(id);
}

const Dispatcher::CachedProvider& Dispatcher::ProviderFor(const std::string& environment_id,
                                                          const std::string& integration_id,
                                                          const std::string& provider_id) {
  if (any_forgotten_.load(std::memory_order_acquire)) DropForgottenIntegrations();
  auto now = Clock::now();
  auto it = providers_.find(integration_id);
  if (it != providers_.end() && now - it->second.loaded < options_.integration_ttl) {
    return it->second;
  }
  CachedProvider entry;
  entry.loaded = now;
  Result<store::Integration> integration = store_.GetIntegration(environment_id, integration_id);
  const providers::ProviderSpec* spec = options_.find_provider(provider_id);
  if (!integration.ok()) {
    bool missing = integration.status().code() == Code::kNotFound;
    entry.error_id = missing ? "integration_not_found" : "integration_unavailable";
    entry.error_text = integration.status().message();
    entry.transient = !missing;
    entry.loaded = now - options_.integration_ttl;  // do not cache a failure
  } else if (!integration->active) {
    entry.error_id = "integration_inactive";
    entry.error_text = "integration " + integration->identifier + " is not active";
  } else if (!spec) {
    entry.error_id = "unknown_provider";
    entry.error_text = "provider " + provider_id + " is not supported";
  } else {
    const Json& configurations = integration->configurations;
    if (auto it = configurations.find("removeDeadTokens");
        it != configurations.end() && it->is_boolean()) {
      entry.remove_dead_tokens = it->get<bool>();
    }
    Result<std::unique_ptr<providers::Provider>> built = spec->Create(integration->credentials);
    if (built.ok()) {
      entry.provider = std::shared_ptr<const providers::Provider>(std::move(built.value()));
    } else {
      entry.error_id = "integration_misconfigured";
      entry.error_text = built.status().message();
    }
  }
  return providers_[integration_id] = std::move(entry);
}

// The key of `touched_` for the token of `message` (which has a channel).
std::string Dispatcher::TokenKey(const Sent& message) {
  return *message.channel_pk + '\n' + message.token_identity;
}

// A token's last-active has second precision: one that keeps receiving is written once a second.
bool Dispatcher::TouchToken(const Sent& message, EpochMs at) {
  constexpr std::size_t kMaxRemembered = 100000;
  if (!message.channel_pk) return false;
  std::string key = TokenKey(message);
  std::lock_guard lock(mu_);
  if (touched_.size() >= kMaxRemembered) touched_.clear();
  auto [it, inserted] = touched_.try_emplace(std::move(key), at);
  if (!inserted && at - it->second < 1000) return false;
  it->second = at;
  return true;
}

EpochMs Dispatcher::BatchRetryAt(int attempts) {
  std::lock_guard lock(mu_);
  double draw = std::uniform_real_distribution<double>(0.0, 1.0)(random_);
  std::optional<std::chrono::milliseconds> delay =
      options_.retry.NextDelay(attempts, std::nullopt, draw);
  return delay ? NowMs() + delay->count() : 0;
}

// Runs on the dispatcher thread or the HTTP client's I/O thread.
void Dispatcher::Complete(const Sent& message, const providers::Outcome& outcome, bool attempted) {
  using providers::Verdict;
  store::MessageOutcome done;
  done.message_id = message.id;
  done.attempted = attempted;
  // A send taken back says nothing about its token.
  if (attempted) done.channel_pk = message.channel_pk;
  done.token_identity = message.token_identity;
  done.at = NowMs();
  done.error_id = outcome.reason;
  done.error_text = outcome.detail;
  int attempts = message.attempts + 1;
  switch (outcome.verdict) {
    case Verdict::kDelivered:
      done.kind = store::MessageOutcome::Kind::kDelivered;
      done.confirmed = !message.receipt.empty();  // a receipt said so
      done.touch_token = TouchToken(message, done.at);
      if (!outcome.provider_message_id.empty()) {
        done.provider_response_id = outcome.provider_message_id;
      }
      break;
    case Verdict::kAccepted:
    case Verdict::kPending: {
      // Confirmed later (or asked again later), as long as attempts are left: a receipt that
      // never comes leaves the message delivered as far as anyone can tell.
      const bool accepted = outcome.verdict == Verdict::kAccepted;
      const std::string& receipt = accepted ? outcome.receipt : message.receipt;
      const auto after = outcome.retry_after.value_or(std::chrono::minutes(15));
      if (attempts >= options_.retry.max_attempts || receipt.empty()) {
        done.kind = store::MessageOutcome::Kind::kDelivered;
        done.error_text = receipt.empty() ? "" : "no receipt after " + std::to_string(attempts) +
                                                     " checks";
        break;
      }
      done.kind = store::MessageOutcome::Kind::kAwaitingReceipt;
      done.accepted = accepted;
      done.receipt = receipt;
      done.retry_at = done.at + after.count();
      if (accepted && !outcome.provider_message_id.empty()) {
        done.provider_response_id = outcome.provider_message_id;
      }
      break;
    }
    case Verdict::kRetry:
    case Verdict::kRefreshAuth: {
      std::optional<std::chrono::milliseconds> delay;
      {
        std::lock_guard lock(mu_);
        double draw = std::uniform_real_distribution<double>(0.0, 1.0)(random_);
        delay = options_.retry.NextDelay(attempts, outcome.retry_after, draw);
      }
      if (delay) {
        done.kind = store::MessageOutcome::Kind::kRetry;
        done.retry_at = done.at + delay->count();
        if (message.batch_at != 0) {
          if (outcome.retry_after) {
            done.retry_at = message.batch_at + delay->count();
          } else if (message.batch_retry_at != 0) {
            done.retry_at = message.batch_retry_at;
          }
        }
      } else {
        done.kind = store::MessageOutcome::Kind::kFailed;
        done.error_text =
            "gave up after " + std::to_string(attempts) + " attempts; last: " + outcome.detail;
      }
      break;
    }
    case Verdict::kFailed:
    case Verdict::kFailedConfig:
      done.kind = store::MessageOutcome::Kind::kFailed;
      break;
    case Verdict::kFailedRemoveToken:
      done.kind = store::MessageOutcome::Kind::kFailed;
      done.token_invalid = true;
      if (message.remove_dead_tokens) {
        done.retire_token =
            outcome.unsubscribed ? store::TokenStatus::kUnsubscribed : store::TokenStatus::kExpired;
        done.token_invalid_since = outcome.token_invalid_since;
      }
      break;
  }
  {
    std::lock_guard lock(mu_);
    // A failure writes the token's last failure; its next delivery must clear it.
    if (done.kind != store::MessageOutcome::Kind::kDelivered && message.channel_pk) {
      touched_.erase(TokenKey(message));
    }
    completions_.push_back(std::move(done));
  }
  cv_.notify_all();
}

}  // namespace herald::delivery
