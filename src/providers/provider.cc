#include "providers/provider.h"

#include <charconv>
#include <ctime>

#include "core/time.h"

namespace herald::providers {
namespace {

Status NotImplemented(std::string_view what) {
  return Status(Code::kFailedPrecondition, "provider does not implement " + std::string(what));
}

}  // namespace

// ---- defaults: a provider implements the parts it needs --------------------------------------

Result<AuthToken> Authenticator::Mint(std::string_view, EpochMs) const {
  return NotImplemented("token minting");
}

Result<http::Request> Authenticator::BuildExchange(EpochMs) const {
  return NotImplemented("token exchange");
}

Result<AuthToken> Authenticator::ReadExchange(const http::Outcome&, EpochMs) const {
  return NotImplemented("token exchange");
}

Result<http::Request> Provider::BuildRequest(const PushMessage&, const AuthToken&) const {
  return NotImplemented("per-message requests");
}

Outcome Provider::Classify(const http::Outcome& reply) const { return ClassifyTransport(reply); }

BatchPlan Provider::BuildBatch(std::span<const PushMessage* const> batch, const AuthToken&) const {
  BatchPlan plan;
  for (std::size_t i = 0; i < batch.size(); ++i) {
    plan.refused.emplace_back(
        i, Outcome{Verdict::kFailedConfig, "NOT_IMPLEMENTED", "provider sends no batches"});
  }
  return plan;
}

std::vector<Outcome> Provider::ClassifyBatch(const http::Outcome& reply,
                                             std::span<const PushMessage* const> messages) const {
  return std::vector<Outcome>(messages.size(), ClassifyTransport(reply));
}

Result<std::optional<http::Request>> Provider::BuildProbe(const AuthToken&) const {
  return std::optional<http::Request>();
}

ProbeResult Provider::ReadProbe(const http::Outcome& reply) const {
  return ProbeFromTransport(reply);
}

// ---- shared classification -------------------------------------------------------------------


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

Status Refusal(std::string_view reason, std::string detail, Code code) {
  return Status(code, std::move(detail)).WithExtra(Json{{"reason", std::string(reason)}});
}

std::string ReasonOf(const Status& status, std::string_view fallback) {
  const Json& extra = status.extra();
  if (extra.is_object()) {
    auto it = extra.find("reason");
    if (it != extra.end() && it->is_string()) return it->get<std::string>();
  }
  return std::string(fallback);
}

ProbeResult ProbeFromTransport(const http::Outcome& reply) {
  ProbeResult result;
  if (!reply.ok()) {
    Outcome transport = ClassifyTransport(reply);
    result.reason = transport.reason;
    result.detail = transport.detail;
    return result;
  }
  const int status = reply.response.status;
  result.ok = status < 500 && status != 401 && status != 403;
  result.reason = result.ok ? "" : "HTTP_" + std::to_string(status);
  result.detail = "answered HTTP " + std::to_string(status);
  return result;
}

OrderedJson DevicePayload(const PushMessage& message) {
  std::optional<OrderedJson> payload = ParseOrderedJson(message.payload_json);
  if (!payload || !payload->is_object()) return OrderedJson::object();
  payload->erase("subscriber");
  payload->erase("step");
  return std::move(*payload);
}

}  // namespace herald::providers
