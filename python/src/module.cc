// The `baton._baton` extension: thin pybind11 bindings over baton_core's public API. The pandas conversions live in
// python/baton/__init__.py; what this side takes and returns is plain lists, numpy arrays and the wrapped classes.
#include "bindings.h"

PYBIND11_MODULE(_baton, m) {
  m.doc() = "baton's C++ core (datasets, predictors, routing, bench); use the `baton` package, not this module";
  baton::py::BindData(m);
  baton::py::BindModel(m);
  baton::py::BindBench(m);
}
