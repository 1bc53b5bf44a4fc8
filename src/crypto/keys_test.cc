#include "crypto/keys.h"

#include <gtest/gtest.h>
#include <openssl/encoder.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "crypto/crypto.h"
#include "crypto/test_util.h"

namespace herald::crypto {
namespace {

using test_util::B64;

using PkeyOwner = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;

std::string Pem(EVP_PKEY* key, bool traditional) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), &BIO_free);
  int ok = traditional ? PEM_write_bio_PrivateKey_traditional(bio.get(), key, nullptr, nullptr, 0,
                                                              nullptr, nullptr)
                       : PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr,
                                                  nullptr);
  EXPECT_EQ(ok, 1);
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(len));
}

// RSA keys take a while to generate: one for the whole file.
const PrivateKey& Rsa2048() {
  static const PrivateKey* key = [] {
    PkeyOwner raw(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", std::size_t{2048}), &EVP_PKEY_free);
    return new PrivateKey(*PrivateKey::FromPem(Pem(raw.get(), false)));
  }();
  return *key;
}

// RFC 7515 Appendix A.3: the ES256 example key and JWS.
constexpr std::string_view kA3X = "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU";
constexpr std::string_view kA3Y = "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0";
constexpr std::string_view kA3D = "jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI";
constexpr std::string_view kA3SigningInput =
    "eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNv"
    "bS9pc19yb290Ijp0cnVlfQ";
constexpr std::string_view kA3Signature =
    "DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q";

TEST(CryptoKeys, LoadsPemForms) {
  PkeyOwner ec(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"), &EVP_PKEY_free);
  for (bool traditional : {false, true}) {  // PKCS#8, then SEC1 "BEGIN EC PRIVATE KEY"
    std::string pem = Pem(ec.get(), traditional);
    EXPECT_EQ(pem.find("BEGIN EC PRIVATE KEY") != std::string::npos, traditional);
    Result<PrivateKey> key = PrivateKey::FromPem(pem);
    ASSERT_TRUE(key.ok()) << key.status().message();
    EXPECT_EQ(key->type(), KeyType::kEc);
    EXPECT_TRUE(key->IsP256());
    EXPECT_EQ(key->P256PublicPoint().size(), 65u);
    EXPECT_TRUE(IsP256PublicPoint(key->P256PublicPoint()));
  }
  Result<PrivateKey> pkcs1 = PrivateKey::FromPem(Pem(Rsa2048().pkey(), true));
  ASSERT_TRUE(pkcs1.ok()) << pkcs1.status().message();
  EXPECT_EQ(pkcs1->type(), KeyType::kRsa);
  EXPECT_FALSE(pkcs1->IsP256());
  EXPECT_EQ(pkcs1->P256PublicPoint(), "");

  PkeyOwner p384(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-384"), &EVP_PKEY_free);
  Result<PrivateKey> other_curve = PrivateKey::FromPem(Pem(p384.get(), false));
  ASSERT_TRUE(other_curve.ok());
  EXPECT_EQ(other_curve->type(), KeyType::kEc);
  EXPECT_FALSE(other_curve->IsP256());
  EXPECT_FALSE(other_curve->SignEs256("x").ok());
}

TEST(CryptoKeys, RejectsOtherInput) {
  for (std::string_view bad : {"", "garbage", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"}) {
    Result<PrivateKey> key = PrivateKey::FromPem(bad);
    ASSERT_FALSE(key.ok());
    EXPECT_EQ(key.status().code(), Code::kInvalidArgument);
  }
  PkeyOwner ed(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"), &EVP_PKEY_free);
  Result<PrivateKey> ed_key = PrivateKey::FromPem(Pem(ed.get(), false));
  ASSERT_FALSE(ed_key.ok());
  EXPECT_NE(ed_key.status().message().find("ED25519"), std::string::npos)
      << ed_key.status().message();
  // Encrypted PEM fails without prompting.
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), &BIO_free);
  unsigned char pass[] = "pass";
  ASSERT_EQ(PEM_write_bio_PrivateKey(bio.get(), PrivateKey::GenerateP256().pkey(),
                                     EVP_aes_256_cbc(), pass, 4, nullptr, nullptr),
            1);
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  EXPECT_FALSE(PrivateKey::FromPem(std::string(data, static_cast<std::size_t>(len))).ok());
}

TEST(CryptoKeys, FromP256ScalarDerivesThePublicPoint) {
  // RFC 7515 A.3's private key gives its published public key.
  Result<PrivateKey> key = PrivateKey::FromP256Scalar(B64(kA3D));
  ASSERT_TRUE(key.ok()) << key.status().message();
  EXPECT_EQ(key->P256PublicPoint(), "\x04" + B64(kA3X) + B64(kA3Y));
  auto [scalar, point] = GenerateP256KeyPair();
  Result<PrivateKey> generated = PrivateKey::FromP256Scalar(scalar);
  ASSERT_TRUE(generated.ok());
  EXPECT_EQ(generated->P256PublicPoint(), point);
  for (const std::string& bad : {std::string(32, '\0'), std::string(32, '\xff'), scalar.substr(1),
                                 scalar + '\0'}) {
    Result<PrivateKey> rejected = PrivateKey::FromP256Scalar(bad);
    ASSERT_FALSE(rejected.ok());
    EXPECT_EQ(rejected.status().code(), Code::kInvalidArgument);
  }
}

TEST(CryptoKeys, CopiesShareTheKeyAndMovesEmpty) {
  PrivateKey key = PrivateKey::GenerateP256();
  PrivateKey copy = key;
  EXPECT_EQ(copy.pkey(), key.pkey());
  EXPECT_EQ(copy.P256PublicPoint(), key.P256PublicPoint());
  PrivateKey moved = std::move(copy);
  EXPECT_EQ(moved.pkey(), key.pkey());
  EXPECT_EQ(copy.pkey(), nullptr);  // NOLINT(bugprone-use-after-move): documented state
  EXPECT_FALSE(copy.SignEs256("x").ok());
  copy = moved;
  EXPECT_TRUE(copy.SignEs256("x").ok());
}

TEST(CryptoKeys, Es256SignaturesAreRawFixedWidthAndVerify) {
  PrivateKey key = PrivateKey::GenerateP256();
  const std::string& point = key.P256PublicPoint();
  int short_r = 0;
  int short_s = 0;
  // A 32-byte R or S with a leading zero byte (DER drops it) comes once in 256 for each: enough
  // iterations that both cases occur with overwhelming probability (miss: ~e^-11.7 each).
  for (int i = 0; i < 3000; ++i) {
    std::string message = "message " + std::to_string(i);
    Result<std::string> sig = key.SignEs256(message);
    ASSERT_TRUE(sig.ok()) << sig.status().message();
    ASSERT_EQ(sig->size(), 64u);
    short_r += (*sig)[0] == '\0';
    short_s += (*sig)[32] == '\0';
    if ((*sig)[0] == '\0' || (*sig)[32] == '\0' || i < 20) {
      ASSERT_TRUE(VerifyEs256(point, message, *sig)) << i;
    }
  }
  EXPECT_GT(short_r, 0);
  EXPECT_GT(short_s, 0);

  Result<std::string> sig = key.SignEs256("payload");
  ASSERT_TRUE(sig.ok());
  EXPECT_TRUE(VerifyEs256(point, "payload", *sig));
  EXPECT_FALSE(VerifyEs256(point, "payloaD", *sig));
  for (std::size_t byte : {0u, 31u, 32u, 63u}) {
    std::string flipped = *sig;
    flipped[byte] = static_cast<char>(flipped[byte] ^ 0x01);
    EXPECT_FALSE(VerifyEs256(point, "payload", flipped)) << byte;
  }
  EXPECT_FALSE(VerifyEs256(PrivateKey::GenerateP256().P256PublicPoint(), "payload", *sig));
  EXPECT_FALSE(VerifyEs256(point, "payload", sig->substr(0, 63)));
  EXPECT_FALSE(VerifyEs256(point, "payload", detail::EcdsaRawToDer(*sig)));
  EXPECT_FALSE(VerifyEs256(point.substr(1), "payload", *sig));
  EXPECT_FALSE(VerifyEs256(point, "payload", std::string(64, '\0')));
}

TEST(CryptoKeys, VerifiesRfc7515AppendixA3) {
  std::string point = "\x04" + B64(kA3X) + B64(kA3Y);
  EXPECT_TRUE(VerifyEs256(point, kA3SigningInput, B64(kA3Signature)));
  std::string tampered = B64(kA3Signature);
  tampered[63] = static_cast<char>(tampered[63] ^ 0x01);
  EXPECT_FALSE(VerifyEs256(point, kA3SigningInput, tampered));
}

TEST(CryptoKeys, EcdsaDerConversion) {
  using std::string_literals::operator""s;
  // R with its high bit set (DER adds 0x00), S short (DER drops leading zeros).
  std::string raw = std::string(1, '\x80') + std::string(31, '\x11') + std::string(30, '\0') + "\x7f\x01"s;
  std::string der = detail::EcdsaRawToDer(raw);
  EXPECT_EQ(Hex(der), "3027022100" "80" + std::string(62, '1') + "0202" "7f01");
  EXPECT_EQ(detail::EcdsaDerToRaw(der, 32), raw);
  // Zero halves encode as INTEGER 0.
  EXPECT_EQ(Hex(detail::EcdsaRawToDer(std::string(64, '\0'))), "3006020100020100");
  EXPECT_EQ(detail::EcdsaDerToRaw(detail::EcdsaRawToDer(std::string(64, '\0')), 32),
            std::string(64, '\0'));
  // Malformed: wrong tags, trailing bytes, too wide, negative, bad lengths.
  EXPECT_EQ(detail::EcdsaDerToRaw("", 32), "");
  EXPECT_EQ(detail::EcdsaDerToRaw(der + "\x00"s, 32), "");
  EXPECT_EQ(detail::EcdsaDerToRaw(der, 16), "");
  EXPECT_EQ(detail::EcdsaDerToRaw("\x30\x06\x02\x01\x80\x02\x01\x01"s, 32), "");
  EXPECT_EQ(detail::EcdsaDerToRaw("\x31\x06\x02\x01\x01\x02\x01\x01"s, 32), "");
  EXPECT_EQ(detail::EcdsaDerToRaw("\x30\x07\x02\x01\x01\x02\x01\x01"s, 32), "");
  EXPECT_EQ(detail::EcdsaDerToRaw("\x30\x06\x02\x01\x01\x02\x02\x01"s, 32), "");
  EXPECT_EQ(Hex(detail::EcdsaDerToRaw("\x30\x06\x02\x01\x01\x02\x01\x02"s, 2)), "00010002");
}

TEST(CryptoKeys, OpensslCliVerifiesAHeraldEs256Signature) {
  if (!test_util::HaveOpensslCli()) GTEST_SKIP() << "openssl not on PATH";
  PrivateKey key = PrivateKey::GenerateP256();
  const std::string message = "eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJURUFNSUQiLCJpYXQiOjE3MDAwMDAwMDB9";
  Result<std::string> sig = key.SignEs256(message);
  ASSERT_TRUE(sig.ok());
  test_util::TempDir dir;
  dir.Write("pub.pem", key.PublicKeyPem());
  dir.Write("msg", message);
  dir.Write("sig.der", detail::EcdsaRawToDer(*sig));
  EXPECT_EQ(test_util::RunQuietly("openssl dgst -sha256 -verify " + dir.Quoted("pub.pem") + " -signature " +
                         dir.Quoted("sig.der") + " " + dir.Quoted("msg")),
            0);
  dir.Write("msg", message + "x");
  EXPECT_NE(test_util::RunQuietly("openssl dgst -sha256 -verify " + dir.Quoted("pub.pem") + " -signature " +
                         dir.Quoted("sig.der") + " " + dir.Quoted("msg")),
            0);
}

TEST(CryptoKeys, Rs256SignAndVerify) {
  const PrivateKey& key = Rsa2048();
  Result<std::string> sig = key.SignRs256("assertion");
  ASSERT_TRUE(sig.ok()) << sig.status().message();
  EXPECT_EQ(sig->size(), 256u);
  Result<std::string> again = key.SignRs256("assertion");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*sig, *again);  // PKCS#1 v1.5 is deterministic
  std::string spki = key.PublicKeyPem();
  EXPECT_NE(spki.find("BEGIN PUBLIC KEY"), std::string::npos);
  EXPECT_TRUE(VerifyRs256(spki, "assertion", *sig));
  EXPECT_FALSE(VerifyRs256(spki, "assertioN", *sig));
  std::string flipped = *sig;
  flipped[100] = static_cast<char>(flipped[100] ^ 0x01);
  EXPECT_FALSE(VerifyRs256(spki, "assertion", flipped));
  EXPECT_FALSE(VerifyRs256("garbage", "assertion", *sig));
  EXPECT_FALSE(VerifyRs256(PrivateKey::GenerateP256().PublicKeyPem(), "assertion", *sig));

  // PKCS#1 "BEGIN RSA PUBLIC KEY" is accepted too.
  std::unique_ptr<OSSL_ENCODER_CTX, decltype(&OSSL_ENCODER_CTX_free)> encoder(
      OSSL_ENCODER_CTX_new_for_pkey(key.pkey(), EVP_PKEY_PUBLIC_KEY, "PEM", "type-specific",
                                    nullptr),
      &OSSL_ENCODER_CTX_free);
  unsigned char* data = nullptr;
  std::size_t len = 0;
  ASSERT_EQ(OSSL_ENCODER_to_data(encoder.get(), &data, &len), 1);
  std::string pkcs1(reinterpret_cast<char*>(data), len);
  OPENSSL_free(data);
  EXPECT_NE(pkcs1.find("BEGIN RSA PUBLIC KEY"), std::string::npos) << pkcs1;
  EXPECT_TRUE(VerifyRs256(pkcs1, "assertion", *sig));

  EXPECT_EQ(PrivateKey::GenerateP256().SignRs256("x").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(key.SignEs256("x").status().code(), Code::kInvalidArgument);
}

TEST(CryptoKeys, OneKeySignsFromManyThreads) {
  PrivateKey ec = PrivateKey::GenerateP256();
  const PrivateKey& rsa = Rsa2048();
  std::string spki = rsa.PublicKeyPem();
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      PrivateKey mine = ec;  // copies share the EVP_PKEY
      for (int i = 0; i < 40; ++i) {
        std::string message = std::to_string(t) + ":" + std::to_string(i);
        Result<std::string> es = mine.SignEs256(message);
        if (!es.ok() || !VerifyEs256(ec.P256PublicPoint(), message, *es)) ++failures;
        if (i % 8 == 0) {
          Result<std::string> rs = rsa.SignRs256(message);
          if (!rs.ok() || !VerifyRs256(spki, message, *rs)) ++failures;
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
}

}  // namespace
}  // namespace herald::crypto
