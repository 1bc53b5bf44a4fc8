#include "crypto/ece.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <cstring>
#include <initializer_list>

#include "crypto/internal.h"

namespace herald::crypto {
namespace {

using std::string_view_literals::operator""sv;
using internal::Bytes;
using internal::ClearErrorsOnExit;
using internal::Die;
using internal::kP256PointSize;
using internal::PkeyPtr;

constexpr std::size_t kSaltSize = 16;
constexpr std::size_t kAuthSecretSize = 16;
constexpr std::size_t kCekSize = 16;
constexpr std::size_t kNonceSize = 12;
constexpr std::size_t kTagSize = 16;
constexpr std::size_t kHashSize = 32;
constexpr std::size_t kFixedHeaderSize = kSaltSize + 4 + 1;  // salt || rs || idlen
constexpr std::size_t kWebPushHeaderSize = kFixedHeaderSize + kP256PointSize;
constexpr std::uint32_t kMinRecordSize = 18;  // RFC 8188 §2.1
static_assert(kWebPushMaxPlaintext == kWebPushRecordSize - kWebPushHeaderSize - 1 - kTagSize);

// The HKDF info strings; the 0x00 bytes are part of them. kCounter is HKDF-Expand's T(1) byte:
// every output here is at most one SHA-256 block.
constexpr std::string_view kKeyInfoLabel = "WebPush: info\0"sv;
constexpr std::string_view kCekInfo = "Content-Encoding: aes128gcm\0"sv;
constexpr std::string_view kNonceInfo = "Content-Encoding: nonce\0"sv;
constexpr std::string_view kCounter = "\x01"sv;
constexpr unsigned char kLastDelimiter = 0x02;
constexpr unsigned char kMoreDelimiter = 0x01;

std::string_view View(const unsigned char* data, std::size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// HMAC-SHA-256(key, concatenation of `parts`) into out[32]. HMAC is fetched once per process
// and keyed afresh on a context kept per thread: no lookup or allocation per call.
void Hmac(std::string_view key, std::initializer_list<std::string_view> parts, unsigned char* out) {
  static EVP_MAC* const mac = [] {
    EVP_MAC* fetched = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
    if (fetched == nullptr) Die("EVP_MAC_fetch(HMAC)");
    return fetched;
  }();
  thread_local internal::MacCtxPtr ctx = [] {
    internal::MacCtxPtr made(EVP_MAC_CTX_new(mac));
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                           OSSL_PARAM_construct_end()};
    if (!made || EVP_MAC_CTX_set_params(made.get(), params) != 1) Die("HMAC-SHA256 setup");
    return made;
  }();
  std::size_t len = 0;
  if (EVP_MAC_init(ctx.get(), Bytes(key), key.size(), nullptr) != 1) Die("EVP_MAC_init");
  for (std::string_view part : parts) {
    if (EVP_MAC_update(ctx.get(), Bytes(part), part.size()) != 1) Die("EVP_MAC_update");
  }
  if (EVP_MAC_final(ctx.get(), out, &len, kHashSize) != 1 || len != kHashSize) {
    Die("EVP_MAC_final");
  }
}

const EVP_CIPHER* Aes128Gcm() {
  static EVP_CIPHER* const cipher = [] {
    EVP_CIPHER* fetched = EVP_CIPHER_fetch(nullptr, "AES-128-GCM", nullptr);
    if (fetched == nullptr) Die("EVP_CIPHER_fetch(AES-128-GCM)");
    return fetched;
  }();
  return cipher;
}

// One context per thread and direction, bound to AES-128-GCM once; each use re-initialises it
// with only a key and nonce (a null cipher keeps the bound one and its provider context).
internal::CipherCtxPtr MakeCipherCtx(int encrypt) {
  internal::CipherCtxPtr ctx(EVP_CIPHER_CTX_new());
  if (!ctx || EVP_CipherInit_ex2(ctx.get(), Aes128Gcm(), nullptr, nullptr, encrypt, nullptr) != 1) {
    Die("AES-128-GCM context setup");
  }
  return ctx;
}
EVP_CIPHER_CTX* EncryptCtx() {
  thread_local internal::CipherCtxPtr ctx = MakeCipherCtx(1);
  return ctx.get();
}
EVP_CIPHER_CTX* DecryptCtx() {
  thread_local internal::CipherCtxPtr ctx = MakeCipherCtx(0);
  return ctx.get();
}

// A fresh P-256 key pair from a key-generation context kept per thread.
PkeyPtr GenerateP256() {
  thread_local internal::PkeyCtxPtr ctx = [] {
    internal::PkeyCtxPtr made(EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr));
    if (!made || EVP_PKEY_keygen_init(made.get()) != 1 ||
        EVP_PKEY_CTX_set_group_name(made.get(), "P-256") != 1) {
      Die("P-256 key generation setup");
    }
    return made;
  }();
  EVP_PKEY* key = nullptr;
  if (EVP_PKEY_generate(ctx.get(), &key) != 1) Die("P-256 key generation");
  return PkeyPtr(key);
}

// ECDH: the X coordinate of private * peer into out[32]. The peer was validated when imported
// (P256PublicKey), so the derivation does not check it again.
bool Ecdh(EVP_PKEY* private_key, EVP_PKEY* peer, unsigned char* out) {
  internal::PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, private_key, nullptr));
  std::size_t len = kHashSize;
  return ctx && EVP_PKEY_derive_init(ctx.get()) == 1 &&
         EVP_PKEY_derive_set_peer_ex(ctx.get(), peer, /*validate_peer=*/0) == 1 &&
         EVP_PKEY_derive(ctx.get(), out, &len) == 1 && len == kHashSize;
}

