// Helpers shared by the provider adapter tests: a provider built from credentials the way the
// dispatcher builds it, headers read off a request, hand-made replies.
#pragma once

#include <memory>
#include <string>
#include <string_view>

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

// A reply with `status`, `body` and `headers` (names lowercase, as the client gives them).
http::Outcome Reply(int status, std::string body = "", http::Headers headers = {});
// A request that got no HTTP response.
http::Outcome Failure(http::TransportError error);

}  // namespace herald::providers::test
