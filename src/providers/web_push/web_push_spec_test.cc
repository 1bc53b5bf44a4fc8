#include "providers/web_push/web_push_spec.h"

#include <gtest/gtest.h>

#include <string>

#include "crypto/crypto.h"
#include "providers/spec_test_util.h"

namespace herald::providers {
namespace {

using crypto::Base64UrlEncode;

const ProviderSpec& Spec() { return *FindProvider("web-push"); }

// ---- credentials ------------------------------------------------------------------------------

Status ValidateWith(const char* key, Json value) {
  Json credentials = test::ValidCredentials("web-push");
  credentials[key] = std::move(value);
  return test::Validate("web-push", credentials);
}

TEST(WebPushCredentialsTest, FactoryBuildsTheSpec) {
  EXPECT_EQ(NewWebPushSpec()->id(), "web-push");
}

TEST(WebPushCredentialsTest, AcceptsAValidVapidKeyPair) {
  EXPECT_TRUE(test::Validate("web-push", test::ValidCredentials("web-push")).ok());
  EXPECT_TRUE(ValidateWith("from", "https://example.com/contact").ok());
  EXPECT_TRUE(ValidateWith("from", "MAILTO:ops@example.com").ok());
}

TEST(WebPushCredentialsTest, RenamesVapidAliasesToCanonicalKeys) {
  Json canonical = test::ValidCredentials("web-push");
  Json credentials = {{"vapidPublicKey", canonical["apiKey"]},
                      {"vapidPrivateKey", canonical["secretKey"]},
                      {"subject", canonical["from"]},
                      {"extra", 1}};
  ASSERT_TRUE(Spec().ValidateCredentials(credentials).ok());
  canonical["extra"] = 1;
  EXPECT_EQ(credentials, canonical);
}

TEST(WebPushCredentialsTest, AliasAgreeingWithCanonicalKeyIsDropped) {
  Json credentials = test::ValidCredentials("web-push");
  credentials["vapidPublicKey"] = credentials["apiKey"];
  credentials["subject"] = nullptr;
  ASSERT_TRUE(Spec().ValidateCredentials(credentials).ok());
  EXPECT_EQ(credentials, test::ValidCredentials("web-push"));
}

TEST(WebPushCredentialsTest, AliasConflictingWithCanonicalKeyIsAnError) {
  EXPECT_EQ(ValidateWith("vapidPublicKey", "BOther").message(),
            "credentials.vapidPublicKey conflicts with credentials.apiKey");
  EXPECT_EQ(ValidateWith("subject", "mailto:other@example.com").message(),
            "credentials.subject conflicts with credentials.from");
  EXPECT_EQ(ValidateWith("vapidPrivateKey", 5).message(),
            "credentials.vapidPrivateKey must be a string");
}

TEST(WebPushCredentialsTest, PublicKeyMustBeAnUncompressedP256Point) {
  const char* kMessage =
      "credentials.apiKey must be a VAPID public key (base64url of a 65-byte P-256 point)";
  std::string point = crypto::GenerateP256KeyPair().second;
  std::string off_curve =
      std::string("\x04", 1) + std::string(31, '\0') + "\x01" + std::string(31, '\0') + "\x01";
  for (const std::string& bad :
       {std::string("not base64!"), Base64UrlEncode(point.substr(0, 33)),
        Base64UrlEncode(off_curve), Base64UrlEncode(point + "x"), "B" + Base64UrlEncode(point)}) {
    EXPECT_EQ(ValidateWith("apiKey", bad).message(), kMessage) << bad;
  }
}

TEST(WebPushCredentialsTest, PrivateKeyMustBe32BytesAndMatch) {
  EXPECT_EQ(ValidateWith("secretKey", Base64UrlEncode(std::string(31, 'k'))).message(),
            "credentials.secretKey must be a VAPID private key (base64url of 32 bytes)");
  EXPECT_EQ(ValidateWith("secretKey", "***").message(),
            "credentials.secretKey must be a VAPID private key (base64url of 32 bytes)");
  std::string other_scalar = crypto::GenerateP256KeyPair().first;
  EXPECT_EQ(ValidateWith("secretKey", Base64UrlEncode(other_scalar)).message(),
            "credentials.secretKey is not the private key of credentials.apiKey");
}

TEST(WebPushCredentialsTest, SubjectIsMailtoOrHttps) {
  for (const char* bad : {"ops@example.com", "mailto:", "mailto:ops", "mailto:@example.com",
                          "mailto:ops@", "mailto: <ops@example.com>", "mailto:ops@exa mple.com",
                          "http://example.com/", "https://", "https://exa mple.com"}) {
    EXPECT_EQ(ValidateWith("from", bad).message(),
              "credentials.from must be a mailto: address or an https URL (VAPID subject)")
        << bad;
  }
}

TEST(WebPushCredentialsTest, MaskHidesOnlyThePrivateKey) {
  Json credentials = test::ValidCredentials("web-push");
  Json masked = MaskCredentials(Spec(), credentials);
  std::string secret = credentials["secretKey"];
  EXPECT_EQ(masked["secretKey"], "****" + secret.substr(secret.size() - 4));
  EXPECT_EQ(masked["apiKey"], credentials["apiKey"]);
  EXPECT_EQ(masked["from"], credentials["from"]);
}

// ---- device tokens (PushSubscription JSON) ----------------------------------------------------

struct Subscription {
  std::string endpoint = "https://fcm.googleapis.com/fcm/send/dGVzdA:APA91bH_x-y";
  std::string p256dh = Base64UrlEncode(crypto::GenerateP256KeyPair().second);
  std::string auth = Base64UrlEncode(test::RandomBytes(16));

