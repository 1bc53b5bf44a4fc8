// Status and Result<T>: failures a caller must handle are values, not exceptions.
#pragma once

#include <cassert>
#include <string>
#include <utility>
#include <variant>

#include "core/json.h"

namespace herald {

// The error vocabulary. Each code maps to exactly one HTTP status in HttpStatusOf().
enum class Code {
  kOk,
  kInvalidArgument,     // 400
  kUnauthenticated,     // 401
  kForbidden,           // 403
  kNotFound,            // 404
  kMethodNotAllowed,    // 405
  kConflict,            // 409
  kFailedPrecondition,  // 412: the system is not in a state that allows the operation
  kTooLarge,            // 413
  kUnprocessable,       // 422
  kInternal,            // 500
  kUnavailable,         // 503
};

int HttpStatusOf(Code code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return {}; }
  static Status InvalidArgument(std::string m) { return {Code::kInvalidArgument, std::move(m)}; }
  static Status Unauthenticated(std::string m) { return {Code::kUnauthenticated, std::move(m)}; }
  static Status NotFound(std::string m) { return {Code::kNotFound, std::move(m)}; }
  static Status Conflict(std::string m) { return {Code::kConflict, std::move(m)}; }
  static Status Unprocessable(std::string m) { return {Code::kUnprocessable, std::move(m)}; }
  static Status Internal(std::string m) { return {Code::kInternal, std::move(m)}; }
  static Status Unavailable(std::string m) { return {Code::kUnavailable, std::move(m)}; }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }

  // Extra members merged into the error body (e.g. `errors` on 422, a conflicting entity).
  const Json& extra() const { return extra_; }
  Status&& WithExtra(Json extra) && {
    extra_ = std::move(extra);
    return std::move(*this);
  }

 private:
  Code code_ = Code::kOk;
  std::string message_;
  Json extra_;
};

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}        // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {  // NOLINT
    assert(!std::get<Status>(v_).ok());
  }

  bool ok() const { return std::holds_alternative<T>(v_); }
  explicit operator bool() const { return ok(); }
  const Status& status() const { return std::get<Status>(v_); }
  Status&& take_status() { return std::move(std::get<Status>(v_)); }
  T& value() { return std::get<T>(v_); }
  const T& value() const { return std::get<T>(v_); }
  T& operator*() { return value(); }
  const T& operator*() const { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace herald

// Early-return helpers, in the spirit of absl's RETURN_IF_ERROR.
#define HERALD_CONCAT_INNER(a, b) a##b
#define HERALD_CONCAT(a, b) HERALD_CONCAT_INNER(a, b)
#define RETURN_IF_ERROR(expr)      \
  do {                             \
    ::herald::Status _st = (expr); \
    if (!_st.ok()) return _st;     \
  } while (0)
#define ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                          \
  if (!tmp.ok()) return tmp.take_status();    \
  lhs = std::move(tmp.value())
#define ASSIGN_OR_RETURN(lhs, expr) ASSIGN_OR_RETURN_IMPL(HERALD_CONCAT(_res_, __LINE__), lhs, expr)
