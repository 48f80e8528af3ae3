// baton's Status as Python exceptions: InvalidArgument -> ValueError, NotFound -> FileNotFoundError, anything else
// -> RuntimeError, each with the Status's own message.
#pragma once

#include <utility>

#include <pybind11/pybind11.h>

#include "baton/status.h"

namespace baton::py {

// Throws the Python exception for a non-OK status (pybind11 turns it into the Python one); nothing when OK.
void ThrowIfError(const Status& status);

// The value of `s`, or the exception for its status.
template <typename T>
T Unwrap(StatusOr<T> s) {
  if (!s.ok()) ThrowIfError(s.status());
  return std::move(s).value();
}

// Runs `f` (returning StatusOr<T>) with the GIL released, then unwraps its result with the GIL held.
template <typename F>
auto WithoutGil(F&& f) {
  auto result = [&] {
    pybind11::gil_scoped_release nogil;
    return f();
  }();
  return Unwrap(std::move(result));
}

}  // namespace baton::py
