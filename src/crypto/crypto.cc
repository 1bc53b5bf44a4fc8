#include "crypto/crypto.h"

#include "crypto/internal.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>

#include <array>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <memory>

#include "core/ids.h"
#include "crypto/internal.h"

namespace herald::crypto {
namespace {

using std::string_view_literals::operator""sv;

using internal::BioPtr;
using internal::CipherCtxPtr;
using internal::Deleter;
using internal::PkeyCtxPtr;
using internal::PkeyPtr;
using BnPtr = std::unique_ptr<BIGNUM, Deleter<BN_clear_free>>;
using ParamBldPtr = std::unique_ptr<OSSL_PARAM_BLD, Deleter<OSSL_PARAM_BLD_free>>;
using ParamsPtr = std::unique_ptr<OSSL_PARAM, Deleter<OSSL_PARAM_free>>;

using internal::kP256PointSize;
using internal::kP256ScalarSize;
constexpr std::size_t kAesKeySize = 32;
constexpr std::size_t kGcmNonceSize = 12;
constexpr std::size_t kGcmTagSize = 16;
constexpr std::string_view kSealedPrefix = "v1.";
// The order n of the P-256 group, big-endian; valid private scalars are 1..n-1.
constexpr std::string_view kP256Order =
    "\xFF\xFF\xFF\xFF\x00\x00\x00\x00\xFF\xFF\xFF\xFF\xFF\xFF\xFF\xFF"
    "\xBC\xE6\xFA\xAD\xA7\x17\x9E\x84\xF3\xB9\xCA\xC2\xFC\x63\x25\x51"sv;
static_assert(kP256Order.size() == kP256ScalarSize);

// For failures that cannot happen short of a broken OpenSSL or memory exhaustion.
[[noreturn]] void Die(const char* what) {
  std::fprintf(stderr, "herald::crypto: %s failed\n", what);
  std::abort();
}

// Failures on untrusted input leave entries on OpenSSL's thread-local error queue; drop them so
// they cannot be mistaken for the cause of a later, unrelated failure.
struct ClearErrorsOnExit {
  ~ClearErrorsOnExit() { ERR_clear_error(); }
};

const unsigned char* Bytes(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}
unsigned char* Bytes(std::string& s) { return reinterpret_cast<unsigned char*>(s.data()); }

// ---- base64 ----

constexpr std::string_view kBase64Std =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
constexpr std::string_view kBase64Url =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

using ReverseTable = std::array<std::int8_t, 256>;  // -1 marks characters outside the alphabet

constexpr ReverseTable MakeReverse(std::string_view alphabet) {
  ReverseTable table{};
  table.fill(-1);
  for (std::size_t i = 0; i < alphabet.size(); ++i) {
    table[static_cast<unsigned char>(alphabet[i])] = static_cast<std::int8_t>(i);
  }
  return table;
}
constexpr ReverseTable kReverseStd = MakeReverse(kBase64Std);
constexpr ReverseTable kReverseUrl = MakeReverse(kBase64Url);

std::string EncodeBase64(std::string_view raw, std::string_view alphabet, bool pad) {
  std::string out;
  out.reserve((raw.size() + 2) / 3 * 4);
  std::uint32_t bits = 0;
  int nbits = 0;
  for (unsigned char c : raw) {
    bits = (bits << 8) | c;
    nbits += 8;
    while (nbits >= 6) {
      nbits -= 6;
      out.push_back(alphabet[(bits >> nbits) & 0x3F]);
    }
  }
  if (nbits > 0) out.push_back(alphabet[(bits << (6 - nbits)) & 0x3F]);
  if (pad) out.append((4 - out.size() % 4) % 4, '=');
  return out;
}

// Strict: padding, if present, must be exactly right; the unused low bits of the final
// character must be zero, so every byte string has exactly one accepted encoding (plus its
// padded/unpadded twin).
std::optional<std::string> DecodeBase64(std::string_view text, const ReverseTable& reverse) {
  std::size_t pad = 0;
  while (pad < 2 && text.ends_with('=')) {
    text.remove_suffix(1);
    ++pad;
  }
  if (pad > 0 && (text.size() + pad) % 4 != 0) return std::nullopt;
  if (text.size() % 4 == 1) return std::nullopt;

  std::string out;
  out.reserve(text.size() * 3 / 4);
  std::uint32_t bits = 0;
  int nbits = 0;
  for (char c : text) {
    std::int8_t v = reverse[static_cast<unsigned char>(c)];
    if (v < 0) return std::nullopt;
    bits = (bits << 6) | static_cast<std::uint32_t>(v);
    nbits += 6;
    if (nbits >= 8) {
      nbits -= 8;
      out.push_back(static_cast<char>((bits >> nbits) & 0xFF));
    }
  }
  if ((bits & ((1u << nbits) - 1)) != 0) return std::nullopt;
  return out;
}

// ---- P-256 ----

// Builds a P-256 EVP_PKEY from an uncompressed point and, optionally, a private scalar. The
// import decodes the point, which rejects points that are not on the curve.
PkeyPtr MakeP256Key(std::string_view point, std::string_view scalar = {}) {
  ParamBldPtr bld(OSSL_PARAM_BLD_new());
  if (!bld) Die("OSSL_PARAM_BLD_new");
  BnPtr priv;
  bool ok = OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, "P-256", 0) &&
            OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(),
                                             point.size());
  if (ok && !scalar.empty()) {
    priv.reset(BN_secure_new());
    ok = priv && BN_bin2bn(Bytes(scalar), static_cast<int>(scalar.size()), priv.get()) &&
         OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_PRIV_KEY, priv.get());
  }
  ParamsPtr params(ok ? OSSL_PARAM_BLD_to_param(bld.get()) : nullptr);
  if (!params) Die("building P-256 key parameters");

  PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr));
  EVP_PKEY* key = nullptr;
  int selection = scalar.empty() ? EVP_PKEY_PUBLIC_KEY : EVP_PKEY_KEYPAIR;
  if (!ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
      EVP_PKEY_fromdata(ctx.get(), &key, selection, params.get()) != 1) {
    return nullptr;
  }
  return PkeyPtr(key);
}

