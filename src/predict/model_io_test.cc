#include <gtest/gtest.h>
#include <cstring>

#include <bit>
#include <cmath>
#include <fstream>
#include <sstream>

#include "baton/predictor.h"
#include "predict/test_data.h"
#include "test_util.h"

namespace baton {
namespace {

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}
void WriteAll(const std::string& path, const std::string& s) {
  std::ofstream(path, std::ios::binary) << s;
}

class ModelIoTest : public ::testing::TestWithParam<std::string> {};

TEST_P(ModelIoTest, LoadedModelPredictsBitForBit) {
  const Dataset train = predict::testdata::TwoSkillDataset(200, 11);
  const Dataset probe = predict::testdata::TwoSkillDataset(50, 12);
  RouterModel m;
  auto p = MakePredictor(GetParam(), {.seed = 2});
  ASSERT_TRUE(p.ok());
  m.predictor = std::move(*p);
  ASSERT_TRUE(m.predictor->Fit(train).ok());
  auto cost = CostModel::Fit(train);
  ASSERT_TRUE(cost.ok());
  m.cost = *cost;
  testing::TempDir dir;
  const std::string path = dir.path() + "/m.baton";
  ASSERT_TRUE(SaveModel(m, path).ok());
  auto loaded = LoadModel(path);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(loaded->predictor->name(), GetParam());
  EXPECT_EQ(loaded->predictor->experts(), m.predictor->experts());
  for (size_t q = 0; q < probe.num_queries(); ++q) {
    const QueryView v{.text = probe.query(q).text, .domain = probe.query(q).domain};
    float a[2], b[2], ca[2], cb[2];
    m.predictor->Predict(v, a);
    loaded->predictor->Predict(v, b);
    m.cost.Predict(v, ca);
    loaded->cost.Predict(v, cb);
    for (int e = 0; e < 2; ++e) {
      EXPECT_EQ(std::bit_cast<uint32_t>(a[e]), std::bit_cast<uint32_t>(b[e]));
      EXPECT_EQ(std::bit_cast<uint32_t>(ca[e]), std::bit_cast<uint32_t>(cb[e]));
    }
  }
}

INSTANTIATE_TEST_SUITE_P(All, ModelIoTest, ::testing::ValuesIn(PredictorNames()), [](const auto& info) {
  std::string n = info.param;
  for (char& c : n) c = c == '-' ? '_' : c;
  return n;
});

class ModelFileErrorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const Dataset train = predict::testdata::TwoSkillDataset(100, 1);
    RouterModel m;
    m.predictor = std::move(*MakePredictor("domain-prior"));
    ASSERT_TRUE(m.predictor->Fit(train).ok());
    m.cost = *CostModel::Fit(train);
    path_ = dir_.path() + "/m.baton";
    ASSERT_TRUE(SaveModel(m, path_).ok());
    bytes_ = ReadAll(path_);
  }
  Status LoadWith(const std::string& bytes) {
    WriteAll(path_, bytes);
    return LoadModel(path_).status();
  }
  testing::TempDir dir_;
  std::string path_, bytes_;
};

TEST_F(ModelFileErrorTest, OtherVersionIsFailedPrecondition) {
  std::string b = bytes_;
  b[8] = 99;  // the u32 version follows the 8-byte magic
  const Status st = LoadWith(b);
  EXPECT_EQ(st.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(st.message().find("model file version 99, this baton reads " + std::to_string(kModelFormatVersion)),
            std::string::npos)
      << st.message();
}

TEST_F(ModelFileErrorTest, CorruptedIsDataLoss) {
  std::string b = bytes_;
  b[b.size() / 2] ^= 0x40;
  const Status st = LoadWith(b);
  EXPECT_EQ(st.code(), StatusCode::kDataLoss);
  EXPECT_NE(st.message().find("checksum"), std::string::npos) << st.message();
}

TEST_F(ModelFileErrorTest, TruncatedIsDataLoss) {
  for (size_t len : {size_t{0}, size_t{5}, size_t{10}, bytes_.size() / 2, bytes_.size() - 1}) {
    const Status st = LoadWith(bytes_.substr(0, len));
    EXPECT_EQ(st.code(), StatusCode::kDataLoss) << len << ": " << st.ToString();
  }
}

TEST_F(ModelFileErrorTest, BadMagicIsDataLoss) {
  std::string b = bytes_;
  b[0] = 'X';
  const Status st = LoadWith(b);
  EXPECT_EQ(st.code(), StatusCode::kDataLoss);
  EXPECT_NE(st.message().find("not a baton model file"), std::string::npos);
}

TEST_F(ModelFileErrorTest, MissingFileIsNotFound) {
  EXPECT_EQ(LoadModel(dir_.path() + "/none.baton").status().code(), StatusCode::kNotFound);
}

TEST(CostModelTest, PricedExpertsUseListPricesTimesTokens) {
  std::vector<ExpertRecord> experts = {{.id = 1, .name = "cheap", .usd_per_mtok_in = 1.0, .usd_per_mtok_out = 2.0},
                                       {.id = 2, .name = "dear", .usd_per_mtok_in = 10.0, .usd_per_mtok_out = 30.0}};
  std::vector<QueryRecord> queries = {{.id = 1, .external_id = "a", .text = std::string(400, 'x')},
                                      {.id = 2, .external_id = "b", .text = std::string(800, 'x')}};
  Dataset ds(experts, queries);
  ds.Set(0, 0, 1, NAN, 100, 100);
  ds.Set(1, 0, 1, NAN, 200, 300);  // cheap: mean tokens_out 200
  ds.Set(0, 1, 1, NAN, 100, 50);   // dear: mean tokens_out 50
  auto cm = CostModel::Fit(ds);
  ASSERT_TRUE(cm.ok());
  float c[2];
  cm->Predict({.text = std::string(400, 'y')}, c);
  EXPECT_NEAR(c[0], 100 * 1e-6 + 200 * 2e-6, 1e-9);
  EXPECT_NEAR(c[1], 100 * 10e-6 + 50 * 30e-6, 1e-9);
  auto back = CostModel::Deserialize(cm->Serialize());
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->experts(), cm->experts());
  EXPECT_EQ(CostModel::Deserialize(cm->Serialize().substr(0, 20)).status().code(), StatusCode::kDataLoss);
}

