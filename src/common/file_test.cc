#include "baton/file.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "test_util.h"

namespace baton {
namespace {

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(FileTest, ReplacesContentAndLeavesNoTemporary) {
  testing::TempDir tmp;
  const std::string path = tmp.Write("out.json", "old");
  ASSERT_TRUE(WriteFileAtomically(path, "new content").ok());
  EXPECT_EQ(Slurp(path), "new content");
  size_t files = 0;
  for (const auto& e : std::filesystem::directory_iterator(tmp.path())) files += e.is_regular_file();
  EXPECT_EQ(files, 1u);
}

TEST(FileTest, MissingFolderIsAnErrorAndTheOldFileStays) {
  testing::TempDir tmp;
  Status st = WriteFileAtomically(tmp.path() + "/no/such/folder/x", "data");
  EXPECT_EQ(st.code(), StatusCode::kIoError);
  EXPECT_NE(st.message().find("cannot create"), std::string::npos) << st.message();
}

}  // namespace
}  // namespace baton
