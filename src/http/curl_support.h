// Pieces of the HTTP engines (libcurl, nghttp2) that need no client state: request validation,
// libcurl's error mapping, the outbound-safety address check and the trusted CAs. Internal to
// src/http.
#pragma once

#include <curl/curl.h>
#include <openssl/x509.h>
#include <sys/socket.h>

#include <memory>
#include <string>
#include <string_view>

#include "http/client.h"

namespace herald::http {

char ToLower(char c);
// RFC 9110 token characters (method and header names).
bool IsToken(std::string_view text);
bool IsSafeHeaderValue(std::string_view value);
std::string_view Trim(std::string_view text);
// True if `name` equals `lower` (a lowercase header name) ignoring case.
bool HeaderNameIs(std::string_view name, std::string_view lower);

TransportError MapCurlError(CURLcode code);
std::string HttpVersionName(long version);

// The error message of a request refused by that check (TransportError::kForbiddenTarget).
inline constexpr const char* kPrivateTargetMessage =
    "target resolves to a private address (set HERALD_ALLOW_PRIVATE_TARGETS=1 to allow)";

// True if `address` (about to be connected to; `length` bytes) is loopback, private, link-local
// or metadata, or cannot be read: outbound requests never go there unless private targets are
// allowed. May throw (out of memory).
bool RefusedAddress(const sockaddr* address, socklen_t length);
// The same check for the address libcurl's open-socket hook is given.
bool RefusedTarget(const curl_sockaddr& address);

struct X509StoreDeleter {
  void operator()(X509_STORE* store) const { X509_STORE_free(store); }
};

// The CAs outbound TLS trusts: the system bundle plus an extra PEM file (HERALD_CA_FILE).
struct TrustAnchors {
  // Parsed once and shared by every TLS connection: libcurl would parse its CA file or blob
  // again for each new connection. Null when libcurl is not built on OpenSSL; then `pem` (only
  // with an extra file) goes to CURLOPT_CAINFO_BLOB and libcurl's default file is used otherwise.
  std::unique_ptr<X509_STORE, X509StoreDeleter> store;
  std::string pem;
  std::string error;  // set when the extra file could not be used: https requests fail with it
};
// `openssl`: libcurl's TLS backend is OpenSSL. Throws std::runtime_error when out of memory.
TrustAnchors LoadTrustAnchors(const std::string& ca_file, bool openssl);

}  // namespace herald::http
