#include "core/url.h"

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <cstring>

namespace herald {
namespace {

bool IsAlpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsHexDigit(char c) { return IsDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
char ToLower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

std::string Lowercase(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(), ToLower);
  return out;
}

// RFC 3986 §2.3 unreserved, §2.2 sub-delims.
bool IsUnreserved(char c) {
  return IsAlpha(c) || IsDigit(c) || c == '-' || c == '.' || c == '_' || c == '~';
}
bool IsSubDelim(char c) {
  return std::string_view("!$&'()*+,;=").find(c) != std::string_view::npos;
}

// True if every character of `text` is unreserved, a sub-delim, one of `extra`, or a
// well-formed percent-escape.
bool IsValidComponent(std::string_view text, std::string_view extra) {
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '%') {
      if (i + 2 >= text.size() || !IsHexDigit(text[i + 1]) || !IsHexDigit(text[i + 2])) {
        return false;
      }
      i += 2;
    } else if (!IsUnreserved(c) && !IsSubDelim(c) && extra.find(c) == std::string_view::npos) {
      return false;
    }
  }
  return true;
}

bool ParseIpv4(std::string_view text, in_addr* out) {
  std::string s(text);
  return inet_pton(AF_INET, s.c_str(), out) == 1;
}

bool ParseIpv6(std::string_view text, in6_addr* out) {
  std::string s(text);
  return inet_pton(AF_INET6, s.c_str(), out) == 1;
}

// A DNS name: dot-separated labels of letters, digits, '-' and '_' (seen in real hostnames),
// 1..63 characters each, not starting or ending with '-'; an optional trailing dot.
bool IsValidHostname(std::string_view host) {
  if (!host.empty() && host.back() == '.') host.remove_suffix(1);
  if (host.empty() || host.size() > 253) return false;
  std::size_t start = 0;
  while (start <= host.size()) {
    std::size_t end = host.find('.', start);
    if (end == std::string_view::npos) end = host.size();
    std::string_view label = host.substr(start, end - start);
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') {
      return false;
    }
    for (char c : label) {
      if (!IsAlpha(c) && !IsDigit(c) && c != '-' && c != '_') return false;
    }
    start = end + 1;
  }
  return true;
}

// WHATWG URL (and getaddrinfo via inet_aton) read a host whose last label is numeric as an IPv4
// address, including forms like "2130706433", "127.1" or "0x7f.0.0.1". Only the dotted-quad form
// is accepted so that every component that sees the URL agrees on the target.
bool LooksLikeIpv4(std::string_view host) {
  if (!host.empty() && host.back() == '.') host.remove_suffix(1);
  std::size_t dot = host.rfind('.');
  std::string_view last = dot == std::string_view::npos ? host : host.substr(dot + 1);
  if (last.empty()) return false;
  if (last.size() >= 2 && last[0] == '0' && ToLower(last[1]) == 'x') return true;
  return std::all_of(last.begin(), last.end(), IsDigit);
}

// Parses the host[:port] part of an authority into `url`.
bool ParseHostPort(std::string_view hostport, Url& url) {
  std::string_view host;
  std::string_view rest;
  if (!hostport.empty() && hostport.front() == '[') {
    std::size_t close = hostport.find(']');
    if (close == std::string_view::npos) return false;
    host = hostport.substr(1, close - 1);
    in6_addr addr;
    if (!ParseIpv6(host, &addr)) return false;  // also rejects zone ids and IPvFuture
    rest = hostport.substr(close + 1);
  } else {
    std::size_t colon = hostport.find(':');
    host = hostport.substr(0, colon);
    rest = colon == std::string_view::npos ? std::string_view() : hostport.substr(colon);
    if (LooksLikeIpv4(host)) {
      in_addr addr;
      if (!ParseIpv4(host, &addr)) return false;
    } else if (!IsValidHostname(host)) {
      return false;
    }
  }
  url.host = Lowercase(host);

  url.port = url.scheme == "https" ? 443 : 80;
  if (rest.empty()) return true;
  if (rest.front() != ':') return false;
  std::string_view digits = rest.substr(1);
  if (digits.empty() || digits.size() > 5 || !std::all_of(digits.begin(), digits.end(), IsDigit)) {
    return false;
  }
  int port = 0;
  for (char c : digits) port = port * 10 + (c - '0');
  if (port < 1 || port > 65535) return false;
  url.port = static_cast<std::uint16_t>(port);
  return true;
}

