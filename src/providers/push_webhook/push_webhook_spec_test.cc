#include "providers/push_webhook/push_webhook_spec.h"

#include <gtest/gtest.h>

#include "providers/spec_test_util.h"

namespace herald::providers {
namespace {

Status ValidateWith(const char* key, Json value) {
  Json credentials = test::ValidCredentials("push-webhook");
  credentials[key] = std::move(value);
  return test::Validate("push-webhook", credentials);
}

TEST(PushWebhookSpecTest, FactoryBuildsTheSpec) {
  EXPECT_EQ(NewPushWebhookSpec()->id(), "push-webhook");
}

TEST(PushWebhookSpecTest, AcceptsValidCredentials) {
  EXPECT_TRUE(test::Validate("push-webhook", test::ValidCredentials("push-webhook")).ok());
  // Private targets are refused when connecting, not here (tests point it at loopback).
  EXPECT_TRUE(ValidateWith("webhookUrl", "http://127.0.0.1:8080/hook").ok());
  EXPECT_TRUE(ValidateWith("webhookUrl", "https://user:pass@hooks.example.com/").ok());
}

TEST(PushWebhookSpecTest, RejectsBadWebhookUrl) {
  for (const char* bad : {"hooks.example.com/push", "ftp://hooks.example.com/", "https://",
                          "https://hooks example.com/"}) {
    EXPECT_EQ(ValidateWith("webhookUrl", bad).message(),
              "credentials.webhookUrl is not an absolute http(s) URL")
        << bad;
  }
  EXPECT_EQ(ValidateWith("webhookUrl", "https://hooks.example.com/#x").message(),
            "credentials.webhookUrl must not have a fragment");
}

TEST(PushWebhookSpecTest, MaskHidesTheHmacKey) {
  Json credentials = test::ValidCredentials("push-webhook");
  credentials["secretKey"] = "whsec_0123456789abcdef";
  Json masked = MaskCredentials(*FindProvider("push-webhook"), credentials);
  EXPECT_EQ(masked["secretKey"], "****cdef");
  EXPECT_EQ(masked["webhookUrl"], credentials["webhookUrl"]);
  EXPECT_TRUE(IsMaskOf("****cdef", "whsec_0123456789abcdef"));
}

}  // namespace
}  // namespace herald::providers