// The content-encryption key and base nonce; wiped when done with.
struct ContentKeys {
  unsigned char cek[kCekSize];
  unsigned char nonce[kNonceSize];
  ~ContentKeys() {
    OPENSSL_cleanse(cek, sizeof(cek));
    OPENSSL_cleanse(nonce, sizeof(nonce));
  }
};

// RFC 8291 §3.3-3.4: IKM = HKDF(salt = auth_secret, ikm = ecdh_secret,
// info = "WebPush: info" 0x00 ua_public as_public, L = 32), into ikm[32].
void DeriveWebPushIkm(std::string_view ecdh_secret, std::string_view auth_secret,
                      std::string_view ua_public, std::string_view as_public, unsigned char* ikm,
                      detail::WebPushTrace* trace) {
  unsigned char prk_key[kHashSize];
  Hmac(auth_secret, {ecdh_secret}, prk_key);
  Hmac(View(prk_key, kHashSize), {kKeyInfoLabel, ua_public, as_public, kCounter}, ikm);
  if (trace != nullptr) {
    trace->ecdh_secret = ecdh_secret;
    trace->prk_key = View(prk_key, kHashSize);
    trace->key_info = std::string(kKeyInfoLabel).append(ua_public).append(as_public);
    trace->ikm = View(ikm, kHashSize);
  }
  OPENSSL_cleanse(prk_key, sizeof(prk_key));
}

// RFC 8188 §2.2-2.3: PRK = HMAC(salt, IKM); CEK and NONCE expanded from it.
void DeriveContentKeys(std::string_view salt, std::string_view ikm, ContentKeys& keys,
                       detail::WebPushTrace* trace) {
  unsigned char prk[kHashSize];
  unsigned char block[kHashSize];
  Hmac(salt, {ikm}, prk);
  Hmac(View(prk, kHashSize), {kCekInfo, kCounter}, block);
  std::memcpy(keys.cek, block, kCekSize);
  Hmac(View(prk, kHashSize), {kNonceInfo, kCounter}, block);
  std::memcpy(keys.nonce, block, kNonceSize);
  if (trace != nullptr) {
    trace->prk = View(prk, kHashSize);
    trace->cek_info = kCekInfo;
    trace->cek = View(keys.cek, kCekSize);
    trace->nonce_info = kNonceInfo;
    trace->nonce = View(keys.nonce, kNonceSize);
  }
  OPENSSL_cleanse(prk, sizeof(prk));
  OPENSSL_cleanse(block, sizeof(block));
}

