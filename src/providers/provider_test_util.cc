#include "providers/provider_test_util.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <utility>

#include "providers/registry.h"

namespace herald::providers::test {

std::unique_ptr<Provider> MakeProvider(std::string_view id, const Json& credentials) {
  const ProviderSpec* spec = FindProvider(id);
  EXPECT_NE(spec, nullptr) << id;
  if (spec == nullptr) return nullptr;
  Json copy = credentials;
  Status valid = spec->ValidateCredentials(copy);
  EXPECT_TRUE(valid.ok()) << valid.message();
  Result<std::unique_ptr<Provider>> provider = spec->Create(copy);
  EXPECT_TRUE(provider.ok()) << (provider.ok() ? "" : provider.status().message());
  if (!provider.ok()) return nullptr;
  return std::move(*provider);
}

std::string HeaderOf(const http::Request& request, std::string_view name, int* count) {
  std::string found;
  int n = 0;
  for (const auto& [key, value] : request.headers) {
    bool same = key.size() == name.size() &&
                std::equal(key.begin(), key.end(), name.begin(), [](char a, char b) {
                  return std::tolower(static_cast<unsigned char>(a)) ==
                         std::tolower(static_cast<unsigned char>(b));
                });
    if (same && n++ == 0) found = value;
  }
  if (count) *count = n;
  return found;
}

std::string RefusalReason(const Provider& provider, const PushMessage& message,
                          const AuthToken& token) {
  Result<http::Request> request = provider.BuildRequest(message, token);
  if (request.ok()) return "<accepted>";
  EXPECT_EQ(request.status().code(), Code::kInvalidArgument);
  return ReasonOf(request.status(), "<no reason>");
}

std::optional<http::Request> ProbeRequest(const Provider& provider) {
  Result<std::optional<http::Request>> probe = provider.BuildProbe({});
  EXPECT_TRUE(probe.ok()) << (probe.ok() ? "" : probe.status().message());
  if (!probe.ok()) return std::nullopt;
  EXPECT_TRUE(probe->has_value()) << "no probe request";
  return std::move(*probe);
}

http::Outcome Reply(int status, std::string body, http::Headers headers) {
  http::Outcome out;
  out.response.status = status;
  out.response.headers = std::move(headers);
  out.response.body = std::move(body);
  return out;
}

http::Outcome Failure(http::TransportError error) {
  http::Outcome out;
  out.error = error;
  out.error_message = "simulated";
  return out;
}

PushMessage NumberedMessage(int n, std::string token, std::string payload_json) {
  PushMessage m;
  m.message_id = "65f0c0ffee01234567890" + std::to_string(100 + n);
  m.device_token = std::move(token);
  m.title = "Hello Ann";
  m.content = "Your order shipped";
  m.payload_json = std::move(payload_json);
  return m;
}

std::vector<const PushMessage*> Pointers(const std::vector<PushMessage>& messages) {
  std::vector<const PushMessage*> out;
  for (const PushMessage& m : messages) out.push_back(&m);
  return out;
}

BatchPlan Plan(const Provider& provider, const std::vector<PushMessage>& messages) {
  auto pointers = Pointers(messages);
  return provider.BuildBatch(pointers, {});
}

Json BodyOf(const BatchRequest& request) {
  Json body = Json::parse(request.request.body, nullptr, /*allow_exceptions=*/false);
  EXPECT_TRUE(body.is_object()) << request.request.body;
  return body;
}

Json SingleBody(const Provider& provider, const PushMessage& message) {
  BatchPlan plan = Plan(provider, {message});
  EXPECT_EQ(plan.requests.size(), 1u);
  EXPECT_TRUE(plan.refused.empty()) << (plan.refused.empty() ? "" : plan.refused[0].second.detail);
  return plan.requests.empty() ? Json() : BodyOf(plan.requests[0]);
}

std::string BatchRefusalReason(const Provider& provider, const PushMessage& message) {
  BatchPlan plan = Plan(provider, {message});
  EXPECT_TRUE(plan.requests.empty());
  if (plan.refused.size() != 1) return "<not refused>";
  EXPECT_EQ(plan.refused[0].second.verdict, Verdict::kFailed);
  return plan.refused[0].second.reason;
}

std::vector<Outcome> Classify(const Provider& provider, const std::vector<PushMessage>& messages,
                              const http::Outcome& reply) {
  auto pointers = Pointers(messages);
  return provider.ClassifyBatch(reply, pointers);
}

}  // namespace herald::providers::test