// ---- PEM ----

// Encrypted keys must fail rather than prompt on the terminal for a passphrase.
int NoPassphrase(char* /*buf*/, int /*size*/, int /*rwflag*/, void* /*userdata*/) { return -1; }

PkeyPtr ReadPemPrivateKey(std::string_view pem) {
  if (pem.empty() || pem.size() > INT_MAX) return nullptr;
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) Die("BIO_new_mem_buf");
  return PkeyPtr(PEM_read_bio_PrivateKey(bio.get(), nullptr, NoPassphrase, nullptr));
}

// ---- key ring ----

Status ValidateRing(const std::string& primary_id, const std::map<std::string, std::string>& keys) {
  for (const auto& [id, key] : keys) {
    if (id.empty() || id.find('.') != std::string::npos) {
      return Status::InvalidArgument("key id \"" + id + "\" is empty or contains '.'");
    }
    if (key.size() != kAesKeySize) {
      return Status::InvalidArgument("key \"" + id + "\" is not 32 bytes");
    }
  }
  if (!keys.contains(primary_id)) {
    return Status::InvalidArgument("primary key id \"" + primary_id + "\" is not in the ring");
  }
  return Status::Ok();
}

}  // namespace

// ---- digests and MACs ----

std::string Sha256(std::string_view data) {
  // SHA-256 fetched once and one context per thread: EVP_Digest with EVP_sha256() looks the
  // implementation up again on every call (a locked search in OpenSSL 3), and an API key is
  // hashed on every request.
  struct MdCtxFree {
    void operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }
  };
  static EVP_MD* const sha256 = [] {
    EVP_MD* md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    if (md == nullptr) Die("EVP_MD_fetch");
    return md;
  }();
  thread_local std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  std::string out(EVP_MAX_MD_SIZE, '\0');
  unsigned int len = 0;
  if (!ctx || !EVP_DigestInit_ex2(ctx.get(), sha256, nullptr) ||
      !EVP_DigestUpdate(ctx.get(), data.data(), data.size()) ||
      !EVP_DigestFinal_ex(ctx.get(), Bytes(out), &len)) {
    Die("SHA-256");
  }
  out.resize(len);
  return out;
}

