#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "baton/archon.h"

namespace baton::archon {
namespace {

std::vector<ExpertConfig> Experts() {
  std::vector<ExpertConfig> e(3);
  e[0].name = "a";
  e[1].name = "b";
  e[2].name = "c";
  e[2].model = "upstream-c";
  return e;
}

ParseResult ParseAndValidate(const std::string& text, bool structure_only = false) {
  ParseResult r = ParseArchitecture(text, "t.json");
  Validate({.structure_only = structure_only, .experts = Experts()}, &r);
  return r;
}

std::string Joined(const std::vector<Diagnostic>& ds) {
  std::string s;
  for (const Diagnostic& d : ds) s += d.ToString("t.json") + "\n";
  return s;
}

TEST(ArchonConfig, ThreeLayerFormsParseAlike) {
  const char* list =
      R"({"layers": [[{"type": "generator", "model": "a", "samples": 2}], [{"type": "fuser", "model": "b"}]]})";
  const char* object =
      R"({"layers": [{"branches": 1, "models": [{"type": "generator", "model": "a", "samples": 2}]},
                     {"branches": 1, "models": [{"type": "fuser", "model": "b"}]}]})";
  const char* single =
      R"({"layers": [{"type": "generator", "model": "a", "samples": 2}, {"type": "fuser", "model": "b"}]})";
  for (const char* text : {list, object, single}) {
    ParseResult r = ParseAndValidate(text);
    EXPECT_EQ(Joined(r.errors), "") << text;
    EXPECT_EQ(Joined(r.warnings), "") << text;
    ASSERT_EQ(r.architecture.layers.size(), 2u);
    ASSERT_EQ(r.architecture.layers[0].components.size(), 1u);
    EXPECT_EQ(r.architecture.layers[0].components[0].type, ComponentType::kGenerator);
    EXPECT_EQ(r.architecture.layers[0].components[0].samples, 2);
    EXPECT_EQ(r.architecture.layers[1].components[0].type, ComponentType::kFuser);
    EXPECT_EQ(r.architecture.layers[1].components[0].model, "b");
    EXPECT_EQ(r.architecture.name, "t");  // from the source's file name
  }
}

TEST(ArchonConfig, DefaultsAndFields) {
  ParseResult r = ParseAndValidate(
      R"({"name": "x", "layers": [[{"type": "generator", "model": "a", "model_type": "Together_API",
          "temperature": 0.1, "max_tokens": 100, "samples": 3}], [{"type": "ranker", "model": "a"}]]})");
  ASSERT_TRUE(r.errors.empty()) << Joined(r.errors);
  const Component& g = r.architecture.layers[0].components[0];
  EXPECT_EQ(g.model_type, "Together_API");
  EXPECT_DOUBLE_EQ(g.temperature, 0.1);
  EXPECT_EQ(g.max_tokens, 100);
  EXPECT_EQ(g.samples, 3);
  const Component& k = r.architecture.layers[1].components[0];
  EXPECT_DOUBLE_EQ(k.temperature, 0.7);
  EXPECT_EQ(k.max_tokens, 2048);
  EXPECT_EQ(k.top_k, 5);
  EXPECT_EQ(r.architecture.name, "x");
}

TEST(ArchonConfig, UnknownKeysKeptAsWarnings) {
  ParseResult r = ParseAndValidate(
      R"({"layers": [[{"type": "generator", "model": "a", "first_pass": true, "temprature": 0.3}]], "checkpoint": 1})");
  ASSERT_TRUE(r.errors.empty()) << Joined(r.errors);
  const Component& g = r.architecture.layers[0].components[0];
  EXPECT_EQ(g.unknown["first_pass"], true);
  EXPECT_EQ(g.unknown["temprature"], 0.3);
  EXPECT_DOUBLE_EQ(g.temperature, 0.7);  // a misspelt key does not set the field
  EXPECT_EQ(r.architecture.unknown["checkpoint"], 1);
  EXPECT_EQ(Joined(r.warnings),
            "t.json:1:92: unknown key 'checkpoint' (kept, ignored)\n"
            "t.json:1:50: layer 1 component 1: unknown key 'first_pass' (kept, ignored)\n"
            "t.json:1:70: layer 1 component 1: unknown key 'temprature' (kept, ignored)\n");
}

TEST(ArchonConfig, InvalidJsonNamesLineAndColumn) {
  ParseResult r =
      ParseArchitecture("{\n  \"layers\": [\n    [{\"type\": \"generator\" \"model\": \"a\"}]\n]}", "t.json");
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].where.line, 3);
  EXPECT_EQ(r.errors[0].where.column, 33);  // the end of the unexpected token ("model", columns 27-33)
  EXPECT_NE(r.errors[0].message.find("invalid JSON"), std::string::npos);
  r = ParseArchitecture("", "t.json");
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].where.line, 1);
}

TEST(ArchonConfig, StructureOnlySkipsModelMapping) {
  const char* text = R"({"layers": [[{"type": "generator", "model": "zzz"}]]})";
  EXPECT_EQ(Joined(ParseAndValidate(text, false).errors),
            "t.json:1:14: layer 1 component 1: model 'zzz' maps to no configured expert\n");
  EXPECT_EQ(Joined(ParseAndValidate(text, true).errors), "");
  // An expert's upstream model name maps too.
  EXPECT_EQ(Joined(ParseAndValidate(R"({"layers": [[{"type": "generator", "model": "upstream-c"}]]})").errors), "");
}

TEST(ArchonConfig, ComponentTypeNamesRoundTrip) {
  for (const char* n : {"generator", "fuser", "ranker", "critic", "verifier", "unit_test_generator",
                        "unit_test_evaluator", "vote", "predicted_ranker"}) {
    auto t = ComponentTypeFromName(n);
    ASSERT_TRUE(t) << n;
    EXPECT_STREQ(ComponentTypeName(*t), n);
  }
  EXPECT_EQ(ComponentTypeFromName("vote_fuser"), ComponentType::kVote);
  EXPECT_FALSE(ComponentTypeFromName("Generator"));
}

// Every configuration in tests/archon/ validates to exactly the diagnostics in its .expected file (errors first,
// then warnings, as `baton archon validate` prints them), with experts a, b and c configured.
TEST(ArchonConfig, TestConfigurationsGiveExactDiagnostics) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::path(BATON_SOURCE_DIR) / "tests" / "archon";
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().extension() == ".json") files.push_back(e.path());
  std::sort(files.begin(), files.end());
  ASSERT_GE(files.size(), 20u);
  for (const fs::path& f : files) {
    StatusOr<ParseResult> r = LoadArchitecture(f.string());
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    Validate({.experts = Experts()}, &*r);
    const std::string name = f.filename().string();
    std::string got;
    for (const Diagnostic& d : r->errors) got += "error: " + d.ToString(name) + "\n";
    for (const Diagnostic& d : r->warnings) got += "warning: " + d.ToString(name) + "\n";
    fs::path expected_path = f;
    expected_path.replace_extension(".expected");
    std::ifstream in(expected_path);
    ASSERT_TRUE(in.good()) << "missing " << expected_path << "; got:\n" << got;
    std::stringstream want;
    want << in.rdbuf();
    EXPECT_EQ(got, want.str()) << name;
    // The file name says what it must be: err_* have errors, the others none; warn_* have warnings.
    EXPECT_EQ(!r->errors.empty(), name.rfind("err_", 0) == 0) << name;
    if (name.rfind("warn_", 0) == 0) EXPECT_FALSE(r->warnings.empty()) << name;
  }
}

}  // namespace
}  // namespace baton::archon
