// Small helpers shared by command files.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "baton/file.h"  // WriteFileAtomically, used by most commands
#include "baton/status.h"
#include "baton/store.h"

namespace baton::cli {

inline double SecondsSince(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// "0.000123" style money with 3 significant digits, "-" for NaN.
std::string FormatUsd(double v);
// "0.712", "-" for NaN.
std::string FormatFraction(double v);

// Parse-time checks for numeric options. A value that fails is a usage error (exit 2) whose message says what the
// option takes, e.g. "--k: must be a whole number >= 1, got '-2'". Without them, "-2" reaches a size_t as 2^64 - 2.
//   app->add_option("--k", o->k, "...")->check(PositiveInt());
CLI::Validator PositiveInt();     // 1, 2, ...
CLI::Validator NonNegativeInt();  // 0, 1, ...
CLI::Validator NonNegative();     // a finite number >= 0
CLI::Validator Fraction();        // a number in [0, 1]
// For --db: a postgresql:// (or postgres://) URL, or an existing SQLite file.
CLI::Validator ExistingDb();

// OK when every name in `datasets` is stored in `store`. Otherwise NotFound naming the unknown one, the closest
// stored name ("did you mean ...?") and every stored name, so a typo in --dataset never reads as "no data".
// Every command taking --dataset calls it before loading.
Status CheckDatasetsExist(Store& store, const std::vector<std::string>& datasets);

}  // namespace baton::cli
