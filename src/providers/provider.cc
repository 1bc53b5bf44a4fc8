#include "providers/provider.h"

#include <charconv>
#include <ctime>

#include "core/time.h"

namespace herald::providers {

const char* VerdictName(Verdict verdict) {
  switch (verdict) {
    case Verdict::kDelivered:
      return "delivered";
    case Verdict::kRetry:
      return "retry";
    case Verdict::kRefreshAuth:
      return "refresh-auth";
    case Verdict::kFailed:
      return "failed";
    case Verdict::kFailedRemoveToken:
      return "failed-remove-token";
    case Verdict::kFailedConfig:
      return "failed-config";
  }
  return "failed";
}

std::optional<std::chrono::milliseconds> ParseRetryAfter(std::string_view value,
                                                         std::int64_t now_ms) {
  while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  while (!value.empty() && value.back() == ' ') value.remove_suffix(1);
  if (value.empty()) return std::nullopt;
  long long seconds = 0;
  auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), seconds);
  if (ec == std::errc() && end == value.data() + value.size()) {
    if (seconds < 0) return std::nullopt;
    return std::chrono::milliseconds(std::min<long long>(seconds, 86400) * 1000);
  }
  // An HTTP-date in any of the three forms RFC 9110 §5.6.7 has recipients accept: IMF-fixdate
  // ("Sun, 06 Nov 1994 08:49:37 GMT"), the obsolete RFC 850 ("Sunday, 06-Nov-94 08:49:37 GMT")
  // and asctime ("Sun Nov  6 08:49:37 1994"); also IMF-fixdate with a zero numeric zone or UTC,
  // as some servers write it.
  static constexpr const char* kForms[] = {
      "%a, %d %b %Y %H:%M:%S GMT",   "%a, %d-%b-%y %H:%M:%S GMT",   "%a %b %e %H:%M:%S %Y",
      "%a, %d %b %Y %H:%M:%S +0000", "%a, %d %b %Y %H:%M:%S -0000", "%a, %d %b %Y %H:%M:%S UTC"};
  const std::string text(value);
  for (const char* form : kForms) {
    std::tm tm{};
    const char* parsed = strptime(text.c_str(), form, &tm);
    if (!parsed || *parsed != '\0') continue;
    std::int64_t at_ms = static_cast<std::int64_t>(timegm(&tm)) * 1000;
    return std::chrono::milliseconds(std::max<std::int64_t>(0, at_ms - now_ms));
  }
  return std::nullopt;
}

Outcome ClassifyHttpStatus(const http::Response& response) {
  Outcome out;
  int status = response.status;
  out.reason = "HTTP_" + std::to_string(status);
  if (status >= 200 && status < 300) {
    out.verdict = Verdict::kDelivered;
    out.reason.clear();
    return out;
  }
  out.detail = "provider answered HTTP " + std::to_string(status);
  if (status == 408 || status == 429 || status >= 500) {
    out.verdict = Verdict::kRetry;
    if (std::string_view after = response.Header("retry-after"); !after.empty()) {
      out.retry_after = ParseRetryAfter(after, NowMs());
    }
    return out;
  }
  out.verdict = Verdict::kFailed;
  return out;
}

Outcome ClassifyTransport(const http::Outcome& reply) {
  if (reply.ok()) return ClassifyHttpStatus(reply.response);
  Outcome out;
  std::string name = http::TransportErrorName(reply.error);
  for (char& c : name) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  out.reason = name;
  out.detail = reply.error_message;
  switch (reply.error) {
    case http::TransportError::kForbiddenTarget:
    case http::TransportError::kBadRequest:
    case http::TransportError::kTls:
      out.verdict = Verdict::kFailedConfig;
      break;
    default:
      out.verdict = http::IsTransient(reply.error) ? Verdict::kRetry : Verdict::kFailed;
      break;
  }
  return out;
}

}  // namespace herald::providers
