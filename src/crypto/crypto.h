// Cryptographic primitives over OpenSSL 3. Pure functions; every one is vector-tested in
// crypto_test.cc. Binary values travel as std::string holding raw bytes.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "core/status.h"

namespace herald::crypto {

// ---- digests and MACs -----------------------------------------------------------------------
std::string Sha256(std::string_view data);                               // 32 raw bytes
std::string HmacSha256(std::string_view key, std::string_view message);  // 32 raw bytes
std::string Hex(std::string_view raw);                                   // lowercase
// True when a and b are equal; time depends only on the lengths (CRYPTO_memcmp).
bool ConstantTimeEquals(std::string_view a, std::string_view b);

// ---- encodings -------------------------------------------------------------------------------
std::string Base64Encode(std::string_view raw);     // standard alphabet, padded
std::string Base64UrlEncode(std::string_view raw);  // URL alphabet, unpadded
// Decoders accept input with or without '=' padding; nullopt on any invalid character/length.
std::optional<std::string> Base64Decode(std::string_view text);
std::optional<std::string> Base64UrlDecode(std::string_view text);

// ---- P-256 -----------------------------------------------------------------------------------
// True if `point` is a 65-byte uncompressed SEC1 point (0x04 || X || Y) on the P-256 curve.
bool IsP256PublicPoint(std::string_view point);
// OK if `private_scalar` (32 raw bytes) is a valid P-256 private key whose public point is
// `public_point` (65 raw bytes). InvalidArgument names which of the two is wrong.
Status CheckP256KeyPair(std::string_view private_scalar, std::string_view public_point);
// Generates a P-256 pair: {32-byte private scalar, 65-byte uncompressed public point}.
std::pair<std::string, std::string> GenerateP256KeyPair();

// ---- PEM -------------------------------------------------------------------------------------
enum class KeyType { kEc, kRsa, kOther };
// Parses a PEM private key (PKCS#8 "BEGIN PRIVATE KEY", SEC1 "BEGIN EC PRIVATE KEY" or
// PKCS#1 "BEGIN RSA PRIVATE KEY"); returns its type, or InvalidArgument if it does not parse.
Result<KeyType> ParsePemPrivateKey(std::string_view pem);
// True if the EC key in `pem` is on P-256 (what APNs .p8 keys are).
bool PemIsP256PrivateKey(std::string_view pem);

// ---- AEAD for secrets at rest ----------------------------------------------------------------
// Raw AES-256-GCM: 32-byte key, 12-byte nonce; the result is ciphertext || 16-byte tag. The
// caller must never reuse a nonce under one key, so prefer KeyRing; these exist for KeyRing and
// for published test vectors. InvalidArgument on bad sizes or (decrypt) failed authentication.
Result<std::string> Aes256GcmEncrypt(std::string_view key, std::string_view nonce,
                                     std::string_view plaintext, std::string_view aad);
Result<std::string> Aes256GcmDecrypt(std::string_view key, std::string_view nonce,
                                     std::string_view ciphertext_and_tag, std::string_view aad);

// AES-256-GCM with a key id, so that keys can rotate: sealed values record which key sealed
// them; Open() finds it in the ring. Sealed form (ASCII): "v1.<key id>.<base64(nonce|ct|tag)>",
// 12-byte random nonce, 16-byte tag; `associated` (e.g. the row id) is authenticated, not stored.
class KeyRing {
 public:
  // `primary_id` seals new values; all keys in `keys` (id -> 32 raw bytes) can open.
  // Requires a valid ring (see Create) and aborts otherwise: use Create for untrusted config.
  KeyRing(std::string primary_id, std::map<std::string, std::string> keys);
  // InvalidArgument unless `keys` holds `primary_id`, every id is non-empty without '.', and
  // every key is 32 bytes.
  static Result<KeyRing> Create(std::string primary_id, std::map<std::string, std::string> keys);

  std::string Seal(std::string_view plaintext, std::string_view associated = {}) const;
  // InvalidArgument if the form is wrong, the key id is unknown, or authentication fails.
  Result<std::string> Open(std::string_view sealed, std::string_view associated = {}) const;

  const std::string& primary_id() const { return primary_id_; }

 private:
  std::string primary_id_;
  std::map<std::string, std::string> keys_;
};

// A short, stable id for a key (first 8 hex digits of SHA-256 of the key bytes).
std::string KeyIdOf(std::string_view key);

}  // namespace herald::crypto
