#include "providers/expo/expo_spec.h"

#include <gtest/gtest.h>

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

TEST(ExpoSpecTest, MaskHidesTheToken) {
  Json masked = MaskCredentials(*FindProvider("expo"), test::ValidCredentials("expo"));
  EXPECT_EQ(masked["apiKey"], "****6789");
}

}  // namespace
}  // namespace herald::providers