// Encrypts the one and last record, plaintext || 0x02, writing ciphertext || tag to `out`
// (plaintext.size() + 17 bytes). The plaintext is at most kWebPushMaxPlaintext bytes.
void SealLastRecord(const ContentKeys& keys, std::string_view plaintext, unsigned char* out) {
  EVP_CIPHER_CTX* ctx = EncryptCtx();
  const int size = static_cast<int>(plaintext.size());
  int len = 0;
  if (EVP_EncryptInit_ex2(ctx, nullptr, keys.cek, keys.nonce, nullptr) != 1 ||
      (size > 0 && (EVP_EncryptUpdate(ctx, out, &len, Bytes(plaintext), size) != 1 || len != size)) ||
      EVP_EncryptUpdate(ctx, out + size, &len, &kLastDelimiter, 1) != 1 || len != 1 ||
      EVP_EncryptFinal_ex(ctx, out + size + 1, &len) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, kTagSize, out + size + 1) != 1) {
    Die("AES-128-GCM encryption");
  }
}

// RFC 8291 encryption with the sender key `as_key`; `salt` empty means a random one.
Result<std::string> Encrypt(EVP_PKEY* as_key, std::string_view ua_public,
                            std::string_view auth_secret, std::string_view plaintext,
                            std::string_view salt, detail::WebPushTrace* trace) {
  ClearErrorsOnExit clear;
  if (auth_secret.size() != kAuthSecretSize) {
    return Status::InvalidArgument("Web Push auth secret must be 16 bytes");
  }
  if (plaintext.size() > kWebPushMaxPlaintext) {
    return Status::InvalidArgument("Web Push payload of " + std::to_string(plaintext.size()) +
                                   " bytes exceeds the limit of 3993 bytes (one 4096-byte "
                                   "aes128gcm record, what push services guarantee)");
  }
  PkeyPtr ua_key = internal::P256PublicKey(ua_public);
  if (!ua_key) {
    return Status::InvalidArgument("subscription key p256dh is not an uncompressed P-256 point");
  }

  std::string body(kWebPushHeaderSize + plaintext.size() + 1 + kTagSize, '\0');
  unsigned char* header = Bytes(body);
  if (salt.empty()) {
    if (RAND_bytes(header, kSaltSize) != 1) Die("RAND_bytes");
  } else {
    std::memcpy(header, salt.data(), kSaltSize);
  }
  header[16] = static_cast<unsigned char>(kWebPushRecordSize >> 24);
  header[17] = static_cast<unsigned char>(kWebPushRecordSize >> 16);
  header[18] = static_cast<unsigned char>(kWebPushRecordSize >> 8);
  header[19] = static_cast<unsigned char>(kWebPushRecordSize);
  header[20] = static_cast<unsigned char>(kP256PointSize);
  if (!internal::WriteP256Point(as_key, header + kFixedHeaderSize)) {
    return Status::Internal("cannot read the sender's P-256 public key");
  }
  std::string_view as_public = View(header + kFixedHeaderSize, kP256PointSize);

  unsigned char secret[kHashSize];
  if (!Ecdh(as_key, ua_key.get(), secret)) return Status::Internal("ECDH failed");
  unsigned char ikm[kHashSize];
  DeriveWebPushIkm(View(secret, kHashSize), auth_secret, ua_public, as_public, ikm, trace);
  OPENSSL_cleanse(secret, sizeof(secret));
  ContentKeys keys;
  DeriveContentKeys(View(header, kSaltSize), View(ikm, kHashSize), keys, trace);
  OPENSSL_cleanse(ikm, sizeof(ikm));
  SealLastRecord(keys, plaintext, header + kWebPushHeaderSize);

  if (trace != nullptr) {
    trace->header = body.substr(0, kWebPushHeaderSize);
    trace->ciphertext = body.substr(kWebPushHeaderSize);
  }
  return body;
}

// ---- decryption ----

struct Header {
  std::string_view salt;
  std::uint32_t rs = 0;
  std::string_view keyid;
  std::string_view records;
};