  Json ToJson() const {
    return {{"endpoint", endpoint},
            {"expirationTime", nullptr},
            {"keys", {{"p256dh", p256dh}, {"auth", auth}}}};
  }
  std::string Canonical() const {
    return R"({"endpoint":")" + endpoint + R"(","keys":{"p256dh":")" + p256dh + R"(","auth":")" +
           auth + R"("}})";
  }
};

Result<std::string> Normalize(const Json& subscription, bool allow_private = false) {
  return Spec().NormalizeDeviceToken(DumpJson(subscription), TokenPolicy{allow_private});
}

std::string ErrorOf(const Json& subscription, bool allow_private = false) {
  Result<std::string> result = Normalize(subscription, allow_private);
  return result.ok() ? "ok" : result.status().message();
}

TEST(WebPushTokenTest, ReturnsCanonicalJson) {
  Subscription s;
  Result<std::string> normalized = Normalize(s.ToJson());
  ASSERT_TRUE(normalized.ok()) << normalized.status().message();
  EXPECT_EQ(*normalized, s.Canonical());

  // Member order, whitespace and padding in the input do not matter.
  std::string token = "{ \"keys\": {\"auth\": \"" + s.auth + "==\", \"p256dh\": \"" + s.p256dh +
                      "=\"},\n \"expirationTime\": 1735689600000, \"endpoint\": \"" + s.endpoint +
                      "\", \"other\": true }";
  normalized = Spec().NormalizeDeviceToken(token, {});
  ASSERT_TRUE(normalized.ok()) << normalized.status().message();
  EXPECT_EQ(*normalized, s.Canonical());

  // Normalising twice changes nothing.
  normalized = Spec().NormalizeDeviceToken(*normalized, {});
  ASSERT_TRUE(normalized.ok());
  EXPECT_EQ(*normalized, s.Canonical());
}

TEST(WebPushTokenTest, IdentityIsTheEndpoint) {
  Subscription s;
  Result<std::string> normalized = Normalize(s.ToJson());
  ASSERT_TRUE(normalized.ok());
  EXPECT_EQ(Spec().TokenIdentity(*normalized), s.endpoint);
  EXPECT_EQ(Spec().TokenIdentity("not json"), "not json");
}

TEST(WebPushTokenTest, RejectsWhatIsNotASubscriptionObject) {
  const char* kMessage = "device token must be a PushSubscription JSON object";
  for (const char* bad :
       {"https://fcm.googleapis.com/fcm/send/x", "{\"endpoint\":", "[]", "\"str\"", "null"}) {
    Result<std::string> result = Spec().NormalizeDeviceToken(bad, {});
    ASSERT_FALSE(result.ok()) << bad;
    EXPECT_EQ(result.status().code(), Code::kInvalidArgument);
    EXPECT_EQ(result.status().message(), kMessage) << bad;
  }
  EXPECT_EQ(Spec().NormalizeDeviceToken("", {}).status().message(),
            "device token must not be empty");
  Subscription s;
  s.endpoint += "/" + std::string(4096, 'a');
  EXPECT_EQ(ErrorOf(s.ToJson()), "device token must be at most 4096 bytes");
}

TEST(WebPushTokenTest, EndpointChecks) {
  Subscription s;
  Json token = s.ToJson();
  token.erase("endpoint");
  EXPECT_EQ(ErrorOf(token), "push subscription endpoint is required and must be a string");
  token["endpoint"] = 5;
  EXPECT_EQ(ErrorOf(token), "push subscription endpoint is required and must be a string");

  struct Case {
    const char* endpoint;
    const char* message;
  };
  for (const Case& c : {
           Case{"/push/1", "push subscription endpoint is not an absolute http(s) URL"},
           Case{"wss://push.example.com/1",
                "push subscription endpoint is not an absolute http(s) URL"},
           Case{"https://push.example.com/a b",
                "push subscription endpoint is not an absolute http(s) URL"},
           Case{"https://push.example.com/1#x",
                "push subscription endpoint must not have a fragment"},
           Case{"https://u:p@push.example.com/1",
                "push subscription endpoint must not contain credentials"},
       }) {
    token["endpoint"] = c.endpoint;
    EXPECT_EQ(ErrorOf(token), c.message) << c.endpoint;
    EXPECT_EQ(ErrorOf(token, /*allow_private=*/true), c.message) << c.endpoint;
  }
}

