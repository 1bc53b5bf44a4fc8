#include "server/router.h"

#include <algorithm>
#include <cctype>

#include "server/error_reply.h"

namespace herald::server {
namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool PercentDecode(std::string_view in, std::string* out) {
  out->clear();
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out->push_back(in[i]);
      continue;
    }
    if (i + 2 >= in.size()) return false;
    int hi = HexValue(in[i + 1]), lo = HexValue(in[i + 2]);
    if (hi < 0 || lo < 0) return false;
    out->push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return true;
}

bool IsVersionSegment(std::string_view s) {
  return s.size() >= 2 && s[0] == 'v' &&
         std::all_of(s.begin() + 1, s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

}  // namespace

bool SplitApiPath(std::string_view raw_path, std::vector<std::string>* segments) {
  segments->clear();
  std::vector<std::string_view> raw;
  std::size_t start = 0;
  while (start <= raw_path.size()) {
    std::size_t slash = raw_path.find('/', start);
    if (slash == std::string_view::npos) slash = raw_path.size();
    if (slash > start) raw.push_back(raw_path.substr(start, slash - start));
    start = slash + 1;
  }
  auto first_version = std::find_if(raw.begin(), raw.end(), IsVersionSegment);
  // Without a version segment (e.g. /healthz) only the last segment matters.
  auto begin =
      first_version != raw.end() ? first_version : (raw.empty() ? raw.end() : raw.end() - 1);
  for (auto it = begin; it != raw.end(); ++it) {
    std::string decoded;
    if (!PercentDecode(*it, &decoded)) return false;
    segments->push_back(std::move(decoded));
  }
  return true;
}

void Router::Add(std::string_view method, std::string_view pattern, Handler handler,
                 BodyLimit body_limit) {
  Route route{std::string(method), {}, std::move(handler), std::move(body_limit)};
  SplitApiPath(pattern, &route.segments);
  routes_.push_back(std::move(route));
}

const Router::Route* Router::Match(std::string_view method,
                                   const std::vector<std::string>& segments,
                                   std::string* allow) const {
  for (const Route& route : routes_) {
    if (route.segments.size() != segments.size()) continue;
    bool match = true;
    for (std::size_t i = 0; i < segments.size() && match; ++i) {
      const std::string& want = route.segments[i];
      match = (!want.empty() && want[0] == ':') ? !segments[i].empty() : want == segments[i];
    }
    if (!match) continue;
    if (route.method == method) return &route;
    if (allow && allow->find(route.method) == std::string::npos) {
      if (!allow->empty()) *allow += ", ";
      *allow += route.method;
    }
  }
  return nullptr;
}

std::size_t Router::BodyLimitFor(const Request& head) const {
  std::vector<std::string> segments;
  if (!SplitApiPath(head.path, &segments)) return 0;
  const Route* route = Match(head.method, segments, nullptr);
  return route && route->body_limit ? route->body_limit(head) : 0;
}

void Router::Dispatch(Request& request, Done done) const {
  std::vector<std::string> segments;
  if (!SplitApiPath(request.path, &segments)) {
    done(ErrorReply(400, request.path, "Malformed percent-encoding in path"));
    return;
  }
  std::string allow;
  if (const Route* route = Match(request.method, segments, &allow)) {
    request.params.clear();
    for (std::size_t i = 0; i < segments.size(); ++i) {
      if (route->segments[i][0] == ':') {
        request.params.emplace_back(route->segments[i].substr(1), segments[i]);
      }
    }
    route->handler(request, std::move(done));
    return;
  }
  if (!allow.empty()) {
    Reply reply = ErrorReply(405, request.path, "Cannot " + request.method + " " + request.path);
    reply.headers.emplace_back("Allow", allow);
    done(std::move(reply));
    return;
  }
  done(ErrorReply(404, request.path, "Cannot " + request.method + " " + request.path));
}

}  // namespace herald::server
