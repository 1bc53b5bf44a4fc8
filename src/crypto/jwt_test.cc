#include "crypto/jwt.h"

#include <gtest/gtest.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>

#include <memory>
#include <string>

#include "core/json.h"
#include "crypto/crypto.h"
#include "crypto/test_util.h"

namespace herald::crypto {
namespace {

using test_util::B64;

// ---- RFC 7515 Appendix A.2: RS256 is deterministic, so the JWS must match byte for byte ----

struct Jwk {
  const char* name;  // OSSL_PKEY_PARAM_RSA_*
  std::string_view value;
};
constexpr Jwk kA2Key[] = {
    {OSSL_PKEY_PARAM_RSA_N,
     "ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4Q"
     "lL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSXndS5z5rexMdbBY"
     "UsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNm"
     "oudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ"},
    {OSSL_PKEY_PARAM_RSA_E, "AQAB"},
    {OSSL_PKEY_PARAM_RSA_D,
     "Eq5xpGnNCivDflJsRQBXHx1hdR1k6Ulwe2JZD50LpXyWPEAeP88vLNO97IjlA7_GQ5sLKMgvfTeXZx9SE-7YwVol2NXOoAJ"
     "e46sui395IW_GO-pWJ1O0BkTGoVEn2bKVRUCgu-GjBVaYLU6f3l9kJfFNS3E0QbVdxzubSu3Mkqzjkn439X0M_V51gfpRLI"
     "9JYanrC4D4qAdGcopV_0ZHHzQlBjudU2QvXt4ehNYTCBr6XCLQUShb1juUO1ZdiYoFaFQT5Tw8bGUl_x_jTj3ccPDVZFD9p"
     "IuhLhBOneufuBiB4cS98l2SR_RQyGWSeWjnczT0QU91p1DhOVRuOopznQ"},
    {OSSL_PKEY_PARAM_RSA_FACTOR1,
     "4BzEEOtIpmVdVEZNCqS7baC4crd0pqnRH_5IB3jw3bcxGn6QLvnEtfdUdiYrqBdss1l58BQ3KhooKeQTa9AB0Hw_Py5PJdT"
     "JNPY8cQn7ouZ2KKDcmnPGBY5t7yLc1QlQ5xHdwW1VhvKn-nXqhJTBgIPgtldC-KDV5z-y2XDwGUc"},
    {OSSL_PKEY_PARAM_RSA_FACTOR2,
     "uQPEfgmVtjL0Uyyx88GZFF1fOunH3-7cepKmtH4pxhtCoHqpWmT8YAmZxaewHgHAjLYsp1ZSe7zFYHj7C6ul7TjeLQeZD_Y"
     "wD66t62wDmpe_HlB-TnBA-njbglfIsRLtXlnDzQkv5dTltRJ11BKBBypeeF6689rjcJIDEz9RWdc"},
    {OSSL_PKEY_PARAM_RSA_EXPONENT1,
     "BwKfV3Akq5_MFZDFZCnW-wzl-CCo83WoZvnLQwCTeDv8uzluRSnm71I3QCLdhrqE2e9YkxvuxdBfpT_PI7Yz-FOKnu1R6Hs"
     "JeDCjn12Sk3vmAktV2zb34MCdy7cpdTh_YVr7tss2u6vneTwrA86rZtu5Mbr1C1XsmvkxHQAdYo0"},
    {OSSL_PKEY_PARAM_RSA_EXPONENT2,
     "h_96-mK1R_7glhsum81dZxjTnYynPbZpHziZjeeHcXYsXaaMwkOlODsWa7I9xXDoRwbKgB719rrmI2oKr6N3Do9U0ajaHF-"
     "NKJnwgjMd2w9cjz3_-kyNlxAr2v4IKhGNpmM5iIgOS1VZnOZ68m6_pbLBSp3nssTdlqvd0tIiTHU"},
    {OSSL_PKEY_PARAM_RSA_COEFFICIENT1,
     "IYd7DHOhrWvxkwPQsRM2tOgrjbcrfvtQJipd-DlcxyVuuM9sQLdgjVk2oy26F0EmpScGLq2MowX7fhd_QJQ3ydy5cY7YIBi"
     "87w93IKLEdfnbJtoOPLUW0ITrJReOgo1cq9SbsxYawBgfp_gh6A5603k2-ZQwVK0JKSHuLFkuQ3U"},
};
constexpr std::string_view kA2Jws =
    "eyJhbGciOiJSUzI1NiJ9"
    ".eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ"
    ".cC4hiUPoj9Eetdgtv3hF80EGrhuB__dzERat0XF9g2VtQgr9PJbu3XOiZj5RZmh7AAuHIm4Bh-0Qc_lF5YKt_O8W2Fp5ju"
    "jGbds9uJdbF9CUAr7t1dnZcAcQjbKBYNX4BAynRFdiuB--f_nZLgrnbyTyWzO75vRK5h6xBArLIARNPvkSjtQBMHlb1L07Qe"
    "7K0GarZRmB_eSN9383LcOLn6_dO--xi12jzDwusC-eOkHWEsqtFZESc6BfI7noOPqvhJ1phCnvWh6IeYI2w9QOYEUipUTI8n"
    "p6LbgGY9Fs98rqVt5AXLIhWkWywlVmtVrBp0igcN_IoypGlUPQGe77Rw";
constexpr std::string_view kRfcClaims =
    "{\"iss\":\"joe\",\r\n \"exp\":1300819380,\r\n \"http://example.com/is_root\":true}";

// The JWK as a PKCS#8 PEM, built with EVP_PKEY_fromdata.
std::string A2KeyPem() {
  std::unique_ptr<OSSL_PARAM_BLD, decltype(&OSSL_PARAM_BLD_free)> bld(OSSL_PARAM_BLD_new(),
                                                                      &OSSL_PARAM_BLD_free);
  std::vector<std::unique_ptr<BIGNUM, decltype(&BN_free)>> numbers;
  for (const Jwk& part : kA2Key) {
    std::string raw = B64(part.value);
    numbers.emplace_back(BN_bin2bn(reinterpret_cast<const unsigned char*>(raw.data()),
                                   static_cast<int>(raw.size()), nullptr),
                         &BN_free);
    EXPECT_EQ(OSSL_PARAM_BLD_push_BN(bld.get(), part.name, numbers.back().get()), 1);
  }
  std::unique_ptr<OSSL_PARAM, decltype(&OSSL_PARAM_free)> params(OSSL_PARAM_BLD_to_param(bld.get()),
                                                                 &OSSL_PARAM_free);
  std::unique_ptr<EVP_PKEY_CTX, decltype(&EVP_PKEY_CTX_free)> ctx(
      EVP_PKEY_CTX_new_from_name(nullptr, "RSA", nullptr), &EVP_PKEY_CTX_free);
  EVP_PKEY* raw = nullptr;
  EXPECT_EQ(EVP_PKEY_fromdata_init(ctx.get()), 1);
  EXPECT_EQ(EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_KEYPAIR, params.get()), 1);
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(raw, &EVP_PKEY_free);
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), &BIO_free);
  EXPECT_EQ(PEM_write_bio_PrivateKey(bio.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr), 1);
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(len));
}

