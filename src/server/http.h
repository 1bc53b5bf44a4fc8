// Inbound HTTP as the rest of Herald sees it, independent of the server library.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace herald::server {

using Headers = std::vector<std::pair<std::string, std::string>>;  // names in lowercase

struct Request {
  std::string method;  // upper case: "GET", "POST", ...
  std::string target;  // as received: path plus query string
  std::string path;    // raw (still percent-encoded) path, without the query
  std::vector<std::pair<std::string, std::string>> query;  // decoded, in order, repeats kept
  Headers headers;
  std::string body;
  std::string request_id;  // from X-Request-Id if sane, else generated
  std::string remote;      // peer address

  // Filled by the router: ":name" segments of the matched pattern, percent-decoded.
  std::vector<std::pair<std::string, std::string>> params;

  // First header with this (lowercase) name, or empty.
  std::string_view Header(std::string_view name) const;
  // First query value for `key`, or nullptr. All values: QueryAll.
  const std::string* Query(std::string_view key) const;
  std::vector<std::string> QueryAll(std::string_view key) const;
  const std::string& Param(std::string_view name) const;  // empty if absent
};

struct Reply {
  int status = 200;
  std::string body;  // JSON text unless content_type says otherwise
  std::string content_type = "application/json; charset=utf-8";
  Headers headers;  // extra headers
};

// Completion callback: call exactly once, from any thread.
using Done = std::function<void(Reply)>;
// An asynchronous handler. Synchronous ones are adapted with Sync().
using Handler = std::function<void(Request&, Done)>;

template <typename F>
Handler Sync(F f) {
  return [f = std::move(f)](Request& request, Done done) { done(f(request)); };
}

}  // namespace herald::server
