#include "crypto/certificates.h"

#include <gtest/gtest.h>

#include <ctime>
#include <memory>
#include <string>

#include "crypto/keys.h"
#include "crypto/test_util.h"

namespace herald::crypto {
namespace {

using test_util::RunQuietly;
using test_util::TempDir;

bool Contains(const Status& status, std::string_view what) {
  return status.message().find(what) != std::string::npos;
}

// Certificates, keys and .p12 files made once with the openssl tool, as an operator would.
class CryptoPkcs12 : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!test_util::HaveOpensslCli()) return;
    dir_ = new TempDir();
    const TempDir& d = *dir_;
    auto self_signed = [&](const std::string& name, const std::string& subject) {
      return RunQuietly("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30"
                 " -subj '" + subject + "' -keyout " + d.Quoted(name + ".key") + " -out " +
                 d.Quoted(name + ".crt")) == 0;
    };
    auto pkcs12 = [&](const std::string& out, const std::string& options) {
      return RunQuietly("openssl pkcs12 -export " + options + " -out " + d.Quoted(out)) == 0;
    };
    const std::string leaf = " -in " + d.Quoted("leaf.crt") + " -inkey " + d.Quoted("leaf.key");
    ready_ =
        self_signed("leaf", "/UID=com.example.app/CN=Apple Push Services: com.example.app/C=US") &&
        self_signed("other", "/CN=Other") &&
        pkcs12("modern.p12", leaf + " -passout pass:s3cret") &&
        pkcs12("chain.p12", leaf + " -certfile " + d.Quoted("other.crt") + " -passout pass:s3cret") &&
        pkcs12("empty.p12", leaf + " -passout pass:") &&
        pkcs12("nokey.p12", " -nokeys -in " + d.Quoted("leaf.crt") + " -passout pass:s3cret") &&
        pkcs12("nocert.p12", " -nocerts -inkey " + d.Quoted("leaf.key") + " -passout pass:s3cret");
    // RC2-40/3DES, as Keychain used to export: needs the legacy provider to write, too.
    legacy_ = ready_ && pkcs12("legacy.p12", "-legacy" + leaf + " -passout pass:s3cret");
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  void SetUp() override {
    if (!test_util::HaveOpensslCli()) GTEST_SKIP() << "openssl not on PATH";
    ASSERT_TRUE(ready_) << "openssl could not make the test files";
  }
  static std::string File(std::string_view name) { return dir_->Read(name); }

  static void ExpectLeaf(const ClientCertificate& cert) {
    EXPECT_EQ(cert.certificate_pem, File("leaf.crt"));
    EXPECT_EQ(cert.subject, "C=US,CN=Apple Push Services: com.example.app,UID=com.example.app");
    std::int64_t now = std::time(nullptr);
    EXPECT_GT(cert.not_after_unix, now + 29 * 86400);
    EXPECT_LE(cert.not_after_unix, now + 30 * 86400);
    Result<PrivateKey> key = PrivateKey::FromPem(cert.private_key_pem);
    ASSERT_TRUE(key.ok()) << key.status().message();
    Result<PrivateKey> original = PrivateKey::FromPem(File("leaf.key"));
    ASSERT_TRUE(original.ok());
    EXPECT_EQ(key->P256PublicPoint(), original->P256PublicPoint());
    EXPECT_NE(cert.private_key_pem.find("BEGIN PRIVATE KEY"), std::string::npos);
  }

  static TempDir* dir_;
  static bool ready_;
  static bool legacy_;
};
TempDir* CryptoPkcs12::dir_ = nullptr;
bool CryptoPkcs12::ready_ = false;
bool CryptoPkcs12::legacy_ = false;

TEST_F(CryptoPkcs12, ParsesWithTheRightPassword) {
  Result<ClientCertificate> cert = ParsePkcs12(File("modern.p12"), "s3cret");
  ASSERT_TRUE(cert.ok()) << cert.status().message();
  ExpectLeaf(*cert);
  EXPECT_EQ(cert->chain_pem, "");

  Result<ClientCertificate> empty = ParsePkcs12(File("empty.p12"), "");
  ASSERT_TRUE(empty.ok()) << empty.status().message();
  ExpectLeaf(*empty);
}