std::string HmacSha256(std::string_view key, std::string_view message) {
  static constexpr unsigned char kEmpty = 0;  // OpenSSL wants a non-null key, even if empty
  // One context per thread, its digest chosen once and re-keyed per call: a one-shot EVP_Q_mac
  // looks the HMAC and SHA-256 implementations up again every time (a locked search in
  // OpenSSL 3), which cost more than the hashing of a push-webhook body.
  struct MacCtxFree {
    void operator()(EVP_MAC_CTX* ctx) const { EVP_MAC_CTX_free(ctx); }
  };
  thread_local std::unique_ptr<EVP_MAC_CTX, MacCtxFree> ctx = [] {
    EVP_MAC* mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
    if (mac == nullptr) Die("EVP_MAC_fetch");
    std::unique_ptr<EVP_MAC_CTX, MacCtxFree> made(EVP_MAC_CTX_new(mac));
    EVP_MAC_free(mac);  // the context keeps its own reference
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                           OSSL_PARAM_construct_end()};
    if (!made || !EVP_MAC_CTX_set_params(made.get(), params)) Die("EVP_MAC_CTX_set_params");
    return made;
  }();
  std::string out(EVP_MAX_MD_SIZE, '\0');
  std::size_t len = 0;
  if (!EVP_MAC_init(ctx.get(), key.empty() ? &kEmpty : Bytes(key), key.size(), nullptr) ||
      !EVP_MAC_update(ctx.get(), Bytes(message), message.size()) ||
      !EVP_MAC_final(ctx.get(), Bytes(out), &len, out.size())) {
    Die("HMAC-SHA256");
  }
  out.resize(len);
  return out;
}

std::string Hex(std::string_view raw) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(raw.size() * 2);
  for (unsigned char c : raw) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 0xF]);
  }
  return out;
}

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

// ---- encodings ----

std::string Base64Encode(std::string_view raw) { return EncodeBase64(raw, kBase64Std, true); }
std::string Base64UrlEncode(std::string_view raw) { return EncodeBase64(raw, kBase64Url, false); }

std::optional<std::string> Base64Decode(std::string_view text) {
  return DecodeBase64(text, kReverseStd);
}
std::optional<std::string> Base64UrlDecode(std::string_view text) {
  return DecodeBase64(text, kReverseUrl);
}

// ---- P-256 ----

bool IsP256PublicPoint(std::string_view point) {
  ClearErrorsOnExit clear;
  if (point.size() != kP256PointSize || point[0] != '\x04') return false;
  PkeyPtr key = MakeP256Key(point);
  if (!key) return false;
  PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, key.get(), nullptr));
  return ctx && EVP_PKEY_public_check(ctx.get()) == 1;
}

Status CheckP256KeyPair(std::string_view private_scalar, std::string_view public_point) {
  ClearErrorsOnExit clear;
  if (!IsP256PublicPoint(public_point)) {
    return Status::InvalidArgument("public key is not an uncompressed P-256 point");
  }
  // Big-endian byte strings of equal length compare like the numbers they encode.
  if (private_scalar.size() != kP256ScalarSize ||
      private_scalar.find_first_not_of('\0') == std::string_view::npos ||
      private_scalar >= kP256Order) {
    return Status::InvalidArgument("private key is not a 32-byte P-256 scalar in [1, n-1]");
  }
  PkeyPtr key = MakeP256Key(public_point, private_scalar);
  PkeyCtxPtr ctx(key ? EVP_PKEY_CTX_new_from_pkey(nullptr, key.get(), nullptr) : nullptr);
  if (!ctx || EVP_PKEY_pairwise_check(ctx.get()) != 1) {
    return Status::InvalidArgument("private key does not match the public key");
  }
  return Status::Ok();
}

