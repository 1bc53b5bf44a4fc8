#include "providers/fcm/fcm_spec.h"

#include <gtest/gtest.h>

#include "providers/spec_test_util.h"

namespace herald::providers {
namespace {

using test::ServiceAccount;

Status ValidateAccount(const Json& account) {
  return test::Validate("fcm", {{"serviceAccount", DumpJson(account)}});
}

TEST(FcmSpecTest, AcceptsServiceAccountJson) {
  EXPECT_TRUE(ValidateAccount(ServiceAccount()).ok());

  Json pkcs1 = ServiceAccount();
  pkcs1["private_key"] = test::RsaPem(/*pkcs8=*/false);
  EXPECT_TRUE(ValidateAccount(pkcs1).ok());

  Json emulator = ServiceAccount();
  emulator["token_uri"] = "http://127.0.0.1:9099/token";
  EXPECT_TRUE(ValidateAccount(emulator).ok());

  // Pretty-printed, as downloaded from the Firebase console.
  Json credentials = {{"serviceAccount", ServiceAccount().dump(2)}};
  EXPECT_TRUE(test::Validate("fcm", credentials).ok());
}

TEST(FcmSpecTest, FactoryBuildsTheSpec) { EXPECT_EQ(NewFcmSpec()->id(), "fcm"); }

TEST(FcmSpecTest, RejectsWhatIsNotAJsonObject) {
  EXPECT_EQ(test::Validate("fcm", {{"serviceAccount", "{not json"}}).message(),
            "credentials.serviceAccount is not valid JSON");
  EXPECT_EQ(test::Validate("fcm", {{"serviceAccount", "[1,2]"}}).message(),
            "credentials.serviceAccount must be a JSON object");
  EXPECT_EQ(test::Validate("fcm", {{"serviceAccount", ServiceAccount()}}).message(),
            "credentials.serviceAccount must be a string");
}

TEST(FcmSpecTest, NamesEachMissingField) {
  for (const char* name : {"client_email", "private_key", "token_uri", "project_id"}) {
    Json account = ServiceAccount();
    account.erase(name);
    EXPECT_EQ(ValidateAccount(account).message(),
              std::string("credentials.serviceAccount: missing ") + name);
    account[name] = nullptr;
    EXPECT_EQ(ValidateAccount(account).message(),
              std::string("credentials.serviceAccount: missing ") + name);
    account[name] = 7;
    EXPECT_EQ(ValidateAccount(account).message(),
              std::string("credentials.serviceAccount: ") + name + " must be a string");
    account[name] = "";
    EXPECT_EQ(ValidateAccount(account).message(),
              std::string("credentials.serviceAccount: ") + name + " must not be empty");
  }
}

TEST(FcmSpecTest, RejectsMalformedValues) {
  struct Case {
    const char* field;
    std::string value;
    const char* message;
  };
  for (const Case& c : {
           Case{"client_email", "not-an-email",
                "credentials.serviceAccount: client_email is not an e-mail address"},
           Case{"private_key", "-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n",
                "credentials.serviceAccount: private_key is not a valid PEM private key"},
           Case{"private_key", "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC",
                "credentials.serviceAccount: private_key is not a valid PEM private key"},
           Case{"private_key", test::EcPem("P-256"),
                "credentials.serviceAccount: private_key must be an RSA key"},
           Case{"private_key", test::Ed25519Pem(),
                "credentials.serviceAccount: private_key must be an RSA key"},
           Case{"token_uri", "oauth2.googleapis.com/token",
                "credentials.serviceAccount: token_uri is not an absolute http(s) URL"},
           Case{"token_uri", "ftp://oauth2.googleapis.com/token",
                "credentials.serviceAccount: token_uri is not an absolute http(s) URL"},
       }) {
    Json account = ServiceAccount();
    account[c.field] = c.value;
    Status status = ValidateAccount(account);
    EXPECT_EQ(status.code(), Code::kInvalidArgument);
    EXPECT_EQ(status.message(), c.message) << c.field << " = " << c.value;
  }
}

TEST(FcmSpecTest, MaskHidesTheWholeServiceAccount) {
  Json credentials = test::ValidCredentials("fcm");
  Json masked = MaskCredentials(*FindProvider("fcm"), credentials);
  const std::string& shown = masked["serviceAccount"].get_ref<const std::string&>();
  EXPECT_EQ(shown.size(), 8u);
  EXPECT_EQ(shown.substr(0, 4), "****");
  EXPECT_EQ(shown.find("PRIVATE"), std::string::npos);
}

}  // namespace
}  // namespace herald::providers
