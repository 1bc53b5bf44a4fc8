#include "delivery/webhook_sender.h"

#include <algorithm>
#include <string>
#include <utility>

#include "core/log.h"
#include "core/time.h"
#include "crypto/crypto.h"

namespace herald::delivery {
namespace {

constexpr std::string_view kSecretPrefix = "whsec_";

// The typed reason of a failed attempt.
std::string AttemptError(const http::Outcome& reply) {
  if (!reply.ok()) return http::TransportErrorName(reply.error);
  return "HTTP_" + std::to_string(reply.response.status);
}

}  // namespace

Result<std::string> SignWebhook(std::string_view secret, std::string_view id,
                                std::int64_t timestamp_s, std::string_view body) {
  if (secret.substr(0, kSecretPrefix.size()) == kSecretPrefix) {
    secret.remove_prefix(kSecretPrefix.size());
  }
  std::optional<std::string> key = crypto::Base64Decode(secret);
  if (!key || key->empty()) return Status::InvalidArgument("the webhook secret is not base64");
  std::string signed_content;
  signed_content.reserve(id.size() + body.size() + 24);
  signed_content.append(id).append(".").append(std::to_string(timestamp_s)).append(".");
  signed_content.append(body);
  return "v1," + crypto::Base64Encode(crypto::HmacSha256(*key, signed_content));
}

WebhookSender::WebhookSender(store::Store& store, http::Client& client,
                             WebhookSenderOptions options)
    : store_(store), client_(client), options_(std::move(options)) {}

WebhookSender::~WebhookSender() { Stop(); }

void WebhookSender::Start() {
  thread_ = std::thread([this] {
    SetThreadName("herald-webhooks");
    Loop();
  });
}

void WebhookSender::Stop() {
  if (!thread_.joinable()) return;
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_one();
  thread_.join();
  // Callbacks still to come refer to this object; the client answers them at once once it is
  // shutting down.
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return in_flight_ == 0; });
  lock.unlock();
  RecordCompleted();
}

void WebhookSender::Loop() {
  while (true) {
    bool progressed = RecordCompleted();
    {
      std::lock_guard lock(mu_);
      if (stopping_) return;
    }
    progressed = ClaimAndSend() || progressed;
    if (progressed) continue;
    // New events are found by polling (a cheap read): they wait a fraction of a second at most.
    auto wait = options_.idle_poll;
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, wait, [&] { return stopping_ || !completed_.empty(); });
  }
}

bool WebhookSender::ClaimAndSend() {
  std::size_t room = 0;
  {
    std::lock_guard lock(mu_);
    if (in_flight_ >= options_.max_in_flight) return false;
    room = std::min(options_.max_in_flight - in_flight_, options_.claim_batch);
  }
  EpochMs now = NowMs();
  Result<std::vector<store::WebhookDelivery>> claimed =
      store_.ClaimWebhookDeliveries(options_.owner, now, now + options_.lease.count(), room);
  if (!claimed.ok()) {
    spdlog::warn("claiming event webhooks failed: {}", claimed.status().message());
    return false;
  }
  if (claimed->empty()) return false;
  {
    std::lock_guard lock(mu_);
    in_flight_ += claimed->size();
  }
  for (store::WebhookDelivery& delivery : *claimed) Send(std::move(delivery));
  return true;
}

void WebhookSender::Send(store::WebhookDelivery delivery) {
  const std::int64_t timestamp = NowMs() / 1000;
  const std::string message_id = delivery.event_id;
  Result<std::string> signature =
      SignWebhook(delivery.secret, message_id, timestamp, delivery.body);
  const std::int64_t seq = delivery.seq;
  const int attempts_done = delivery.attempts + 1;
  auto finish = [this, seq, attempts_done](bool delivered, int status, std::string error,
                                           bool retryable) {
    store::WebhookAttempt attempt{seq, delivered, 0, status, std::move(error)};
    std::lock_guard lock(mu_);
    if (stopping_ && attempt.error == http::TransportErrorName(http::TransportError::kShutdown)) {
      // Not an attempt: the lease is freed on the next start and it goes out then.
      --in_flight_;
      cv_.notify_all();
      return;
    }
    if (!delivered && retryable) {
      double draw = std::uniform_real_distribution<double>(0.0, 1.0)(random_);
      if (auto delay = options_.retry.NextDelay(attempts_done, std::nullopt, draw)) {
        attempt.retry_at = NowMs() + std::max<std::int64_t>(delay->count(), 1);
      }
    }
    completed_.push_back(std::move(attempt));
    --in_flight_;
    cv_.notify_all();
  };
  if (!signature.ok()) {
    finish(false, 0, "BAD_SECRET", false);
    return;
  }
  http::Request request;
  request.method = "POST";
  request.url = std::move(delivery.url);
  request.timeout = options_.timeout;
  request.concurrency_key = "webhook:" + delivery.endpoint_id;
  const std::string ts = std::to_string(timestamp);
  request.headers = {{"Content-Type", "application/json"},
                     {"webhook-id", message_id},
                     {"webhook-timestamp", ts},
                     {"webhook-signature", *signature},
                     {"svix-id", message_id},
                     {"svix-timestamp", ts},
                     {"svix-signature", *signature}};
  request.body = std::move(delivery.body);
  // Once per endpoint: each call queues an update for the client's I/O thread and wakes it.
  if (limited_.insert(request.concurrency_key).second) {
    client_.SetConcurrency(request.concurrency_key, options_.per_endpoint_concurrency);
  }
  client_.Send(std::move(request), [finish](http::Outcome reply) {
    if (reply.ok() && reply.response.status >= 200 && reply.response.status < 300) {
      finish(true, reply.response.status, "", false);
      return;
    }
    // A target the private-address guard refuses stays refused: no point in retrying.
    const bool retryable = reply.error != http::TransportError::kForbiddenTarget &&
                           reply.error != http::TransportError::kBadRequest;
    finish(false, reply.ok() ? reply.response.status : 0, AttemptError(reply), retryable);
  });
}

bool WebhookSender::RecordCompleted() {
  std::vector<store::WebhookAttempt> batch;
  {
    std::lock_guard lock(mu_);
    batch.swap(completed_);
  }
  if (batch.empty()) return false;
  if (Status st = store_.RecordWebhookAttempts(options_.owner, batch); !st.ok()) {
    // The leases run out and the deliveries are attempted again (at least once).
    spdlog::warn("recording event webhook attempts failed: {}", st.message());
  }
  return true;
}

}  // namespace herald::delivery
