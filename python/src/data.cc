// Datasets: the outcome matrix, loaded from a dataset folder, a database, or arrays (which the pandas layer builds
// from a DataFrame). Arrays go through a private in-memory Store and LoadDataset, exactly as an import does, so a
// DataFrame gives the same Dataset as the same table imported with `baton import`.
#include <cmath>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include "baton/bench.h"
#include "baton/dataset.h"
#include "baton/store.h"
#include "bindings.h"
#include "errors.h"

namespace baton::py {
namespace {

namespace pb = pybind11;
using Matrix = pb::array_t<double, pb::array::c_style | pb::array::forcecast>;

// A num_queries x num_experts numpy copy of a row-major float matrix.
pb::array_t<float> ToArray(const std::vector<float>& v, size_t rows, size_t cols) {
  pb::array_t<float> a({rows, cols});
  std::copy(v.begin(), v.end(), a.mutable_data());
  return a;
}

struct FrameColumns {
  std::string dataset;
  std::vector<std::string> query_ids, texts, domains, sources, experts;
  Matrix score, cost;  // num_queries x num_experts; NaN score = not observed, NaN cost = unknown
  bool drop_unobserved = true;
};

StatusOr<Dataset> FromColumns(const FrameColumns& f) {
  const size_t nq = f.query_ids.size(), ne = f.experts.size();
  auto check_len = [&](const std::vector<std::string>& v, const char* what) -> Status {
    if (!v.empty() && v.size() != nq) {
      return Status::InvalidArgument(fmt::format("{} query ids but {} {}", nq, v.size(), what));
    }
    return Status::Ok();
  };
  BATON_RETURN_IF_ERROR(check_len(f.texts, "texts"));
  BATON_RETURN_IF_ERROR(check_len(f.domains, "domains"));
  BATON_RETURN_IF_ERROR(check_len(f.sources, "sources"));
  for (const Matrix* m : {&f.score, &f.cost}) {
    if (m->ndim() != 2 || static_cast<size_t>(m->shape(0)) != nq || static_cast<size_t>(m->shape(1)) != ne) {
      return Status::InvalidArgument(fmt::format("score and cost must be {} x {} matrices", nq, ne));
    }
  }
  if (ne == 0) return Status::InvalidArgument("no model (score) column");
  BATON_ASSIGN_OR_RETURN(std::unique_ptr<Store> store, Store::Open(":memory:"));
  BATON_ASSIGN_OR_RETURN(Store::Transaction tx, store->Begin());
  std::vector<int64_t> expert_id(ne);
  for (size_t e = 0; e < ne; ++e) {
    if (f.experts[e].empty()) return Status::InvalidArgument("a model name is empty");
    BATON_ASSIGN_OR_RETURN(std::optional<int64_t> existing, store->FindExpert(f.experts[e]));
    if (existing) {
      return Status::InvalidArgument(fmt::format("model '{}' is named twice", f.experts[e]));
    }
    BATON_ASSIGN_OR_RETURN(expert_id[e], store->UpsertExpert({.name = f.experts[e]}));
  }
  const double* score = f.score.data();
  const double* cost = f.cost.data();
  for (size_t q = 0; q < nq; ++q) {
    if (f.query_ids[q].empty()) return Status::InvalidArgument(fmt::format("row {}: the query id is empty", q));
    QueryRecord rec{.external_id = f.query_ids[q], .dataset = f.dataset};
    if (!f.texts.empty()) rec.text = f.texts[q];
    if (!f.domains.empty()) rec.domain = f.domains[q];
    if (!f.sources.empty()) rec.source = f.sources[q];
    auto id = store->InsertQuery(rec);
    if (!id.ok() && id.status().code() == StatusCode::kAlreadyExists) {
      return Status::InvalidArgument(fmt::format("query id '{}' appears twice", f.query_ids[q]));
    }
    BATON_RETURN_IF_ERROR(id.status());
    for (size_t e = 0; e < ne; ++e) {
      const double s = score[q * ne + e], c = cost[q * ne + e];
      if (std::isnan(s)) continue;  // not observed (its cost, if any, belongs to no outcome)
      if (!(s >= 0 && s <= 1)) {
        return Status::InvalidArgument(
            fmt::format("query '{}', model '{}': score {} is outside [0, 1]", f.query_ids[q], f.experts[e], s));
      }
      OutcomeRecord o{.query_id = *id, .expert_id = expert_id[e], .score = s};
      if (!std::isnan(c)) {
        if (!(c >= 0) || std::isinf(c)) {
          return Status::InvalidArgument(fmt::format("query '{}', model '{}': cost {} is not a non-negative amount",
                                                     f.query_ids[q], f.experts[e], c));
        }
        o.cost_usd = c;
      }
      BATON_RETURN_IF_ERROR(store->InsertOutcome(o));
    }
  }
  BATON_RETURN_IF_ERROR(tx.Commit());
  return LoadDataset(*store, {.drop_unobserved_queries = f.drop_unobserved});
}

std::vector<std::string> Names(const Dataset& d) {
  std::vector<std::string> out;
  for (const ExpertRecord& e : d.experts()) out.push_back(e.name);
  return out;
}

template <typename F>
std::vector<std::string> QueryField(const Dataset& d, F field) {
  std::vector<std::string> out;
  out.reserve(d.num_queries());
  for (const QueryRecord& q : d.queries()) out.push_back(field(q));
  return out;
}

}  // namespace

void BindData(pb::module_& m) {
  pb::class_<Dataset>(m, "Dataset",
                      "The outcome matrix: queries x experts, score and cost (NaN = not observed / unknown)")
      .def_property_readonly("num_queries", &Dataset::num_queries)
      .def_property_readonly("num_experts", &Dataset::num_experts)
      .def_property_readonly("experts", &Names, "expert names, in column order")
      .def_property_readonly("domains", &Dataset::domains, "distinct domains, in order of first appearance")
      .def_property_readonly("query_ids",
                             [](const Dataset& d) { return QueryField(d, [](auto& q) { return q.external_id; }); })
      .def_property_readonly("texts", [](const Dataset& d) { return QueryField(d, [](auto& q) { return q.text; }); })
      .def_property_readonly("query_domains",
                             [](const Dataset& d) { return QueryField(d, [](auto& q) { return q.domain; }); })
      .def_property_readonly("query_datasets",
                             [](const Dataset& d) { return QueryField(d, [](auto& q) { return q.dataset; }); })
      .def_property_readonly(
          "score_matrix", [](const Dataset& d) { return ToArray(d.score_matrix(), d.num_queries(), d.num_experts()); },
          "num_queries x num_experts float32 copy, NaN = not observed")
      .def_property_readonly(
          "cost_matrix", [](const Dataset& d) { return ToArray(d.cost_matrix(), d.num_queries(), d.num_experts()); },
          "num_queries x num_experts float32 copy, NaN = unknown")
      .def("select_queries", &Dataset::SelectQueries, pb::arg("rows"), "a new dataset of these query rows, in order")
      .def(
          "select_experts",
          [](const Dataset& d, const std::vector<std::string>& names) { return Unwrap(d.SelectExperts(names)); },
          pb::arg("names"), "a new dataset of these experts, in order")
      .def("__len__", &Dataset::num_queries)
      .def("__repr__", [](const Dataset& d) {
        return fmt::format("<baton.Dataset {} queries x {} experts, {} domains>", d.num_queries(), d.num_experts(),
                           d.domains().size());
      });

  m.def(
      "load_dir",
      [](const std::string& path, const std::vector<std::string>& experts) {
        return WithoutGil([&] { return LoadDatasetDir(path, {.experts = experts}); });
      },
      pb::arg("path"), pb::arg("experts") = std::vector<std::string>{},
      "Loads a dataset folder (models.csv, queries.jsonl, outcomes.csv) with the validation of `baton import`.");
  m.def(
      "load_db",
      [](const std::string& path, const std::vector<std::string>& datasets, const std::vector<std::string>& experts) {
        return WithoutGil([&]() -> StatusOr<Dataset> {
          BATON_ASSIGN_OR_RETURN(std::unique_ptr<Store> store, Store::Open(path, {.create = false, .read_only = true}));
          return LoadDataset(*store, {.datasets = datasets, .experts = experts});
        });
      },
      pb::arg("path"), pb::arg("datasets") = std::vector<std::string>{},
      pb::arg("experts") = std::vector<std::string>{}, "Loads datasets (all when empty) from a baton database.");
  m.def(
      "_from_columns",
      [](std::string dataset, std::vector<std::string> query_ids, std::vector<std::string> texts,
         std::vector<std::string> domains, std::vector<std::string> sources, std::vector<std::string> experts,
         Matrix score, Matrix cost, bool drop_unobserved) {
        FrameColumns f{std::move(dataset), std::move(query_ids), std::move(texts),
                       std::move(domains), std::move(sources),   std::move(experts),
                       std::move(score),   std::move(cost),      drop_unobserved};
        return Unwrap(FromColumns(f));
      },
      pb::arg("dataset"), pb::arg("query_ids"), pb::arg("texts"), pb::arg("domains"), pb::arg("sources"),
      pb::arg("experts"), pb::arg("score"), pb::arg("cost"), pb::arg("drop_unobserved"));
  m.def(
      "split",
      [](const Dataset& d, double test_fraction, uint64_t seed) {
        QuerySplit s = Unwrap(RandomSplit(d.num_queries(), test_fraction, seed));
        return pb::make_tuple(d.SelectQueries(s.train), d.SelectQueries(s.test));
      },
      pb::arg("dataset"), pb::arg("test_fraction") = 0.5, pb::arg("seed") = 0,
      "(train, test): the seeded random split `baton bench DIR` makes.");
}

}  // namespace baton::py
