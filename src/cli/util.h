// Small helpers shared by command files.
#pragma once

#include <chrono>
#include <string>

#include "baton/file.h"  // WriteFileAtomically, used by most commands
#include "baton/status.h"

namespace baton::cli {

inline double SecondsSince(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// "0.000123" style money with 3 significant digits, "-" for NaN.
std::string FormatUsd(double v);
// "0.712", "-" for NaN.
std::string FormatFraction(double v);

}  // namespace baton::cli
