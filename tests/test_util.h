// Test helpers: temporary folders, small files, running the CLI.
#pragma once

#include <string>

namespace baton::testing {

// A fresh folder under /tmp, removed with its contents on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  // Writes `content` to path()/name (creating sub-folders) and returns the full path.
  std::string Write(const std::string& name, const std::string& content) const;

 private:
  std::string path_;
};

// Absolute path of a bundled file, e.g. DataPath("routerbench-test").
std::string DataPath(const std::string& relative);

struct CommandResult {
  int exit_code = 0;
  std::string output;  // stdout and stderr together
};
// Runs the `baton` binary with `args` (a shell-quoted string).
CommandResult RunBaton(const std::string& args);

// SHA-256-free content fingerprint of a SQLite file: every table's rows dumped in order.
std::string DumpDatabase(const std::string& db_path);

}  // namespace baton::testing
