#include "cli/util.h"

#include <unistd.h>
#include <cmath>
#include <cstdio>

#include <fmt/format.h>

namespace baton::cli {

std::string FormatUsd(double v) {
  if (std::isnan(v)) return "-";
  return fmt::format("{:.3g}", v);
}

std::string FormatFraction(double v) {
  if (std::isnan(v)) return "-";
  return fmt::format("{:.3f}", v);
}

}  // namespace baton::cli
