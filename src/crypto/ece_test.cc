#include "crypto/ece.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "core/ids.h"
#include "crypto/crypto.h"
#include "crypto/test_util.h"
#include "crypto/keys.h"

namespace herald::crypto {
namespace {

using test_util::B64;

bool Contains(const Status& status, std::string_view what) {
  return status.message().find(what) != std::string::npos;
}

// ---- RFC 8291 Appendix A (protocols.md §3.4) ----

constexpr std::string_view kPlaintext = "V2hlbiBJIGdyb3cgdXAsIEkgd2FudCB0byBiZSBhIHdhdGVybWVsb24";
constexpr std::string_view kAsPublic =
    "BP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A8";
constexpr std::string_view kAsPrivate = "yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw";
constexpr std::string_view kUaPublic =
    "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4";
constexpr std::string_view kUaPrivate = "q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94";
constexpr std::string_view kSalt = "DGv6ra1nlYgDCS1FRnbzlw";
constexpr std::string_view kAuthSecret = "BTBZMqHH6r4Tts7J_aSIgg";
constexpr std::string_view kBody =
    "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6T"
    "lzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4"
    "a-fN";

TEST(CryptoEce, Rfc8291AppendixAKeysAndEcdh) {
  EXPECT_EQ(B64(kPlaintext), "When I grow up, I want to be a watermelon");
  // The public keys follow from the private ones.
  Result<PrivateKey> as = PrivateKey::FromP256Scalar(B64(kAsPrivate));
  Result<PrivateKey> ua = PrivateKey::FromP256Scalar(B64(kUaPrivate));
  ASSERT_TRUE(as.ok() && ua.ok());
  EXPECT_EQ(as->P256PublicPoint(), B64(kAsPublic));
  EXPECT_EQ(ua->P256PublicPoint(), B64(kUaPublic));
  // ECDH agrees in both directions.
  const std::string ecdh = B64("kyrL1jIIOHEzg3sM2ZWRHDRB62YACZhhSlknJ672kSs");
  EXPECT_EQ(detail::P256Ecdh(B64(kAsPrivate), B64(kUaPublic)), ecdh);
  EXPECT_EQ(detail::P256Ecdh(B64(kUaPrivate), B64(kAsPublic)), ecdh);
}

TEST(CryptoEce, Rfc8291AppendixAEveryIntermediateValue) {
  detail::WebPushTrace trace;
  Result<std::string> body = detail::WebPushEncryptTraced(
      B64(kUaPublic), B64(kAuthSecret), B64(kPlaintext), B64(kAsPrivate), B64(kSalt), &trace);
  ASSERT_TRUE(body.ok()) << body.status().message();
  EXPECT_EQ(Base64UrlEncode(trace.ecdh_secret), "kyrL1jIIOHEzg3sM2ZWRHDRB62YACZhhSlknJ672kSs");
  EXPECT_EQ(Base64UrlEncode(trace.prk_key), "Snr3JMxaHVDXHWJn5wdC52WjpCtd2EIEGBykDcZW32k");
  EXPECT_EQ(Base64UrlEncode(trace.key_info),
            "V2ViUHVzaDogaW5mbwAEJXGyvs3942BVGq8e0PTNNmwRzr5VX4m8t7GGpTM5FzFo7OLr4BhZe9MEebhuPI-"
            "OztV3ylkYfpJGmQ22ggCLDgT-M_SrDepxkU21WCP3O1SUj0EwbZIHMtu5pZpTKGSCIA5Zent7wmC6HCJ5mFgJ"
            "kuk5cwAvMBKiiujwa7t45ewP");
  EXPECT_EQ(trace.key_info.size(), 144u);
  EXPECT_EQ(Base64UrlEncode(trace.ikm), "S4lYMb_L0FxCeq0WhDx813KgSYqU26kOyzWUdsXYyrg");
  EXPECT_EQ(Base64UrlEncode(trace.prk), "09_eUZGrsvxChDCGRCdkLiDXrReGOEVeSCdCcPBSJSc");
  EXPECT_EQ(Base64UrlEncode(trace.cek_info), "Q29udGVudC1FbmNvZGluZzogYWVzMTI4Z2NtAA");
  EXPECT_EQ(Base64UrlEncode(trace.cek), "oIhVW04MRdy2XN9CiKLxTg");
  EXPECT_EQ(Base64UrlEncode(trace.nonce_info), "Q29udGVudC1FbmNvZGluZzogbm9uY2UA");
  EXPECT_EQ(Base64UrlEncode(trace.nonce), "4h_95klXJ5E_qnoN");
  EXPECT_EQ(Base64UrlEncode(trace.header),
            "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocIn"
            "mYWAmS6TlzAC8wEqKK6PBru3jl7A8");
  EXPECT_EQ(Hex(trace.header.substr(0, 21)), "0c6bfaadad67958803092d454676f3970000100041");
  EXPECT_EQ(Base64UrlEncode(trace.ciphertext),
            "8pfeW0KbunFT06SuDKoJH9Ql87S1QUrdirN6GcG7sFz1y1sqLgVi1VhjVkHsUoEsbI_0LpXMuGvnzQ");
  EXPECT_EQ(*body, trace.header + trace.ciphertext);
}

TEST(CryptoEce, Rfc8291AppendixAFinalBodyByteForByte) {
  Result<std::string> body = WebPushEncryptDeterministic(B64(kUaPublic), B64(kAuthSecret),
                                                         B64(kPlaintext), B64(kAsPrivate), B64(kSalt));
  ASSERT_TRUE(body.ok()) << body.status().message();
  EXPECT_EQ(body->size(), 144u);  // not the 145 of RFC 8291 §5's Content-Length
  EXPECT_EQ(*body, B64(kBody));
}

TEST(CryptoEce, Rfc8291AppendixADecryptsPublishedBody) {
  Result<std::string> plaintext = WebPushDecrypt(B64(kUaPrivate), B64(kAuthSecret), B64(kBody));
  ASSERT_TRUE(plaintext.ok()) << plaintext.status().message();
  EXPECT_EQ(*plaintext, "When I grow up, I want to be a watermelon");
}

// ---- RFC 8188 §3 examples (protocols.md §3.4 item 7) ----

TEST(CryptoEce, Rfc8188SingleRecordExample) {
  Result<std::string> plaintext =
      Aes128GcmDecrypt(B64("yqdlZ-tYemfogSmv7Ws5PQ"),
                       B64("I1BsxtFttlv3u_Oo94xnmwAAEAAA-NAVub2qFgBEuQKRapoZu-IxkIva3MEB1PD-ly8Thjg"));
  ASSERT_TRUE(plaintext.ok()) << plaintext.status().message();
  EXPECT_EQ(*plaintext, "I am the walrus");
}

constexpr std::string_view kTwoRecordKey = "BO3ZVPxUlnLORbVGMpbT1Q";
constexpr std::string_view kTwoRecordBody =
    "uNCkWiNYzKTnBN9ji3-qWAAAABkCYTHOG8chz_gnvgOqdGYovxyjuqRyJFjEDyoF1Fvkj6hQPdPHI51OEUKEpgz3SsLWIq"
    "S_uA";

TEST(CryptoEce, Rfc8188TwoRecordExampleUsesNonceXorSequence) {
  std::string body = B64(kTwoRecordBody);
  ASSERT_EQ(Hex(body.substr(16, 5)), "0000001902");  // rs = 25, idlen = 2
  EXPECT_EQ(body.substr(21, 2), "a1");
  Result<std::string> plaintext = Aes128GcmDecrypt(B64(kTwoRecordKey), body);
  ASSERT_TRUE(plaintext.ok()) << plaintext.status().message();
  EXPECT_EQ(*plaintext, "I am the walrus");
}

// An independent RFC 8188 encoder for crafting bodies: HKDF from crypto.h's HMAC, AES-GCM
// straight from OpenSSL. `records` are the padded record plaintexts, delimiters included.
std::string Encode(std::string_view key, std::string_view salt, std::uint32_t rs,
                   std::string_view keyid, const std::vector<std::string>& records) {
  std::string prk = HmacSha256(salt, key);
  std::string cek = HmacSha256(prk, std::string("Content-Encoding: aes128gcm\0\x01", 29)).substr(0, 16);
  std::string nonce = HmacSha256(prk, std::string("Content-Encoding: nonce\0\x01", 25)).substr(0, 12);
  std::string body(salt);
  for (int shift = 24; shift >= 0; shift -= 8) body.push_back(static_cast<char>(rs >> shift));
  body.push_back(static_cast<char>(keyid.size()));
  body.append(keyid);
  for (std::size_t seq = 0; seq < records.size(); ++seq) {
    std::string iv = nonce;
    iv[11] = static_cast<char>(iv[11] ^ static_cast<char>(seq));
    std::unique_ptr<EVP_CIPHER_CTX, decltype(&EVP_CIPHER_CTX_free)> ctx(EVP_CIPHER_CTX_new(),
                                                                        &EVP_CIPHER_CTX_free);
    std::string out(records[seq].size() + 16, '\0');
    auto* o = reinterpret_cast<unsigned char*>(out.data());
    int len = 0;
    EXPECT_EQ(EVP_EncryptInit_ex2(ctx.get(), EVP_aes_128_gcm(),
                                  reinterpret_cast<const unsigned char*>(cek.data()),
                                  reinterpret_cast<const unsigned char*>(iv.data()), nullptr),
              1);
    EXPECT_EQ(EVP_EncryptUpdate(ctx.get(), o, &len,
                                reinterpret_cast<const unsigned char*>(records[seq].data()),
                                static_cast<int>(records[seq].size())),
              1);
    EXPECT_EQ(EVP_EncryptFinal_ex(ctx.get(), o + records[seq].size(), &len), 1);
    EXPECT_EQ(EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_AEAD_GET_TAG, 16, o + records[seq].size()), 1);
    body += out;
  }
  return body;
}

class CryptoEceRecords : public ::testing::Test {
 protected:
  std::string key_ = B64(kTwoRecordKey);
  std::string salt_ = B64(kTwoRecordBody).substr(0, 16);
  Result<std::string> Decrypt(const std::vector<std::string>& records, std::uint32_t rs = 25) {
    return Aes128GcmDecrypt(key_, Encode(key_, salt_, rs, "a1", records));
  }
};

TEST_F(CryptoEceRecords, EncoderReproducesTheRfcExample) {
  using std::string_literals::operator""s;
  // "I am th" || 0x01 || one padding byte, then "e walrus" || 0x02.
  EXPECT_EQ(Encode(key_, salt_, 25, "a1", {"I am th\x01\x00"s, "e walrus\x02"s}),
            B64(kTwoRecordBody));
}

TEST_F(CryptoEceRecords, PaddingAndManyRecords) {
  using std::string_literals::operator""s;
  Result<std::string> out = Decrypt({"ab\x01\0\0\0\0\0\0"s, "\x01\0\0\0\0\0\0\0\0"s, "cdefghij\x01"s,
                                     "k\x02\0\0"s});
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_EQ(*out, "abcdefghijk");
  // A last record exactly rs bytes long ends the body on a record boundary.
  out = Decrypt({"abcdefgh\x01"s, "ijklmnop\x02"s});
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_EQ(*out, "abcdefghijklmnop");
}

TEST_F(CryptoEceRecords, DelimiterRules) {
  using std::string_literals::operator""s;
  Result<std::string> out = Decrypt({"abc\x02"s});  // the one record is also the last
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(*out, "abc");
  // Last record marked "more follows": the body was cut at a record boundary.
  out = Decrypt({"abcdefgh\x01"s, "ijklmnop\x01"s});
  ASSERT_FALSE(out.ok());
  EXPECT_TRUE(Contains(out.status(), "truncated")) << out.status().message();
  // A non-last record marked as last.
  out = Decrypt({"abcdefgh\x02"s, "ij\x02"s});
  ASSERT_FALSE(out.ok());
  EXPECT_TRUE(Contains(out.status(), "delimiter")) << out.status().message();
  // Unknown delimiter values; all-zero records.
  EXPECT_FALSE(Decrypt({"abc\x03"s}).ok());
  EXPECT_FALSE(Decrypt({"abc\x03\0"s}).ok());
  out = Decrypt({"\0\0\0"s});
  ASSERT_FALSE(out.ok());
  EXPECT_TRUE(Contains(out.status(), "no delimiter")) << out.status().message();
  EXPECT_FALSE(Decrypt({"abcdefgh\x01"s, "\0\0\0\0\0\0\0\0\0"s}).ok());
  // A record of tag only.
  EXPECT_FALSE(Decrypt({""s}).ok());
}

TEST_F(CryptoEceRecords, MalformedHeaders) {
  using std::string_literals::operator""s;
  std::string body = Encode(key_, salt_, 25, "a1", {"abc\x02"s});
  EXPECT_FALSE(Aes128GcmDecrypt(key_, body.substr(0, 20)).ok());
  Result<std::string> out = Aes128GcmDecrypt(key_, body.substr(0, 22));  // inside the keyid
  ASSERT_FALSE(out.ok());
  EXPECT_TRUE(Contains(out.status(), "truncated")) << out.status().message();
  EXPECT_FALSE(Aes128GcmDecrypt(key_, body.substr(0, 23)).ok());  // header only, no record
  EXPECT_FALSE(Aes128GcmDecrypt(key_, "").ok());
  EXPECT_FALSE(Aes128GcmDecrypt(key_.substr(1), body).ok());
  out = Aes128GcmDecrypt(key_, Encode(key_, salt_, 17, "", {"abc\x02"s}));
  ASSERT_FALSE(out.ok());
  EXPECT_TRUE(Contains(out.status(), "below the minimum")) << out.status().message();
  // The second record of the RFC example cut short, or dropped.
  std::string two = B64(kTwoRecordBody);
  EXPECT_FALSE(Aes128GcmDecrypt(key_, two.substr(0, two.size() - 1)).ok());
  EXPECT_FALSE(Aes128GcmDecrypt(key_, two.substr(0, 23 + 25)).ok());
}

// ---- Web Push round trips and limits ----

struct Subscription {
  std::string ua_private, ua_public, auth;
};
Subscription NewSubscription() {
  auto [priv, pub] = GenerateP256KeyPair();
  return {priv, pub, RandomBytes(16)};
}

TEST(CryptoEce, RoundTripWithRandomKeys) {
  Subscription sub = NewSubscription();
  const std::string message = R"({"title":"Hello","body":"Round trip \u00e9"})";
  Result<std::string> first = WebPushEncrypt(sub.ua_public, sub.auth, message);
  Result<std::string> second = WebPushEncrypt(sub.ua_public, sub.auth, message);
  ASSERT_TRUE(first.ok() && second.ok());
  EXPECT_EQ(first->size(), 86 + message.size() + 1 + 16);
  EXPECT_NE(first->substr(0, 16), second->substr(0, 16));   // fresh salt
  EXPECT_NE(first->substr(21, 65), second->substr(21, 65));  // fresh key pair
  EXPECT_EQ(Hex(first->substr(16, 5)), "0000100041");        // rs 4096, idlen 65
  EXPECT_TRUE(IsP256PublicPoint(first->substr(21, 65)));
  for (const std::string& body : {*first, *second}) {
    Result<std::string> plaintext = WebPushDecrypt(sub.ua_private, sub.auth, body);
    ASSERT_TRUE(plaintext.ok()) << plaintext.status().message();
    EXPECT_EQ(*plaintext, message);
  }
  // A prepared key decrypts the same.
  Result<PrivateKey> ua_key = PrivateKey::FromP256Scalar(sub.ua_private);
  ASSERT_TRUE(ua_key.ok());
  Result<std::string> prepared = WebPushDecrypt(*ua_key, sub.auth, *first);
  ASSERT_TRUE(prepared.ok()) << prepared.status().message();
  EXPECT_EQ(*prepared, message);
  EXPECT_FALSE(WebPushDecrypt(PrivateKey::GenerateP256(), sub.auth, *first).ok());

  Result<std::string> empty = WebPushEncrypt(sub.ua_public, sub.auth, "");
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(empty->size(), 86u + 17u);
  Result<std::string> back = WebPushDecrypt(sub.ua_private, sub.auth, *empty);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, "");
}

