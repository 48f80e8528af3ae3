// The stack: greedy selection on out-of-fold AIQ inside train.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "baton/predictor.h"
#include "predict/common.h"
#include "predict/test_data.h"

namespace baton {
namespace {

TEST(StackTest, OutOfFoldBlendIsNotWorseThanAnyCandidate) {
  const Dataset train = predict::testdata::TwoSkillDataset(300, 5, 0.15);
  auto p = MakePredictor("stack", {.seed = 1});
  ASSERT_TRUE(p.ok());
  ASSERT_TRUE((*p)->Fit(train).ok());
  const auto scores = (*p)->SelectionScores();
  ASSERT_GE(scores.size(), 3u);  // every candidate that trained, then the blend
  EXPECT_EQ(scores.back().first, "stack");
  for (const auto& [name, aiq] : scores) {
    EXPECT_NE(name, "ensemble");  // a mixture of candidates itself: not a candidate
    EXPECT_GT(aiq, 0);
    EXPECT_LE(aiq, 1);
    EXPECT_LE(aiq, scores.back().second) << name;  // greedy selection starts from the best single candidate
  }
  EXPECT_NE((*p)->Describe().find("weights:"), std::string::npos);
  // It routes the two skills apart: math to alpha, history to beta.
  float s[2];
  (*p)->Predict({.text = "Question: integral of the matrix", .domain = "math"}, s);
  EXPECT_GT(s[0], s[1]);
  (*p)->Predict({.text = "Question: empire of the dynasty", .domain = "history"}, s);
  EXPECT_LT(s[0], s[1]);
}

TEST(StackTest, SharedSketchPredictsWhatEachComponentWould) {
  // The stack featurises a prompt once and hands the sketch to every text component: exact only if each text
  // predictor's PredictSketch(Embed(text)) is its Predict(), and predictors fitted on one training set share one
  // featurizer state.
  const Dataset train = predict::testdata::TwoSkillDataset(200, 9, 0.2);
  std::vector<std::unique_ptr<Predictor>> fitted;
  for (const std::string& name : PredictorNames()) {
    if (name == "stack" || name == "ensemble") continue;
    auto p = MakePredictor(name, {.seed = 3, .cross_validate = false});
    ASSERT_TRUE(p.ok());
    ASSERT_TRUE((*p)->Fit(train).ok()) << name;
    fitted.push_back(std::move(*p));
  }
  const predict::PredictorBase* first_text = nullptr;
  for (const auto& p : fitted) {
    const auto* b = dynamic_cast<const predict::PredictorBase*>(p.get());
    ASSERT_NE(b, nullptr) << p->name();
    if (!b->uses_text()) continue;
    if (!first_text) first_text = b;
    EXPECT_TRUE(b->SameFeaturizer(*first_text)) << p->name();
    for (size_t q = 0; q < 20; ++q) {
      const QueryRecord& r = train.query(q);
      const QueryView v{.text = r.text, .domain = r.domain, .subdomain = r.source};
      float z[predict::kEmbedDim], direct[2], shared[2];
      first_text->Embed(r.text, z);
      p->Predict(v, direct);
      b->PredictSketch(v, z, shared);
      EXPECT_EQ(direct[0], shared[0]) << p->name();
      EXPECT_EQ(direct[1], shared[1]) << p->name();
    }
  }
  EXPECT_NE(first_text, nullptr);
}

TEST(StackTest, TinyTrainingSetFallsBackToTheDomainPrior) {
  const Dataset train = predict::testdata::TwoSkillDataset(6, 2, 0.0);
  auto p = MakePredictor("stack");
  ASSERT_TRUE(p.ok());
  ASSERT_TRUE((*p)->Fit(train).ok());
  EXPECT_TRUE((*p)->SelectionScores().empty());
  EXPECT_NE((*p)->Describe().find("domain-prior=1/1"), std::string::npos);
}

}  // namespace
}  // namespace baton
