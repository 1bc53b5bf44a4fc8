#include "core/ids.h"

#include <sys/random.h>

#include <cstdio>
#include <cstdlib>
#include <ctime>

namespace herald {

std::string RandomBytes(std::size_t n) {
  std::string out(n, '\0');
  std::size_t filled = 0;
  while (filled < n) {
    ssize_t got = getrandom(out.data() + filled, n - filled, 0);
    if (got < 0) std::abort();
    filled += static_cast<std::size_t>(got);
  }
  return out;
}

std::string NewObjectId() {
  static constexpr char kHex[] = "0123456789abcdef";
  auto seconds = static_cast<unsigned>(std::time(nullptr));
  std::string raw = RandomBytes(8);
  std::string out;
  out.reserve(24);
  for (int shift = 28; shift >= 0; shift -= 4) out.push_back(kHex[(seconds >> shift) & 0xF]);
  for (unsigned char c : raw) {
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 0xF]);
  }
  return out;
}

std::string RandomAlnum(std::size_t n) {
  static constexpr char kAlphabet[] = "0123456789abcdefghijklmnopqrstuvwxyz";
  std::string out;
  out.reserve(n);
  while (out.size() < n) {
    for (unsigned char c : RandomBytes(n)) {
      if (c >= 252) continue;  // 252 = 7 * 36: reject to keep the distribution uniform
      out.push_back(kAlphabet[c % 36]);
      if (out.size() == n) break;
    }
  }
  return out;
}

std::string NewUuid() {
  std::string raw = RandomBytes(16);
  raw[6] = static_cast<char>((raw[6] & 0x0F) | 0x40);
  raw[8] = static_cast<char>((raw[8] & 0x3F) | 0x80);
  char buf[37];
  auto b = [&](int i) { return static_cast<unsigned char>(raw[static_cast<std::size_t>(i)]); };
  std::snprintf(buf, sizeof buf,
                "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b(0), b(1),
                b(2), b(3), b(4), b(5), b(6), b(7), b(8), b(9), b(10), b(11), b(12), b(13), b(14),
                b(15));
  return buf;
}

}  // namespace herald
