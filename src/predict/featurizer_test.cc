#include "predict/featurizer.h"

#include <gtest/gtest.h>

#include <cmath>
#include <set>
#include <unordered_map>

namespace baton::predict {
namespace {

double Dot(const SparseVec& a, const SparseVec& b) {
  std::unordered_map<uint32_t, float> m;
  for (size_t i = 0; i < a.size(); ++i) m[a.idx[i]] = a.val[i];
  double s = 0;
  for (size_t i = 0; i < b.size(); ++i) {
    auto it = m.find(b.idx[i]);
    if (it != m.end()) s += it->second * b.val[i];
  }
  return s;
}

Featurizer Fitted() {
  Featurizer f;
  f.Fit({"the cat sat on the mat", "the dog ate the bone", "integrals of the polynomial", "the treaty of the empire"});
  return f;
}

TEST(FeaturizerTest, UnitLengthUniqueIndicesInRange) {
  const Featurizer f = Fitted();
  SparseVec v;
  f.Transform("The quick brown fox jumps over the lazy dog, twice: the quick brown fox!", &v);
  ASSERT_GT(v.size(), 50u);
  EXPECT_NEAR(Dot(v, v), 1.0, 1e-5);
  std::set<uint32_t> unique(v.idx.begin(), v.idx.end());
  EXPECT_EQ(unique.size(), v.size());
  for (uint32_t i : v.idx) EXPECT_LT(i, Featurizer::kDims);
}

TEST(FeaturizerTest, CaseAndWhitespaceInsensitive) {
  const Featurizer f = Fitted();
  SparseVec a, b;
  f.Transform("Hello World  again", &a);
  f.Transform("hello\n world again", &b);
  EXPECT_NEAR(Dot(a, b), 1.0, 1e-5);
}

TEST(FeaturizerTest, SimilarTextsAreCloser) {
  const Featurizer f = Fitted();
  SparseVec a, b, c;
  f.Transform("compute the integral of the polynomial x^2", &a);
  f.Transform("find the integral of this polynomial", &b);
  f.Transform("which empire signed the treaty", &c);
  EXPECT_GT(Dot(a, b), Dot(a, c) + 0.1);
  // The dense sketch keeps the ordering.
  std::vector<float> za(256), zb(256), zc(256);
  f.Embed("compute the integral of the polynomial x^2", za);
  f.Embed("find the integral of this polynomial", zb);
  f.Embed("which empire signed the treaty", zc);
  double ab = 0, ac = 0, aa = 0;
  for (size_t i = 0; i < 256; ++i) ab += za[i] * zb[i], ac += za[i] * zc[i], aa += za[i] * za[i];
  EXPECT_NEAR(aa, 1.0, 1e-5);
  EXPECT_GT(ab, ac);
}

TEST(FeaturizerTest, RareWordsWeighMoreThanCommonOnes) {
  const Featurizer f = Fitted();
  SparseVec common, rare;
  f.Transform("the", &common);
  f.Transform("xylophone", &rare);
  // Both are one word; "the" appears in every training prompt, so its features have the lowest IDF. Compare the
  // unigram weights before normalisation via a two-word prompt.
  SparseVec both;
  f.Transform("the zebra", &both);
  f.Transform("the", &common);
  // The vector for "the zebra" is dominated by "zebra": its cosine with "the" is small.
  EXPECT_LT(Dot(both, common), 0.5);
}

TEST(FeaturizerTest, EmptyAndHugeTexts) {
  const Featurizer f = Fitted();
  SparseVec v;
  f.Transform("", &v);
  EXPECT_EQ(v.size(), 0u);
  std::vector<float> z(64, 1.0f);
  f.Embed("", z);
  for (float x : z) EXPECT_EQ(x, 0.0f);
  std::string huge(1 << 20, 'a');
  for (size_t i = 0; i < huge.size(); i += 7) huge[i] = ' ';
  f.Transform(huge, &v);
  EXPECT_GT(v.size(), 0u);
  EXPECT_NEAR(Dot(v, v), 1.0, 1e-4);
}

TEST(FeaturizerTest, SaveLoadRoundTrip) {
  const Featurizer f = Fitted();
  std::string bytes;
  ByteWriter w(&bytes);
  f.Save(&w);
  Featurizer g;
  ByteReader r(bytes);
  ASSERT_TRUE(g.Load(&r).ok());
  EXPECT_TRUE(r.Finish().ok());
  SparseVec a, b;
  f.Transform("the cat and the integral", &a);
  g.Transform("the cat and the integral", &b);
  ASSERT_EQ(a.idx, b.idx);
  EXPECT_EQ(a.val, b.val);
}

}  // namespace
}  // namespace baton::predict
