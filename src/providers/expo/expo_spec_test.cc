#include "providers/expo/expo_spec.h"

#include <gtest/gtest.h>

#include "providers/basic_spec.h"
#include "providers/spec_test_util.h"

namespace herald::providers {
namespace {

TEST(ExpoSpecTest, FactoryBuildsTheSpec) { EXPECT_EQ(NewExpoSpec()->id(), "expo"); }

TEST(ExpoSpecTest, AccessTokenIsOptional) {
  EXPECT_TRUE(test::Validate("expo", test::ValidCredentials("expo")).ok());
  EXPECT_TRUE(test::Validate("expo", Json::object()).ok());
  EXPECT_TRUE(test::Validate("expo", {{"apiKey", ""}}).ok());
  EXPECT_TRUE(test::Validate("expo", {{"apiKey", nullptr}}).ok());
  EXPECT_EQ(test::Validate("expo", {{"apiKey", 5}}).message(),
            "credentials.apiKey must be a string");
}

TEST(ExpoSpecTest, DeviceTokensMustBeExpoPushTokens) {
  const ProviderSpec& spec = *FindProvider("expo");
  TokenPolicy policy;
  for (std::string token : {"ExponentPushToken[xxxxxxxxxxxxxxxxxxxxxx]",
                            "ExpoPushToken[a-b_c.d:e=]", "ExponentPushToken[1]"}) {
    Result<std::string> normalized = spec.NormalizeDeviceToken(token, policy);
    ASSERT_TRUE(normalized.ok()) << token << ": " << normalized.status().message();
    EXPECT_EQ(*normalized, token);
  }
  for (std::string token :
       {"abc", "ExponentPushToken[]", "ExponentPushToken[abc", "ExponentPushToken-abc]",
        "exponentpushtoken[abc]", "ExponentPushToken[a]b]", "ExponentPushToken[a[b]",
        "ExponentPushToken[\"x\"]", "ExponentPushToken[t\xc3\xa9]", "xExpoPushToken[abc]",
        "ExpoPushToken[abc]]", "0b7ab7c4-3d5e-4c2f-9e1a-2f1e2d3c4b5a"}) {
    Result<std::string> normalized = spec.NormalizeDeviceToken(token, policy);
    ASSERT_FALSE(normalized.ok()) << token;
    EXPECT_EQ(normalized.status().code(), Code::kInvalidArgument);
    EXPECT_EQ(normalized.status().message(),
              "device token must be an Expo push token: ExponentPushToken[...] or "
              "ExpoPushToken[...]")
        << token;
  }
  // The checks every provider makes come first.
  EXPECT_EQ(spec.NormalizeDeviceToken("ExponentPushToken[a b]", policy).status().message(),
            "device token must not contain whitespace or control characters");
  EXPECT_EQ(spec.NormalizeDeviceToken("", policy).status().message(),
            "device token must not be empty");
  std::string longest = "ExponentPushToken[" + std::string(kMaxTokenBytes - 19, 'a') + "]";
  EXPECT_TRUE(spec.NormalizeDeviceToken(longest, policy).ok());
  EXPECT_FALSE(
      spec.NormalizeDeviceToken(longest.substr(0, 18) + "a" + longest.substr(18), policy).ok());
}

TEST(ExpoSpecTest, CreatesTheProvider) {
  Result<std::unique_ptr<Provider>> provider =
      FindProvider("expo")->Create(test::ValidCredentials("expo"));
  ASSERT_TRUE(provider.ok()) << provider.status().message();
  EXPECT_GT((*provider)->max_batch(), 1u);
  ASSERT_NE((*provider)->receipts(), nullptr);
}

TEST(ExpoSpecTest, MaskHidesTheToken) {
  Json masked = MaskCredentials(*FindProvider("expo"), test::ValidCredentials("expo"));
  EXPECT_EQ(masked["apiKey"], "****6789");
}

}  // namespace
}  // namespace herald::providers
