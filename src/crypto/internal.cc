#include "crypto/internal.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include <array>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace herald::crypto::internal {
namespace {

using std::string_view_literals::operator""sv;

// The order n of the P-256 group, big-endian; valid private scalars are 1..n-1.
constexpr std::string_view kP256Order =
    "\xFF\xFF\xFF\xFF\x00\x00\x00\x00\xFF\xFF\xFF\xFF\xFF\xFF\xFF\xFF"
    "\xBC\xE6\xFA\xAD\xA7\x17\x9E\x84\xF3\xB9\xCA\xC2\xFC\x63\x25\x51"sv;
static_assert(kP256Order.size() == kP256ScalarSize);

// SEC1 ECPrivateKey (RFC 5915) without the optional public key, for P-256:
//   SEQUENCE { INTEGER 1, OCTET STRING (32) d, [0] { OID prime256v1 } }
// OpenSSL 3.0 cannot import a private-only EC key from OSSL_PARAMs with its public point
// computed (EVP_PKEY_fromdata leaves the key without one), but its SEC1 decoder computes the
// point when the encoding omits it.
constexpr std::string_view kSec1Prefix = "\x30\x31\x02\x01\x01\x04\x20"sv;
constexpr std::string_view kSec1Suffix = "\xA0\x0A\x06\x08\x2A\x86\x48\xCE\x3D\x03\x01\x07"sv;

// Encrypted keys must fail rather than prompt on the terminal for a passphrase.
int NoPassphrase(char* /*buf*/, int /*size*/, int /*rwflag*/, void* /*userdata*/) { return -1; }

}  // namespace

void Die(const char* what) {
  std::fprintf(stderr, "herald::crypto: %s failed\n", what);
  std::abort();
}

BioPtr MemoryBio(std::string_view data) {
  if (data.size() > INT_MAX) return nullptr;
  BioPtr bio(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())));
  if (!bio) Die("BIO_new_mem_buf");
  return bio;
}

std::string BioContents(BIO* bio) {
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);
  return len > 0 ? std::string(data, static_cast<std::size_t>(len)) : std::string();
}

PkeyPtr P256PublicKey(std::string_view point65) {
  if (point65.size() != kP256PointSize || point65[0] != '\x04') return nullptr;
  // The group comes from a template key, read-only and shared: importing with
  // EVP_PKEY_fromdata and a group *name* rebuilds the P-256 EC_GROUP (Montgomery constants and
  // all) on every call, which cost ~12 of its ~23 us here; copying the parameters costs ~2 us.
  static EVP_PKEY* const p256_template = [] {
    EVP_PKEY* key = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
    if (key == nullptr) Die("P-256 key generation");
    return key;
  }();
  PkeyPtr key(EVP_PKEY_new());
  if (!key || EVP_PKEY_copy_parameters(key.get(), p256_template) != 1) {
    Die("EVP_PKEY_copy_parameters");
  }
  // Decoding the point checks that it is on the curve.
  if (EVP_PKEY_set1_encoded_public_key(key.get(), Bytes(point65), point65.size()) != 1) {
    ERR_clear_error();
    return nullptr;
  }
  return key;
}

bool IsP256Scalar(std::string_view scalar) {
  // Big-endian byte strings of equal length compare like the numbers they encode.
  return scalar.size() == kP256ScalarSize &&
         scalar.find_first_not_of('\0') != std::string_view::npos && scalar < kP256Order;
}

PkeyPtr P256KeyFromScalar(std::string_view scalar) {
  if (!IsP256Scalar(scalar)) return nullptr;
  std::array<unsigned char, kSec1Prefix.size() + kP256ScalarSize + kSec1Suffix.size()> der;
  std::memcpy(der.data(), kSec1Prefix.data(), kSec1Prefix.size());
  std::memcpy(der.data() + kSec1Prefix.size(), scalar.data(), kP256ScalarSize);
  std::memcpy(der.data() + kSec1Prefix.size() + kP256ScalarSize, kSec1Suffix.data(),
              kSec1Suffix.size());
  const unsigned char* p = der.data();
  PkeyPtr key(d2i_PrivateKey(EVP_PKEY_EC, nullptr, &p, static_cast<long>(der.size())));
  OPENSSL_cleanse(der.data(), der.size());
  ERR_clear_error();
  return key;
}

bool IsP256Key(const EVP_PKEY* key) {
  if (key == nullptr || !EVP_PKEY_is_a(key, "EC")) return false;
  char group[64];
  std::size_t len = 0;
  return EVP_PKEY_get_group_name(key, group, sizeof(group), &len) == 1 &&
         std::string_view(group, len) == "prime256v1";
}

bool WriteP256Point(const EVP_PKEY* key, unsigned char* out) {
  if (!IsP256Key(key)) return false;
  std::size_t len = 0;
  return EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, out,
                                         kP256PointSize, &len) == 1 &&
         len == kP256PointSize && out[0] == 0x04;
}

PkeyPtr ReadPemPrivateKey(std::string_view pem) {
  if (pem.empty()) return nullptr;
  BioPtr bio = MemoryBio(pem);
  if (!bio) return nullptr;
  return PkeyPtr(PEM_read_bio_PrivateKey(bio.get(), nullptr, NoPassphrase, nullptr));
}

std::string PrivateKeyPkcs8Pem(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    Die("PEM_write_bio_PrivateKey");
  }
  return BioContents(bio.get());
}

}  // namespace herald::crypto::internal
