#include "server/error_reply.h"

#include <string>

#include "core/time.h"

namespace herald::server {

std::string_view ReasonPhrase(int status) {
  switch (status) {
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 409:
      return "Conflict";
    case 411:
      return "Length Required";
    case 413:
      return "Payload Too Large";
    case 415:
      return "Unsupported Media Type";
    case 422:
      return "Unprocessable Entity";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 503:
      return "Service Unavailable";
    default:
      return status >= 500 ? "Internal Server Error" : "Bad Request";
  }
}

Reply ErrorReply(int http_status, std::string_view path, std::string_view message) {
  return ErrorReply(Status(Code::kInvalidArgument, std::string(message)), path, http_status);
}

Reply ErrorReply(const Status& status, std::string_view path, int http_status) {
  Json body = {
      {"statusCode", http_status},
      {"timestamp", IsoTime(NowMs())},
      {"path", std::string(path)},
      {"message", status.message()},
      {"error", std::string(ReasonPhrase(http_status))},
  };
  if (status.extra().is_object()) {
    for (auto& [key, value] : status.extra().items()) body[key] = value;
  }
  Reply reply;
  reply.status = http_status;
  reply.body = DumpJson(body);
  return reply;
}

Reply ErrorReply(const Status& status, std::string_view path) {
  return ErrorReply(status, path, HttpStatusOf(status.code()));
}

Reply DataReply(const Json& value, int http_status) {
  // The text of {"data": value}, without copying `value` into a new document first.
  Reply reply;
  reply.status = http_status;
  reply.body = "{\"data\":";
  reply.body += DumpJson(value);
  reply.body += '}';
  return reply;
}

Reply JsonReply(const Json& value, int http_status) {
  Reply reply;
  reply.status = http_status;
  reply.body = DumpJson(value);
  return reply;
}

}  // namespace herald::server
