// Spaces, the three search algorithms, standard test functions and space files.
#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>
#include <random>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "baton/search.h"

namespace baton::search {

// --- Dimensions and spaces ---

size_t Dimension::Cardinality() const {
  switch (kind) {
    case DimKind::kInt:
      return static_cast<size_t>(std::floor((max - min) / step + 1e-9)) + 1;
    case DimKind::kCategorical:
      return values.size();
    case DimKind::kBool:
      return 2;
    case DimKind::kReal:
      return 0;
  }
  return 0;
}

double Dimension::ValueAt(size_t i) const {
  if (kind == DimKind::kInt) return min + static_cast<double>(i) * step;
  return static_cast<double>(i);
}

std::string Dimension::Format(double v) const {
  switch (kind) {
    case DimKind::kInt:
      return fmt::format("{}", static_cast<long long>(std::llround(v)));
    case DimKind::kCategorical: {
      const auto i = static_cast<size_t>(std::llround(v));
      return i < values.size() ? values[i] : "?";
    }
    case DimKind::kBool:
      return v != 0 ? "true" : "false";
    case DimKind::kReal:
      return fmt::format("{:.6g}", v);
  }
  return "?";
}

std::optional<size_t> Space::Find(const std::string& name) const {
  for (size_t i = 0; i < dims_.size(); ++i) {
    if (dims_[i].name == name) return i;
  }
  return std::nullopt;
}

bool Space::AllDiscrete() const {
  return std::all_of(dims_.begin(), dims_.end(), [](const Dimension& d) { return d.kind != DimKind::kReal; });
}

uint64_t Space::NumPoints() const {
  if (!AllDiscrete() || dims_.empty()) return 0;
  uint64_t n = 1;
  for (const Dimension& d : dims_) {
    const uint64_t c = d.Cardinality();
    if (c != 0 && n > std::numeric_limits<uint64_t>::max() / c) return std::numeric_limits<uint64_t>::max();
    n *= c;
  }
  return n;
}

Point Space::PointAt(uint64_t n) const {
  Point p(dims_.size());
  for (size_t i = 0; i < dims_.size(); ++i) {
    const uint64_t c = dims_[i].Cardinality();
    p[i] = dims_[i].ValueAt(static_cast<size_t>(n % c));
    n /= c;
  }
  return p;
}

size_t Space::EncodedSize() const {
  size_t n = 0;
  for (const Dimension& d : dims_) n += d.kind == DimKind::kCategorical ? d.values.size() : 1;
  return n;
}

Eigen::VectorXd Space::Encode(const Point& p) const {
  Eigen::VectorXd x = Eigen::VectorXd::Zero(static_cast<Eigen::Index>(EncodedSize()));
  Eigen::Index k = 0;
  for (size_t i = 0; i < dims_.size(); ++i) {
    const Dimension& d = dims_[i];
    switch (d.kind) {
      case DimKind::kInt:
      case DimKind::kReal:
        x[k++] = d.max > d.min ? (p[i] - d.min) / (d.max - d.min) : 0.0;
        break;
      case DimKind::kBool:
        x[k++] = p[i] != 0 ? 1.0 : 0.0;
        break;
      case DimKind::kCategorical:
        x[k + static_cast<Eigen::Index>(std::llround(p[i]))] = 1.0;
        k += static_cast<Eigen::Index>(d.values.size());
        break;
    }
  }
  return x;
}

std::string Space::Key(const Point& p) const {
  std::string out;
  for (size_t i = 0; i < dims_.size(); ++i) {
    if (i) out += ',';
    out += dims_[i].name + "=" + dims_[i].Format(p[i]);
  }
  return out;
}

bool Space::Valid(const Point& p) const {
  if (p.size() != dims_.size()) return false;
  for (size_t i = 0; i < dims_.size(); ++i) {
    const Dimension& d = dims_[i];
    const double v = p[i];
    if (!std::isfinite(v)) return false;
    if (d.kind == DimKind::kReal) {
      if (v < d.min || v > d.max) return false;
      continue;
    }
    const double idx = d.kind == DimKind::kInt ? (v - d.min) / d.step : v;
    if (std::abs(idx - std::round(idx)) > 1e-9 || idx < -1e-9 ||
        std::round(idx) >= static_cast<double>(d.Cardinality())) {
      return false;
    }
  }
  return true;
}

const char* AlgorithmName(Algorithm a) {
  switch (a) {
    case Algorithm::kRandom:
      return "random";
    case Algorithm::kGreedy:
      return "greedy";
    case Algorithm::kBayes:
      return "bayes";
  }
  return "?";
}

StatusOr<Algorithm> ParseAlgorithm(const std::string& name) {
  if (name == "random") return Algorithm::kRandom;
  if (name == "greedy") return Algorithm::kGreedy;
  if (name == "bayes") return Algorithm::kBayes;
  return Status::InvalidArgument(fmt::format("unknown search algorithm '{}' (random, greedy or bayes)", name));
}

size_t SearchResult::EvalsToReach(double target) const {
  for (size_t i = 0; i < trials.size(); ++i) {
    if (trials[i].eval.score >= target) return i + 1;
  }
  return 0;
}

// --- The search loop shared by the algorithms ---

namespace {

class Runner {
 public:
  Runner(const Space& space, const Objective& objective, const Feasible& feasible, const SearchOptions& options)
      : space_(space), objective_(objective), feasible_(feasible), options_(options), rng_(options.seed) {}

