#include "providers/pushpad/pushpad_spec.h"

#include <gtest/gtest.h>

#include "providers/spec_test_util.h"

namespace herald::providers {
namespace {

Status ValidateWith(const char* key, Json value) {
  Json credentials = test::ValidCredentials("pushpad");
  credentials[key] = std::move(value);
  return test::Validate("pushpad", credentials);
}

TEST(PushpadSpecTest, FactoryBuildsTheSpec) { EXPECT_EQ(NewPushpadSpec()->id(), "pushpad"); }

TEST(PushpadSpecTest, AcceptsValidCredentials) {
  EXPECT_TRUE(test::Validate("pushpad", test::ValidCredentials("pushpad")).ok());
  EXPECT_TRUE(ValidateWith("applicationId", "0042").ok());
}

TEST(PushpadSpecTest, ProjectIdIsDigits) {
  for (const char* bad : {"12a", "-1", "1 2", "../1", "１２"}) {
    EXPECT_EQ(ValidateWith("applicationId", bad).message(),
              "credentials.applicationId must be a Pushpad project id (digits only)")
        << bad;
  }
  EXPECT_EQ(ValidateWith("applicationId", 123).message(),
            "credentials.applicationId must be a string");
}

TEST(PushpadSpecTest, MaskHidesTheAuthToken) {
  Json masked = MaskCredentials(*FindProvider("pushpad"), test::ValidCredentials("pushpad"));
  EXPECT_EQ(masked["apiKey"], "****cdef");
  EXPECT_EQ(masked["applicationId"], "123");
}

}  // namespace
}  // namespace herald::providers
