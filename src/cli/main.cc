// baton: the command-line front of the engine. Errors are values below this point; this is the edge where
// exceptions are caught and every failure becomes one message on stderr and a non-zero exit.
#include <cstdio>
#include <exception>

#include <fmt/format.h>

#include "cli/command.h"

int main(int argc, char** argv) {
  CLI::App app{
      "baton: one endpoint in front of many LLMs; routes each query to the expert that gives the best answer "
      "for the money, and learns from recorded outcomes."};
  app.require_subcommand(1);
  app.set_version_flag("--version", "baton 0.1.0");
  std::vector<baton::cli::Command> commands = {
      baton::cli::AddImportCommand(app),
      baton::cli::AddImportWideCommand(app),
      baton::cli::AddExportWideCommand(app),
      baton::cli::AddStatsCommand(app),
      baton::cli::AddFitCommand(app),
      baton::cli::AddBenchCommand(app),
      baton::cli::AddUniverseCommand(app),
      baton::cli::AddRouteCommand(app),
      baton::cli::AddServeCommand(app),
  };
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    for (const auto& cmd : commands) {
      if (!cmd.app->parsed()) continue;
      baton::Status st = cmd.run();
      if (!st.ok()) {
        fmt::print(stderr, "baton {}: error: {}\n", cmd.app->get_name(), st.message());
        return 1;
      }
      return 0;
    }
  } catch (const std::exception& e) {
    fmt::print(stderr, "baton: internal error: {}\n", e.what());
    return 2;
  }
  return 0;
}
