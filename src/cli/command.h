// The CLI's command registry. Each command lives in its own file (cmd_<name>.cc) and exposes one function that
// adds its subcommand to the root app and returns how to run it. main.cc lists them.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "baton/status.h"

namespace baton::cli {

struct Command {
  CLI::App* app = nullptr;
  std::function<Status()> run;  // non-OK = the command failed; main prints the message and exits 1
};

// The version reports record (keep in step with main.cc's --version).
inline constexpr const char* kBatonVersion = "baton 0.1.0";

// One Add*Command per command file.
Command AddImportCommand(CLI::App& root);
Command AddImportWideCommand(CLI::App& root);
Command AddExportWideCommand(CLI::App& root);
Command AddStatsCommand(CLI::App& root);
Command AddDatasetsCommand(CLI::App& root);
Command AddFitCommand(CLI::App& root);
Command AddBenchCommand(CLI::App& root);
Command AddUniverseCommand(CLI::App& root);
Command AddRouteCommand(CLI::App& root);
Command AddPredictCommand(CLI::App& root);
Command AddServeCommand(CLI::App& root);
Command AddArchonCommand(CLI::App& root);
// `baton archon search`, added under the `archon` parent (cmd_archon_search.cc).
Command AddArchonSearchSubcommand(CLI::App& archon);
Command AddOnboardCommand(CLI::App& root);
Command AddSelfPlayCommand(CLI::App& root);
Command AddSelfPlaySimCommand(CLI::App& root);

// Shared helpers for command files.
// Prints a table with a header row and right-aligned numeric-looking cells.
void PrintTable(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows);

}  // namespace baton::cli
