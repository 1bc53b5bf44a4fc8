#include "http/client.h"

#include <strings.h>

namespace herald::http {

std::string_view Response::Header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (key.size() == name.size() && strncasecmp(key.data(), name.data(), name.size()) == 0) {
      return value;
    }
  }
  return {};
}

const char* TransportErrorName(TransportError error) {
  switch (error) {
    case TransportError::kNone:
      return "none";
    case TransportError::kTimeout:
      return "timeout";
    case TransportError::kConnect:
      return "connect";
    case TransportError::kDns:
      return "dns";
    case TransportError::kTlsHandshake:
      return "tls_handshake";
    case TransportError::kTls:
      return "tls";
    case TransportError::kForbiddenTarget:
      return "forbidden_target";
    case TransportError::kProtocol:
      return "protocol";
    case TransportError::kBadRequest:
      return "bad_request";
    case TransportError::kShutdown:
      return "shutdown";
    case TransportError::kWithdrawn:
      return "withdrawn";
  }
  return "unknown";
}

bool IsTransient(TransportError error) {
  switch (error) {
    case TransportError::kTimeout:
    case TransportError::kConnect:
    case TransportError::kDns:
    case TransportError::kTlsHandshake:
    case TransportError::kProtocol:
      return true;
    default:
      return false;
  }
}

}  // namespace herald::http
