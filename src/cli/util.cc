#include "cli/util.h"

#include <unistd.h>
#include <cmath>
#include <cstdio>

#include <fmt/format.h>

namespace baton::cli {

Status WriteFileAtomically(const std::string& path, const std::string& content) {
  const std::string tmp = fmt::format("{}.tmp.{}", path, ::getpid());
  FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) return Status::IoError(fmt::format("{}: cannot create", tmp));
  const bool wrote = std::fwrite(content.data(), 1, content.size(), f) == content.size();
  const bool flushed = std::fflush(f) == 0 && ::fsync(fileno(f)) == 0;
  const bool closed = std::fclose(f) == 0;
  if (!wrote || !flushed || !closed) {
    std::remove(tmp.c_str());
    return Status::IoError(fmt::format("{}: write failed (disk full?)", tmp));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    return Status::IoError(fmt::format("{}: cannot replace", path));
  }
  return Status::Ok();
}

std::string FormatUsd(double v) {
  if (std::isnan(v)) return "-";
  return fmt::format("{:.3g}", v);
}

std::string FormatFraction(double v) {
  if (std::isnan(v)) return "-";
  return fmt::format("{:.3f}", v);
}

}  // namespace baton::cli
