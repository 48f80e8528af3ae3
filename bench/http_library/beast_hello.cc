// The gateway's own HTTP server (Boost.Beast, 2 event-loop threads) answering "ok": one side of the library choice.
// Run by scripts/http_library_bench.sh.
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include "gateway/http_server.h"
using namespace baton::gateway;
int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s PORT\n", argv[0]);
    return 2;
  }
  HttpServerOptions o{.host = "127.0.0.1", .port = static_cast<uint16_t>(std::atoi(argv[1])), .io_threads = 2};
  auto s = HttpServer::Start(o, [](HttpRequest, std::shared_ptr<HttpExchange> ex) {
    ex->Respond({.status = 200, .content_type = "text/plain", .body = "ok"});
  });
  if (!s.ok()) return 1;
  std::this_thread::sleep_for(std::chrono::hours(1));
}
