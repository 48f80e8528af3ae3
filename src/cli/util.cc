#include "cli/util.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "ingest/text_file.h"

namespace baton::cli {

std::string FormatUsd(double v) {
  if (std::isnan(v)) return "-";
  return fmt::format("{:.3g}", v);
}

std::string FormatFraction(double v) {
  if (std::isnan(v)) return "-";
  return fmt::format("{:.3f}", v);
}

namespace {

// `min` is the smallest accepted value; `whole` asks for an integer.
CLI::Validator NumberCheck(double min, double max, bool whole, std::string what) {
  return CLI::Validator(
      [=](std::string& in) -> std::string {
        std::optional<double> v = ingest::ParseDouble(in);
        const bool ok = v && *v >= min && *v <= max && (!whole || std::floor(*v) == *v);
        return ok ? std::string() : fmt::format("must be {}, got '{}'", what, in);
      },
      whole ? "INT" : "NUMBER");
}

}  // namespace

CLI::Validator PositiveInt() {
  return NumberCheck(1, 9.0e15, true, "a whole number >= 1");
}
CLI::Validator NonNegativeInt() {
  return NumberCheck(0, 9.0e15, true, "a whole number >= 0");
}
CLI::Validator NonNegative() {
  return NumberCheck(0, HUGE_VAL, false, "a number >= 0");
}
CLI::Validator Fraction() {
  return NumberCheck(0, 1, false, "a number between 0 and 1");
}

CLI::Validator ExistingDb() {
  return CLI::Validator(
      [](std::string& v) -> std::string {
        if (IsDatabaseUrl(v)) return "";
        return CLI::ExistingFile(v);
      },
      "DB", "an SQLite file or a postgresql:// URL");
}

Status CheckDatasetsExist(Store& store, const std::vector<std::string>& datasets) {
  if (datasets.empty()) return Status::Ok();
  BATON_ASSIGN_OR_RETURN(std::vector<std::string> stored, store.ListDatasets());
  for (const std::string& d : datasets) {
    if (std::find(stored.begin(), stored.end(), d) != stored.end()) continue;
    if (stored.empty()) return Status::NotFound(fmt::format("no dataset '{}': the database holds none", d));
    const std::string near = ingest::ClosestName(d, stored);
    return Status::NotFound(fmt::format("no dataset '{}' in the database{}; stored datasets: {}", d,
                                        near.empty() ? "" : fmt::format(" (did you mean '{}'?)", near),
                                        fmt::join(stored, ", ")));
  }
  return Status::Ok();
}

}  // namespace baton::cli
