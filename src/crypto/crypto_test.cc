#include "crypto/crypto.h"

#include <gtest/gtest.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <memory>
#include <string>

namespace herald::crypto {
namespace {

// Test-only hex decoder; aborts the test on malformed input.
std::string FromHex(std::string_view hex) {
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    ADD_FAILURE() << "bad hex digit " << c;
    return 0;
  };
  EXPECT_EQ(hex.size() % 2, 0u);
  std::string out;
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(static_cast<char>(nibble(hex[i]) << 4 | nibble(hex[i + 1])));
  }
  return out;
}

// ---- digests and MACs ----

TEST(CryptoDigest, Sha256FipsVectors) {
  EXPECT_EQ(Hex(Sha256("abc")), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(Hex(Sha256("")), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(CryptoDigest, HmacSha256Rfc4231) {
  // Test case 1.
  EXPECT_EQ(Hex(HmacSha256(std::string(20, '\x0b'), "Hi There")),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
  // Test case 2: a key shorter than the output.
  EXPECT_EQ(Hex(HmacSha256("Jefe", "what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  // Test case 6: a key longer than the block size is hashed first.
  EXPECT_EQ(Hex(HmacSha256(std::string(131, '\xaa'),
                           "Test Using Larger Than Block-Size Key - Hash Key First")),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}

TEST(CryptoDigest, HmacSha256EmptyKeyAndMessage) {
  EXPECT_EQ(Hex(HmacSha256("", "")),
            "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
}

TEST(CryptoDigest, HexIsLowercase) {
  EXPECT_EQ(Hex(""), "");
  EXPECT_EQ(Hex(std::string("\x00\x01\xab\xff", 4)), "0001abff");
}

TEST(CryptoDigest, ConstantTimeEquals) {
  EXPECT_TRUE(ConstantTimeEquals("", ""));
  EXPECT_TRUE(ConstantTimeEquals("secret", "secret"));
  EXPECT_FALSE(ConstantTimeEquals("secret", "secreT"));
  EXPECT_FALSE(ConstantTimeEquals("secret", "secret2"));
  EXPECT_FALSE(ConstantTimeEquals("", "x"));
  EXPECT_TRUE(ConstantTimeEquals(std::string("a\0b", 3), std::string("a\0b", 3)));
  EXPECT_FALSE(ConstantTimeEquals(std::string("a\0b", 3), std::string("a\0c", 3)));
}

TEST(CryptoDigest, KeyIdOfIsShortHexOfSha256) {
  EXPECT_EQ(KeyIdOf("abc"), "ba7816bf");
  EXPECT_EQ(KeyIdOf(std::string(32, 'k')).size(), 8u);
}

// ---- encodings ----

TEST(CryptoEncoding, Base64Rfc4648Vectors) {
  const std::pair<const char*, const char*> kVectors[] = {
      {"", ""},
      {"f", "Zg=="},
      {"fo", "Zm8="},
      {"foo", "Zm9v"},
      {"foob", "Zm9vYg=="},
      {"fooba", "Zm9vYmE="},
      {"foobar", "Zm9vYmFy"},
  };
  for (const auto& [raw, encoded] : kVectors) {
    EXPECT_EQ(Base64Encode(raw), encoded);
    EXPECT_EQ(Base64Decode(encoded), raw) << encoded;
    std::string unpadded(encoded);
    while (unpadded.ends_with('=')) unpadded.pop_back();
    EXPECT_EQ(Base64UrlEncode(raw), unpadded);
    EXPECT_EQ(Base64Decode(unpadded), raw) << unpadded;
    EXPECT_EQ(Base64UrlDecode(unpadded), raw) << unpadded;
    EXPECT_EQ(Base64UrlDecode(encoded), raw) << encoded;
  }
}

TEST(CryptoEncoding, AlphabetsDiffer) {
  const std::string raw("\xfb\xff\xbf", 3);
  EXPECT_EQ(Base64Encode(raw), "+/+/");
  EXPECT_EQ(Base64UrlEncode(raw), "-_-_");
  EXPECT_EQ(Base64Decode("+/+/"), raw);
  EXPECT_EQ(Base64UrlDecode("-_-_"), raw);
  EXPECT_EQ(Base64Decode("-_-_"), std::nullopt);
  EXPECT_EQ(Base64UrlDecode("+/+/"), std::nullopt);
}

TEST(CryptoEncoding, RoundTripsAllByteValues) {
  std::string raw;
  for (int i = 0; i < 256; ++i) raw.push_back(static_cast<char>(i));
  for (std::size_t n = 0; n <= raw.size(); n += 37) {
    std::string prefix = raw.substr(0, n);
    EXPECT_EQ(Base64Decode(Base64Encode(prefix)), prefix);
    EXPECT_EQ(Base64UrlDecode(Base64UrlEncode(prefix)), prefix);
  }
}

TEST(CryptoEncoding, Base64RejectsInvalidInput) {
  for (const char* bad : {
           "Zm9v!",     // character outside the alphabet
           "Zm 9v",     // whitespace
           "Zm9v\n",    // trailing newline
           "Z",         // 1 mod 4 characters can encode nothing
           "Zm9vY",     // likewise
           "Zg=",       // padding that does not complete a quantum
           "Zm8==",     // too much padding
           "Zg===",     // three pad characters
           "====",      // padding only
           "=Zg=",      // padding in the middle
           "Zg==Zg==",  // data after padding
           "Zh==",      // non-zero unused bits
           "Zm9=",      // non-zero unused bits
       }) {
    EXPECT_EQ(Base64Decode(bad), std::nullopt) << bad;
    EXPECT_EQ(Base64UrlDecode(bad), std::nullopt) << bad;
  }
}

// ---- P-256 ----

// The P-256 base point G (SEC 2), which is the public key of scalar 1.
constexpr std::string_view kGHex =
    "046b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296"
    "4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5";
// -G = (Gx, p - Gy), the public key of scalar n - 1.
constexpr std::string_view kMinusGHex =
    "046b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296"
    "b01cbd1c01e58065711814b583f061e9d431cca994cea1313449bf97c840ae0a";
constexpr std::string_view kOrderHex =
    "ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551";
constexpr std::string_view kOrderMinusOneHex =
    "ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632550";

TEST(CryptoP256, IsP256PublicPoint) {
  std::string g = FromHex(kGHex);
  EXPECT_TRUE(IsP256PublicPoint(g));
  EXPECT_TRUE(IsP256PublicPoint(FromHex(kMinusGHex)));

  std::string off_curve = g;
  off_curve.back() ^= 1;
  EXPECT_FALSE(IsP256PublicPoint(off_curve));

  EXPECT_FALSE(IsP256PublicPoint(""));
  EXPECT_FALSE(IsP256PublicPoint(g.substr(0, 64)));
  EXPECT_FALSE(IsP256PublicPoint(g + '\0'));
  // Compressed form 0x03 || X (Gy is odd), and a hybrid-form prefix, are refused.
  EXPECT_FALSE(IsP256PublicPoint("\x03" + g.substr(1, 32)));
  std::string hybrid = g;
  hybrid[0] = '\x07';
  EXPECT_FALSE(IsP256PublicPoint(hybrid));
  // The point at infinity in SEC1 is a single zero byte; 65 zeros are not a point either.
  EXPECT_FALSE(IsP256PublicPoint(std::string(65, '\0')));
}

TEST(CryptoP256, GeneratedPairsAreValidAndDistinct) {
  auto [priv, pub] = GenerateP256KeyPair();
  EXPECT_EQ(priv.size(), 32u);
  EXPECT_EQ(pub.size(), 65u);
  EXPECT_TRUE(IsP256PublicPoint(pub));
  EXPECT_TRUE(CheckP256KeyPair(priv, pub).ok());

  auto [priv2, pub2] = GenerateP256KeyPair();
  EXPECT_NE(priv, priv2);
  EXPECT_NE(pub, pub2);
}

TEST(CryptoP256, CheckKeyPairKnownScalars) {
  std::string one(31, '\0');
  one.push_back('\x01');
  EXPECT_TRUE(CheckP256KeyPair(one, FromHex(kGHex)).ok());
  EXPECT_TRUE(CheckP256KeyPair(FromHex(kOrderMinusOneHex), FromHex(kMinusGHex)).ok());
  EXPECT_FALSE(CheckP256KeyPair(one, FromHex(kMinusGHex)).ok());
}

TEST(CryptoP256, CheckKeyPairRejectsMismatch) {
  auto [priv, pub] = GenerateP256KeyPair();
  auto [other_priv, other_pub] = GenerateP256KeyPair();
  Status status = CheckP256KeyPair(priv, other_pub);
  EXPECT_EQ(status.code(), Code::kInvalidArgument);
  EXPECT_NE(status.message().find("does not match"), std::string::npos) << status.message();
}

TEST(CryptoP256, CheckKeyPairNamesTheBadHalf) {
  auto [priv, pub] = GenerateP256KeyPair();
  std::string g = FromHex(kGHex);
  for (const std::string& bad_scalar : {std::string(32, '\0'), FromHex(kOrderHex),
                                        std::string(32, '\xff'), priv.substr(1), priv + '\0'}) {
    Status status = CheckP256KeyPair(bad_scalar, g);
    EXPECT_EQ(status.code(), Code::kInvalidArgument);
    EXPECT_NE(status.message().find("private key"), std::string::npos) << status.message();
  }
  std::string off_curve = pub;
  off_curve[10] ^= 0x40;
  for (const std::string& bad_point : {off_curve, pub.substr(0, 33), std::string()}) {
    Status status = CheckP256KeyPair(priv, bad_point);
    EXPECT_EQ(status.code(), Code::kInvalidArgument);
    EXPECT_NE(status.message().find("public key is not"), std::string::npos) << status.message();
  }
}

// ---- PEM ----

struct PkeyFree {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
using TestPkey = std::unique_ptr<EVP_PKEY, PkeyFree>;

enum class PemForm { kPkcs8, kTraditional, kEncrypted };

std::string ToPem(EVP_PKEY* key, PemForm form) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), &BIO_free);
  int ok = 0;
  switch (form) {
    case PemForm::kPkcs8:
      ok = PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr);
      break;
    case PemForm::kTraditional:
      ok = PEM_write_bio_PrivateKey_traditional(bio.get(), key, nullptr, nullptr, 0, nullptr,
                                                nullptr);
      break;
    case PemForm::kEncrypted: {
      unsigned char pass[] = "passphrase";
      ok = PEM_write_bio_PrivateKey(bio.get(), key, EVP_aes_256_cbc(), pass, sizeof(pass) - 1,
                                    nullptr, nullptr);
      break;
    }
  }
  EXPECT_EQ(ok, 1);
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(len));
}

// Keys are generated once: RSA generation takes a noticeable fraction of a second.
class CryptoPem : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    p256_ = new TestPkey(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
    p384_ = new TestPkey(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-384"));
    rsa_ = new TestPkey(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", std::size_t{2048}));
    ed25519_ = new TestPkey(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
  }
  static void TearDownTestSuite() {
    for (TestPkey** key : {&p256_, &p384_, &rsa_, &ed25519_}) {
      delete *key;
      *key = nullptr;
    }
  }
  void SetUp() override {
    ASSERT_TRUE(*p256_ && *p384_ && *rsa_ && *ed25519_) << "test key generation failed";
  }

  static TestPkey* p256_;
  static TestPkey* p384_;
  static TestPkey* rsa_;
  static TestPkey* ed25519_;
};
TestPkey* CryptoPem::p256_ = nullptr;
TestPkey* CryptoPem::p384_ = nullptr;
TestPkey* CryptoPem::rsa_ = nullptr;
TestPkey* CryptoPem::ed25519_ = nullptr;

TEST_F(CryptoPem, ParsesPkcs8Keys) {
  std::string ec = ToPem(p256_->get(), PemForm::kPkcs8);
  ASSERT_NE(ec.find("BEGIN PRIVATE KEY"), std::string::npos);
  Result<KeyType> type = ParsePemPrivateKey(ec);
  ASSERT_TRUE(type.ok()) << type.status().message();
  EXPECT_EQ(*type, KeyType::kEc);

  type = ParsePemPrivateKey(ToPem(rsa_->get(), PemForm::kPkcs8));
  ASSERT_TRUE(type.ok()) << type.status().message();
  EXPECT_EQ(*type, KeyType::kRsa);

  type = ParsePemPrivateKey(ToPem(ed25519_->get(), PemForm::kPkcs8));
  ASSERT_TRUE(type.ok()) << type.status().message();
  EXPECT_EQ(*type, KeyType::kOther);
}

TEST_F(CryptoPem, ParsesTraditionalKeys) {
  std::string ec = ToPem(p256_->get(), PemForm::kTraditional);
  ASSERT_NE(ec.find("BEGIN EC PRIVATE KEY"), std::string::npos);
  Result<KeyType> type = ParsePemPrivateKey(ec);
  ASSERT_TRUE(type.ok()) << type.status().message();
  EXPECT_EQ(*type, KeyType::kEc);

  std::string rsa = ToPem(rsa_->get(), PemForm::kTraditional);
  ASSERT_NE(rsa.find("BEGIN RSA PRIVATE KEY"), std::string::npos);
  type = ParsePemPrivateKey(rsa);
  ASSERT_TRUE(type.ok()) << type.status().message();
  EXPECT_EQ(*type, KeyType::kRsa);
}

TEST_F(CryptoPem, RejectsGarbage) {
  std::string ec = ToPem(p256_->get(), PemForm::kPkcs8);
  std::string corrupted = ec;
  corrupted[corrupted.size() / 2] = '!';
  for (const std::string& bad :
       {std::string(), std::string("not a key"), ec.substr(0, ec.size() / 2), corrupted,
        std::string("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")}) {
    Result<KeyType> type = ParsePemPrivateKey(bad);
    ASSERT_FALSE(type.ok()) << bad;
    EXPECT_EQ(type.status().code(), Code::kInvalidArgument);
    EXPECT_FALSE(PemIsP256PrivateKey(bad));
  }
}

TEST_F(CryptoPem, EncryptedKeyFailsWithoutPrompting) {
  std::string encrypted = ToPem(p256_->get(), PemForm::kEncrypted);
  ASSERT_NE(encrypted.find("BEGIN ENCRYPTED PRIVATE KEY"), std::string::npos);
  EXPECT_FALSE(ParsePemPrivateKey(encrypted).ok());
  EXPECT_FALSE(PemIsP256PrivateKey(encrypted));
}

TEST_F(CryptoPem, PemIsP256PrivateKey) {
  EXPECT_TRUE(PemIsP256PrivateKey(ToPem(p256_->get(), PemForm::kPkcs8)));
  EXPECT_TRUE(PemIsP256PrivateKey(ToPem(p256_->get(), PemForm::kTraditional)));
  EXPECT_FALSE(PemIsP256PrivateKey(ToPem(p384_->get(), PemForm::kPkcs8)));
  EXPECT_FALSE(PemIsP256PrivateKey(ToPem(rsa_->get(), PemForm::kPkcs8)));
  EXPECT_FALSE(PemIsP256PrivateKey(ToPem(ed25519_->get(), PemForm::kPkcs8)));
}

// ---- AEAD ----

// McGrew & Viega, "The Galois/Counter Mode of Operation", test cases 13-16 (AES-256).
struct GcmVector {
  const char* key;
  const char* nonce;
  const char* plaintext;
  const char* aad;
  const char* ciphertext;
  const char* tag;
};
constexpr char kGcmKey[] = "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308";
constexpr char kGcmPlain[] =
    "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
    "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39";
const GcmVector kGcmVectors[] = {
    {// Test case 13: empty plaintext and AAD.
     "0000000000000000000000000000000000000000000000000000000000000000", "000000000000000000000000",
     "", "", "", "530f8afbc74536b9a963b4f1c4cb738b"},
    {// Test case 14: one zero block.
     "0000000000000000000000000000000000000000000000000000000000000000", "000000000000000000000000",
     "00000000000000000000000000000000", "", "cea7403d4d606b6e074ec5d3baf39d18",
     "d0d1c8a799996bf0265b98b5d48ab919"},
    {// Test case 16: partial final block, with AAD.
     kGcmKey, "cafebabefacedbaddecaf888", kGcmPlain, "feedfacedeadbeeffeedfacedeadbeefabaddad2",
     "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
     "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662",
     "76fc6ece0f4e1768cddf8853bb2d551b"},
};

TEST(CryptoAead, Aes256GcmPublishedVectors) {
  for (const GcmVector& v : kGcmVectors) {
    std::string key = FromHex(v.key), nonce = FromHex(v.nonce), aad = FromHex(v.aad);
    std::string expected = FromHex(std::string(v.ciphertext) + v.tag);
    Result<std::string> sealed = Aes256GcmEncrypt(key, nonce, FromHex(v.plaintext), aad);
    ASSERT_TRUE(sealed.ok()) << sealed.status().message();
    EXPECT_EQ(Hex(*sealed), Hex(expected));

    Result<std::string> opened = Aes256GcmDecrypt(key, nonce, expected, aad);
    ASSERT_TRUE(opened.ok()) << opened.status().message();
    EXPECT_EQ(Hex(*opened), v.plaintext);
  }
}

TEST(CryptoAead, Aes256GcmRejectsBadSizesAndTampering) {
  std::string key(32, 'k'), nonce(12, 'n');
  EXPECT_FALSE(Aes256GcmEncrypt(key.substr(1), nonce, "x", "").ok());
  EXPECT_FALSE(Aes256GcmEncrypt(key, nonce + 'n', "x", "").ok());
  Result<std::string> sealed = Aes256GcmEncrypt(key, nonce, "hello", "aad");
  ASSERT_TRUE(sealed.ok());
  EXPECT_TRUE(Aes256GcmDecrypt(key, nonce, *sealed, "aad").ok());
  EXPECT_FALSE(Aes256GcmDecrypt(key, nonce, *sealed, "aaD").ok());
  EXPECT_FALSE(Aes256GcmDecrypt(key, nonce, sealed->substr(1), "aad").ok());
  EXPECT_FALSE(Aes256GcmDecrypt(key, nonce, sealed->substr(0, 15), "aad").ok());
}

// ---- KeyRing ----

std::string TestKey(char fill) { return std::string(32, fill); }

TEST(CryptoKeyRing, SealOpenRoundTrip) {
  KeyRing ring("k1", {{"k1", TestKey('a')}});
  for (const std::string& plaintext : {std::string(), std::string("apns-secret"),
                                       std::string(1000, '\0'), std::string("\xff\x00\x01", 3)}) {
    std::string sealed = ring.Seal(plaintext, "row-42");
    EXPECT_TRUE(sealed.starts_with("v1.k1.")) << sealed;
    Result<std::string> opened = ring.Open(sealed, "row-42");
    ASSERT_TRUE(opened.ok()) << opened.status().message();
    EXPECT_EQ(*opened, plaintext);
  }
  // Without associated data too.
  Result<std::string> opened = ring.Open(ring.Seal("plain"));
  ASSERT_TRUE(opened.ok());
  EXPECT_EQ(*opened, "plain");
}

TEST(CryptoKeyRing, SealUsesFreshNonces) {
  KeyRing ring("k1", {{"k1", TestKey('a')}});
  EXPECT_NE(ring.Seal("same"), ring.Seal("same"));
}

TEST(CryptoKeyRing, SealedFormHasNonceCiphertextAndTag) {
  KeyRing ring("k1", {{"k1", TestKey('a')}});
  std::string sealed = ring.Seal("12345");
  std::optional<std::string> raw = Base64Decode(sealed.substr(6));
  ASSERT_TRUE(raw.has_value());
  EXPECT_EQ(raw->size(), 12u + 5u + 16u);
}

// Flips bit 0 of the raw byte at `index` (negative counts from the end) in a sealed value.
std::string FlipByte(const std::string& sealed, int index) {
  std::size_t dot = sealed.rfind('.');
  std::string raw = *Base64Decode(sealed.substr(dot + 1));
  raw[index >= 0 ? index : raw.size() + index] ^= 1;
  return sealed.substr(0, dot + 1) + Base64Encode(raw);
}

TEST(CryptoKeyRing, DetectsTampering) {
  KeyRing ring("k1", {{"k1", TestKey('a')}});
  std::string sealed = ring.Seal("apns-secret", "row-42");
  ASSERT_TRUE(ring.Open(sealed, "row-42").ok());

  auto expect_rejected = [&](const std::string& value, std::string_view associated) {
    Result<std::string> opened = ring.Open(value, associated);
    ASSERT_FALSE(opened.ok()) << value;
    EXPECT_EQ(opened.status().code(), Code::kInvalidArgument);
  };
  expect_rejected(FlipByte(sealed, 0), "row-42");    // nonce
  expect_rejected(FlipByte(sealed, 12), "row-42");   // ciphertext
  expect_rejected(FlipByte(sealed, -1), "row-42");   // tag
  expect_rejected(FlipByte(sealed, -16), "row-42");  // tag
  expect_rejected(sealed, "row-43");
  expect_rejected(sealed, "");
}

TEST(CryptoKeyRing, RejectsUnknownKeyAndMalformedForms) {
  KeyRing ring("k1", {{"k1", TestKey('a')}});
  KeyRing other("k2", {{"k2", TestKey('b')}});
  Result<std::string> opened = ring.Open(other.Seal("x"));
  ASSERT_FALSE(opened.ok());
  EXPECT_NE(opened.status().message().find("unknown key"), std::string::npos);

  std::string sealed = ring.Seal("x");
  std::string body = sealed.substr(6);
  for (const std::string& bad : {
           std::string(),
           std::string("v1"),
           std::string("v1.k1"),
           std::string("v2.k1.") + body,  // unknown version
           std::string("v1.k1.!!!!"),     // not base64
           std::string("v1.k1.") + body.substr(0, body.size() - 4),
           std::string("v1.k1.AAAA"),   // too short for nonce and tag
           std::string("v1..") + body,  // empty key id
           " " + sealed,
       }) {
    Result<std::string> result = ring.Open(bad);
    ASSERT_FALSE(result.ok()) << bad;
    EXPECT_EQ(result.status().code(), Code::kInvalidArgument);
  }
}

TEST(CryptoKeyRing, RotationOpensValuesSealedByOldPrimary) {
  KeyRing old_ring("old", {{"old", TestKey('a')}});
  std::string sealed_old = old_ring.Seal("secret", "row-1");

  KeyRing rotated("new", {{"old", TestKey('a')}, {"new", TestKey('b')}});
  EXPECT_EQ(rotated.primary_id(), "new");
  Result<std::string> opened = rotated.Open(sealed_old, "row-1");
  ASSERT_TRUE(opened.ok()) << opened.status().message();
  EXPECT_EQ(*opened, "secret");

  std::string sealed_new = rotated.Seal("secret", "row-1");
  EXPECT_TRUE(sealed_new.starts_with("v1.new."));
  EXPECT_FALSE(old_ring.Open(sealed_new, "row-1").ok());
  // A key id naming a different key of the ring does not open the value.
  std::string relabeled = "v1.old." + sealed_new.substr(7);
  EXPECT_FALSE(rotated.Open(relabeled, "row-1").ok());
}

TEST(CryptoKeyRing, CreateValidates) {
  EXPECT_TRUE(KeyRing::Create("k1", {{"k1", TestKey('a')}}).ok());
  EXPECT_TRUE(KeyRing::Create(KeyIdOf(TestKey('a')), {{KeyIdOf(TestKey('a')), TestKey('a')}}).ok());
  EXPECT_FALSE(KeyRing::Create("k2", {{"k1", TestKey('a')}}).ok());
  EXPECT_FALSE(KeyRing::Create("k1", {}).ok());
  EXPECT_FALSE(KeyRing::Create("k1", {{"k1", std::string(31, 'a')}}).ok());
  EXPECT_FALSE(KeyRing::Create("k1", {{"k1", TestKey('a')}, {"k2", std::string(33, 'b')}}).ok());
  EXPECT_FALSE(KeyRing::Create("k.1", {{"k.1", TestKey('a')}}).ok());
  EXPECT_FALSE(KeyRing::Create("", {{"", TestKey('a')}}).ok());
}

TEST(CryptoKeyRingDeathTest, ConstructorAbortsOnInvalidRing) {
  EXPECT_DEATH(KeyRing("missing", {{"k1", TestKey('a')}}), "not in the ring");
}

}  // namespace
}  // namespace herald::crypto