TEST(CryptoEce, TamperingAndWrongKeysAreRejected) {
  Subscription sub = NewSubscription();
  Result<std::string> body = WebPushEncrypt(sub.ua_public, sub.auth, "secret message");
  ASSERT_TRUE(body.ok());
  for (std::size_t at : {std::size_t{0}, std::size_t{90}, body->size() - 1}) {  // salt, ct, tag
    std::string tampered = *body;
    tampered[at] = static_cast<char>(tampered[at] ^ 0x01);
    Result<std::string> out = WebPushDecrypt(sub.ua_private, sub.auth, tampered);
    ASSERT_FALSE(out.ok()) << at;
    EXPECT_EQ(out.status().code(), Code::kInvalidArgument);
  }
  std::string other_key = *body;
  other_key.replace(21, 65, GenerateP256KeyPair().second);
  EXPECT_FALSE(WebPushDecrypt(sub.ua_private, sub.auth, other_key).ok());
  EXPECT_FALSE(WebPushDecrypt(sub.ua_private, RandomBytes(16), *body).ok());
  EXPECT_FALSE(WebPushDecrypt(GenerateP256KeyPair().first, sub.auth, *body).ok());
  EXPECT_FALSE(WebPushDecrypt(sub.ua_private, sub.auth, body->substr(0, 60)).ok());
  EXPECT_FALSE(WebPushDecrypt(sub.ua_private, sub.auth, body->substr(0, 86)).ok());
  std::string short_keyid = *body;
  short_keyid[20] = 64;
  EXPECT_FALSE(WebPushDecrypt(sub.ua_private, sub.auth, short_keyid).ok());
}