bool IsPrivateIpv4(const in_addr& addr) {
  std::uint32_t ip = ntohl(addr.s_addr);
  struct Range {
    std::uint32_t base;
    int prefix;
  };
  static constexpr std::array<Range, 10> kRanges = {{
      {0x00000000, 8},   // 0.0.0.0/8 "this network", incl. unspecified
      {0x0A000000, 8},   // 10/8
      {0x64400000, 10},  // 100.64/10 CGNAT
      {0x7F000000, 8},   // 127/8 loopback
      {0xA9FE0000, 16},  // 169.254/16 link-local, cloud metadata
      {0xAC100000, 12},  // 172.16/12
      {0xC0000000, 24},  // 192.0.0/24 IETF protocol assignments
      {0xC0A80000, 16},  // 192.168/16
      {0xE0000000, 4},   // 224/4 multicast
      {0xF0000000, 4},   // 240/4 reserved, incl. 255.255.255.255 broadcast
  }};
  for (const Range& r : kRanges) {
    std::uint32_t mask = ~std::uint32_t{0} << (32 - r.prefix);
    if ((ip & mask) == r.base) return true;
  }
  return false;
}

bool IsPrivateIpv6(const in6_addr& addr) {
  const unsigned char* b = addr.s6_addr;
  auto all_zero = [&](int from, int to) {
    return std::all_of(b + from, b + to, [](unsigned char x) { return x == 0; });
  };
  auto embedded_v4 = [&](int offset) {
    in_addr v4;
    std::memcpy(&v4.s_addr, b + offset, 4);
    return IsPrivateIpv4(v4);
  };
  // ::ffff:0:0/96 (IPv4-mapped) and ::/96 (deprecated IPv4-compatible). "::" and "::1" land
  // on 0.0.0.0/8 this way, so they are covered too.
  if (all_zero(0, 10) && b[10] == b[11] && (b[10] == 0 || b[10] == 0xff)) return embedded_v4(12);
  // 64:ff9b::/96 NAT64 and 2002::/16 6to4 reach the IPv4 address they embed.
  static constexpr std::array<unsigned char, 12> kNat64 = {0x00, 0x64, 0xff, 0x9b};
  if (std::equal(kNat64.begin(), kNat64.end(), b)) return embedded_v4(12);
  if (b[0] == 0x20 && b[1] == 0x02) return embedded_v4(2);
  if ((b[0] & 0xfe) == 0xfc) return true;                  // fc00::/7 unique local
  if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) return true;  // fe80::/10 link-local
  if (b[0] == 0xfe && (b[1] & 0xc0) == 0xc0) return true;  // fec0::/10 old site-local
  if (b[0] == 0xff) return true;                           // ff00::/8 multicast
  return false;
}

}  // namespace

std::optional<Url> ParseHttpUrl(std::string_view text) {
  Url url;
  std::size_t colon = text.find("://");
  if (colon == std::string_view::npos) return std::nullopt;
  url.scheme = Lowercase(text.substr(0, colon));
  if (url.scheme != "http" && url.scheme != "https") return std::nullopt;
  std::string_view rest = text.substr(colon + 3);

  std::size_t hash = rest.find('#');
  if (hash != std::string_view::npos) {
    url.has_fragment = true;
    if (!IsValidComponent(rest.substr(hash + 1), ":@/?")) return std::nullopt;
    rest = rest.substr(0, hash);
  }
  std::size_t question = rest.find('?');
  if (question != std::string_view::npos) {
    url.query = std::string(rest.substr(question + 1));
    if (!IsValidComponent(url.query, ":@/?")) return std::nullopt;
    rest = rest.substr(0, question);
  }
  std::size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  url.path = slash == std::string_view::npos ? "/" : std::string(rest.substr(slash));
  if (!IsValidComponent(url.path, ":@/")) return std::nullopt;

  std::size_t at = authority.rfind('@');
  if (at != std::string_view::npos) {
    url.has_userinfo = true;
    if (!IsValidComponent(authority.substr(0, at), ":")) return std::nullopt;
    authority = authority.substr(at + 1);
  }
  if (!ParseHostPort(authority, url)) return std::nullopt;
  return url;
}

bool IsPrivateAddress(std::string_view ip_literal) {
  // Scoped addresses as printed by getnameinfo ("fe80::1%eth0"): the scope does not matter.
  std::size_t percent = ip_literal.find('%');
  if (percent != std::string_view::npos) ip_literal = ip_literal.substr(0, percent);
  in_addr v4;
  if (ParseIpv4(ip_literal, &v4)) return IsPrivateIpv4(v4);
  in6_addr v6;
  if (ParseIpv6(ip_literal, &v6)) return IsPrivateIpv6(v6);
  return false;
}

bool IsPrivateHost(std::string_view host) {
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  std::string name = Lowercase(host);
  if (!name.empty() && name.back() == '.') name.pop_back();
  if (name == "localhost" || name.ends_with(".localhost")) return true;
  if (IsPrivateAddress(name)) return true;
  // Legacy IPv4 spellings ("127.1", "2130706433", "0x7f000001") that resolvers still accept.
  in_addr v4;
  if (inet_aton(name.c_str(), &v4) != 0) return IsPrivateIpv4(v4);
  return false;
}

}  // namespace herald