TEST(CryptoJwt, Rfc7515AppendixA2Rs256ByteForByte) {
  EXPECT_EQ(Base64UrlEncode(kRfcClaims), kA2Jws.substr(21, kA2Jws.find('.', 21) - 21));
  Result<PrivateKey> key = PrivateKey::FromPem(A2KeyPem());
  ASSERT_TRUE(key.ok()) << key.status().message();
  ASSERT_EQ(key->type(), KeyType::kRsa);
  Result<std::string> jwt = SignJwt(*key, R"({"alg":"RS256"})", kRfcClaims);
  ASSERT_TRUE(jwt.ok()) << jwt.status().message();
  EXPECT_EQ(*jwt, kA2Jws);

  Result<DecodedJwt> decoded = DecodeJwt(kA2Jws);
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(decoded->header_json, R"({"alg":"RS256"})");
  EXPECT_EQ(decoded->claims_json, kRfcClaims);
  EXPECT_EQ(decoded->signature.size(), 256u);
  EXPECT_TRUE(VerifyRs256(key->PublicKeyPem(), decoded->signing_input, decoded->signature));
}

TEST(CryptoJwt, Rfc7515AppendixA3Es256Verifies) {
  Result<DecodedJwt> decoded = DecodeJwt(
      "eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNv"
      "bS9pc19yb290Ijp0cnVlfQ.DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfK"
      "TUJqPP3-Kg6NU1Q");
  ASSERT_TRUE(decoded.ok()) << decoded.status().message();
  EXPECT_EQ(decoded->header_json, R"({"alg":"ES256"})");
  EXPECT_EQ(decoded->claims_json, kRfcClaims);
  std::string point = "\x04" + B64("f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU") +
                      B64("x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0");
  EXPECT_TRUE(VerifyEs256(point, decoded->signing_input, decoded->signature));
}