TEST(CryptoEce, PlaintextLimitIs3993Bytes) {
  Subscription sub = NewSubscription();
  std::string largest(kWebPushMaxPlaintext, 'x');
  Result<std::string> body = WebPushEncrypt(sub.ua_public, sub.auth, largest);
  ASSERT_TRUE(body.ok()) << body.status().message();
  EXPECT_EQ(body->size(), 4096u);
  Result<std::string> back = WebPushDecrypt(sub.ua_private, sub.auth, *body);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, largest);

  Result<std::string> too_big = WebPushEncrypt(sub.ua_public, sub.auth, largest + "x");
  ASSERT_FALSE(too_big.ok());
  EXPECT_EQ(too_big.status().code(), Code::kInvalidArgument);
  EXPECT_TRUE(Contains(too_big.status(), "3994 bytes")) << too_big.status().message();
  EXPECT_TRUE(Contains(too_big.status(), "3993")) << too_big.status().message();
}

TEST(CryptoEce, ValidatesKeysAndSizes) {
  Subscription sub = NewSubscription();
  std::string off_curve = sub.ua_public;
  off_curve[40] = static_cast<char>(off_curve[40] ^ 0x10);
  for (const std::string& bad : {off_curve, sub.ua_public.substr(0, 64), std::string(65, '\0'),
                                 "\x03" + sub.ua_public.substr(1, 32)}) {
    Result<std::string> body = WebPushEncrypt(bad, sub.auth, "x");
    ASSERT_FALSE(body.ok());
    EXPECT_TRUE(Contains(body.status(), "P-256")) << body.status().message();
  }
  EXPECT_FALSE(WebPushEncrypt(sub.ua_public, sub.auth.substr(1), "x").ok());
  EXPECT_FALSE(WebPushEncryptDeterministic(sub.ua_public, sub.auth, "x", std::string(32, '\0'),
                                           B64(kSalt))
                   .ok());
  EXPECT_FALSE(
      WebPushEncryptDeterministic(sub.ua_public, sub.auth, "x", B64(kAsPrivate), "short").ok());
  EXPECT_TRUE(detail::P256Ecdh(std::string(32, '\xff'), sub.ua_public).empty());
}

TEST(CryptoEce, ConcurrentEncryptionsUsePerThreadContexts) {
  Subscription sub = NewSubscription();
  std::vector<std::thread> threads;
  std::vector<int> failures(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) {
        std::string message = "thread " + std::to_string(t) + " message " + std::to_string(i);
        Result<std::string> body = WebPushEncrypt(sub.ua_public, sub.auth, message);
        Result<std::string> back =
            body.ok() ? WebPushDecrypt(sub.ua_private, sub.auth, *body) : body;
        if (!back.ok() || *back != message) ++failures[t];
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(failures, std::vector<int>(4, 0));
  // The per-thread contexts of this thread still reproduce the vector after all that.
  Result<std::string> body = WebPushEncryptDeterministic(B64(kUaPublic), B64(kAuthSecret),
                                                         B64(kPlaintext), B64(kAsPrivate), B64(kSalt));
  ASSERT_TRUE(body.ok());
  EXPECT_EQ(*body, B64(kBody));
}

}  // namespace
}  // namespace herald::crypto
