#include "providers/push_webhook/push_webhook_provider.h"

#include <gtest/gtest.h>

#include "crypto/crypto.h"
#include "providers/provider_test_util.h"
#include "providers/registry.h"

namespace herald::providers {
namespace {

using test::Failure;
using test::HeaderOf;
using test::Reply;

Json Credentials() {
  return {{"webhookUrl", "https://hooks.example.com/push?x=1"}, {"secretKey", "sekret"}};
}

PushMessage Message() {
  PushMessage m;
  m.message_id = "m1";
  m.device_token = "tok-1";
  m.title = "Hello Ann";
  m.content = "Body \xc3\xbc";
  m.overrides = {{"sound", "ding"}};
  m.payload_json = R"({"orderId":7,"subscriber":{"subscriberId":"a"},"step":{"digest":false}})";
  return m;
}

TEST(PushWebhookProviderTest, BodyHasNovusKeyOrderAndSignatureIsHmacOfExactBytes) {
  auto provider = NewPushWebhookProvider(Credentials());
  ASSERT_TRUE(provider.ok());
  auto request = (*provider)->BuildRequest(Message(), {});
  ASSERT_TRUE(request.ok());
  EXPECT_EQ(request->method, "POST");
  EXPECT_EQ(request->url, "https://hooks.example.com/push?x=1");
  EXPECT_EQ(request->body,
            "{\"target\":[\"tok-1\"],\"title\":\"Hello Ann\",\"content\":\"Body \xc3\xbc\","
            "\"overrides\":{\"sound\":\"ding\"},\"payload\":{\"orderId\":7,\"subscriber\":"
            "{\"subscriberId\":\"a\"},\"step\":{\"digest\":false}},\"messageId\":\"m1\"}");
  std::string signature;
  for (const auto& [name, value] : request->headers) {
    if (name == "X-Novu-Signature") signature = value;
  }
  EXPECT_EQ(signature, crypto::Hex(crypto::HmacSha256("sekret", request->body)));
  EXPECT_EQ(signature.size(), 64u);

  PushMessage bare = Message();
  bare.overrides = Json();  // no overrides: an empty object, as Novu sends
  bare.title = "Say \"hi\"\n";
  auto plain = (*provider)->BuildRequest(bare, {});
  ASSERT_TRUE(plain.ok());
  EXPECT_NE(plain->body.find(R"("title":"Say \"hi\"\n","content")"), std::string::npos);
  EXPECT_NE(plain->body.find(R"("overrides":{},"payload")"), std::string::npos);
}

TEST(PushWebhookProviderTest, BaseUrlReplacesTheOrigin) {
  Json credentials = Credentials();
  credentials["baseUrl"] = "http://127.0.0.1:9000/";
  auto provider = NewPushWebhookProvider(credentials);
  ASSERT_TRUE(provider.ok());
  EXPECT_EQ((*provider)->BuildRequest(Message(), {})->url, "http://127.0.0.1:9000/push?x=1");
}

TEST(PushWebhookProviderTest, SpecCreatesIt) {
  const ProviderSpec* spec = FindProvider("push-webhook");
  ASSERT_NE(spec, nullptr);
  EXPECT_TRUE(spec->Create(Credentials()).ok());
}

TEST(PushWebhookProviderTest, ClassifiesReplies) {
  auto provider = NewPushWebhookProvider(Credentials());
  ASSERT_TRUE(provider.ok());
  const Provider& p = **provider;
  Outcome ok = p.Classify(Reply(200, "{\"id\":\"abc\"}"));
  EXPECT_EQ(ok.verdict, Verdict::kDelivered);
  EXPECT_EQ(ok.provider_message_id, "abc");
  EXPECT_EQ(p.Classify(Reply(204)).verdict, Verdict::kDelivered);
  EXPECT_EQ(p.Classify(Reply(200, "not json")).provider_message_id, "");
  // A 2xx whose body was too large to keep was still taken: delivered, never sent again.
  http::Outcome huge = Reply(200, "{\"id\":\"cut-short");
  huge.response.body_truncated = true;
  EXPECT_EQ(p.Classify(huge).verdict, Verdict::kDelivered);
  EXPECT_EQ(p.Classify(huge).provider_message_id, "");
  huge.response.status = 502;
  EXPECT_EQ(p.Classify(huge).verdict, Verdict::kRetry);
  Outcome busy = p.Classify(Reply(429, "", {{"retry-after", "3"}}));
  EXPECT_EQ(busy.verdict, Verdict::kRetry);
  ASSERT_TRUE(busy.retry_after.has_value());
  EXPECT_EQ(busy.retry_after->count(), 3000);
  EXPECT_EQ(p.Classify(Reply(500)).verdict, Verdict::kRetry);
  EXPECT_EQ(p.Classify(Reply(503)).reason, "HTTP_503");
  EXPECT_EQ(p.Classify(Reply(408)).verdict, Verdict::kRetry);
  EXPECT_EQ(p.Classify(Reply(400)).verdict, Verdict::kFailed);
  EXPECT_EQ(p.Classify(Reply(404)).verdict, Verdict::kFailed);
  http::Outcome timeout;
  timeout.error = http::TransportError::kTimeout;
  EXPECT_EQ(p.Classify(timeout).verdict, Verdict::kRetry);
  EXPECT_EQ(p.Classify(timeout).reason, "TIMEOUT");
  http::Outcome reset;
  reset.error = http::TransportError::kConnect;
  EXPECT_EQ(p.Classify(reset).verdict, Verdict::kRetry);
  http::Outcome forbidden;
  forbidden.error = http::TransportError::kForbiddenTarget;
  EXPECT_EQ(p.Classify(forbidden).verdict, Verdict::kFailedConfig);
}

}  // namespace
}  // namespace herald::providers
