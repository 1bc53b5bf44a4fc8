// Helpers shared by the provider adapter tests: a provider built from credentials the way the
// dispatcher builds it, headers read off a request, hand-made replies, and batches planned and
// classified for the providers that send many messages a request.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/json.h"
#include "http/client.h"
#include "providers/provider.h"

namespace herald::providers::test {

// The provider `id` bound to `credentials` after its spec validated them (a test failure, and
// null, if either step fails).
std::unique_ptr<Provider> MakeProvider(std::string_view id, const Json& credentials);

// The first value of header `name` (any case) in `request`; `count` gets how many there are.
std::string HeaderOf(const http::Request& request, std::string_view name, int* count = nullptr);

// The typed reason of a request `provider` refuses to build ("<accepted>" if it builds it).
std::string RefusalReason(const Provider& provider, const PushMessage& message,
                          const AuthToken& token);

// The request `provider` makes for a connection test, with no token (a test failure, and
// nullopt, if it makes none).
std::optional<http::Request> ProbeRequest(const Provider& provider);

// A reply with `status`, `body` and `headers` (names lowercase, as the client gives them).
http::Outcome Reply(int status, std::string body = "", http::Headers headers = {});
// A request that got no HTTP response.
http::Outcome Failure(http::TransportError error);

// ---- batches (max_batch() > 1) -----------------------------------------------------------------
// Message `n` (its id) to `token`: title "Hello Ann", body "Your order shipped", `payload_json`.
PushMessage NumberedMessage(
    int n, std::string token,
    std::string payload_json =
        R"({"orderId":7,"subscriber":{"subscriberId":"s1"},"step":{"digest":false}})");

// The batch a provider is given for `messages` (which must outlive it).
std::vector<const PushMessage*> Pointers(const std::vector<PushMessage>& messages);

// What `provider` makes of `messages` as one batch.
BatchPlan Plan(const Provider& provider, const std::vector<PushMessage>& messages);

// A request's body as JSON (a test failure if it is not an object).
Json BodyOf(const BatchRequest& request);

// The body of the one request `message` alone makes (a test failure, and null, otherwise).
Json SingleBody(const Provider& provider, const PushMessage& message);

// The typed reason `provider` refuses `message` with (kFailed) when planning a batch of it alone
// ("<not refused>" if it does not).
std::string BatchRefusalReason(const Provider& provider, const PushMessage& message);

// The outcomes `reply` gives the request that carried `messages`.
std::vector<Outcome> Classify(const Provider& provider, const std::vector<PushMessage>& messages,
                              const http::Outcome& reply);

}  // namespace herald::providers::test