TEST(CryptoJwt, Es256ProviderTokenRoundTrip) {
  PrivateKey key = PrivateKey::GenerateP256();
  const std::string header = R"({"alg":"ES256","kid":"ABC123DEFG"})";
  const std::string claims = R"({"iss":"DEF123GHIJ","iat":1700000000})";
  Result<std::string> jwt = SignJwt(key, header, claims);
  ASSERT_TRUE(jwt.ok()) << jwt.status().message();
  EXPECT_EQ(jwt->substr(0, jwt->find('.')), Base64UrlEncode(header));
  Result<DecodedJwt> decoded = DecodeJwt(*jwt);
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(decoded->header_json, header);
  EXPECT_EQ(decoded->claims_json, claims);
  EXPECT_EQ(decoded->signature.size(), 64u);
  EXPECT_EQ(decoded->signing_input, jwt->substr(0, jwt->rfind('.')));
  EXPECT_TRUE(VerifyEs256(key.P256PublicPoint(), decoded->signing_input, decoded->signature));
  std::string error;
  std::optional<Json> parsed = ParseJson(decoded->claims_json, &error);
  ASSERT_TRUE(parsed.has_value());
  EXPECT_EQ((*parsed)["iss"], "DEF123GHIJ");
}

TEST(CryptoJwt, AlgMustMatchTheKey) {
  PrivateKey ec = PrivateKey::GenerateP256();
  Result<PrivateKey> rsa = PrivateKey::FromPem(A2KeyPem());
  ASSERT_TRUE(rsa.ok());
  const std::string claims = R"({"iss":"x"})";
  struct Case {
    const PrivateKey* key;
    std::string header;
    std::string_view complaint;
  };
  for (const Case& c : std::initializer_list<Case>{
           {&ec, R"({"alg":"RS256"})", "needs an RSA key"},
           {&*rsa, R"({"alg":"ES256","typ":"JWT"})", "needs a P-256 key"},
           {&ec, R"({"alg":"HS256"})", "unsupported JWT alg"},
           {&ec, R"({"alg":"none"})", "unsupported JWT alg"},
           {&ec, R"({"typ":"JWT"})", "no \"alg\""},
           {&ec, R"({"alg":256})", "no \"alg\""},
           {&ec, R"(["alg","ES256"])", "not a JSON object"},
           {&ec, "{\"alg\":\"ES256\"", "not a JSON object"},
       }) {
    Result<std::string> jwt = SignJwt(*c.key, c.header, claims);
    ASSERT_FALSE(jwt.ok()) << c.header;
    EXPECT_EQ(jwt.status().code(), Code::kInvalidArgument);
    EXPECT_NE(jwt.status().message().find(c.complaint), std::string::npos)
        << c.header << ": " << jwt.status().message();
  }
  EXPECT_FALSE(SignJwt(ec, R"({"alg":"ES256"})", "not json").ok());
  EXPECT_FALSE(SignJwt(ec, R"({"alg":"ES256"})", "[1]").ok());
  EXPECT_TRUE(SignJwt(ec, R"({"typ":"JWT","alg":"ES256"})", claims).ok());
}

TEST(CryptoJwt, DecodeRejectsMalformedTokens) {
  for (std::string_view bad : {"", "abc", "e30.e30", "e30.e30.AA.AA", "e30..AA", ".e30.AA",
                               "e30.e30.A", "e3+.e30.AA", "e30.e30.AA=="}) {
    Result<DecodedJwt> decoded = DecodeJwt(bad);
    EXPECT_FALSE(decoded.ok()) << bad;
  }
  Result<DecodedJwt> unsigned_token = DecodeJwt("e30.e30.");  // parses; verification will fail
  ASSERT_TRUE(unsigned_token.ok());
  EXPECT_EQ(unsigned_token->signature, "");
}

}  // namespace
}  // namespace herald::crypto
