#include "http/curl_support.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include <algorithm>
#include <cstring>
#include <exception>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <vector>

#include "core/log.h"
#include "core/url.h"
#include "http/engine_inbox.h"

namespace herald::http {
namespace {

bool ReadFile(const std::string& path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  out->assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  return !in.bad();
}

// The CA bundle libcurl uses by default (the system one), if it can be read.
std::string SystemCaBundle() {
  std::vector<std::string> candidates;
  if (CURL* probe = curl_easy_init()) {
    char* path = nullptr;
    if (curl_easy_getinfo(probe, CURLINFO_CAINFO, &path) == CURLE_OK && path != nullptr) {
      candidates.emplace_back(path);
    }
    curl_easy_cleanup(probe);
  }
  candidates.insert(candidates.end(), {"/etc/ssl/certs/ca-certificates.crt",
                                       "/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/cert.pem"});
  std::string pem;
  for (const auto& path : candidates) {
    if (ReadFile(path, &pem) && !pem.empty()) return pem;
  }
  return {};
}

// Adds every certificate of the PEM text `pem` to `store`; false if the text does not parse.
bool AddPemCertificates(X509_STORE* store, const std::string& pem) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(
      BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), BIO_free);
  STACK_OF(X509_INFO)* infos =
      bio ? PEM_X509_INFO_read_bio(bio.get(), nullptr, nullptr, nullptr) : nullptr;
  if (!infos) {
    ERR_clear_error();
    return false;
  }
  for (int i = 0; i < sk_X509_INFO_num(infos); ++i) {
    X509_INFO* info = sk_X509_INFO_value(infos, i);
    if (info->x509) X509_STORE_add_cert(store, info->x509);  // a repeat is ignored
  }
  sk_X509_INFO_pop_free(infos, X509_INFO_free);
  ERR_clear_error();
  return true;
}

}  // namespace

char ToLower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool IsToken(std::string_view text) {
  if (text.empty()) return false;
  for (char c : text) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
    if (!ok) return false;
  }
  return true;
}

bool IsSafeHeaderValue(std::string_view value) {
  return value.find_first_of(std::string_view("\r\n\0", 3)) == std::string_view::npos;
}

std::string_view Trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t' || text.back() == '\r' ||
                           text.back() == '\n')) {
    text.remove_suffix(1);
  }
  return text;
}

TransportError MapCurlError(CURLcode code) {
  switch (code) {
    case CURLE_OPERATION_TIMEDOUT:
      return TransportError::kTimeout;
    case CURLE_COULDNT_CONNECT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
      return TransportError::kConnect;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
      return TransportError::kDns;
    // libcurl reports any handshake that did not complete this way, a connection reset or
    // closed in the middle of it included: retried like other network errors (a server whose
    // TLS can never match ours is retried up to the limit, then dead-lettered with the reason).
    case CURLE_SSL_CONNECT_ERROR:
      return TransportError::kTlsHandshake;
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_SSL_SHUTDOWN_FAILED:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_CLIENTCERT:
    case CURLE_USE_SSL_FAILED:
      return TransportError::kTls;
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
      return TransportError::kBadRequest;
    default:  // HTTP2, HTTP2_STREAM, WEIRD_SERVER_REPLY, PARTIAL_FILE and anything unexpected
      return TransportError::kProtocol;
  }
}

std::string HttpVersionName(long version) {
  switch (version) {
    case CURL_HTTP_VERSION_1_0:
      return "1.0";
    case CURL_HTTP_VERSION_1_1:
      return "1.1";
    case CURL_HTTP_VERSION_2_0:
      return "2";
    case CURL_HTTP_VERSION_3:
      return "3";
    default:
      return "";
  }
}

bool RefusedAddress(const sockaddr* address, socklen_t length) {
  char text[INET6_ADDRSTRLEN] = {};
  const char* printed = nullptr;
  if (address->sa_family == AF_INET && length >= static_cast<socklen_t>(sizeof(sockaddr_in))) {
    sockaddr_in v4;
    std::memcpy(&v4, address, sizeof(v4));
    printed = inet_ntop(AF_INET, &v4.sin_addr, text, sizeof(text));
  } else if (address->sa_family == AF_INET6 &&
             length >= static_cast<socklen_t>(sizeof(sockaddr_in6))) {
    sockaddr_in6 v6;
    std::memcpy(&v6, address, sizeof(v6));
    printed = inet_ntop(AF_INET6, &v6.sin6_addr, text, sizeof(text));
  }
  if (printed != nullptr && !IsPrivateAddress(printed)) return false;
  spdlog::debug("http_private_target_refused address={}", printed ? printed : "?");
  return true;
}

bool RefusedTarget(const curl_sockaddr& address) {
  // curl's storage behind `addr` is large enough for `addrlen` bytes.
  return RefusedAddress(&address.addr, address.addrlen);
}

bool HeaderNameIs(std::string_view name, std::string_view lower) {
  return name.size() == lower.size() &&
         std::equal(name.begin(), name.end(), lower.begin(),
                    [](char a, char b) { return ToLower(a) == b; });
}

TrustAnchors LoadTrustAnchors(const std::string& ca_file, bool openssl) {
  TrustAnchors trust;
  std::string extra;
  auto ca_file_unusable = [&] {
    trust.error = "cannot read a PEM certificate from HERALD_CA_FILE " + ca_file;
    spdlog::error("http_ca_file_unusable path=\"{}\"", ca_file);
  };
  if (!ca_file.empty() &&
      (!ReadFile(ca_file, &extra) || extra.find("-----BEGIN CERTIFICATE-----") == std::string::npos)) {
    ca_file_unusable();
  }
  if (!trust.error.empty() || (!openssl && extra.empty())) return trust;
  std::string system = SystemCaBundle();
  if (system.empty()) spdlog::warn("http_system_ca_bundle_missing");
  if (openssl) {
    trust.store.reset(X509_STORE_new());
    if (!trust.store) throw std::runtime_error("cannot allocate a certificate store");
    // As libcurl sets up its own store: an intermediate listed as trusted is an anchor.
    X509_STORE_set_flags(trust.store.get(), X509_V_FLAG_PARTIAL_CHAIN);
    if (!system.empty() && !AddPemCertificates(trust.store.get(), system)) {
      spdlog::warn("http_system_ca_bundle_unreadable");
    }
    if (!extra.empty() && !AddPemCertificates(trust.store.get(), extra)) ca_file_unusable();
  } else {
    trust.pem = std::move(system);
    if (!trust.pem.empty() && trust.pem.back() != '\n') trust.pem += '\n';
    trust.pem += extra;
  }
  return trust;
}

}  // namespace herald::http

namespace herald::http {

void DeliverOutcome(const Callback& done, Outcome outcome) {
  if (!done) return;
  try {
    done(std::move(outcome));
  } catch (const std::exception& e) {
    spdlog::error("http_callback_exception what=\"{}\"", e.what());
  } catch (...) {
    spdlog::error("http_callback_exception");
  }
}

void LogShutdownFromCallback(const char* engine) {
  spdlog::warn("http_client_shutdown_from_callback engine={}", engine);
}

}  // namespace herald::http
