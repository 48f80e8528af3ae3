#include "errors.h"

#include <pybind11/pybind11.h>

namespace baton::py {

void ThrowIfError(const Status& status) {
  if (status.ok()) return;
  switch (status.code()) {
    case StatusCode::kInvalidArgument:
      throw pybind11::value_error(status.message());
    case StatusCode::kNotFound:
      PyErr_SetString(PyExc_FileNotFoundError, status.message().c_str());
      throw pybind11::error_already_set();
    default:
      throw std::runtime_error(status.message());  // pybind11 raises RuntimeError
  }
}

}  // namespace baton::py
