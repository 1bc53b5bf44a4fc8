#include "providers/apns/apns_spec.h"

#include <gtest/gtest.h>

#include "providers/spec_test_util.h"

namespace herald::providers {
namespace {

Status ValidateWith(const char* key, Json value) {
  Json credentials = test::ValidCredentials("apns");
  credentials[key] = std::move(value);
  return test::Validate("apns", credentials);
}

TEST(ApnsSpecTest, FactoryBuildsTheSpec) { EXPECT_EQ(NewApnsSpec()->id(), "apns"); }

TEST(ApnsSpecTest, AcceptsValidCredentials) {
  EXPECT_TRUE(test::Validate("apns", test::ValidCredentials("apns")).ok());
  EXPECT_TRUE(ValidateWith("secretKey", test::EcPem("P-256", /*pkcs8=*/false)).ok());
  EXPECT_TRUE(ValidateWith("secure", false).ok());
  EXPECT_TRUE(ValidateWith("secure", nullptr).ok());
  EXPECT_TRUE(ValidateWith("applicationId", "com.example.app.voip").ok());
  EXPECT_TRUE(ValidateWith("applicationId", "com.my-company.App2").ok());

  Json without_secure = test::ValidCredentials("apns");
  without_secure.erase("secure");
  EXPECT_TRUE(test::Validate("apns", without_secure).ok());
}

TEST(ApnsSpecTest, SecretKeyMustBeAP256Key) {
  const char* kNotPem = "credentials.secretKey is not a valid PEM private key";
  const char* kWrongKey = "credentials.secretKey must be an EC P-256 private key (.p8)";
  EXPECT_EQ(ValidateWith("secretKey", "not a key").message(), kNotPem);
  EXPECT_EQ(
      ValidateWith("secretKey", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
          .message(),
      kNotPem);
  EXPECT_EQ(ValidateWith("secretKey", test::EcPem("P-384")).message(), kWrongKey);
  EXPECT_EQ(ValidateWith("secretKey", test::RsaPem()).message(), kWrongKey);
  EXPECT_EQ(ValidateWith("secretKey", test::Ed25519Pem()).message(), kWrongKey);
}

TEST(ApnsSpecTest, KeyIdAndTeamIdAreTenAlphanumerics) {
  for (const char* bad : {"ABC123DEF", "ABC123DEFGH", "ABC-23DEFG", "ABC123DEF ", "ÄBC123DEF"}) {
    EXPECT_EQ(ValidateWith("apiKey", bad).message(),
              "credentials.apiKey must be the 10-character Key ID (letters and digits)")
        << bad;
    EXPECT_EQ(ValidateWith("projectName", bad).message(),
              "credentials.projectName must be the 10-character Team ID (letters and digits)")
        << bad;
  }
}

TEST(ApnsSpecTest, BundleIdCharacters) {
  for (const char* bad : {"com.example app", "com/example", "com.example_app", "com.éxample"}) {
    EXPECT_EQ(ValidateWith("applicationId", bad).message(),
              "credentials.applicationId must be a bundle id (letters, digits, '.' and '-' only)")
        << bad;
  }
}

TEST(ApnsSpecTest, SecureIsABoolean) {
  EXPECT_EQ(ValidateWith("secure", "true").message(), "credentials.secure must be a boolean");
  EXPECT_EQ(ValidateWith("secure", 1).message(), "credentials.secure must be a boolean");
}

TEST(ApnsSpecTest, MaskHidesTheKeyOnly) {
  Json credentials = test::ValidCredentials("apns");
  Json masked = MaskCredentials(*FindProvider("apns"), credentials);
  EXPECT_EQ(masked["secretKey"], "****---\n");  // the PEM ends "-----\n"
  EXPECT_EQ(masked["apiKey"], "ABC123DEFG");
  EXPECT_EQ(masked["projectName"], "TEAM123456");
  EXPECT_EQ(masked["applicationId"], "com.example.app");
  EXPECT_EQ(masked["secure"], true);
}

}  // namespace
}  // namespace herald::providers