std::pair<std::string, std::string> GenerateP256KeyPair() {
  PkeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  if (!key) Die("P-256 key generation");

  BIGNUM* raw_priv = nullptr;
  if (EVP_PKEY_get_bn_param(key.get(), OSSL_PKEY_PARAM_PRIV_KEY, &raw_priv) != 1) {
    Die("reading the P-256 private key");
  }
  BnPtr priv(raw_priv);
  std::string scalar(kP256ScalarSize, '\0');
  if (BN_bn2binpad(priv.get(), Bytes(scalar), static_cast<int>(scalar.size())) < 0) {
    Die("BN_bn2binpad");
  }

  std::string point(kP256PointSize, '\0');
  std::size_t len = 0;
  if (EVP_PKEY_get_octet_string_param(key.get(), OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, Bytes(point),
                                      point.size(), &len) != 1 ||
      len != kP256PointSize || point[0] != '\x04') {
    Die("reading the P-256 public key");
  }
  return {std::move(scalar), std::move(point)};
}

// ---- PEM ----

Result<KeyType> ParsePemPrivateKey(std::string_view pem) {
  ClearErrorsOnExit clear;
  PkeyPtr key = ReadPemPrivateKey(pem);
  if (!key) return Status::InvalidArgument("not an unencrypted PEM private key");
  if (EVP_PKEY_is_a(key.get(), "EC")) return KeyType::kEc;
  if (EVP_PKEY_is_a(key.get(), "RSA")) return KeyType::kRsa;
  return KeyType::kOther;
}

bool PemIsP256PrivateKey(std::string_view pem) {
  ClearErrorsOnExit clear;
  PkeyPtr key = ReadPemPrivateKey(pem);
  if (!key || !EVP_PKEY_is_a(key.get(), "EC")) return false;
  char group[64];
  std::size_t len = 0;
  return EVP_PKEY_get_group_name(key.get(), group, sizeof(group), &len) == 1 &&
         std::string_view(group, len) == "prime256v1";
}

// ---- AEAD ----

Result<std::string> Aes256GcmEncrypt(std::string_view key, std::string_view nonce,
                                     std::string_view plaintext, std::string_view aad) {
  if (key.size() != kAesKeySize) return Status::InvalidArgument("AES-256 key must be 32 bytes");
  if (nonce.size() != kGcmNonceSize) return Status::InvalidArgument("GCM nonce must be 12 bytes");
  if (plaintext.size() > INT_MAX || aad.size() > INT_MAX) {
    return Status::InvalidArgument("AES-GCM input too large");
  }
  CipherCtxPtr ctx(EVP_CIPHER_CTX_new());
  if (!ctx) Die("EVP_CIPHER_CTX_new");
  std::string out(plaintext.size() + kGcmTagSize, '\0');
  int len = 0;
  int final_len = 0;
  if (EVP_EncryptInit_ex2(ctx.get(), EVP_aes_256_gcm(), Bytes(key), Bytes(nonce), nullptr) != 1 ||
      (!aad.empty() && EVP_EncryptUpdate(ctx.get(), nullptr, &len, Bytes(aad),
                                         static_cast<int>(aad.size())) != 1) ||
      (!plaintext.empty() && EVP_EncryptUpdate(ctx.get(), Bytes(out), &len, Bytes(plaintext),
                                               static_cast<int>(plaintext.size())) != 1) ||
      EVP_EncryptFinal_ex(ctx.get(), Bytes(out) + plaintext.size(), &final_len) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_AEAD_GET_TAG, kGcmTagSize,
                          Bytes(out) + plaintext.size()) != 1) {
    Die("AES-256-GCM encryption");
  }
  return out;
}

