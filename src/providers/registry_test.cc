#include "providers/registry.h"

#include <gtest/gtest.h>

#include <string>

#include "providers/basic_spec.h"
#include "providers/spec_test_util.h"

namespace herald::providers {
namespace {

using test::Validate;
using test::ValidCredentials;

TEST(RegistryTest, ListsEveryPushProviderSorted) {
  std::vector<std::string_view> expected = {"apns",         "expo",         "fcm",     "one-signal",
                                            "push-webhook", "pusher-beams", "pushpad", "web-push"};
  EXPECT_EQ(ProviderIds(), expected);
}

TEST(RegistryTest, FindsByIdWithDisplayName) {
  struct Case {
    std::string_view id;
    std::string_view name;
  };
  for (const Case& c :
       {Case{"fcm", "Firebase Cloud Messaging"}, Case{"apns", "APNs"}, Case{"expo", "Expo Push"},
        Case{"one-signal", "OneSignal"}, Case{"pusher-beams", "Pusher Beams"},
        Case{"pushpad", "Pushpad"}, Case{"push-webhook", "Push Webhook"},
        Case{"web-push", "Web Push (VAPID)"}}) {
    const ProviderSpec* spec = FindProvider(c.id);
    ASSERT_NE(spec, nullptr) << c.id;
    EXPECT_EQ(spec->id(), c.id);
    EXPECT_EQ(spec->display_name(), c.name);
  }
  EXPECT_EQ(FindProvider("sendgrid"), nullptr);
  EXPECT_EQ(FindProvider("FCM"), nullptr);
  EXPECT_EQ(FindProvider(""), nullptr);
}

TEST(RegistryTest, SecretFieldsMatchNovu) {
  auto secrets_of = [](std::string_view id) {
    std::vector<std::string_view> keys;
    for (const CredentialField& field : FindProvider(id)->fields()) {
      if (field.secret) keys.push_back(field.key);
    }
    return keys;
  };
  using Keys = std::vector<std::string_view>;
  EXPECT_EQ(secrets_of("fcm"), Keys{"serviceAccount"});
  // Herald's certificate auth adds its own secrets beside Novu's .p8 key.
  EXPECT_EQ(secrets_of("apns"), (Keys{"secretKey", "certificate", "password", "privateKey"}));
  EXPECT_EQ(secrets_of("expo"), Keys{"apiKey"});
  EXPECT_EQ(secrets_of("one-signal"), Keys{"apiKey"});
  EXPECT_EQ(secrets_of("pusher-beams"), Keys{"secretKey"});
  EXPECT_EQ(secrets_of("pushpad"), Keys{"apiKey"});
  EXPECT_EQ(secrets_of("push-webhook"), Keys{"secretKey"});
  EXPECT_EQ(secrets_of("web-push"), Keys{"secretKey"});
}

// "one-signal" -> "onesignal": test names allow only letters, digits and '_'.
std::string ParamName(const testing::TestParamInfo<std::string_view>& info) {
  std::string name(info.param);
  std::erase(name, '-');
  return name;
}

// Checks every provider gets from the common base.
class EveryProviderTest : public testing::TestWithParam<std::string_view> {};

INSTANTIATE_TEST_SUITE_P(Builtins, EveryProviderTest, testing::ValuesIn(ProviderIds()), ParamName);

TEST_P(EveryProviderTest, AcceptsValidCredentials) {
  Status status = Validate(GetParam(), ValidCredentials(GetParam()));
  EXPECT_TRUE(status.ok()) << status.message();
}

TEST_P(EveryProviderTest, CredentialsMustBeAnObject) {
  for (Json bad : {Json(nullptr), Json("x"), Json::array(), Json(1)}) {
    Status status = Validate(GetParam(), bad);
    EXPECT_EQ(status.code(), Code::kInvalidArgument);
    EXPECT_EQ(status.message(), "credentials must be an object");
  }
}

TEST_P(EveryProviderTest, EachRequiredFieldIsNamedWhenMissing) {
  for (const CredentialField& field : FindProvider(GetParam())->fields()) {
    if (!field.required) continue;
    std::string key(field.key);
    Json credentials = ValidCredentials(GetParam());
    credentials.erase(key);
    EXPECT_EQ(Validate(GetParam(), credentials).message(), "credentials." + key + " is required");
    credentials[key] = nullptr;
    EXPECT_EQ(Validate(GetParam(), credentials).message(), "credentials." + key + " is required");
    credentials[key] = "";
    EXPECT_EQ(Validate(GetParam(), credentials).message(),
              "credentials." + key + " must not be empty");
  }
}

TEST_P(EveryProviderTest, EveryFieldMustHaveItsType) {
  for (const CredentialField& field : FindProvider(GetParam())->fields()) {
    std::string key(field.key);
    Json credentials = ValidCredentials(GetParam());
    credentials[key] = field.type == FieldType::kBoolean ? Json("true") : Json(42);
    std::string expected =
        field.type == FieldType::kBoolean ? " must be a boolean" : " must be a string";
    EXPECT_EQ(Validate(GetParam(), credentials).message(), "credentials." + key + expected);
  }
}

TEST_P(EveryProviderTest, KeepsUnknownKeys) {
  Json credentials = ValidCredentials(GetParam());
  credentials["somethingElse"] = {{"nested", 1}};
  const ProviderSpec* spec = FindProvider(GetParam());
  ASSERT_TRUE(spec->ValidateCredentials(credentials).ok());
  EXPECT_EQ(credentials["somethingElse"], Json({{"nested", 1}}));
}

TEST_P(EveryProviderTest, AcceptsOptionalBaseUrl) {
  for (const char* url :
       {"https://mock.internal:9443/fcm", "http://127.0.0.1:8080", "http://localhost:3000/base/"}) {
    Json credentials = ValidCredentials(GetParam());
    credentials["baseUrl"] = url;
    Status status = Validate(GetParam(), credentials);
    EXPECT_TRUE(status.ok()) << url << ": " << status.message();
  }
  Json credentials = ValidCredentials(GetParam());
  credentials["baseUrl"] = nullptr;
  EXPECT_TRUE(Validate(GetParam(), credentials).ok());
}

TEST_P(EveryProviderTest, RejectsBadBaseUrl) {
  struct Case {
    const char* url;
    const char* message;
  };
  for (const Case& c : {
           Case{"mock.internal", "credentials.baseUrl is not an absolute http(s) URL"},
           Case{"ftp://mock.internal/", "credentials.baseUrl is not an absolute http(s) URL"},
           Case{"https://mock internal/", "credentials.baseUrl is not an absolute http(s) URL"},
           Case{"https://mock.internal/?a=1", "credentials.baseUrl must not have a query"},
           Case{"https://mock.internal/?", "credentials.baseUrl must not have a query"},
           Case{"https://mock.internal/#top", "credentials.baseUrl must not have a fragment"},
       }) {
    Json credentials = ValidCredentials(GetParam());
    credentials["baseUrl"] = c.url;
    EXPECT_EQ(Validate(GetParam(), credentials).message(), c.message) << c.url;
  }
  Json credentials = ValidCredentials(GetParam());
  credentials["baseUrl"] = true;
  EXPECT_EQ(Validate(GetParam(), credentials).message(), "credentials.baseUrl must be a string");
}

TEST_P(EveryProviderTest, MaskHidesSecretsOnly) {
  const ProviderSpec& spec = *FindProvider(GetParam());
  Json credentials = ValidCredentials(GetParam());
  credentials["extra"] = "visible";
  Json masked = MaskCredentials(spec, credentials);
  for (const CredentialField& field : spec.fields()) {
    std::string key(field.key);
    if (!credentials.contains(key)) continue;
    if (field.secret) {
      const std::string& shown = masked[key].get_ref<const std::string&>();
      EXPECT_NE(shown, credentials[key]) << key;
      EXPECT_EQ(shown.rfind("****", 0), 0u) << key;
      EXPECT_LE(shown.size(), 8u) << key;
      EXPECT_TRUE(IsMaskOf(shown, credentials[key].get<std::string>())) << key;
    } else {
      EXPECT_EQ(masked[key], credentials[key]) << key;
    }
  }
  EXPECT_EQ(masked["extra"], "visible");
}

// Every provider but web-push, whose tokens are PushSubscriptions (web_push_spec_test.cc).
class PlainTokenTest : public testing::TestWithParam<std::string_view> {};

std::vector<std::string_view> PlainTokenProviders() {
  std::vector<std::string_view> ids = ProviderIds();
  std::erase(ids, "web-push");
  std::erase(ids, "expo");  // Expo's own token format only (expo_spec_test.cc)
  std::erase(ids, "pusher-beams");  // user ids of at most 164 bytes (pusher_beams_provider_test.cc)
  return ids;
}

INSTANTIATE_TEST_SUITE_P(Builtins, PlainTokenTest, testing::ValuesIn(PlainTokenProviders()),
                         ParamName);

TEST_P(PlainTokenTest, AcceptsAnyPrintableTokenUnchanged) {
  const ProviderSpec& spec = *FindProvider(GetParam());
  TokenPolicy policy;
  for (std::string token : {std::string("fcm:APA91bH-x_y.z"), std::string(64, 'a'),
                            std::string("ExponentPushToken[xxxxxxxxxxxxxxxxxxxxxx]"),
                            std::string(kMaxTokenBytes, 'b'), std::string("t\xc3\xa9l\xc3\xa9")}) {
    Result<std::string> normalized = spec.NormalizeDeviceToken(token, policy);
    ASSERT_TRUE(normalized.ok()) << normalized.status().message();
    EXPECT_EQ(*normalized, token);
    EXPECT_EQ(spec.TokenIdentity(*normalized), token);
  }
}

TEST_P(PlainTokenTest, RejectsEmptyLongAndSpacedTokens) {
  const ProviderSpec& spec = *FindProvider(GetParam());
  TokenPolicy policy;
  struct Case {
    std::string token;
    const char* message;
  };
  for (const Case& c : {
           Case{"", "device token must not be empty"},
           Case{std::string(kMaxTokenBytes + 1, 'b'), "device token must be at most 4096 bytes"},
           Case{"abc def", "device token must not contain whitespace or control characters"},
           Case{"abc\n", "device token must not contain whitespace or control characters"},
           Case{"\tabc", "device token must not contain whitespace or control characters"},
           Case{std::string("ab\0c", 4),
                "device token must not contain whitespace or control characters"},
           Case{"ab\x7f", "device token must not contain whitespace or control characters"},
       }) {
    Result<std::string> normalized = spec.NormalizeDeviceToken(c.token, policy);
    ASSERT_FALSE(normalized.ok());
    EXPECT_EQ(normalized.status().code(), Code::kInvalidArgument);
    EXPECT_EQ(normalized.status().message(), c.message);
  }
}

TEST(MaskTest, ShowsLastFourOnlyWhenLongerThanTwelve) {
  const ProviderSpec& spec = *FindProvider("push-webhook");
  auto mask = [&](Json value) {
    return MaskCredentials(
        spec, {{"webhookUrl", "https://h.example/"}, {"secretKey", value}})["secretKey"];
  };
  EXPECT_EQ(mask("sekret"), "****");
  EXPECT_EQ(mask(""), "****");
  EXPECT_EQ(mask("123456789012"), "****");
  EXPECT_EQ(mask("1234567890123"), "****0123");
  EXPECT_EQ(mask("abcdefghijklmnopqrstuvwxyz"), "****wxyz");
  // Characters, not bytes: 13 code points, the last four of which are multi-byte.
  EXPECT_EQ(mask("123456789\xc3\xa9\xc3\xa9\xe2\x82\xac\xf0\x9f\x94\x91"),
            "****\xc3\xa9\xc3\xa9\xe2\x82\xac\xf0\x9f\x94\x91");
  EXPECT_EQ(mask("12345678\xc3\xa9\xc3\xa9\xe2\x82\xac\xf0\x9f\x94\x91"), "****");
  EXPECT_EQ(mask(42), "****");
  EXPECT_EQ(mask(nullptr), nullptr);
}

TEST(MaskTest, LeavesNonObjectsAndAbsentKeysAlone) {
  const ProviderSpec& spec = *FindProvider("expo");
  EXPECT_EQ(MaskCredentials(spec, Json("x")), Json("x"));
  EXPECT_EQ(MaskCredentials(spec, Json::object()), Json::object());
}

TEST(MaskTest, MasksAliasesOfSecrets) {
  Json masked =
      MaskCredentials(*FindProvider("web-push"), {{"vapidPrivateKey", "abcdefghijklmnopqrstuvwxyz"},
                                                  {"vapidPublicKey", "BPublicPublicPublicPublic"}});
  EXPECT_EQ(masked["vapidPrivateKey"], "****wxyz");
  EXPECT_EQ(masked["vapidPublicKey"], "BPublicPublicPublicPublic");
}

TEST(MaskTest, IsMaskOf) {
  EXPECT_TRUE(IsMaskOf("****", "short"));
  EXPECT_TRUE(IsMaskOf("****", ""));
  EXPECT_TRUE(IsMaskOf("****wxyz", "abcdefghijklmnopqrstuvwxyz"));
  EXPECT_FALSE(IsMaskOf("****wxyz", "abcdefghijklmnopqrstuvwxy"));
  EXPECT_FALSE(IsMaskOf("****", "abcdefghijklmnopqrstuvwxyz"));
  EXPECT_FALSE(IsMaskOf("short", "short"));
  EXPECT_FALSE(IsMaskOf("abcdefghijklmnopqrstuvwxyz", "abcdefghijklmnopqrstuvwxyz"));
}

}  // namespace
}  // namespace herald::providers
