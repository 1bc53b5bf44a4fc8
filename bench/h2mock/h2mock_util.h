// herald_bench_h2mock: small helpers shared by every part of the mock: the clock, a 64-bit
// string hash, case-insensitive comparison, trimming, and the cheap shape checks (JWT, JSON
// object, JSON key) the routes make.

#pragma once

#include <cstdint>
#include <cstring>
#include <ctime>
#include <string_view>

namespace herald::bench {

using std::string_view;

// ------------------------------------------------------------------------------------ helpers
inline std::int64_t NowUs() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000 + ts.tv_nsec / 1000;
}

inline std::uint64_t Mix(std::uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ULL;
  x ^= x >> 33;
  return x;
}

// A 64-bit hash of a byte string (a word at a time; collisions among a million keys are
// vanishingly unlikely, which is all the distinct counts need).
inline std::uint64_t Hash(string_view s, std::uint64_t seed) {
  const char* p = s.data();
  std::size_t n = s.size();
  std::uint64_t h = Mix(seed ^ (n * 0x9e3779b97f4a7c15ULL));
  while (n >= 8) {
    std::uint64_t w;
    std::memcpy(&w, p, 8);
    h = (h ^ Mix(w)) * 0x9e3779b97f4a7c15ULL;
    h = (h << 29) | (h >> 35);
    p += 8;
    n -= 8;
  }
  std::uint64_t w = 0;
  std::memcpy(&w, p, n);
  return Mix(h ^ Mix(w ^ n));
}

inline char Lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }

inline bool IEquals(string_view a, string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (Lower(a[i]) != Lower(b[i])) return false;
  }
  return true;
}

inline bool IStartsWith(string_view s, string_view prefix) {
  return s.size() >= prefix.size() && IEquals(s.substr(0, prefix.size()), prefix);
}

inline string_view Trim(string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

inline bool IsHex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

inline bool IsB64Url(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_' || c == '=';
}

// Three non-empty dot-separated base64url parts: the shape of a JWS compact serialisation.
inline bool LooksLikeJwt(string_view s) {
  int parts = 1;
  std::size_t run = 0;
  for (char c : s) {
    if (c == '.') {
      if (run == 0) return false;
      ++parts;
      run = 0;
    } else if (IsB64Url(c)) {
      ++run;
    } else {
      return false;
    }
  }
  return parts == 3 && run > 0;
}

inline bool LooksLikeJsonObject(string_view body) {
  body = Trim(body);
  while (!body.empty() && (body.back() == '\n' || body.back() == '\r')) body.remove_suffix(1);
  while (!body.empty() && (body.front() == '\n' || body.front() == '\r')) body.remove_prefix(1);
  return body.size() >= 2 && body.front() == '{' && body.back() == '}';
}

// Where `"key"` appears as an object key (followed by optional blanks and a colon).
inline bool HasJsonKey(string_view body, string_view quoted_key, std::size_t from = 0) {
  for (std::size_t at = body.find(quoted_key, from); at != string_view::npos;
       at = body.find(quoted_key, at + 1)) {
    std::size_t i = at + quoted_key.size();
    while (i < body.size() && (body[i] == ' ' || body[i] == '\t' || body[i] == '\n')) ++i;
    if (i < body.size() && body[i] == ':') return true;
  }
  return false;
}

}  // namespace herald::bench
