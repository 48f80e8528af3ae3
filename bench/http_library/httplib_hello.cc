// Debian's cpp-httplib 0.11 answering "ok": the other side of the library choice. Run by scripts/http_library_bench.sh.
#include <cstdio>
#include <cstdlib>

#include <httplib.h>
int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s PORT\n", argv[0]);
    return 2;
  }
  httplib::Server svr;
  svr.Get("/", [](const httplib::Request&, httplib::Response& res) { res.set_content("ok", "text/plain"); });
  svr.listen("127.0.0.1", std::atoi(argv[1]));
}
