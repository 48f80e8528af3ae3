// Status and StatusOr<T>: how every fallible call in baton reports failure.
//
// Errors are values, not exceptions. A Status is either OK or carries a code and a human-readable message that says
// what went wrong, where (file and line when there is one) and why. Exceptions thrown by third-party libraries (JSON,
// SQL) are caught at the edge that calls them and turned into a Status.
//
// Example:
//   baton::StatusOr<Dataset> ds = LoadDataset(store);
//   if (!ds.ok()) return ds.status();
//   Use(*ds);
//
// Thread-safety: values; safe to copy between threads.
#pragma once

#include <cassert>
#include <optional>
#include <string>
#include <utility>

namespace baton {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,     // the caller's input is malformed or out of range
  kNotFound,            // a named thing (file, expert, query) does not exist
  kAlreadyExists,       // a unique thing would be duplicated
  kFailedPrecondition,  // the system is not in a state to do this (e.g. empty training set)
  kDataLoss,            // a file is truncated, corrupted or from another version
  kIoError,             // the operating system or the database refused
  kUnavailable,         // a remote party did not answer
  kDeadlineExceeded,    // a remote party did not answer in time
  kResourceExhausted,   // a budget or a limit would be exceeded
  kInternal,            // a bug: an invariant did not hold
};

// Returns the code's name, e.g. "InvalidArgument".
const char* StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return {}; }
  static Status InvalidArgument(std::string m) { return {StatusCode::kInvalidArgument, std::move(m)}; }
  static Status NotFound(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
  static Status AlreadyExists(std::string m) { return {StatusCode::kAlreadyExists, std::move(m)}; }
  static Status FailedPrecondition(std::string m) { return {StatusCode::kFailedPrecondition, std::move(m)}; }
  static Status DataLoss(std::string m) { return {StatusCode::kDataLoss, std::move(m)}; }
  static Status IoError(std::string m) { return {StatusCode::kIoError, std::move(m)}; }
  static Status Unavailable(std::string m) { return {StatusCode::kUnavailable, std::move(m)}; }
  static Status DeadlineExceeded(std::string m) { return {StatusCode::kDeadlineExceeded, std::move(m)}; }
  static Status ResourceExhausted(std::string m) { return {StatusCode::kResourceExhausted, std::move(m)}; }
  static Status Internal(std::string m) { return {StatusCode::kInternal, std::move(m)}; }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }

  // "InvalidArgument: data/x/outcomes.csv:12: score 1.5 is outside [0, 1]"
  std::string ToString() const;

  // Returns a copy whose message is prefixed with `context: `.
  Status WithContext(const std::string& context) const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

// Either a T or a non-OK Status.
template <typename T>
class [[nodiscard]] StatusOr {
 public:
  StatusOr(T value) : value_(std::move(value)) {}         // NOLINT(google-explicit-constructor)
  StatusOr(Status status) : status_(std::move(status)) {  // NOLINT(google-explicit-constructor)
    assert(!status_.ok() && "StatusOr constructed from an OK status without a value");
    if (status_.ok()) status_ = Status::Internal("StatusOr constructed from an OK status without a value");
  }

  bool ok() const { return value_.has_value(); }
  const Status& status() const { return status_; }

  // REQUIRES: ok()
  T& value() & {
    assert(ok());
    return *value_;
  }
  const T& value() const& {
    assert(ok());
    return *value_;
  }
  T&& value() && {
    assert(ok());
    return std::move(*value_);
  }
  // The value, or `fallback` when !ok(). Meant for tests and display; code that can act on the error should.
  T value_or(T fallback) const& { return ok() ? *value_ : std::move(fallback); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  Status status_;  // OK when value_ is set
  std::optional<T> value_;
};

}  // namespace baton

// Returns early from the enclosing function when `expr` yields a non-OK Status.
#define BATON_RETURN_IF_ERROR(expr)                \
  do {                                             \
    ::baton::Status baton_status_ = (expr);        \
    if (!baton_status_.ok()) return baton_status_; \
  } while (0)

#define BATON_CONCAT_INNER_(a, b) a##b
#define BATON_CONCAT_(a, b) BATON_CONCAT_INNER_(a, b)
// Declares `lhs` from a StatusOr expression, returning early on error.
// NOLINTNEXTLINE(bugprone-macro-parentheses): `lhs` is a declaration and cannot be parenthesised.
#define BATON_ASSIGN_OR_RETURN(lhs, expr) BATON_ASSIGN_OR_RETURN_IMPL_(BATON_CONCAT_(baton_sor_, __LINE__), lhs, expr)
// NOLINTBEGIN(bugprone-macro-parentheses)
#define BATON_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                 \
  if (!tmp.ok()) return tmp.status();                \
  lhs = std::move(tmp).value()
// NOLINTEND(bugprone-macro-parentheses)