TEST(CostModelTest, RecordedCostsScaleWithLength) {
  auto ds = LoadDatasetDir(testing::DataPath("routerbench-train"));
  ASSERT_TRUE(ds.ok()) << ds.status().ToString();
  auto cm = CostModel::Fit(*ds);
  ASSERT_TRUE(cm.ok());
  const size_t ne = ds->num_experts();
  std::vector<double> pred_sum(ne, 0), rec_sum(ne, 0), n(ne, 0);
  std::vector<float> c(ne);
  for (size_t q = 0; q < ds->num_queries(); ++q) {
    cm->Predict({.text = ds->query(q).text}, c);
    for (size_t e = 0; e < ne; ++e) {
      if (std::isnan(ds->cost(q, e))) continue;
      ASSERT_TRUE(std::isfinite(c[e]) && c[e] > 0) << ds->expert(e).name;
      pred_sum[e] += c[e], rec_sum[e] += ds->cost(q, e), n[e] += 1;
    }
  }
  for (size_t e = 0; e < ne; ++e) {
    if (n[e] == 0) continue;
    // Mean prediction over the training prompts equals the mean recorded cost (the scaling averages to 1).
    EXPECT_NEAR(pred_sum[e] / rec_sum[e], 1.0, 0.01) << ds->expert(e).name;
  }
  float shortc[64], longc[64];
  ASSERT_LE(ne, 64u);
  cm->Predict({.text = std::string(100, 'a')}, std::span<float>(shortc, ne));
  cm->Predict({.text = std::string(2000, 'a')}, std::span<float>(longc, ne));
  for (size_t e = 0; e < ne; ++e) EXPECT_GT(longc[e], shortc[e]);
}

// A router trading score against cost picks the queries whose cost is most underestimated; a domain-blind estimate
// underestimates code answers (short prompt, long output) several-fold. Per (domain, expert), on held-out data, the
// predicted total must match the recorded total.
TEST(CostModelTest, PerDomainCostsHoldOnHeldOutData) {
  auto train = LoadDatasetDir(testing::DataPath("routerbench-train"));
  auto test = LoadDatasetDir(testing::DataPath("routerbench-test"));
  ASSERT_TRUE(train.ok() && test.ok());
  auto cm = CostModel::Fit(*train);
  ASSERT_TRUE(cm.ok());
  const size_t ne = test->num_experts(), nd = test->domains().size();
  ASSERT_EQ(cm->experts().size(), ne);
  std::vector<double> pred(nd * ne, 0), rec(nd * ne, 0), n(nd * ne, 0);
  std::vector<float> c(ne);
  for (size_t q = 0; q < test->num_queries(); ++q) {
    cm->Predict({.text = test->query(q).text, .domain = test->query(q).domain}, c);
    for (size_t e = 0; e < ne; ++e) {
      if (std::isnan(test->cost(q, e))) continue;
      const size_t i = test->domain_of(q) * ne + e;
      pred[i] += c[e], rec[i] += test->cost(q, e), n[i] += 1;
    }
  }
  size_t checked = 0;
  for (size_t i = 0; i < pred.size(); ++i) {
    if (n[i] < 20) continue;
    ++checked;
    EXPECT_NEAR(pred[i] / rec[i], 1.0, 0.25) << test->domains()[i / ne] << " / " << test->expert(i % ne).name;
  }
  EXPECT_GE(checked, 30u);
  // Bit-for-bit through serialisation, domains included.
  auto back = CostModel::Deserialize(cm->Serialize());
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  std::vector<float> c2(ne);
  cm->Predict({.text = test->query(0).text, .domain = test->query(0).domain}, c);
  back->Predict({.text = test->query(0).text, .domain = test->query(0).domain}, c2);
  EXPECT_EQ(0, std::memcmp(c.data(), c2.data(), ne * sizeof(float)));
}

}  // namespace
}  // namespace baton

namespace baton {
namespace {

TEST(FitCommandTest, FitsSavesAndReportsErrors) {
  testing::TempDir dir;
  const std::string db = dir.path() + "/b.db", model = dir.path() + "/m.baton";
  auto r = testing::RunBaton("import --db " + db + " " + testing::DataPath("routerbench-test"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = testing::RunBaton("fit --db " + db + " --out " + model + " --predictor knn --seed 3");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("held-out estimate"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("k="), std::string::npos) << r.output;
  auto loaded = LoadModel(model);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(loaded->predictor->name(), "knn");

  r = testing::RunBaton("fit --db " + db + " --out " + model + " --experts no-such-model");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("no-such-model"), std::string::npos) << r.output;
  r = testing::RunBaton("fit --db " + db + " --out " + model + " --predictor nope");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("unknown predictor"), std::string::npos) << r.output;
  r = testing::RunBaton("fit --db " + db + " --out " + model + " --dataset no-such-dataset");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("error"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace baton
