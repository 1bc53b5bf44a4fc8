#include "providers/pusher_beams/pusher_beams_spec.h"

#include <gtest/gtest.h>

#include <string>

#include "providers/spec_test_util.h"

namespace herald::providers {
namespace {

Status ValidateWith(const char* key, Json value) {
  Json credentials = test::ValidCredentials("pusher-beams");
  credentials[key] = std::move(value);
  return test::Validate("pusher-beams", credentials);
}

TEST(PusherBeamsSpecTest, FactoryBuildsTheSpec) {
  EXPECT_EQ(NewPusherBeamsSpec()->id(), "pusher-beams");
}

TEST(PusherBeamsSpecTest, AcceptsValidCredentials) {
  EXPECT_TRUE(test::Validate("pusher-beams", test::ValidCredentials("pusher-beams")).ok());
  EXPECT_TRUE(ValidateWith("instanceId", "instance1").ok());
}

TEST(PusherBeamsSpecTest, InstanceIdIsAHostLabel) {
  for (std::string bad : {std::string("evil.com/x"), std::string("a b"), std::string("a.b"),
                          std::string("a_b"), std::string(64, 'a')}) {
    EXPECT_EQ(ValidateWith("instanceId", bad).message(),
              "credentials.instanceId must be a Beams instance id (letters, digits and '-')")
        << bad;
  }
}

TEST(PusherBeamsSpecTest, MaskHidesTheSecretKey) {
  Json masked =
      MaskCredentials(*FindProvider("pusher-beams"), test::ValidCredentials("pusher-beams"));
  EXPECT_EQ(masked["secretKey"], "****6F1D");
  EXPECT_EQ(masked["instanceId"], "8f9a6e22-2483-49aa-8552-125f1a4c5781");
}

}  // namespace
}  // namespace herald::providers