Result<Header> ParseHeader(std::string_view body) {
  if (body.size() < kFixedHeaderSize) {
    return Status::InvalidArgument("aes128gcm body shorter than its 21-byte header");
  }
  Header header;
  header.salt = body.substr(0, kSaltSize);
  for (std::size_t i = 0; i < 4; ++i) {
    header.rs = header.rs << 8 | static_cast<unsigned char>(body[kSaltSize + i]);
  }
  std::size_t idlen = static_cast<unsigned char>(body[kFixedHeaderSize - 1]);
  if (body.size() < kFixedHeaderSize + idlen) {
    return Status::InvalidArgument("aes128gcm header truncated inside its " +
                                   std::to_string(idlen) + "-byte keyid");
  }
  if (header.rs < kMinRecordSize) {
    return Status::InvalidArgument("aes128gcm record size " + std::to_string(header.rs) +
                                   " is below the minimum of 18");
  }
  header.keyid = body.substr(kFixedHeaderSize, idlen);
  header.records = body.substr(kFixedHeaderSize + idlen);
  return header;
}

// RFC 8188 §2: decrypts and unpads every record of `records`.
Result<std::string> DecryptRecords(const ContentKeys& keys, std::uint32_t rs,
                                   std::string_view records) {
  if (records.empty()) return Status::InvalidArgument("aes128gcm body has no record");
  std::string out(records.size(), '\0');  // plaintext is shorter than the records
  std::size_t out_size = 0;
  auto fail = [&out](std::string message) {
    OPENSSL_cleanse(out.data(), out.size());  // never hand out unauthenticated plaintext
    return Status::InvalidArgument(std::move(message));
  };
  EVP_CIPHER_CTX* ctx = DecryptCtx();
  for (std::uint64_t seq = 0; !records.empty(); ++seq) {
    std::string_view record = records.substr(0, std::min<std::size_t>(rs, records.size()));
    records.remove_prefix(record.size());
    const bool last = records.empty();
    std::string index = std::to_string(seq);
    if (record.size() < kTagSize + 1) return fail("aes128gcm record " + index + " is too short");
    if (record.size() > INT_MAX) return fail("aes128gcm record " + index + " is too large");

    unsigned char nonce[kNonceSize];  // NONCE XOR SEQ (96-bit big-endian)
    std::memcpy(nonce, keys.nonce, kNonceSize);
    for (std::size_t i = 0; i < 8; ++i) {
      nonce[kNonceSize - 1 - i] ^= static_cast<unsigned char>(seq >> (8 * i));
    }
    const std::size_t size = record.size() - kTagSize;
    unsigned char tag[kTagSize];
    std::memcpy(tag, record.data() + size, kTagSize);
    unsigned char* plain = Bytes(out) + out_size;
    int len = 0;
    if (EVP_DecryptInit_ex2(ctx, nullptr, keys.cek, nonce, nullptr) != 1 ||
        EVP_DecryptUpdate(ctx, plain, &len, Bytes(record), static_cast<int>(size)) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, kTagSize, tag) != 1) {
      Die("AES-128-GCM decryption setup");
    }
    if (EVP_DecryptFinal_ex(ctx, plain + size, &len) != 1) {
      return fail("aes128gcm record " + index + " failed authentication");
    }

    // The delimiter is the last non-zero byte; zeros after it are padding.
    std::size_t end = size;
    while (end > 0 && plain[end - 1] == 0) --end;
    if (end == 0) return fail("aes128gcm record " + index + " is all padding (no delimiter)");
    const unsigned char delimiter = plain[end - 1];
    if (last && delimiter == kMoreDelimiter) {
      return fail("aes128gcm body truncated: its last record has delimiter 0x01");
    }
    if (delimiter != (last ? kLastDelimiter : kMoreDelimiter)) {
      return fail("aes128gcm record " + index + " has an invalid delimiter");
    }
    out_size += end - 1;
  }
  out.resize(out_size);
  return out;
}

}  // namespace

