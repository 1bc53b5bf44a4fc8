#include "providers/push_webhook/push_webhook_provider.h"

#include "core/url.h"
#include "crypto/crypto.h"

namespace herald::providers {
namespace {

class PushWebhookProvider final : public Provider {
 public:
  PushWebhookProvider(std::string url, std::string secret)
      : url_(std::move(url)), secret_(std::move(secret)) {}

  Result<http::Request> BuildRequest(const PushMessage& message,
                                     const AuthToken&) const override {
    http::Request request;
    request.method = "POST";
    request.url = url_;
    request.body = PushWebhookBody(message);
    request.headers = {
        {"Content-Type", "application/json"},
        {"Accept", "application/json, text/plain, */*"},
        {"X-Novu-Signature", crypto::Hex(crypto::HmacSha256(secret_, request.body))},
    };
    return request;
  }

  Outcome Classify(const http::Outcome& reply) const override {
    Outcome out = ClassifyTransport(reply);
    if (out.verdict == Verdict::kDelivered && !reply.response.body_truncated) {
      // Novu records `response.data.id`; any 2xx body is fine (also one too large to keep), an
      // id is optional.
      Json body = Json::parse(reply.response.body, nullptr, /*allow_exceptions=*/false);
      if (body.is_object() && body.contains("id")) {
        const Json& id = body["id"];
        if (id.is_string()) out.provider_message_id = id.get<std::string>();
        if (id.is_number()) out.provider_message_id = id.dump();
      }
    }
    return out;
  }

  // The URL answers: a HEAD request (no body, nothing a receiver would deliver) that gets any
  // HTTP response below 500.
  Result<std::optional<http::Request>> BuildProbe(const AuthToken&) const override {
    http::Request request;
    request.method = "HEAD";
    request.url = url_;
    return std::optional<http::Request>(std::move(request));
  }

  ProbeResult ReadProbe(const http::Outcome& reply) const override {
    ProbeResult result = ProbeFromTransport(reply);
    if (reply.ok() && reply.response.status < 500) {
      result.ok = true;
      result.reason.clear();
    }
    return result;
  }

 private:
  std::string url_;
  std::string secret_;
};

// `baseUrl`, when given, replaces the origin (scheme, host, port) of `webhookUrl`.
std::string EffectiveUrl(const Json& credentials) {
  std::string url = credentials.value("webhookUrl", "");
  std::string base = credentials.value("baseUrl", "");
  if (base.empty()) return url;
  std::optional<Url> parsed = ParseHttpUrl(url);
  if (!parsed) return url;
  while (!base.empty() && base.back() == '/') base.pop_back();
  return base + parsed->path + (parsed->query.empty() ? "" : "?" + parsed->query);
}

}  // namespace

std::string PushWebhookBody(const PushMessage& m) {
  // Written straight into one string (it is built for every send): no Json values, no
  // temporaries.
  std::string overrides =
      m.overrides.is_object() && !m.overrides.empty() ? DumpJson(m.overrides) : std::string("{}");
  std::string body;
  body.reserve(96 + 2 * (m.device_token.size() + m.title.size() + m.content.size()) +
               overrides.size() + m.payload_json.size() + m.message_id.size());
  body += "{\"target\":[";
  AppendJsonString(body, m.device_token);
  body += "],\"title\":";
  AppendJsonString(body, m.title);
  body += ",\"content\":";
  AppendJsonString(body, m.content);
  body += ",\"overrides\":";
  body += overrides;
  body += ",\"payload\":";
  body += m.payload_json;
  body += ",\"messageId\":";
  AppendJsonString(body, m.message_id);
  body += '}';
  return body;
}

Result<std::unique_ptr<Provider>> NewPushWebhookProvider(const Json& credentials) {
  std::string url = EffectiveUrl(credentials);
  std::string secret = credentials.value("secretKey", "");
  if (!ParseHttpUrl(url) || secret.empty()) {
    return Status::InvalidArgument("push-webhook credentials need webhookUrl and secretKey");
  }
  return std::unique_ptr<Provider>(new PushWebhookProvider(std::move(url), std::move(secret)));
}

}  // namespace herald::providers
