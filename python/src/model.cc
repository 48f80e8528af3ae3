// Predictors and models: fit a predictor by name with its cost model (what `baton fit` writes), model files, and
// the per-prompt predictions and budgeted routing of route.h.
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include "baton/dataset.h"
#include "baton/predictor.h"
#include "bindings.h"
#include "errors.h"
#include "route.h"

namespace baton::py {
namespace {

namespace pb = pybind11;
using Strings = std::vector<std::string>;

pb::array_t<float> ToArray(const std::vector<float>& v, size_t rows, size_t cols) {
  pb::array_t<float> a({rows, cols});
  std::copy(v.begin(), v.end(), a.mutable_data());
  return a;
}

// The same training as `baton fit` (without its held-out estimate): the predictor on every observed cell, the cost
// model on the same data.
StatusOr<RouterModel> Fit(const Dataset& all, const std::string& name, uint64_t seed, bool cross_validate) {
  BATON_ASSIGN_OR_RETURN(std::unique_ptr<Predictor> predictor,
                         MakePredictor(name, {.seed = seed, .cross_validate = cross_validate}));
  // As `baton fit` does: experts with no outcome in the training data are left out (a model never predicts for an
  // expert it has not seen), and the model records how many outcomes each expert was trained on.
  std::vector<std::string> trained;
  for (size_t e = 0; e < all.num_experts(); ++e) {
    if (all.ObservedCount(e) > 0) trained.push_back(all.experts()[e].name);
  }
  if (trained.empty()) return Status::FailedPrecondition("empty training set: no observed outcome");
  Dataset selected;
  if (trained.size() != all.num_experts()) {
    BATON_ASSIGN_OR_RETURN(selected, all.SelectExperts(trained));
  }
  const Dataset& ds = trained.size() != all.num_experts() ? selected : all;
  size_t observed = 0;
  for (float s : ds.score_matrix()) observed += !std::isnan(s);
  if (ds.num_queries() == 0 || observed == 0) {
    return Status::FailedPrecondition("empty training set: no observed outcome");
  }
  BATON_RETURN_IF_ERROR(predictor->Fit(ds));
  RouterModel model;
  BATON_ASSIGN_OR_RETURN(model.cost, CostModel::Fit(ds));
  model.predictor = std::move(predictor);
  for (size_t e = 0; e < ds.num_experts(); ++e) model.train_outcomes.push_back(ds.ObservedCount(e));
  return model;
}

// The dataset restricted to the model's experts, in its order.
StatusOr<Dataset> ForModel(const RouterModel& m, const Dataset& ds) {
  return ds.SelectExperts(m.predictor->experts());
}

// (expert index per query, predicted score and cost of the choice, lambda, summed predicted score and cost).
pb::tuple RoutedTuple(const Routed& r, size_t ne) {
  const BatchAssignment& a = r.assignment;
  const size_t nq = a.expert.size();
  pb::array_t<int32_t> expert(nq);
  pb::array_t<float> score(nq), cost(nq);
  auto* ep = expert.mutable_data();
  auto* sp = score.mutable_data();
  auto* cp = cost.mutable_data();
  for (size_t q = 0; q < nq; ++q) {
    const int e = a.expert[q];
    ep[q] = e;
    sp[q] = e < 0 ? NAN : r.score[q * ne + e];
    cp[q] = e < 0 ? NAN : r.cost[q * ne + e];
  }
  return pb::make_tuple(expert, score, cost, a.lambda, a.predicted_score, a.predicted_cost);
}

}  // namespace

void BindModel(pb::module_& m) {
  m.def("predictors", &PredictorNames, "Names `fit` accepts, the default first.");

  pb::class_<RouterModel>(m, "Model", "A trained predictor plus its cost model (a `baton fit` model file)")
      .def_property_readonly("predictor", [](const RouterModel& r) { return r.predictor->name(); })
      .def_property_readonly("experts", [](const RouterModel& r) { return r.predictor->experts(); })
      .def(
          "describe", [](const RouterModel& r) { return r.predictor->Describe(); },
          "the hyper-parameters training chose")
      .def(
          "save",
          [](const RouterModel& r, const std::string& path) {
            pb::gil_scoped_release nogil;
            const Status s = SaveModel(r, path);
            pb::gil_scoped_acquire gil;
            ThrowIfError(s);
          },
          pb::arg("path"), "Writes the model file `baton route` and `baton serve` read.")
      .def("_predict",
           [](const RouterModel& r, Strings texts, Strings domains, Strings subdomains) {
             const size_t ne = r.predictor->num_experts();
             Routed out = WithoutGil([&]() -> StatusOr<Routed> {
               BATON_ASSIGN_OR_RETURN(Dataset ds,
                                      PromptDataset(r, std::move(texts), std::move(domains), std::move(subdomains)));
               return Predict(r, ds);
             });
             const size_t nq = out.score.size() / std::max<size_t>(ne, 1);
             return pb::make_tuple(ToArray(out.score, nq, ne), ToArray(out.cost, nq, ne));
           })
      .def("_predict_dataset",
           [](const RouterModel& r, const Dataset& ds) {
             const size_t ne = r.predictor->num_experts();
             Routed out = WithoutGil([&]() -> StatusOr<Routed> {
               BATON_ASSIGN_OR_RETURN(Dataset d, ForModel(r, ds));
               return Predict(r, d);
             });
             return pb::make_tuple(ToArray(out.score, ds.num_queries(), ne), ToArray(out.cost, ds.num_queries(), ne));
           })
      .def("_route",
           [](const RouterModel& r, Strings texts, Strings domains, Strings subdomains, double budget,
              const Strings& experts) {
             Routed out = WithoutGil([&]() -> StatusOr<Routed> {
               BATON_ASSIGN_OR_RETURN(Dataset ds,
                                      PromptDataset(r, std::move(texts), std::move(domains), std::move(subdomains)));
               return RouteDataset(r, ds, budget, experts);
             });
             return RoutedTuple(out, r.predictor->num_experts());
           })
      .def("_route_dataset",
           [](const RouterModel& r, const Dataset& ds, double budget, const Strings& experts) {
             Routed out = WithoutGil([&]() -> StatusOr<Routed> {
               BATON_ASSIGN_OR_RETURN(Dataset d, ForModel(r, ds));
               return RouteDataset(r, d, budget, experts);
             });
             return RoutedTuple(out, r.predictor->num_experts());
           })
      .def("__repr__", [](const RouterModel& r) {
        return fmt::format("<baton.Model {} over {} experts>", r.predictor->name(), r.predictor->num_experts());
      });

  m.def(
      "_fit",
      [](const Dataset& ds, const std::string& predictor, uint64_t seed, bool cross_validate) {
        return WithoutGil([&] { return Fit(ds, predictor, seed, cross_validate); });
      },
      pb::arg("dataset"), pb::arg("predictor"), pb::arg("seed") = 0, pb::arg("cross_validate") = true);
  m.def(
      "load_model", [](const std::string& path) { return WithoutGil([&] { return LoadModel(path); }); },
      pb::arg("path"), "Reads a model file written by `Model.save` or `baton fit`.");
}

}  // namespace baton::py