Result<std::string> WebPushEncrypt(std::string_view ua_public65, std::string_view auth_secret16,
                                   std::string_view plaintext) {
  PkeyPtr as_key = GenerateP256();
  return Encrypt(as_key.get(), ua_public65, auth_secret16, plaintext, {}, nullptr);
}

Result<std::string> WebPushEncryptDeterministic(std::string_view ua_public65,
                                                std::string_view auth_secret16,
                                                std::string_view plaintext,
                                                std::string_view as_private32,
                                                std::string_view salt16) {
  return detail::WebPushEncryptTraced(ua_public65, auth_secret16, plaintext, as_private32, salt16,
                                      nullptr);
}

Result<std::string> WebPushDecrypt(std::string_view ua_private32, std::string_view auth_secret16,
                                   std::string_view body) {
  Result<PrivateKey> ua_key = PrivateKey::FromP256Scalar(ua_private32);
  if (!ua_key.ok()) return Status::InvalidArgument("ua_private is not a 32-byte P-256 scalar");
  return WebPushDecrypt(*ua_key, auth_secret16, body);
}

Result<std::string> WebPushDecrypt(const PrivateKey& ua_key, std::string_view auth_secret16,
                                   std::string_view body) {
  ClearErrorsOnExit clear;
  if (!ua_key.IsP256()) return Status::InvalidArgument("the user agent's key is not P-256");
  if (auth_secret16.size() != kAuthSecretSize) {
    return Status::InvalidArgument("Web Push auth secret must be 16 bytes");
  }
  ASSIGN_OR_RETURN(Header header, ParseHeader(body));
  PkeyPtr as_key = internal::P256PublicKey(header.keyid);
  if (!as_key) {
    return Status::InvalidArgument("aes128gcm keyid is not the sender's 65-byte P-256 point");
  }
  unsigned char secret[kHashSize];
  if (!Ecdh(ua_key.pkey(), as_key.get(), secret)) return Status::Internal("ECDH failed");
  unsigned char ikm[kHashSize];
  DeriveWebPushIkm(View(secret, kHashSize), auth_secret16, ua_key.P256PublicPoint(), header.keyid,
                   ikm, nullptr);
  OPENSSL_cleanse(secret, sizeof(secret));
  ContentKeys keys;
  DeriveContentKeys(header.salt, View(ikm, kHashSize), keys, nullptr);
  OPENSSL_cleanse(ikm, sizeof(ikm));
  return DecryptRecords(keys, header.rs, header.records);
}

Result<std::string> Aes128GcmDecrypt(std::string_view key16, std::string_view body) {
  ClearErrorsOnExit clear;
  if (key16.size() != kCekSize) return Status::InvalidArgument("aes128gcm key must be 16 bytes");
  ASSIGN_OR_RETURN(Header header, ParseHeader(body));
  ContentKeys keys;
  DeriveContentKeys(header.salt, key16, keys, nullptr);
  return DecryptRecords(keys, header.rs, header.records);
}

namespace detail {

Result<std::string> WebPushEncryptTraced(std::string_view ua_public65,
                                         std::string_view auth_secret16,
                                         std::string_view plaintext, std::string_view as_private32,
                                         std::string_view salt16, WebPushTrace* trace) {
  if (salt16.size() != kSaltSize) return Status::InvalidArgument("salt must be 16 bytes");
  PkeyPtr as_key = internal::P256KeyFromScalar(as_private32);
  if (!as_key) return Status::InvalidArgument("as_private is not a 32-byte P-256 scalar");
  return Encrypt(as_key.get(), ua_public65, auth_secret16, plaintext, salt16, trace);
}

std::string P256Ecdh(std::string_view private32, std::string_view public65) {
  ClearErrorsOnExit clear;
  PkeyPtr key = internal::P256KeyFromScalar(private32);
  PkeyPtr peer = internal::P256PublicKey(public65);
  unsigned char secret[kHashSize];
  if (!key || !peer || !Ecdh(key.get(), peer.get(), secret)) return {};
  std::string out(View(secret, kHashSize));
  OPENSSL_cleanse(secret, sizeof(secret));
  return out;
}

}  // namespace detail
}  // namespace herald::crypto
