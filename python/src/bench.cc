// The `baton bench` harness: RunBench on a train and a test dataset (aligned like the command line does), returned
// as the JSON text of `baton bench --json` (the pandas layer parses it into a dict).
#include <string>
#include <vector>

#include <pybind11/stl.h>

#include "baton/bench.h"
#include "bindings.h"
#include "errors.h"

namespace baton::py {

void BindBench(pybind11::module_& m) {
  m.def(
      "_bench",
      [](Dataset train, Dataset test, const std::vector<std::string>& experts, const std::vector<std::string>& routers,
         const std::vector<std::string>& default_candidates, size_t cv_folds, size_t lambdas, size_t breakpoint_lambdas,
         uint64_t seed, bool cross_validate) {
        return WithoutGil([&]() -> StatusOr<std::string> {
          BATON_RETURN_IF_ERROR(AlignExperts(train, test, experts));
          BenchOptions opts;
          opts.routers = routers;
          opts.default_candidates = default_candidates;
          opts.cv_folds = cv_folds;
          opts.num_lambdas = lambdas;
          opts.breakpoint_lambdas = breakpoint_lambdas;
          opts.seed = seed;
          opts.cross_validate = cross_validate;
          BATON_ASSIGN_OR_RETURN(BenchResult r, RunBench(train, test, opts));
          return BenchResultToJson(r).dump();
        });
      },
      pybind11::arg("train"), pybind11::arg("test"), pybind11::arg("experts"), pybind11::arg("routers"),
      pybind11::arg("default_candidates"), pybind11::arg("cv_folds"), pybind11::arg("lambdas"),
      pybind11::arg("breakpoint_lambdas"), pybind11::arg("seed"), pybind11::arg("cross_validate"));
}

}  // namespace baton::py
