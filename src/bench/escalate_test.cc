#include "bench/escalate.h"

#include <random>

#include <gtest/gtest.h>

#include "baton/bench.h"

namespace baton {
namespace {

// Predicts each expert's mean training score (no text features), so the escalation router has a router to lean on.
class MeanPredictor : public Predictor {
 public:
  std::string name() const override { return "mean"; }
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
    for (size_t e = 0; e < out.size(); ++e) out[e] = mean_[e] + 0.01f * static_cast<float>(q.text.size() % 3);
  }
  const std::vector<std::string>& experts() const override { return experts_; }

 private:
  std::vector<std::string> experts_;
  std::vector<float> mean_;
};

StatusOr<std::unique_ptr<Predictor>> Factory(const std::string& name, const PredictorOptions&) {
  if (name == "mean") return std::unique_ptr<Predictor>(new MeanPredictor());
  return Status::InvalidArgument("unknown predictor " + name);
}

Dataset Experts3(size_t n) {
  std::vector<ExpertRecord> es(3);
  es[0].name = "cheap-a";
  es[1].name = "cheap-b";
  es[2].name = "big";
  std::vector<QueryRecord> qs(n);
  for (size_t q = 0; q < n; ++q) {
    qs[q].external_id = "q" + std::to_string(q);
    qs[q].domain = "mc";
    qs[q].text = std::string(q % 5 + 1, 'x');
  }
  return Dataset(es, qs);
}

// The acceptance model used by hand: agreement of the two letters -> p 0.88, disagreement -> 0.12.
AcceptanceModel AgreementModel() { return AcceptanceModel({-2, 0, 0, 0, 0, 4, 0}); }

TEST(EscalationTest, AgreeAcceptsDisagreeEscalatesCostsSummed) {
  Dataset ds = Experts3(3);
  // q0: the cheap answers agree (C, C); q1: they differ (B, D); q2: cheap-a has no outcome.
  ds.Set(0, 0, 1, 1.0f), ds.Set(0, 1, 1, 2.0f), ds.Set(0, 2, 1, 10.0f);
  ds.Set(1, 0, 0, 1.0f), ds.Set(1, 1, 0, 2.0f), ds.Set(1, 2, 1, 10.0f);
  ds.Set(2, 0, NAN, NAN), ds.Set(2, 1, 1, 2.0f), ds.Set(2, 2, 1, 10.0f);
  AnswerTable t{.num_experts = 3, .text = std::vector<std::optional<std::string>>(9)};
  t.text[0] = "The answer is (C)", t.text[1] = "['C']", t.text[2] = "C";
  t.text[3] = "B", t.text[4] = "Answer: D", t.text[5] = "C";
  t.recorded = 6;
  const std::vector<AnswerForm> form(3, AnswerForm::kChoice);
  const std::vector<size_t> cheap = {0, 1};
  const std::vector<float> ps = {0.5f, 0.4f, 0.9f, 0.5f, 0.4f, 0.9f, 0.5f, 0.4f, 0.9f};
  const std::vector<float> pc = {1, 2, 10, 1, 2, 10, 1, 2, 10};
  const std::vector<AcceptanceFeatures> x = EscalationFeatures(ds, t, form, cheap, ps);
  EXPECT_EQ(x[0][5], 1.0f);
  EXPECT_EQ(x[1][5], 0.0f);
  const AcceptanceModel m = AgreementModel();
  std::vector<double> prob;
  for (const AcceptanceFeatures& f : x) prob.push_back(m.Probability(f));
  const EscalationOutcome o = RealiseEscalation(ds, cheap, prob, 0.5, ps, pc, /*lambda=*/0.0);
  EXPECT_EQ(o.choice[0], 0);  // accepted cheap-a's answer
  EXPECT_EQ(o.escalated[0], 0);
  EXPECT_FLOAT_EQ(o.cost[0], 3.0f);  // both cheap calls
  EXPECT_FLOAT_EQ(o.score[0], 1.0f);
  EXPECT_EQ(o.choice[1], 2);  // escalated to big
  EXPECT_EQ(o.escalated[1], 1);
  EXPECT_FLOAT_EQ(o.cost[1], 13.0f);  // cheap calls + big
  EXPECT_FLOAT_EQ(o.score[1], 1.0f);
  EXPECT_EQ(o.choice[2], 2);  // no cheap outcome: the router's choice at lambda 0 directly
  EXPECT_FLOAT_EQ(o.cost[2], 10.0f);
  EXPECT_NEAR(o.cost_per_query, 26.0 / 3, 1e-6);
  EXPECT_NEAR(o.accuracy, 1.0, 1e-9);
  // At a large lambda the router picks the cheapest expert beyond the cheap ones, and for q2 cheap-b.
  const EscalationOutcome cheapest = RealiseEscalation(ds, cheap, prob, 0.5, ps, pc, 1.0);
  EXPECT_EQ(cheapest.choice[1], 2);  // big is the only expert outside the cheap set
  EXPECT_EQ(cheapest.choice[2], 1);
  EXPECT_FLOAT_EQ(cheapest.cost[2], 2.0f);
  // Threshold 0: everything accepted; past 1: every query with a cheap outcome escalates.
  EXPECT_EQ(RealiseEscalation(ds, cheap, prob, 0.0, ps, pc, 0.0).escalated, (std::vector<uint8_t>{0, 0, 0}));
  EXPECT_EQ(RealiseEscalation(ds, cheap, prob, 1.01, ps, pc, 0.0).escalated, (std::vector<uint8_t>{1, 1, 0}));
}

// A dataset with letter answers: each expert answers the reference letter when right, another letter when wrong.
// cheap-a and cheap-b are right together on "easy" queries, so their agreement carries signal.
struct WithAnswers {
  Dataset ds;
  AnswerTable answers;
};
WithAnswers Synthetic(size_t n, uint64_t seed) {
  WithAnswers w{Experts3(n), {}};
  w.answers.num_experts = 3;
  w.answers.text.assign(n * 3, std::nullopt);
  std::mt19937_64 rng(seed);
  const double cost[] = {0.001, 0.002, 0.02};
  for (size_t q = 0; q < n; ++q) {
    const bool easy = rng() % 100 < 60;
    const char ref = static_cast<char>('A' + rng() % 4);
    for (size_t e = 0; e < 3; ++e) {
      const unsigned p = e == 2 ? 90 : e == 1 ? (easy ? 90 : 35) : (easy ? 80 : 20);
      const bool right = rng() % 100 < p;
      const char letter = right ? ref : static_cast<char>('A' + (ref - 'A' + 1 + rng() % 3) % 4);
      w.ds.Set(q, e, right ? 1.0f : 0.0f, static_cast<float>(cost[e]));
      w.answers.text[q * 3 + e] = std::string("The answer is (") + letter + ")";
      ++w.answers.recorded;
    }
  }
  return w;
}

BenchOptions Options() {
  BenchOptions o;
  o.routers = {"mean"};
  o.num_lambdas = 10;
  o.breakpoint_lambdas = 0;
  o.bootstrap = 50;
  o.make_predictor = Factory;
  return o;
}

TEST(EscalationTest, BenchHasTheRouterWithAValidCurve) {
  WithAnswers train = Synthetic(300, 1), test = Synthetic(300, 2);
  BenchOptions o = Options();
  o.train_answers = &train.answers;
  o.test_answers = &test.answers;
  auto r = RunBench(train.ds, test.ds, o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_TRUE(r->escalation.ran) << r->escalation.note;
  const RouterResult* esc = nullptr;
  for (const RouterResult& x : r->routers)
    if (x.name == "escalate") esc = &x;
  ASSERT_NE(esc, nullptr);
  EXPECT_FALSE(esc->is_default);
  ASSERT_FALSE(esc->curve.empty());
  for (size_t i = 0; i < esc->curve.size(); ++i) {
    EXPECT_GE(esc->curve[i].accuracy, 0);
    EXPECT_LE(esc->curve[i].accuracy, 1);
    EXPECT_GT(esc->curve[i].cost_per_query, 0);  // at least one call is always paid
    if (i > 0) EXPECT_GE(esc->curve[i].cost_per_query, esc->curve[i - 1].cost_per_query);
  }
  EXPECT_GT(esc->aiq, 0);
  EXPECT_LE(esc->aiq, 1);
  EXPECT_EQ(esc->choice.size(), test.ds.num_queries());
  ASSERT_TRUE(esc->ci.aiq.has_value());
  EXPECT_LE(esc->ci.aiq->lo, esc->aiq + 1e-9);
  EXPECT_GE(esc->ci.aiq->hi, esc->aiq - 1e-9);
  // Candidates: each frontier expert alone, and the pair with the more accurate one's answer accepted.
  std::vector<std::string> names;
  for (const auto& [n, a] : r->escalation.candidates) names.push_back(n);
  EXPECT_EQ(names, (std::vector<std::string>{"cheap-a", "cheap-b", "cheap-b+cheap-a"}));
  // Agreement must carry weight when two are called: agreeing cheap answers are far more often right.
  if (r->escalation.cheap.size() == 2) {
    EXPECT_GT(r->escalation.model.weights()[5], 0.5) << r->escalation.model.Describe();
  }
  const nlohmann::json j = BenchResultToJson(*r);
  EXPECT_TRUE(j["escalation"]["ran"].get<bool>());
  bool in_json = false;
  for (const auto& x : j["routers"]) in_json |= x["name"] == "escalate";
  EXPECT_TRUE(in_json);
  EXPECT_NE(RenderBenchReport(*r, "t").find("Escalation router"), std::string::npos);
  // route-escalate: at threshold 0 it is the router itself, so its AIQ (on the same lambdas) is at least the
  // default's up to the default's extra lambdas; here every router sweeps the same 10 log-spaced ones.
  const RouterResult *routed = nullptr, *def = nullptr;
  for (const RouterResult& x : r->routers) {
    if (x.name == "route-escalate") routed = &x;
    if (x.is_default) def = &x;
  }
  ASSERT_NE(routed, nullptr);
  ASSERT_NE(def, nullptr);
  EXPECT_GE(routed->aiq, def->aiq - 1e-9);
}

TEST(EscalationTest, WithoutAnswersNotRunWithANote) {
  WithAnswers train = Synthetic(100, 1), test = Synthetic(100, 2);
  auto r = RunBench(train.ds, test.ds, Options());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_FALSE(r->escalation.ran);
  EXPECT_NE(r->escalation.note.find("not run"), std::string::npos);
  for (const RouterResult& x : r->routers) EXPECT_NE(x.name, "escalate");
}

// The cheap experts, the acceptance model and its thresholds are learned on train only: scrambling the test split's
// answers and scores changes the test curve but not the learned rule.
TEST(EscalationTest, AcceptanceRuleUsesTrainOnly) {
  WithAnswers train = Synthetic(300, 1), test = Synthetic(300, 2);
  BenchOptions o = Options();
  o.bootstrap = 0;
  o.train_answers = &train.answers;
  o.test_answers = &test.answers;
  auto before = RunBench(train.ds, test.ds, o);
  ASSERT_TRUE(before.ok()) << before.status().ToString();
  std::mt19937_64 rng(5);
  for (size_t q = 0; q < test.ds.num_queries(); ++q) {
    for (size_t e = 0; e < 3; ++e) {
      test.ds.Set(q, e, static_cast<float>(rng() % 2), test.ds.cost(q, e));
      test.answers.text[q * 3 + e] = std::string(1, static_cast<char>('A' + rng() % 4));
    }
  }
  auto after = RunBench(train.ds, test.ds, o);
  ASSERT_TRUE(after.ok()) << after.status().ToString();
  const EscalationSummary &a = before->escalation, &b = after->escalation;
  ASSERT_TRUE(a.ran && b.ran);
  EXPECT_EQ(a.cheap, b.cheap);
  EXPECT_EQ(a.model.weights(), b.model.weights());  // bit-for-bit
  EXPECT_EQ(a.thresholds, b.thresholds);
  EXPECT_EQ(a.train_aiq, b.train_aiq);
  EXPECT_EQ(a.default_train_aiq, b.default_train_aiq);
  EXPECT_EQ(a.candidates, b.candidates);
  double aiq_a = 0, aiq_b = 0;
  for (const RouterResult& x : before->routers)
    if (x.name == "escalate") aiq_a = x.aiq;
  for (const RouterResult& x : after->routers)
    if (x.name == "escalate") aiq_b = x.aiq;
  EXPECT_NE(aiq_a, aiq_b);  // the scrambling did reach the test figures
}

}  // namespace
}  // namespace baton