  bool done() const {
    if (result_.trials.size() >= options_.budget || exhausted_) return true;
    return options_.stop_at && !result_.trials.empty() && result_.trials[result_.best].eval.score >= *options_.stop_at;
  }
  SearchResult& result() { return result_; }
  std::mt19937_64& rng() { return rng_; }
  bool Seen(const Point& p) const { return seen_.count(space_.Key(p)) > 0; }
  const Trial* Cached(const Point& p) const {
    auto it = index_.find(space_.Key(p));
    return it == index_.end() ? nullptr : &result_.trials[it->second];
  }

  // Feasibility with rejected points counted once each.
  bool IsFeasible(const Point& p) {
    if (!feasible_ || feasible_(p)) return true;
    if (rejected_.insert(space_.Key(p)).second) ++result_.rejected;
    return false;
  }

  // Evaluates p (if new and feasible). Returns the trial or nullptr when rejected / budget exhausted.
  StatusOr<const Trial*> Evaluate(const Point& p) {
    if (const Trial* t = Cached(p)) return t;
    if (!IsFeasible(p)) return static_cast<const Trial*>(nullptr);
    if (result_.trials.size() >= options_.budget) return static_cast<const Trial*>(nullptr);
    BATON_ASSIGN_OR_RETURN(Evaluation e, objective_(p));
    if (!std::isfinite(e.score)) {
      return Status::InvalidArgument(fmt::format("the objective returned a non-finite score at {}", space_.Key(p)));
    }
    const std::string key = space_.Key(p);
    seen_.insert(key);
    index_[key] = result_.trials.size();
    result_.trials.push_back({p, e});
    if (result_.trials.size() == 1 || e.score > result_.trials[result_.best].eval.score) {
      result_.best = result_.trials.size() - 1;
    }
    result_.first_found_at = result_.best + 1;
    if (options_.on_eval) {
      options_.on_eval(result_.trials.size(), p, e, result_.trials[result_.best].eval.score);
    }
    return &result_.trials.back();
  }

  // A random feasible point not evaluated yet; nullopt when none can be found (a discrete space is exhausted).
  std::optional<Point> RandomNew() {
    const uint64_t n = space_.NumPoints();
    if (n != 0 && n <= options_.enumerate_limit) {
      if (order_.empty() && !order_built_) {
        order_built_ = true;
        order_.resize(n);
        for (uint64_t i = 0; i < n; ++i) order_[i] = i;
        for (uint64_t i = n - 1; i > 0; --i) std::swap(order_[i], order_[rng_() % (i + 1)]);
      }
      while (next_ < order_.size()) {
        Point p = space_.PointAt(order_[next_++]);
        if (!Seen(p) && IsFeasible(p)) return p;
      }
      exhausted_ = true;
      return std::nullopt;
    }
    for (int attempt = 0; attempt < 100000; ++attempt) {
      Point p = space_.Sample(rng_);
      if (!Seen(p) && IsFeasible(p)) return p;
    }
    exhausted_ = true;
    return std::nullopt;
  }

  void MarkExhausted() { exhausted_ = true; }

