// baton: the command-line front of the engine. Errors are values below this point; this is the edge where
// exceptions are caught and every failure becomes one message on stderr and a non-zero exit:
//   2  a usage error (unknown command or option, missing or invalid argument), caught before anything runs;
//   1  the command ran and failed (bad input data, missing file, database error), or an internal error.
// Every message starts with "baton <command>: error:" so a script's log says which step failed.
#include <cstdio>
#include <exception>
#include <string_view>

#include <fmt/format.h>

#include "cli/command.h"
#include "cli/util.h"
#include "ingest/text_file.h"

namespace {

constexpr int kUsageError = 2;
constexpr int kRuntimeError = 1;

// The first clause of a command's description: one line in the command list.
std::string Summary(const CLI::App& cmd) {
  std::string d = cmd.get_description();
  for (std::string_view cut : {" (", "; "}) {
    if (size_t p = d.find(cut); p != std::string::npos) d.resize(p);
  }
  if (d.size() > 78) d = d.substr(0, 75) + "...";
  return d;
}

std::vector<CLI::App*> Subcommands(CLI::App& app) {
  return app.get_subcommands([](CLI::App*) { return true; });
}

CLI::App* FindSubcommand(CLI::App& app, const std::string& name) {
  for (CLI::App* c : Subcommands(app)) {
    if (c->get_name() == name) return c;
  }
  return nullptr;
}

std::string CommandList(CLI::App& app) {
  std::string out = "commands:\n";
  for (const CLI::App* c : Subcommands(app)) {
    out += fmt::format("  {:<12} {}\n", c->get_name(), Summary(*c));
  }
  return out + "Run 'baton COMMAND --help' for a command's options.\n";
}

std::vector<std::string> Names(const std::vector<CLI::App*>& apps) {
  std::vector<std::string> out;
  for (const CLI::App* a : apps) out.push_back(a->get_name());
  return out;
}

int UsageError(const std::string& who, const std::string& message, const std::string& help_for) {
  fmt::print(stderr, "{}: error: {}\nRun '{} --help' for usage.\n", who, message, help_for);
  return kUsageError;
}

// CLI11 files an unknown "--foo" as an extra argument and reports it only after the positionals were checked, so
// `bench --foo 1` would complain about a directory named "1". Unknown options are found here first instead.
// Returns the exit code when the command line is wrong, -1 when it may be parsed.
int CheckCommandLine(CLI::App& app, int argc, char** argv) {
  std::vector<CLI::App*> commands = Subcommands(app);
  if (argc < 2) {
    fmt::print(stderr, "usage: baton COMMAND [OPTIONS]\n{}", CommandList(app));
    return kUsageError;
  }
  const std::string first = argv[1];
  if (first.empty() || first[0] != '-') {
    if (FindSubcommand(app, first) == nullptr) {
      const std::string near = baton::ingest::ClosestName(first, Names(commands));
      fmt::print(stderr, "baton: error: unknown command '{}'{}\n{}", first,
                 near.empty() ? "" : fmt::format(" (did you mean '{}'?)", near), CommandList(app));
      return kUsageError;
    }
  }
  CLI::App* cur = &app;
  std::string path = "baton";
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--") break;
    if (arg.size() > 2 && arg.compare(0, 2, "--") == 0) {
      const std::string name = arg.substr(0, arg.find('='));
      bool known_here = false;  // by this command or one it falls through to
      for (CLI::App* a = cur; a != nullptr && !known_here; a = a->get_parent()) {
        known_here = a->get_option_no_throw(name) != nullptr;
      }
      if (!known_here) {
        std::vector<std::string> known;
        for (const CLI::Option* o : cur->get_options()) {
          for (const std::string& l : o->get_lnames()) known.push_back("--" + l);
        }
        const std::string near = baton::ingest::ClosestName(name, known);
        return UsageError(
            path,
            fmt::format("unknown option '{}'{}", name, near.empty() ? "" : fmt::format(" (did you mean '{}'?)", near)),
            path);
      }
    } else if (CLI::App* sub = FindSubcommand(*cur, arg); sub != nullptr && arg[0] != '-') {
      cur = sub;
      path += " " + arg;
    }
  }
  return -1;
}

int Run(int argc, char** argv) {
  CLI::App app{
      "baton: one endpoint in front of many LLMs; routes each query to the expert that gives the best answer "
      "for the money, and learns from recorded outcomes."};
  app.require_subcommand(1);
  app.set_version_flag("--version", "baton 0.1.0");
  std::vector<baton::cli::Command> commands = {
      baton::cli::AddImportCommand(app),  baton::cli::AddImportWideCommand(app), baton::cli::AddExportWideCommand(app),
      baton::cli::AddStatsCommand(app),   baton::cli::AddDatasetsCommand(app),   baton::cli::AddFitCommand(app),
      baton::cli::AddBenchCommand(app),   baton::cli::AddUniverseCommand(app),   baton::cli::AddRouteCommand(app),
      baton::cli::AddServeCommand(app),   baton::cli::AddPredictCommand(app),    baton::cli::AddArchonCommand(app),
      baton::cli::AddOnboardCommand(app), baton::cli::AddSelfPlayCommand(app),   baton::cli::AddSelfPlaySimCommand(app),
  };
  if (int rc = CheckCommandLine(app, argc, argv); rc >= 0) return rc;
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
    // Name the command being parsed: the deepest one on the command line.
    std::string who = "baton";
    CLI::App* cur = &app;
    for (int i = 1; i < argc; ++i) {
      if (CLI::App* sub = FindSubcommand(*cur, argv[i]); sub != nullptr) {
        cur = sub;
        who += std::string(" ") + argv[i];
      }
    }
    return UsageError(who, e.what(), who);
  }
  for (const auto& cmd : commands) {
    if (!cmd.app->parsed()) continue;
    baton::Status st = cmd.run();
    if (!st.ok()) {
      // Name the deepest subcommand that ran ("baton archon validate"), not only the top-level one.
      std::string who = cmd.app->get_name();
      for (const CLI::App* cur = cmd.app; cur != nullptr;) {
        const CLI::App* next = nullptr;
        for (const CLI::App* sub : cur->get_subcommands()) {
          if (sub->parsed()) next = sub;
        }
        if (next != nullptr) who += " " + next->get_name();
        cur = next;
      }
      fmt::print(stderr, "baton {}: error: {}\n", who, st.message());
      return kRuntimeError;
    }
    return 0;
  }
  return 0;
}

}  // namespace

// The one place exceptions stop: anything a library throws past a command's Status boundary is a bug, reported as
// such with exit code 1 (the command started, so it is not a usage error).
int main(int argc, char** argv) {
  try {
    return Run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "baton: internal error: %s\n", e.what());
  } catch (...) {
    std::fprintf(stderr, "baton: internal error: unknown exception\n");
  }
  return kRuntimeError;
}