Result<std::string> Aes256GcmDecrypt(std::string_view key, std::string_view nonce,
                                     std::string_view ciphertext_and_tag, std::string_view aad) {
  ClearErrorsOnExit clear;
  if (key.size() != kAesKeySize) return Status::InvalidArgument("AES-256 key must be 32 bytes");
  if (nonce.size() != kGcmNonceSize) return Status::InvalidArgument("GCM nonce must be 12 bytes");
  if (ciphertext_and_tag.size() < kGcmTagSize) {
    return Status::InvalidArgument("AES-GCM ciphertext shorter than its tag");
  }
  if (ciphertext_and_tag.size() > INT_MAX || aad.size() > INT_MAX) {
    return Status::InvalidArgument("AES-GCM input too large");
  }
  std::string_view ciphertext =
      ciphertext_and_tag.substr(0, ciphertext_and_tag.size() - kGcmTagSize);
  std::string tag(ciphertext_and_tag.substr(ciphertext.size()));

  CipherCtxPtr ctx(EVP_CIPHER_CTX_new());
  if (!ctx) Die("EVP_CIPHER_CTX_new");
  std::string out(ciphertext.size(), '\0');
  int len = 0;
  int final_len = 0;
  if (EVP_DecryptInit_ex2(ctx.get(), EVP_aes_256_gcm(), Bytes(key), Bytes(nonce), nullptr) != 1 ||
      (!aad.empty() && EVP_DecryptUpdate(ctx.get(), nullptr, &len, Bytes(aad),
                                         static_cast<int>(aad.size())) != 1) ||
      (!ciphertext.empty() && EVP_DecryptUpdate(ctx.get(), Bytes(out), &len, Bytes(ciphertext),
                                                static_cast<int>(ciphertext.size())) != 1) ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_AEAD_SET_TAG, kGcmTagSize, tag.data()) != 1) {
    Die("AES-256-GCM decryption setup");
  }
  if (EVP_DecryptFinal_ex(ctx.get(), Bytes(out) + out.size(), &final_len) != 1) {
    OPENSSL_cleanse(out.data(), out.size());  // never hand out unauthenticated plaintext
    return Status::InvalidArgument("AES-GCM authentication failed");
  }
  return out;
}

// ---- KeyRing ----

KeyRing::KeyRing(std::string primary_id, std::map<std::string, std::string> keys)
    : primary_id_(std::move(primary_id)), keys_(std::move(keys)) {
  if (Status status = ValidateRing(primary_id_, keys_); !status.ok()) {
    std::fprintf(stderr, "herald::crypto::KeyRing: %s\n", status.message().c_str());
    std::abort();
  }
}

Result<KeyRing> KeyRing::Create(std::string primary_id, std::map<std::string, std::string> keys) {
  RETURN_IF_ERROR(ValidateRing(primary_id, keys));
  return KeyRing(std::move(primary_id), std::move(keys));
}

std::string KeyRing::Seal(std::string_view plaintext, std::string_view associated) const {
  std::string nonce = RandomBytes(kGcmNonceSize);
  Result<std::string> sealed =
      Aes256GcmEncrypt(keys_.at(primary_id_), nonce, plaintext, associated);
  if (!sealed.ok()) Die(sealed.status().message().c_str());
  return std::string(kSealedPrefix) + primary_id_ + "." + Base64Encode(nonce + *sealed);
}

Result<std::string> KeyRing::Open(std::string_view sealed, std::string_view associated) const {
  const Status malformed = Status::InvalidArgument("sealed value is malformed");
  if (!sealed.starts_with(kSealedPrefix)) return malformed;
  sealed.remove_prefix(kSealedPrefix.size());
  std::size_t dot = sealed.find('.');
  if (dot == std::string_view::npos) return malformed;

  std::string id(sealed.substr(0, dot));
  auto key = keys_.find(id);
  if (key == keys_.end()) return Status::InvalidArgument("sealed with unknown key \"" + id + "\"");

  std::optional<std::string> raw = Base64Decode(sealed.substr(dot + 1));
  if (!raw || raw->size() < kGcmNonceSize + kGcmTagSize) return malformed;
  std::string_view body = *raw;
  return Aes256GcmDecrypt(key->second, body.substr(0, kGcmNonceSize), body.substr(kGcmNonceSize),
                          associated);
}

std::string KeyIdOf(std::string_view key) { return Hex(Sha256(key)).substr(0, 8); }

}  // namespace herald::crypto
