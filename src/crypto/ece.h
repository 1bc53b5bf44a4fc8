// Encrypted content-encoding: RFC 8188 "aes128gcm" and its Web Push profile, RFC 8291 (the
// body of every Web Push message that carries a payload).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "core/status.h"
#include "crypto/keys.h"

namespace herald::crypto {

// Push services guarantee 4096-byte bodies; one aes128gcm record with an 86-byte header, the
// 0x02 delimiter and the 16-byte tag leaves 4096 - 86 - 1 - 16 bytes for the plaintext.
inline constexpr std::size_t kWebPushMaxPlaintext = 3993;
// The record size Herald writes (what web-push and http_ece write too).
inline constexpr std::size_t kWebPushRecordSize = 4096;

// RFC 8291 encryption for the subscription (`ua_public65`: keys.p256dh, the 65-byte uncompressed
// point; `auth_secret16`: keys.auth): a fresh P-256 key pair and a fresh 16-byte salt per call,
// one record, rs = 4096, keyid = the 65-byte ephemeral public key, no padding. The result is the
// whole body: 86-byte header || ciphertext || tag. InvalidArgument if the plaintext exceeds
// kWebPushMaxPlaintext, the auth secret is not 16 bytes, or ua_public is not a point on P-256.
// Thread-safe.
Result<std::string> WebPushEncrypt(std::string_view ua_public65, std::string_view auth_secret16,
                                   std::string_view plaintext);

// WebPushEncrypt with the caller's key pair (`as_private32`, the private scalar) and salt: for
// published test vectors only. Never reuse a key or salt for a real message.
Result<std::string> WebPushEncryptDeterministic(std::string_view ua_public65,
                                                std::string_view auth_secret16,
                                                std::string_view plaintext,
                                                std::string_view as_private32,
                                                std::string_view salt16);

// The user agent's side (tests, mock push services): reads the header (the keyid must be the
// sender's 65-byte public key), derives the keys from `ua_private32` and the auth secret, and
// decrypts every record as Aes128GcmDecrypt does. InvalidArgument on any malformed, truncated
// or unauthenticated input.
Result<std::string> WebPushDecrypt(std::string_view ua_private32, std::string_view auth_secret16,
                                   std::string_view body);
// The same with the user agent's key prepared once (PrivateKey::FromP256Scalar), for receivers
// that decrypt many messages: importing a raw scalar costs OpenSSL 3.0 more than the whole
// decryption. InvalidArgument if `ua_key` is not P-256.
Result<std::string> WebPushDecrypt(const PrivateKey& ua_key, std::string_view auth_secret16,
                                   std::string_view body);

// Plain RFC 8188 decryption with an explicit 16-byte input key (IKM): any keyid and record size
// (>= 18), any number of records. Each record is authenticated under NONCE XOR its sequence
// number; every record but the last must end with delimiter 0x01 and be exactly rs bytes, the
// last must end with 0x02; trailing zero bytes after a delimiter are padding; a record of only
// zeros is refused.
Result<std::string> Aes128GcmDecrypt(std::string_view key16, std::string_view body);

namespace detail {
// Every intermediate value of one RFC 8291 encryption (names as in RFC 8291 Appendix A), as
// computed by the code WebPushEncryptDeterministic runs.
struct WebPushTrace {
  std::string ecdh_secret, prk_key, key_info, ikm, prk, cek_info, cek, nonce_info, nonce;
  std::string header, ciphertext;  // body = header || ciphertext
};
Result<std::string> WebPushEncryptTraced(std::string_view ua_public65,
                                         std::string_view auth_secret16,
                                         std::string_view plaintext, std::string_view as_private32,
                                         std::string_view salt16, WebPushTrace* trace);
// ECDH on P-256: the 32-byte X coordinate of private32 * public65. Empty on invalid input.
std::string P256Ecdh(std::string_view private32, std::string_view public65);
}  // namespace detail

}  // namespace herald::crypto
