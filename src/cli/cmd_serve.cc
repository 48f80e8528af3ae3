// baton serve: the gateway. Runs until SIGINT or SIGTERM, then shuts down gracefully. SIGHUP re-reads the router model
// file (router.model) without a restart; a reload that fails keeps the old model serving.
#include <sys/resource.h>

#include <csignal>
#include <cstdio>

#include <fmt/format.h>

#include "cli/command.h"
#include "gateway/config.h"
#include "gateway/gateway.h"

namespace baton::cli {

Command AddServeCommand(CLI::App& root) {
  auto* app = root.add_subcommand("serve",
                                  "Serve the OpenAI-compatible gateway: POST /v1/chat/completions (model \"baton\" "
                                  "routes, an expert's name passes through), POST /v1/feedback, GET /v1/models, "
                                  "/healthz, /metrics. SIGHUP (or POST /admin/reload with the metrics key) re-reads "
                                  "the router model file");
  struct Opts {
    std::string config;
    std::string listen;
  };
  auto o = std::make_shared<Opts>();
  app->add_option("--config", o->config,
                  "gateway YAML configuration (every field: README.md, Configuration reference; an example: "
                  "examples/replay.yaml)")
      ->required();
  app->add_option("--listen", o->listen, "HOST:PORT to listen on (overrides the file's listen:; port 0 = any)");
  return {app, [o]() -> Status {
            BATON_ASSIGN_OR_RETURN(gateway::GatewayConfig config, gateway::LoadGatewayConfig(o->config));
            // One descriptor per open connection: raise the soft limit to the hard one (1,000s of connections).
            rlimit nofile{};
            if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
              nofile.rlim_cur = nofile.rlim_max;
              (void)setrlimit(RLIMIT_NOFILE, &nofile);
            }
            // Block the signals before any thread starts, so that only this thread receives them.
            sigset_t set;
            sigemptyset(&set);
            sigaddset(&set, SIGINT);
            sigaddset(&set, SIGTERM);
            sigaddset(&set, SIGHUP);
            pthread_sigmask(SIG_BLOCK, &set, nullptr);
            fmt::print(stderr, "baton serve: loading {} experts{}\n", config.experts.size(),
                       config.router.train_dir.empty() ? "" : " and fitting the router on " + config.router.train_dir);
            BATON_ASSIGN_OR_RETURN(gateway::GatewayParts parts, gateway::BuildGatewayParts(config));
            BATON_ASSIGN_OR_RETURN(std::unique_ptr<gateway::Gateway> gw,
                                   gateway::Gateway::Create(std::move(config), std::move(parts)));
            BATON_RETURN_IF_ERROR(gw->Start(o->listen));
            fmt::print("baton serve: listening on http://{}:{}\n",
                       o->listen.empty() ? std::string("127.0.0.1") : o->listen.substr(0, o->listen.rfind(':')),
                       gw->port());
            std::fflush(stdout);
            int sig = 0;
            while (true) {
              sigwait(&set, &sig);
              if (sig != SIGHUP) break;
              fmt::print(stderr, "baton serve: SIGHUP received, reloading the router model\n");
              (void)gw->ReloadRouter();  // logs and counts its outcome; a failed reload keeps the old model
            }
            fmt::print(stderr, "baton serve: {} received, shutting down\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
            gw->Shutdown(std::chrono::seconds(10));
            return Status::Ok();
          }};
}

}  // namespace baton::cli
