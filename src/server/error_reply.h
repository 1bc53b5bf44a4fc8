// The one place that shapes error bodies: Novu's {statusCode, timestamp, path, message, error}.
#pragma once

#include <string_view>

#include "core/status.h"
#include "server/http.h"

namespace herald::server {

// The reason phrase Novu (Nest) puts in `error`, e.g. 400 -> "Bad Request".
std::string_view ReasonPhrase(int status);

// A JSON error reply for `status` at request path `path`. Members of `status.extra()` are
// merged into the body (e.g. `errors: {}` on 422).
Reply ErrorReply(const Status& status, std::string_view path);
// Same, with an explicit HTTP status (for statuses outside Code, e.g. 413, 431).
Reply ErrorReply(const Status& status, std::string_view path, int http_status);
Reply ErrorReply(int http_status, std::string_view path, std::string_view message);

// {"data": value} with status `http_status` (Novu's response envelope).
Reply DataReply(const Json& value, int http_status = 200);
// `value` as the whole body (paginated results that carry their own `data`).
Reply JsonReply(const Json& value, int http_status = 200);

}  // namespace herald::server
