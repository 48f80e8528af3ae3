#include <random>

#include <gtest/gtest.h>

#include "baton/bench.h"
#include "predict/test_data.h"

namespace baton {
namespace {

// Predicts each expert's mean training score for every query (a stand-in router with no text features).
class MeanPredictor : public Predictor {
 public:
  explicit MeanPredictor(std::string name, float bias) : name_(std::move(name)), bias_(bias) {}
  std::string name() const override { return name_; }
  Status Fit(const Dataset& train) override {
    experts_.clear();
    mean_.clear();
    for (size_t e = 0; e < train.num_experts(); ++e) {
      experts_.push_back(train.expert(e).name);
      mean_.push_back(static_cast<float>(train.MeanScore(e)));
    }
    return Status::Ok();
  }
  void Predict(const QueryView& q, std::span<float> out) const override {
    for (size_t e = 0; e < out.size(); ++e) out[e] = mean_[e] + bias_ * static_cast<float>(q.text.size() % 3) * 0.01f;
  }
  const std::vector<std::string>& experts() const override { return experts_; }

 private:
  std::string name_;
  float bias_;
  std::vector<std::string> experts_;
  std::vector<float> mean_;
};

StatusOr<std::unique_ptr<Predictor>> FakeFactory(const std::string& name, const PredictorOptions&) {
  if (name == "mean-a") return std::unique_ptr<Predictor>(new MeanPredictor(name, 0));
  if (name == "mean-b") return std::unique_ptr<Predictor>(new MeanPredictor(name, 1));
  return Status::InvalidArgument("unknown predictor " + name);
}

Dataset Synthetic(size_t n, uint64_t seed) {
  std::vector<ExpertRecord> es(3);
  es[0].name = "small";
  es[1].name = "medium";
  es[2].name = "large";
  std::vector<QueryRecord> qs(n);
  for (size_t q = 0; q < n; ++q) {
    qs[q].external_id = std::to_string(q);
    qs[q].domain = q % 2 ? "math" : "law";
    qs[q].text = std::string(q % 7 + 1, 'x');
  }
  Dataset ds(es, qs);
  std::mt19937_64 rng(seed);
  const double p[] = {0.4, 0.6, 0.8}, c[] = {0.001, 0.004, 0.02};
  for (size_t q = 0; q < n; ++q)
    for (size_t e = 0; e < 3; ++e) ds.Set(q, e, (rng() % 1000) / 1000.0 < p[e] ? 1.0f : 0.0f, static_cast<float>(c[e]));
  return ds;
}

TEST(BenchHarnessTest, OneDefaultAndSaneCurves) {
  Dataset all = Synthetic(200, 1);
  auto split = RandomSplit(all.num_queries(), 0.5, 0);
  ASSERT_TRUE(split.ok());
  Dataset train = all.SelectQueries(split->train), test = all.SelectQueries(split->test);
  BenchOptions o;
  o.routers = {"mean-a", "mean-b"};
  o.num_lambdas = 10;
  o.breakpoint_lambdas = 0;
  o.make_predictor = FakeFactory;
  auto r = RunBench(train, test, o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  int defaults = 0;
  for (const RouterResult& x : r->routers) {
    defaults += x.is_default;
    EXPECT_EQ(x.curve.size(), 12u);  // 0, 10 log-spaced, one past the last break-even
    for (const CurvePoint& p : x.curve) {
      EXPECT_GE(p.accuracy, 0);
      EXPECT_LE(p.accuracy, 1);
    }
    EXPECT_GT(x.aiq, 0);
    EXPECT_LE(x.aiq, 1);
    EXPECT_EQ(x.tiers.size(), o.tier_budgets.size());
    EXPECT_FALSE(std::isnan(x.cv_aiq));
  }
  EXPECT_EQ(defaults, 1);
  EXPECT_EQ(r->best_single.expert, r->singles[2].expert);  // "large" is the most accurate by construction
  EXPECT_GE(r->oracle.accuracy, r->best_single.accuracy);
  nlohmann::json j = BenchResultToJson(*r);
  int json_defaults = 0;
  for (const auto& x : j["routers"]) json_defaults += x["default"].get<bool>();
  EXPECT_EQ(json_defaults, 1);
  EXPECT_FALSE(j["routers"][0].contains("apgr"));  // three experts: no RouteLLM metrics
}

// The default (the stack) is chosen on train only: scrambling every recorded score of the test split changes the
// test figures but neither the default, nor the stack's weights, nor any cross-validation figure.
TEST(BenchHarnessTest, DefaultAndCrossValidationIgnoreTheTestSplit) {
  Dataset all = predict::testdata::TwoSkillDataset(240, 7, 0.2);
  auto split = RandomSplit(all.num_queries(), 0.5, 0);
  ASSERT_TRUE(split.ok());
  Dataset train = all.SelectQueries(split->train), test = all.SelectQueries(split->test);
  BenchOptions o;
  o.routers = {"domain-prior", "stack", "factorized"};
  o.num_lambdas = 10;
  o.breakpoint_lambdas = 50;
  o.bootstrap = 0;
  auto before = RunBench(train, test, o);
  ASSERT_TRUE(before.ok()) << before.status().ToString();
  std::mt19937_64 rng(11);
  for (size_t q = 0; q < test.num_queries(); ++q)
    for (size_t e = 0; e < test.num_experts(); ++e)
      test.Set(q, e, static_cast<float>(rng() % 2), test.cost(q, e));  // scrambled scores
  auto after = RunBench(train, test, o);
  ASSERT_TRUE(after.ok()) << after.status().ToString();
  EXPECT_EQ(before->default_router, "stack");
  EXPECT_EQ(after->default_router, before->default_router);
  EXPECT_EQ(after->default_selection, before->default_selection);  // includes the stack's weights and OOF AIQs
  EXPECT_NE(before->default_selection.find("weights:"), std::string::npos) << before->default_selection;
  ASSERT_EQ(after->routers.size(), before->routers.size());
  bool test_changed = false;
  for (size_t i = 0; i < before->routers.size(); ++i) {
    const RouterResult &a = before->routers[i], &b = after->routers[i];
    EXPECT_EQ(a.name, b.name);
    EXPECT_EQ(a.is_default, b.is_default);
    EXPECT_FALSE(std::isnan(a.cv_aiq)) << a.name;
    EXPECT_EQ(a.cv_aiq, b.cv_aiq) << a.name;  // bit-for-bit
    test_changed |= a.aiq != b.aiq;
  }
  EXPECT_TRUE(test_changed);  // the scrambling did reach the test figures
}

TEST(BenchHarnessTest, RejectsUnknownRouterAndEmptySplit) {
  Dataset all = Synthetic(20, 2);
  BenchOptions o;
  o.routers = {"nope"};
  o.make_predictor = FakeFactory;
  EXPECT_FALSE(RunBench(all, all, o).ok());
  o.routers = {"mean-a"};
  EXPECT_FALSE(RunBench(all.SelectQueries({}), all, o).ok());
}

}  // namespace
}  // namespace baton
