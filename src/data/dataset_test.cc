#include "baton/dataset.h"

#include <gtest/gtest.h>

#include "baton/importer.h"
#include "test_util.h"

namespace baton {
namespace {

Dataset Small() {
  Dataset d({{.name = "a"}, {.name = "b"}, {.name = "c"}}, {{.external_id = "q0", .domain = "x"},
                                                            {.external_id = "q1", .domain = "y"},
                                                            {.external_id = "q2", .domain = "x"}});
  d.Set(0, 0, 1, 0.1f);
  d.Set(0, 1, 0, 0.2f);
  d.Set(1, 2, 0.5f, NAN);
  d.Set(2, 0, 0, 0.3f);
  return d;
}

TEST(DatasetTest, CellsAndMeans) {
  Dataset d = Small();
  EXPECT_TRUE(d.observed(0, 1));
  EXPECT_FALSE(d.observed(1, 0));
  EXPECT_DOUBLE_EQ(d.MeanScore(0), 0.5);
  EXPECT_NEAR(d.MeanCost(0), 0.2, 1e-7);
  EXPECT_TRUE(std::isnan(d.MeanCost(2)));
  EXPECT_EQ(d.ObservedCount(2), 1u);
  EXPECT_EQ(d.domains(), (std::vector<std::string>{"x", "y"}));
  EXPECT_EQ(d.domain_of(2), 0u);
}

TEST(DatasetTest, SelectQueriesAndExperts) {
  Dataset d = Small();
  Dataset rows = d.SelectQueries({2, 0});
  EXPECT_EQ(rows.query(0).external_id, "q2");
  EXPECT_FLOAT_EQ(rows.score(1, 0), 1.0f);
  auto cols = d.SelectExperts({"c", "a"});
  ASSERT_TRUE(cols.ok());
  EXPECT_FLOAT_EQ(cols->score(1, 0), 0.5f);
  EXPECT_FLOAT_EQ(cols->score(0, 1), 1.0f);
  EXPECT_EQ(d.SelectExperts({"zz"}).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(d.SelectExperts({"a", "a"}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(d.SelectExperts({}).status().code(), StatusCode::kInvalidArgument);
}

TEST(DatasetTest, LoadsBundledRouterBenchWithFilters) {
  auto ds = LoadDatasetDir(testing::DataPath("routerbench-test"));
  ASSERT_TRUE(ds.ok()) << ds.status().ToString();
  EXPECT_EQ(ds->num_queries(), 952u);
  EXPECT_EQ(ds->num_experts(), 11u);
  auto two = LoadDatasetDir(testing::DataPath("routerbench-test"), {.experts = {"gpt-4-1106-preview", "claude-v2"}});
  ASSERT_TRUE(two.ok()) << two.status().ToString();
  EXPECT_EQ(two->num_experts(), 2u);
  auto bad = LoadDatasetDir(testing::DataPath("routerbench-test"), {.experts = {"no-such-model"}});
  EXPECT_EQ(bad.status().code(), StatusCode::kNotFound);
}

TEST(DatasetTest, MeanOfRepeatedObservations) {
  auto store = Store::Open(":memory:");
  ASSERT_TRUE(store.ok());
  Store& s = **store;
  auto e = s.UpsertExpert({.name = "m"});
  auto q = s.InsertQuery({.external_id = "q", .dataset = "d", .text = "t"});
  ASSERT_TRUE(s.InsertOutcome({.query_id = *q, .expert_id = *e, .score = 1, .cost_usd = 0.2}).ok());
  ASSERT_TRUE(
      s.InsertOutcome({.query_id = *q, .expert_id = *e, .score = 0, .cost_usd = 0.4, .source = OutcomeSource::kLive})
          .ok());
  auto ds = LoadDataset(s);
  ASSERT_TRUE(ds.ok());
  EXPECT_FLOAT_EQ(ds->score(0, 0), 0.5f);
  EXPECT_FLOAT_EQ(ds->cost(0, 0), 0.3f);
}

}  // namespace
}  // namespace baton
