// The pieces of the `_baton` extension, one per concept; module.cc calls them in this order.
#pragma once

#include <pybind11/pybind11.h>

namespace baton::py {

void BindData(pybind11::module_& m);   // data.cc: Dataset, loading (folder, database, arrays), splits
void BindModel(pybind11::module_& m);  // model.cc: predictors, fit, model files, predict, route
void BindBench(pybind11::module_& m);  // bench.cc: the `baton bench` harness, as its JSON figures

}  // namespace baton::py
