// Routes requests to handlers by method and path pattern. Patterns are literal segments and
// ":name" parameters ("/v1/subscribers/:subscriberId/credentials"). Whatever precedes the first
// version segment ("v1", "v2", ...) is treated as a mount prefix and ignored, so the API works
// under any base path (an SDK serverURL of "https://host/novu").
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "server/http.h"

namespace herald::server {

// The largest body a route takes from a request, asked with the request's head (method, target,
// path and headers; no body yet), or 0 for the server's default (ServerOptions::max_body_bytes):
// a bulk import route may take more from an authenticated client, say.
using BodyLimit = std::function<std::size_t(const Request& head)>;

class Router {
 public:
  // `body_limit`: see BodyLimit; unset = the server's default.
  void Add(std::string_view method, std::string_view pattern, Handler handler,
           BodyLimit body_limit = {});

  // Matches `request`, fills request.params and runs the handler. Unknown path -> 404, a known
  // path with another method -> 405 (with Allow), an undecodable path -> 400; all JSON.
  void Dispatch(Request& request, Done done) const;

  // The body limit of the route the request `head` goes to (its BodyLimit's answer), or 0 (the
  // server's default) when it has none or no route matches. For ServerOptions::body_limit_for;
  // safe to call from any thread once the routes are added.
  std::size_t BodyLimitFor(const Request& head) const;

 private:
  struct Route {
    std::string method;
    std::vector<std::string> segments;  // ":name" for parameters
    Handler handler;
    BodyLimit body_limit;
  };
  // The route for `method` and the decoded `segments`, or nullptr; `allow` (if set) collects the
  // methods of the routes whose path matched.
  const Route* Match(std::string_view method, const std::vector<std::string>& segments,
                     std::string* allow) const;

  std::vector<Route> routes_;
};

// Splits a raw path into percent-decoded segments, dropping the mount prefix before the first
// version segment. nullopt-like: returns false if a segment has invalid percent-encoding.
bool SplitApiPath(std::string_view raw_path, std::vector<std::string>* segments);

}  // namespace herald::server
