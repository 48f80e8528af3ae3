// Small helpers shared by command files.
#pragma once

#include <chrono>
#include <string>

#include "baton/status.h"

namespace baton::cli {

inline double SecondsSince(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Writes `content` to a temporary file beside `path`, flushes it, then renames it over `path`: readers see the old
// file or the new one, never a partial one.
Status WriteFileAtomically(const std::string& path, const std::string& content);

// "0.000123" style money with 3 significant digits, "-" for NaN.
std::string FormatUsd(double v);
// "0.712", "-" for NaN.
std::string FormatFraction(double v);

}  // namespace baton::cli
