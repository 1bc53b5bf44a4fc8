#include "core/ids.h"

#include <sys/random.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <ctime>

namespace herald {

std::string RandomBytes(std::size_t n) {
  // getrandom() output, drawn in blocks per thread: ids and nonces are made on every request, and
  // a system call each (costly under a hypervisor) would dominate their price.
  constexpr std::size_t kBlock = 512;
  thread_local unsigned char pool[kBlock];
  thread_local std::size_t left = 0;
  std::string out(n, '\0');
  std::size_t filled = 0;
  while (filled < n) {
    if (left == 0) {
      std::size_t got = 0;
      while (got < kBlock) {
        ssize_t r = getrandom(pool + got, kBlock - got, 0);
        if (r < 0) std::abort();
        got += static_cast<std::size_t>(r);
      }
      left = kBlock;
    }
    std::size_t take = std::min(left, n - filled);
    unsigned char* from = pool + (kBlock - left);
    std::copy(from, from + take, out.begin() + static_cast<std::ptrdiff_t>(filled));
    std::fill(from, from + take, 0);  // a byte is handed out once
    left -= take;
    filled += take;
  }
  return out;
}

std::string NewObjectId() {
  // MongoDB's layout: 4-byte seconds, 5 bytes random per process, 3-byte counter. Ids made by
  // one process increase, so indexes on them grow at their right edge instead of dirtying
  // random pages.
  static const std::string process_random = RandomBytes(5);
  static std::atomic<std::uint32_t> counter{[] {
    std::string seed = RandomBytes(3);
    return static_cast<std::uint32_t>(static_cast<unsigned char>(seed[0])) << 16 |
           static_cast<std::uint32_t>(static_cast<unsigned char>(seed[1])) << 8 |
           static_cast<unsigned char>(seed[2]);
  }()};
  auto seconds = static_cast<std::uint32_t>(std::time(nullptr));
  std::uint32_t count = counter.fetch_add(1) & 0xFFFFFF;
  unsigned char raw[12];
  for (int i = 0; i < 4; ++i) raw[i] = static_cast<unsigned char>(seconds >> (24 - 8 * i));
  for (int i = 0; i < 5; ++i) raw[4 + i] = static_cast<unsigned char>(process_random[i]);
  for (int i = 0; i < 3; ++i) raw[9 + i] = static_cast<unsigned char>(count >> (16 - 8 * i));
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(24);
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
  // Version 7 (RFC 9562): 48-bit Unix milliseconds, then random bits. Time-ordered, so the
  // transaction ids Herald generates append to indexes.
  auto ms = static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                           std::chrono::system_clock::now().time_since_epoch())
                                           .count());
  std::string raw = RandomBytes(16);
  for (int i = 0; i < 6; ++i)
    raw[static_cast<std::size_t>(i)] = static_cast<char>(ms >> (40 - 8 * i));
  raw[6] = static_cast<char>((raw[6] & 0x0F) | 0x70);
  raw[8] = static_cast<char>((raw[8] & 0x3F) | 0x80);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(36);
  for (std::size_t i = 0; i < raw.size(); ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out.push_back('-');
    auto c = static_cast<unsigned char>(raw[i]);
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 0xF]);
  }
  return out;
}

}  // namespace herald
