#include "providers/provider_test_util.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>

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

}  // namespace herald::providers::test