TEST_F(CryptoPkcs12, KeepsTheChain) {
  Result<ClientCertificate> cert = ParsePkcs12(File("chain.p12"), "s3cret");
  ASSERT_TRUE(cert.ok()) << cert.status().message();
  ExpectLeaf(*cert);
  EXPECT_EQ(cert->chain_pem, File("other.crt"));
}

TEST_F(CryptoPkcs12, LegacyEncryptionNeedsTheLegacyProvider) {
  if (!legacy_) GTEST_SKIP() << "this openssl cannot write legacy PKCS#12 files";
  Result<ClientCertificate> cert = ParsePkcs12(File("legacy.p12"), "s3cret");
  ASSERT_TRUE(cert.ok()) << cert.status().message();
  ExpectLeaf(*cert);
  // Still a wrong password, not an algorithm problem, with the legacy file.
  Result<ClientCertificate> wrong = ParsePkcs12(File("legacy.p12"), "wrong");
  ASSERT_FALSE(wrong.ok());
  EXPECT_TRUE(Contains(wrong.status(), "wrong password")) << wrong.status().message();
  // And the default library context is unchanged afterwards on this thread.
  ASSERT_TRUE(ParsePkcs12(File("modern.p12"), "s3cret").ok());
}

TEST_F(CryptoPkcs12, WrongPasswordAndGarbage) {
  for (std::string_view password : {"wrong", "", "s3cret "}) {
    Result<ClientCertificate> cert = ParsePkcs12(File("modern.p12"), password);
    ASSERT_FALSE(cert.ok()) << password;
    EXPECT_EQ(cert.status().code(), Code::kInvalidArgument);
    EXPECT_TRUE(Contains(cert.status(), "wrong password")) << cert.status().message();
  }
  for (const std::string& garbage : {std::string("garbage"), std::string(), File("leaf.crt"),
                                     File("modern.p12").substr(0, 200)}) {
    Result<ClientCertificate> cert = ParsePkcs12(garbage, "s3cret");
    ASSERT_FALSE(cert.ok());
    EXPECT_EQ(cert.status().code(), Code::kInvalidArgument);
    EXPECT_TRUE(Contains(cert.status(), "PKCS#12")) << cert.status().message();
  }
  EXPECT_FALSE(ParsePkcs12(File("modern.p12"), std::string("s3cret\0", 7)).ok());
}

TEST_F(CryptoPkcs12, NeedsBothKeyAndCertificate) {
  Result<ClientCertificate> no_key = ParsePkcs12(File("nokey.p12"), "s3cret");
  ASSERT_FALSE(no_key.ok());
  EXPECT_TRUE(Contains(no_key.status(), "no private key")) << no_key.status().message();
  Result<ClientCertificate> no_cert = ParsePkcs12(File("nocert.p12"), "s3cret");
  ASSERT_FALSE(no_cert.ok());
  EXPECT_TRUE(Contains(no_cert.status(), "no certificate")) << no_cert.status().message();
}

TEST_F(CryptoPkcs12, CertificateAndKeyPem) {
  Result<ClientCertificate> cert = ParseCertificateAndKey(File("leaf.crt"), File("leaf.key"));
  ASSERT_TRUE(cert.ok()) << cert.status().message();
  ExpectLeaf(*cert);
  // Chain after the leaf; key inside the certificate file.
  Result<ClientCertificate> combined =
      ParseCertificateAndKey(File("leaf.crt") + File("other.crt") + File("leaf.key"), "");
  ASSERT_TRUE(combined.ok()) << combined.status().message();
  ExpectLeaf(*combined);
  EXPECT_EQ(combined->chain_pem, File("other.crt"));

  Result<ClientCertificate> mismatch = ParseCertificateAndKey(File("leaf.crt"), File("other.key"));
  ASSERT_FALSE(mismatch.ok());
  EXPECT_EQ(mismatch.status().code(), Code::kInvalidArgument);
  EXPECT_TRUE(Contains(mismatch.status(), "does not match")) << mismatch.status().message();

  EXPECT_FALSE(ParseCertificateAndKey("garbage", File("leaf.key")).ok());
  EXPECT_FALSE(ParseCertificateAndKey(File("leaf.crt"), "garbage").ok());
  EXPECT_FALSE(ParseCertificateAndKey(File("leaf.crt"), "").ok());
  EXPECT_FALSE(ParseCertificateAndKey(File("leaf.key"), File("leaf.key")).ok());
}

}  // namespace
}  // namespace herald::crypto