TEST(WebPushTokenTest, HttpEndpointOnlyWhenPrivateTargetsAreAllowed) {
  Subscription s;
  s.endpoint = "http://push.example.com/push/1";
  EXPECT_EQ(ErrorOf(s.ToJson()), "push subscription endpoint must use https");
  Result<std::string> allowed = Normalize(s.ToJson(), /*allow_private=*/true);
  ASSERT_TRUE(allowed.ok()) << allowed.status().message();
  EXPECT_EQ(*allowed, s.Canonical());
}

TEST(WebPushTokenTest, PrivateEndpointHostOnlyWhenAllowed) {
  for (const char* endpoint :
       {"https://localhost/push/1", "https://127.0.0.1:8443/push/1", "https://10.1.2.3/push",
        "https://169.254.169.254/latest/meta-data", "https://[::1]/push", "https://push.localhost/",
        "https://[::ffff:192.168.1.1]/push"}) {
    Subscription s;
    s.endpoint = endpoint;
    EXPECT_EQ(ErrorOf(s.ToJson()), "push subscription endpoint host is a private address")
        << endpoint;
    EXPECT_EQ(ErrorOf(s.ToJson(), /*allow_private=*/true), "ok") << endpoint;
  }
  Subscription mock;
  mock.endpoint = "http://127.0.0.1:9000/push/abc";
  EXPECT_EQ(ErrorOf(mock.ToJson(), /*allow_private=*/true), "ok");
}

TEST(WebPushTokenTest, KeysMustBePresent) {
  Subscription s;
  Json token = s.ToJson();
  token.erase("keys");
  EXPECT_EQ(ErrorOf(token), "push subscription keys must be an object with p256dh and auth");
  token["keys"] = "p256dh";
  EXPECT_EQ(ErrorOf(token), "push subscription keys must be an object with p256dh and auth");
  token = s.ToJson();
  token["keys"].erase("p256dh");
  EXPECT_EQ(ErrorOf(token),
            "push subscription keys.p256dh must be a P-256 public key (base64url of 65 bytes)");
  token = s.ToJson();
  token["keys"].erase("auth");
  EXPECT_EQ(ErrorOf(token), "push subscription keys.auth must be 16 bytes in base64url");
}

TEST(WebPushTokenTest, P256dhMustBeAPointOnTheCurve) {
  std::string point = crypto::GenerateP256KeyPair().second;
  std::string off_curve =
      std::string("\x04", 1) + std::string(31, '\0') + "\x01" + std::string(31, '\0') + "\x01";
  std::string compressed = std::string("\x02", 1) + point.substr(1, 32);
  for (const std::string& bad :
       {Base64UrlEncode(off_curve), Base64UrlEncode(compressed),
        Base64UrlEncode(point.substr(0, 64)), std::string("a+b/"), std::string("")}) {
    Subscription s;
    s.p256dh = bad;
    EXPECT_EQ(ErrorOf(s.ToJson()),
              "push subscription keys.p256dh must be a P-256 public key (base64url of 65 bytes)")
        << bad;
  }
}

TEST(WebPushTokenTest, AuthMustBe16Bytes) {
  for (const std::string& bad :
       {Base64UrlEncode(test::RandomBytes(15)), Base64UrlEncode(test::RandomBytes(17)),
        Base64UrlEncode(test::RandomBytes(32)), std::string("!!!!"), std::string("")}) {
    Subscription s;
    s.auth = bad;
    EXPECT_EQ(ErrorOf(s.ToJson()), "push subscription keys.auth must be 16 bytes in base64url")
        << bad;
  }
}

TEST(WebPushTokenTest, ExpirationTimeIsNullOrANumber) {
  Subscription s;
  Json token = s.ToJson();
  token["expirationTime"] = 1735689600000;
  EXPECT_EQ(ErrorOf(token), "ok");
  token.erase("expirationTime");
  EXPECT_EQ(ErrorOf(token), "ok");
  token["expirationTime"] = "tomorrow";
  EXPECT_EQ(ErrorOf(token), "push subscription expirationTime must be a number or null");
}

}  // namespace
}  // namespace herald::providers
