// The Standard Webhooks signature (webhook_sender.cc), against the specification's published
// example; the sender end to end is tested with the standardwebhooks and svix libraries
// (test/e2e/event_webhooks.test.mjs).
#include <gtest/gtest.h>

#include "delivery/webhook_sender.h"

namespace herald::delivery {
namespace {

TEST(WebhookSignatureTest, MatchesThePublishedExample) {
  Result<std::string> signature = SignWebhook("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                                              "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330,
                                              R"({"test": 2432232314})");
  ASSERT_TRUE(signature.ok());
  EXPECT_EQ(*signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
}

TEST(WebhookSignatureTest, CoversIdTimestampAndBody) {
  const std::string secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
  std::string base = *SignWebhook(secret, "evt_1", 1700000000, "{}");
  EXPECT_NE(*SignWebhook(secret, "evt_2", 1700000000, "{}"), base);
  EXPECT_NE(*SignWebhook(secret, "evt_1", 1700000001, "{}"), base);
  EXPECT_NE(*SignWebhook(secret, "evt_1", 1700000000, "{ }"), base);
  EXPECT_EQ(SignWebhook("whsec_***", "evt_1", 1, "{}").status().code(), Code::kInvalidArgument);
}

}  // namespace
}  // namespace herald::delivery
