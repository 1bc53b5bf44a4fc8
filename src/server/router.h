// Routes requests to handlers by method and path pattern. Patterns are literal segments and
// ":name" parameters ("/v1/subscribers/:subscriberId/credentials"). Whatever precedes the first
// version segment ("v1", "v2", ...) is treated as a mount prefix and ignored, so the API works
// under any base path (an SDK serverURL of "https://host/novu").
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "server/http.h"

namespace herald::server {

class Router {
 public:
  void Add(std::string_view method, std::string_view pattern, Handler handler);

  // Matches `request`, fills request.params and runs the handler. Unknown path -> 404, a known
  // path with another method -> 405 (with Allow), an undecodable path -> 400; all JSON.
  void Dispatch(Request& request, Done done) const;

 private:
  struct Route {
    std::string method;
    std::vector<std::string> segments;  // ":name" for parameters
    Handler handler;
  };
  std::vector<Route> routes_;
};

// Splits a raw path into percent-decoded segments, dropping the mount prefix before the first
// version segment. nullopt-like: returns false if a segment has invalid percent-encoding.
bool SplitApiPath(std::string_view raw_path, std::vector<std::string>* segments);

}  // namespace herald::server
