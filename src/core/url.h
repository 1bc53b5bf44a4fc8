// URL parsing and outbound-target safety checks shared by validation (api, providers) and the
// HTTP engine.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace herald {

struct Url {
  std::string scheme;  // lowercase: "https", "http"
  std::string host;    // lowercase; IPv6 literals without brackets
  std::uint16_t port;  // explicit or the scheme default
  std::string path;    // starts with '/', "/" if empty; percent-encoding kept
  std::string query;   // without '?', may be empty
  bool has_fragment = false;
  bool has_userinfo = false;
};

// Parses an absolute http(s) URL. nullopt if not absolute, scheme not http/https, host empty or
// invalid, port out of range, or characters outside RFC 3986.
std::optional<Url> ParseHttpUrl(std::string_view text);

// True if `host` names a target that must not be reached without HERALD_ALLOW_PRIVATE_TARGETS:
// "localhost" and *.localhost, and IP literals (v4 or v6) in loopback, private (RFC 1918, ULA
// fc00::/7), link-local (169.254/16, fe80::/10, incl. 169.254.169.254 metadata), CGNAT
// 100.64/10, unspecified (0.0.0.0, ::), multicast, broadcast and IPv4-mapped forms of these.
// Hostnames that are not literals return false here; the HTTP engine checks resolved addresses.
bool IsPrivateHost(std::string_view host);
// Same check for a resolved address in text form ("10.0.0.1", "::1").
bool IsPrivateAddress(std::string_view ip_literal);

}  // namespace herald