 private:
  const Space& space_;
  const Objective& objective_;
  const Feasible& feasible_;
  const SearchOptions& options_;
  std::mt19937_64 rng_;
  SearchResult result_;
  std::unordered_set<std::string> seen_, rejected_;
  std::unordered_map<std::string, size_t> index_;
  std::vector<uint64_t> order_;
  bool order_built_ = false;
  size_t next_ = 0;
  bool exhausted_ = false;
};

Status RunRandom(Runner& r) {
  while (!r.done()) {
    std::optional<Point> p = r.RandomNew();
    if (!p) break;
    BATON_RETURN_IF_ERROR(r.Evaluate(*p).status());
  }
  return Status::Ok();
}

// The values greedy tries on dimension i: every value of a discrete dimension, a 9-point grid plus the current value
// for a real one.
std::vector<double> CoordinateValues(const Dimension& d, double current) {
  std::vector<double> out;
  if (d.kind == DimKind::kReal) {
    for (int i = 0; i <= 8; ++i) out.push_back(d.min + (d.max - d.min) * i / 8.0);
    out.push_back(current);
  } else {
    for (size_t i = 0; i < d.Cardinality(); ++i) out.push_back(d.ValueAt(i));
  }
  return out;
}

Status RunGreedy(const Space& space, Runner& r) {
  while (!r.done()) {
    std::optional<Point> start = r.RandomNew();
    if (!start) break;
    BATON_ASSIGN_OR_RETURN(const Trial* t, r.Evaluate(*start));
    if (t == nullptr) break;
    Point cur = *start;
    double cur_score = t->eval.score;
    bool improved = true;
    while (improved && !r.done()) {
      improved = false;
      for (size_t i = 0; i < space.size() && !r.done(); ++i) {
        Point best = cur;
        double best_score = cur_score;
        for (double v : CoordinateValues(space.dims()[i], cur[i])) {
          Point p = cur;
          p[i] = v;
          BATON_ASSIGN_OR_RETURN(const Trial* tp, r.Evaluate(p));
          if (tp != nullptr && tp->eval.score > best_score) best = p, best_score = tp->eval.score;
          if (r.done()) break;
        }
        if (best_score > cur_score) cur = best, cur_score = best_score, improved = true;
      }
    }
  }
  return Status::Ok();
}

// Candidate points for EI: all unevaluated feasible points of a small discrete space, else random samples plus the
// one-dimension neighbours (discrete) or Gaussian perturbations (real) of the best evaluated points.
std::vector<Point> Candidates(const Space& space, Runner& r, const SearchOptions& o) {
  std::vector<Point> out;
  const uint64_t n = space.NumPoints();
  if (n != 0 && n <= o.enumerate_limit) {
    for (uint64_t i = 0; i < n; ++i) {
      Point p = space.PointAt(i);
      if (!r.Seen(p) && r.IsFeasible(p)) out.push_back(std::move(p));
    }
    return out;
  }
  std::set<std::string> keys;
  auto add = [&](Point p) {
    if (r.Seen(p) || !r.IsFeasible(p)) return;
    if (keys.insert(space.Key(p)).second) out.push_back(std::move(p));
  };
  for (size_t i = 0; i < o.random_candidates; ++i) add(space.Sample(r.rng()));
  std::vector<size_t> idx(r.result().trials.size());
  for (size_t i = 0; i < idx.size(); ++i) idx[i] = i;
  const auto& trials = r.result().trials;
  std::sort(idx.begin(), idx.end(), [&](size_t a, size_t b) { return trials[a].eval.score > trials[b].eval.score; });
  std::normal_distribution<double> gauss(0, 1);
  for (size_t k = 0; k < std::min<size_t>(5, idx.size()); ++k) {
    const Point& base = trials[idx[k]].point;
    for (size_t i = 0; i < space.size(); ++i) {
      const Dimension& d = space.dims()[i];
      if (d.kind == DimKind::kReal) {
        for (double s : {0.1, 0.03, 0.01}) {
          for (int rep = 0; rep < 4; ++rep) {
            Point p = base;
            p[i] = std::clamp(base[i] + s * (d.max - d.min) * gauss(r.rng()), d.min, d.max);
            add(std::move(p));
          }
        }
      } else {
        for (size_t j = 0; j < d.Cardinality(); ++j) {
          Point p = base;
          p[i] = d.ValueAt(j);
          add(std::move(p));
        }
      }
    }
  }
  return out;
}

Status RunBayes(const Space& space, Runner& r, const SearchOptions& o) {
  const size_t n_init = o.initial_points != 0 ? o.initial_points : std::clamp<size_t>(space.size() + 1, 3, 10);
  while (!r.done() && r.result().trials.size() < n_init) {
    std::optional<Point> p = r.RandomNew();
    if (!p) break;
    BATON_RETURN_IF_ERROR(r.Evaluate(*p).status());
  }
  std::optional<GpHyper> hyper;
  size_t fits = 0;
  GaussianProcess gp;
  while (!r.done()) {
    const auto& trials = r.result().trials;
    const auto n = static_cast<Eigen::Index>(trials.size());
    Eigen::MatrixXd X(n, static_cast<Eigen::Index>(space.EncodedSize()));
    Eigen::VectorXd y(n);
    for (Eigen::Index i = 0; i < n; ++i) {
      X.row(i) = space.Encode(trials[static_cast<size_t>(i)].point).transpose();
      y[i] = trials[static_cast<size_t>(i)].eval.score;
    }
    const bool refit = !hyper || trials.size() <= o.refit_all_until || fits % o.refit_every == 0;
    ++fits;
    // Multi-start: the warm start, the default and two random starts while data is scarce, one random start after.
    BATON_RETURN_IF_ERROR(gp.Fit(X, y, refit, o.seed * 7919 + trials.size(), hyper, trials.size() <= 20 ? 2 : 1));
    hyper = gp.hyper();
    std::vector<Point> cands = Candidates(space, r, o);
    if (cands.empty()) {
      // Nothing new to score: a discrete space is exhausted, or the sample held only seen points.
      std::optional<Point> p = r.RandomNew();
      if (!p) break;
      BATON_RETURN_IF_ERROR(r.Evaluate(*p).status());
      continue;
    }
    const double best = gp.best_std();
    std::vector<double> ei(cands.size());
    for (size_t i = 0; i < cands.size(); ++i) {
      double m = 0, v = 0;
      gp.PredictStd(space.Encode(cands[i]), &m, &v);
      ei[i] = ExpectedImprovement(m, v, best, o.xi);
    }
    size_t pick = static_cast<size_t>(std::max_element(ei.begin(), ei.end()) - ei.begin());
    Point chosen = cands[pick];
    // Continuous dimensions: refine the winner by a short stochastic hill climb on EI.
    if (!space.AllDiscrete()) {
      double cur = ei[pick];
      std::normal_distribution<double> gauss(0, 1);
      for (int step = 0; step < 60; ++step) {
        Point p = chosen;
        const double scale = step < 20 ? 0.05 : (step < 40 ? 0.015 : 0.004);
        for (size_t i = 0; i < space.size(); ++i) {
          const Dimension& d = space.dims()[i];
          if (d.kind == DimKind::kReal)
            p[i] = std::clamp(p[i] + scale * (d.max - d.min) * gauss(r.rng()), d.min, d.max);
        }
        if (r.Seen(p) || !r.IsFeasible(p)) continue;
        double m = 0, v = 0;
        gp.PredictStd(space.Encode(p), &m, &v);
        const double e = ExpectedImprovement(m, v, best, o.xi);
        if (e > cur) cur = e, chosen = p;
      }
    }
    BATON_RETURN_IF_ERROR(r.Evaluate(chosen).status());
  }
  return Status::Ok();
}

}  // namespace

StatusOr<SearchResult> RunSearch(const Space& space, const Objective& objective, const Feasible& feasible,
                                 const SearchOptions& options) {
  if (space.size() == 0) return Status::InvalidArgument("the search space has no dimension");
  if (options.budget == 0) return Status::InvalidArgument("the evaluation budget must be positive");
  for (const Dimension& d : space.dims()) {
    if (d.kind != DimKind::kReal && d.Cardinality() == 0) {
      return Status::InvalidArgument(fmt::format("dimension '{}' has no value", d.name));
    }
  }
  Runner r(space, objective, feasible, options);
  switch (options.algorithm) {
    case Algorithm::kRandom:
      BATON_RETURN_IF_ERROR(RunRandom(r));
      break;
    case Algorithm::kGreedy:
      BATON_RETURN_IF_ERROR(RunGreedy(space, r));
      break;
    case Algorithm::kBayes:
      BATON_RETURN_IF_ERROR(RunBayes(space, r, options));
      break;
  }
  return std::move(r.result());
}

// --- Test functions ---

double Branin(double x1, double x2) {
  const double pi = std::numbers::pi;
  const double b = 5.1 / (4 * pi * pi), c = 5 / pi, t = 1 / (8 * pi);
  const double u = x2 - b * x1 * x1 + c * x1 - 6;
  return u * u + 10 * (1 - t) * std::cos(x1) + 10;
}

double Hartmann6(const double* x) {
  static constexpr double kAlpha[4] = {1.0, 1.2, 3.0, 3.2};
  static constexpr double kA[4][6] = {
      {10, 3, 17, 3.5, 1.7, 8}, {0.05, 10, 17, 0.1, 8, 14}, {3, 3.5, 1.7, 10, 17, 8}, {17, 8, 0.05, 10, 0.1, 14}};
  static constexpr double kP[4][6] = {{0.1312, 0.1696, 0.5569, 0.0124, 0.8283, 0.5886},
                                      {0.2329, 0.4135, 0.8307, 0.3736, 0.1004, 0.9991},
                                      {0.2348, 0.1451, 0.3522, 0.2883, 0.3047, 0.6650},
                                      {0.4047, 0.8828, 0.8732, 0.5743, 0.1091, 0.0381}};
  double sum = 0;
  for (int i = 0; i < 4; ++i) {
    double inner = 0;
    for (int j = 0; j < 6; ++j) inner += kA[i][j] * (x[j] - kP[i][j]) * (x[j] - kP[i][j]);
    sum += kAlpha[i] * std::exp(-inner);
  }
  return -sum;
}

Space BraninSpace() {
  return Space({{.name = "x1", .kind = DimKind::kReal, .min = -5, .max = 10},
                {.name = "x2", .kind = DimKind::kReal, .min = 0, .max = 15}});
}

Space Hartmann6Space() {
  std::vector<Dimension> d;
  for (int i = 1; i <= 6; ++i) d.push_back({.name = fmt::format("x{}", i), .kind = DimKind::kReal, .min = 0, .max = 1});
  return Space(std::move(d));
}

// --- Space files ---

StatusOr<Space> ParseSpace(const std::string& json_text) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(json_text);
  } catch (const nlohmann::json::parse_error& e) {
    return Status::InvalidArgument(fmt::format("the space file is not valid JSON: {}", e.what()));
  }
  if (!j.is_object() || !j.contains("dimensions") || !j["dimensions"].is_array()) {
    return Status::InvalidArgument("the space file needs an object with a \"dimensions\" array");
  }
  std::vector<Dimension> dims;
  std::set<std::string> names;
  size_t pos = 0;
  for (const nlohmann::json& e : j["dimensions"]) {
    ++pos;
    if (!e.is_object() || !e.contains("name") || !e["name"].is_string()) {
      return Status::InvalidArgument(fmt::format("dimension #{} needs a string \"name\"", pos));
    }
    Dimension d;
    d.name = e["name"].get<std::string>();
    if (!names.insert(d.name).second)
      return Status::InvalidArgument(fmt::format("dimension '{}' appears twice", d.name));
    const std::string type = e.value("type", std::string("int"));
    auto num = [&](const char* key, double def, bool required) -> StatusOr<double> {
      if (!e.contains(key)) {
        if (required)
          return Status::InvalidArgument(fmt::format("dimension '{}' ({}) needs \"{}\"", d.name, type, key));
        return def;
      }
      if (!e[key].is_number())
        return Status::InvalidArgument(fmt::format("dimension '{}': \"{}\" must be a number", d.name, key));
      return e[key].get<double>();
    };
    if (type == "int" || type == "real") {
      d.kind = type == "int" ? DimKind::kInt : DimKind::kReal;
      BATON_ASSIGN_OR_RETURN(d.min, num("min", 0, true));
      BATON_ASSIGN_OR_RETURN(d.max, num("max", 0, true));
      BATON_ASSIGN_OR_RETURN(d.step, num("step", 1, false));
      if (!(d.max >= d.min)) return Status::InvalidArgument(fmt::format("dimension '{}': max < min", d.name));
      if (d.kind == DimKind::kInt) {
        if (d.min != std::floor(d.min) || d.step != std::floor(d.step) || d.step < 1) {
          return Status::InvalidArgument(
              fmt::format("dimension '{}': int min and step must be integers, step >= 1", d.name));
        }
        if (d.Cardinality() > 1000000)
          return Status::InvalidArgument(fmt::format("dimension '{}' is too large", d.name));
      } else if (!(d.max > d.min)) {
        return Status::InvalidArgument(fmt::format("dimension '{}': a real interval needs max > min", d.name));
      }
    } else if (type == "bool") {
      d.kind = DimKind::kBool;
    } else if (type == "categorical") {
      d.kind = DimKind::kCategorical;
      if (!e.contains("values") || !e["values"].is_array() || e["values"].empty()) {
        return Status::InvalidArgument(
            fmt::format("dimension '{}' (categorical) needs a non-empty \"values\" array", d.name));
      }
      for (const nlohmann::json& v : e["values"]) {
        if (!v.is_string())
          return Status::InvalidArgument(fmt::format("dimension '{}': values must be strings", d.name));
        d.values.push_back(v.get<std::string>());
      }
    } else {
      return Status::InvalidArgument(
          fmt::format("dimension '{}': unknown type '{}' (int, real, categorical or bool)", d.name, type));
    }
    dims.push_back(std::move(d));
  }
  if (dims.empty()) return Status::InvalidArgument("the space file has no dimension");
  return Space(std::move(dims));
}

}  // namespace baton::search
