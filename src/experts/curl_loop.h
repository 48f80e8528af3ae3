// CurlLoop: libcurl's multi-socket API driven by one Boost.Asio io_context, so that HTTP transfers run on the caller's
// event loop without extra threads. Internal to src/experts/ (the openai backend's CompleteAsync).
//
// One CurlLoop per io_context, made on first use and destroyed with it:
//   CurlLoop& curl = boost::asio::use_service<CurlLoop>(loop);
//   curl.Start(std::move(transfer));  // transfer->Finish(...) runs later on the loop
//
// Sockets are asio descriptors on the loop; the multi handle's connection cache keeps keep-alive connections (up to a
// bound) across transfers, and finished easy handles are pooled for the next transfer.
//
// Thread-safety: Start may be called from any thread; everything else runs on the loop, which must be run by exactly
// one thread. libcurl must have been globally initialized (curl_global_init) before the first CurlLoop is made.
#pragma once

#include <curl/curl.h>

#include <memory>
#include <unordered_map>
#include <vector>

#include <boost/asio/execution_context.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

namespace baton::experts {

class CurlLoop final : public boost::asio::execution_context::service {
 public:
  // One transfer, owned by the loop from Start until it finishes.
  class Transfer {
   public:
    virtual ~Transfer() = default;
    // Sets the request's options on `easy`, a pooled handle that may carry the options of an earlier transfer (so
    // every option the request relies on must be set). Called on the loop right before the transfer starts.
    virtual void Configure(CURL* easy) = 0;
    // Called once on the loop, outside any libcurl callback, when the transfer ended with libcurl's result `rc`.
    // `easy` is still configured and goes back to the pool afterwards; it is nullptr (and rc CURLE_OUT_OF_MEMORY or
    // CURLE_FAILED_INIT) when the transfer could not be started.
    virtual void Finish(CURL* easy, CURLcode rc) = 0;
  };

  static inline boost::asio::execution_context::id id;  // what use_service finds this service by

  explicit CurlLoop(boost::asio::io_context& loop);

  // Runs `t`. Its Finish is never called from inside Start, and never at all when the io_context is destroyed first:
  // transfers still in flight then are destroyed without finishing.
  void Start(std::unique_ptr<Transfer> t);

 private:
  struct Socket;

  void shutdown() override;

  void Perform(curl_socket_t fd, int events);
  void Act(const std::shared_ptr<Socket>& s, int events);
  void Rearm(const std::shared_ptr<Socket>& s);
  int Arm(const std::shared_ptr<Socket>& s);
  void Wait(const std::shared_ptr<Socket>& s, int direction);
  void Drain();
  void Fail(std::unique_ptr<Transfer> t, CURLcode rc);
  void Release(CURL* easy, bool ok);
  std::shared_ptr<Socket> Track(curl_socket_t fd, bool owned);

  static int OnSocket(CURL* easy, curl_socket_t fd, int what, void* self, void* socketp);
  static int OnTimer(CURLM* multi, long timeout_ms, void* self);
  static curl_socket_t OnOpenSocket(void* self, curlsocktype purpose, curl_sockaddr* address);
  static int OnCloseSocket(void* self, curl_socket_t fd);

  boost::asio::io_context& loop_;
  boost::asio::steady_timer timer_;
  CURLM* multi_;
  bool in_curl_ = false;         // inside curl_multi_socket_action (and so maybe inside a libcurl callback)
  bool timeout_posted_ = false;  // an Act for libcurl's timeouts is posted and has not run yet
  std::unordered_map<curl_socket_t, std::shared_ptr<Socket>> sockets_;
  std::vector<std::shared_ptr<Socket>> rearm_;  // sockets whose waits must be (re)armed after the current action
  std::unordered_map<CURL*, std::unique_ptr<Transfer>> transfers_;  // in flight
  std::vector<CURL*> idle_;                                         // pooled easy handles
};

}  // namespace baton::experts
