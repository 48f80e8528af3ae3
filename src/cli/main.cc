// baton: the command-line front of the engine. Errors are values below this point; this is the edge where
// exceptions are caught and every failure becomes one message on stderr and a non-zero exit.
#include <cstdio>
#include <exception>

#include <fmt/format.h>

#include "cli/command.h"

namespace {

int Run(int argc, char** argv) {
  CLI::App app{
      "baton: one endpoint in front of many LLMs; routes each query to the expert that gives the best answer "
      "for the money, and learns from recorded outcomes."};
  app.require_subcommand(1);
  app.set_version_flag("--version", "baton 0.1.0");
  std::vector<baton::cli::Command> commands = {
      baton::cli::AddImportCommand(app),   baton::cli::AddImportWideCommand(app), baton::cli::AddExportWideCommand(app),
      baton::cli::AddStatsCommand(app),    baton::cli::AddFitCommand(app),        baton::cli::AddBenchCommand(app),
      baton::cli::AddUniverseCommand(app), baton::cli::AddRouteCommand(app),      baton::cli::AddServeCommand(app),
      baton::cli::AddPredictCommand(app),
  };
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  for (const auto& cmd : commands) {
    if (!cmd.app->parsed()) continue;
    baton::Status st = cmd.run();
    if (!st.ok()) {
      fmt::print(stderr, "baton {}: error: {}\n", cmd.app->get_name(), st.message());
      return 1;
    }
    return 0;
  }
  return 0;
}

}  // namespace

// The one place exceptions stop: anything a library throws past a command's Status boundary is a bug, reported as
// such with exit code 2.
int main(int argc, char** argv) {
  try {
    return Run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "baton: internal error: %s\n", e.what());
  } catch (...) {
    std::fprintf(stderr, "baton: internal error: unknown exception\n");
  }
  return 2;
}
