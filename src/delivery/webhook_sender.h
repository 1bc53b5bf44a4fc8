// Event webhooks on their way out: leases due deliveries from the store's outbox, signs each the
// Standard Webhooks way (also under Svix's header names), posts it over the shared http::Client
// and records the attempt: delivered (2xx), retried with backoff for hours, or given up. A
// delivery waits while an earlier one of its message to the same endpoint is pending, so a
// receiver sees each message's events in order. One thread; the network runs on the client's.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_set>
#include <vector>

#include "delivery/retry_policy.h"
#include "http/client.h"
#include "store/store.h"

namespace herald::delivery {

struct WebhookSenderOptions {
  std::string owner;  // lease owner id (unique per process)
  std::size_t claim_batch = 64;
  std::size_t max_in_flight = 256;
  std::size_t per_endpoint_concurrency = 8;
  std::chrono::milliseconds lease{120000};
  std::chrono::milliseconds timeout{15000};
  // 15 attempts over about 8 hours (17 at most): a receiver down for a night still gets
  // everything.
  RetryPolicy retry{std::chrono::milliseconds(5000), std::chrono::hours(6), 15};
  std::chrono::milliseconds idle_poll{200};
};

// The Standard Webhooks signature of one attempt: "v1," + base64(HMAC-SHA256(key, "<id>.<ts>.
// <body>")), the key being the base64 after "whsec_" decoded. InvalidArgument for a bad secret.
Result<std::string> SignWebhook(std::string_view secret, std::string_view id,
                                std::int64_t timestamp_s, std::string_view body);

class WebhookSender {
 public:
  WebhookSender(store::Store& store, http::Client& client, WebhookSenderOptions options);
  ~WebhookSender();

  void Start();
  // Stops claiming and waits for the requests in the air: call it once the client is shutting
  // down (what it cuts short is not an attempt, and goes out after the next start).
  void Stop();

 private:
  void Loop();
  bool ClaimAndSend();
  bool RecordCompleted();
  void Send(store::WebhookDelivery delivery);

  store::Store& store_;
  http::Client& client_;
  const WebhookSenderOptions options_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::size_t in_flight_ = 0;
  std::vector<store::WebhookAttempt> completed_;
  std::unordered_set<std::string> limited_;  // endpoint keys given their concurrency (loop thread)
  std::mt19937_64 random_{std::random_device{}()};
  std::thread thread_;
};

}  // namespace herald::delivery
