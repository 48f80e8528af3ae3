// Replays every seed (fuzz/corpus/<target>/) and every past finding (fuzz/regressions/<target>/) through the same
// target functions the fuzzers run (fuzz/targets.h), in the normal test build: no clang, no sanitizers needed.
// Each input must come back as a Status with no broken promise and no escaping exception. Seeds named valid_* must
// be accepted and seeds named invalid_* refused, so the corpus also pins down what each entry point accepts.
#include <algorithm>
#include <exception>
#include <filesystem>
#include <fstream>
#include <ostream>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "fuzz/targets.h"
#include "test_util.h"

namespace baton::fuzz {
namespace {

namespace fs = std::filesystem;

std::vector<fs::path> FilesUnder(const fs::path& dir) {
  std::vector<fs::path> files;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return files;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.is_regular_file() && e.path().filename() != "README.md") files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

std::string ReadAll(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// gtest prints the target's name in failure messages instead of its bytes.
void PrintTo(const Target& t, std::ostream* os) { *os << t.name; }

class FuzzReplay : public ::testing::TestWithParam<Target> {};

TEST_P(FuzzReplay, CorpusAndRegressionsComeBackAsStatus) {
  const Target t = GetParam();
  testing::TempDir tmp;
  SetScratchDir(tmp.path());
  const fs::path root = fs::path(BATON_SOURCE_DIR) / "fuzz";
  std::vector<fs::path> inputs = FilesUnder(root / "corpus" / t.name);
  const std::vector<fs::path> regressions = FilesUnder(root / "regressions" / t.name);
  EXPECT_FALSE(inputs.empty()) << "no seeds in fuzz/corpus/" << t.name;
  inputs.insert(inputs.end(), regressions.begin(), regressions.end());
  for (const fs::path& p : inputs) {
    SCOPED_TRACE(p.string());
    const std::string input = ReadAll(p);
    FuzzResult r;
    try {
      r = t.fn(input);
    } catch (const std::exception& e) {
      ADD_FAILURE() << "exception escaped: " << e.what();
      continue;
    } catch (...) {
      ADD_FAILURE() << "non-standard exception escaped";
      continue;
    }
    EXPECT_EQ(r.violation, "") << r.status.ToString();
    const std::string name = p.filename().string();
    if (name.rfind("valid_", 0) == 0) {
      EXPECT_TRUE(r.status.ok()) << r.status.ToString();
    }
    if (name.rfind("invalid_", 0) == 0) {
      EXPECT_FALSE(r.status.ok()) << "accepted";
    }
  }
  SetScratchDir("");
}

INSTANTIATE_TEST_SUITE_P(Targets, FuzzReplay, ::testing::ValuesIn(Targets()),
                         [](const ::testing::TestParamInfo<Target>& info) { return std::string(info.param.name); });

TEST(FuzzTargets, FindTargetKnowsEveryTargetAndNothingElse) {
  for (const Target& t : Targets()) EXPECT_EQ(FindTarget(t.name), t.fn) << t.name;
  EXPECT_EQ(FindTarget("no-such-target"), nullptr);
}

}  // namespace
}  // namespace baton::fuzz
