// Test support: a real llama-server child process on 127.0.0.1, for the backend tests (llama_server_test.cc) and the
// gateway's end-to-end tests (tests/serve_llama_test.cc), and the loopback sockets that it and the tests' own fake
// servers (openai_test.cc) listen on. Header-only; used by tests only.
//
// Each server runs in its own process group and dies with the test binary (PR_SET_PDEATHSIG) or when its handle is
// destroyed. Thread-safety: a handle belongs to one thread.
#pragma once

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "baton/expert.h"

namespace baton::testing {

// A TCP socket bound to a loopback port the kernel picked (SO_REUSEADDR set), not listening yet. The caller closes fd.
struct LoopbackSocket {
  int fd = -1;
  int port = 0;
};
inline LoopbackSocket BindLoopback() {
  LoopbackSocket s;
  s.fd = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(s.fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(s.fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  getsockname(s.fd, reinterpret_cast<sockaddr*>(&a), &len);
  s.port = ntohs(a.sin_port);
  return s;
}

// A loopback port that was free a moment ago.
inline int FreePort() {
  const LoopbackSocket s = BindLoopback();
  close(s.fd);
  return s.port;
}

// HTTP status of GET http://127.0.0.1:port/health, 0 when nothing answered within a second.
inline long HealthStatus(int port) {
  CURL* c = curl_easy_init();
  const std::string url = "http://127.0.0.1:" + std::to_string(port) + "/health";
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 1000L);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(
      c, CURLOPT_WRITEFUNCTION, +[](char*, size_t s, size_t n, void*) { return s * n; });
  long code = 0;
  if (curl_easy_perform(c) == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
  curl_easy_cleanup(c);
  return code;
}

// A running llama-server; Kill() (or destruction) SIGKILLs its whole process group.
struct LlamaServerProcess {
  pid_t pid = -1;
  int port = 0;
  std::string log;  // its stdout and stderr
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port) + "/v1"; }
  void Kill() {
    if (pid <= 0) return;
    kill(-pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    pid = -1;
  }
  ~LlamaServerProcess() { Kill(); }
};

// Starts `llama-server -m gguf -c CTX -np 2 -t 1` (CTX: 512 unless given) on a free loopback port and waits (up to 60
// s) until /health answers 200. On failure records a test failure naming the log and returns nullptr.
inline std::unique_ptr<LlamaServerProcess> StartLlamaServer(const std::string& gguf, const std::string& log,
                                                            int ctx = 512) {
  auto s = std::make_unique<LlamaServerProcess>();
  s->port = FreePort();
  s->log = log;
  const std::string bin = LlamaCppPrefix() + "/bin/llama-server";
  const std::string port = std::to_string(s->port), ctx_size = std::to_string(ctx);
  s->pid = fork();
  if (s->pid == 0) {
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL);  // if the test binary dies without its teardown
    FILE* f = freopen(log.c_str(), "w", stdout);
    (void)f;
    dup2(STDOUT_FILENO, STDERR_FILENO);
    execl(bin.c_str(), bin.c_str(), "-m", gguf.c_str(), "--port", port.c_str(), "--host", "127.0.0.1", "-c",
          ctx_size.c_str(), "-np", "2", "-t", "1", "--no-webui", static_cast<char*>(nullptr));
    _exit(127);
  }
  setpgid(s->pid, s->pid);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < deadline) {
    if (HealthStatus(s->port) == 200) return s;
    if (waitpid(s->pid, nullptr, WNOHANG) == s->pid) {
      s->pid = -1;
      ADD_FAILURE() << "llama-server exited at start-up; see " << log;
      return nullptr;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ADD_FAILURE() << "llama-server on port " << s->port << " not healthy within 60 s; see " << log;
  return nullptr;
}

}  // namespace baton::testing
