#include "providers/one_signal/one_signal_spec.h"

#include <gtest/gtest.h>

#include "providers/spec_test_util.h"

namespace herald::providers {
namespace {

Status ValidateWith(const char* key, Json value) {
  Json credentials = test::ValidCredentials("one-signal");
  credentials[key] = std::move(value);
  return test::Validate("one-signal", credentials);
}

TEST(OneSignalSpecTest, FactoryBuildsTheSpec) { EXPECT_EQ(NewOneSignalSpec()->id(), "one-signal"); }

TEST(OneSignalSpecTest, AcceptsValidCredentials) {
  EXPECT_TRUE(test::Validate("one-signal", test::ValidCredentials("one-signal")).ok());
  EXPECT_TRUE(ValidateWith("applicationId", "5EB5A37E-B458-11E3-AC11-000C2940E62C").ok());
  EXPECT_TRUE(ValidateWith("apiVersion", "externalId").ok());
  EXPECT_TRUE(ValidateWith("apiVersion", "playerModel").ok());
  EXPECT_TRUE(ValidateWith("apiVersion", nullptr).ok());
}

TEST(OneSignalSpecTest, AppIdIsAUuid) {
  for (const char* bad :
       {"5eb5a37e", "5eb5a37e-b458-11e3-ac11-000c2940e62", "not-a-uuid",
        "5eb5a37eb45811e3ac11000c2940e62c", "5eb5a37e-b458-11e3-ac11-000c2940e62g",
        "5eb5a37e_b458-11e3-ac11-000c2940e62c"}) {
    EXPECT_EQ(ValidateWith("applicationId", bad).message(),
              "credentials.applicationId must be a OneSignal app id (a UUID)")
        << bad;
  }
}

TEST(OneSignalSpecTest, ApiVersionIsKnown) {
  EXPECT_EQ(ValidateWith("apiVersion", "v2").message(),
            "credentials.apiVersion must be one of externalId, playerModel");
  EXPECT_EQ(ValidateWith("apiVersion", "externalid").message(),
            "credentials.apiVersion must be one of externalId, playerModel");
}

TEST(OneSignalSpecTest, MaskHidesTheRestKey) {
  Json masked = MaskCredentials(*FindProvider("one-signal"), test::ValidCredentials("one-signal"));
  EXPECT_EQ(masked["apiKey"], "****cret");
  EXPECT_EQ(masked["applicationId"], "5eb5a37e-b458-11e3-ac11-000c2940e62c");
}

}  // namespace
}  // namespace herald::providers
