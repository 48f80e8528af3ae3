// CurlLoop (see curl_loop.h). How readiness flows: libcurl says which directions it wants per socket (OnSocket); after
// each curl_multi_socket_action the loop arms one async_wait per wanted direction (Arm); a wait that completes runs
// libcurl on its socket (Act), and the transfers that finished are drained from curl_multi_info_read (Drain).
//
// asio's epoll reactor is edge-triggered and async_wait does not look before it waits, so readiness that arrived while
// no wait was pending (libcurl left data unread, or the answer came while it was still writing) could go unreported.
// Boost's epoll reactor does re-arm the descriptor (EPOLL_CTL_MOD) when a wait starts, which reports present readiness,
// but that is undocumented. Arm therefore polls the socket (timeout 0) before it waits and acts at once on what is
// ready, which also saves a trip through the reactor. Nothing can slip in between the poll and the wait: only this
// thread takes events from the reactor, and not before it returns.
#include "experts/curl_loop.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <utility>

#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>

namespace baton::experts {
namespace {

namespace net = boost::asio;

constexpr long kMaxConnects = 64;       // keep-alive connections the multi handle keeps open per loop
constexpr size_t kMaxIdleHandles = 64;  // pooled easy handles per loop
constexpr int kMaxImmediate = 16;       // actions one Act takes on sockets found ready before it yields to the loop

static_assert(CURL_POLL_IN == CURL_CSELECT_IN && CURL_POLL_OUT == CURL_CSELECT_OUT,
              "a direction doubles as curl_multi_socket_action's event bit");

}  // namespace

// A socket libcurl uses, as an asio descriptor so that its readiness comes from the loop's reactor.
struct CurlLoop::Socket {
  Socket(net::io_context& loop, curl_socket_t fd, bool owned) : fd(fd), owned(owned), descriptor(loop) {}
  const curl_socket_t fd;
  const bool owned;     // opened by OnOpenSocket, closed by OnCloseSocket; else libcurl's own (e.g. its resolver's)
  int want = 0;         // the directions libcurl last asked for (CURL_POLL_IN | CURL_POLL_OUT)
  int waiting = 0;      // the directions with an async_wait pending
  unsigned epoch = 0;   // counts the times libcurl let go of the socket; a wait from an earlier epoch was cancelled
  bool queued = false;  // in rearm_
  net::posix::stream_descriptor descriptor;
};

CurlLoop::CurlLoop(net::io_context& loop) : service(loop), loop_(loop), timer_(loop), multi_(curl_multi_init()) {
  // Creates asio's descriptor service before this one, so that it is shut down after this one (services go in reverse
  // order of creation) and shutdown() can still close descriptors. The timer did the same for the timer service.
  net::posix::stream_descriptor probe(loop);
  curl_multi_setopt(multi_, CURLMOPT_SOCKETFUNCTION, &CurlLoop::OnSocket);
  curl_multi_setopt(multi_, CURLMOPT_SOCKETDATA, this);
  curl_multi_setopt(multi_, CURLMOPT_TIMERFUNCTION, &CurlLoop::OnTimer);
  curl_multi_setopt(multi_, CURLMOPT_TIMERDATA, this);
  curl_multi_setopt(multi_, CURLMOPT_MAXCONNECTS, kMaxConnects);
}

void CurlLoop::Start(std::unique_ptr<Transfer> t) {
  // The multi handle belongs to the loop's thread and must not be called from inside libcurl's callbacks (a sink that
  // starts a call): come back from the loop then.
  if (!loop_.get_executor().running_in_this_thread() || in_curl_) {
    net::post(loop_, [this, t = std::move(t)]() mutable { Start(std::move(t)); });
    return;
  }
  CURL* easy = nullptr;
  if (idle_.empty()) {
    easy = curl_easy_init();
  } else {
    easy = idle_.back();
    idle_.pop_back();
  }
  if (easy == nullptr) return Fail(std::move(t), CURLE_OUT_OF_MEMORY);
  t->Configure(easy);
  curl_easy_setopt(easy, CURLOPT_OPENSOCKETFUNCTION, &CurlLoop::OnOpenSocket);
  curl_easy_setopt(easy, CURLOPT_OPENSOCKETDATA, this);
  curl_easy_setopt(easy, CURLOPT_CLOSESOCKETFUNCTION, &CurlLoop::OnCloseSocket);
  curl_easy_setopt(easy, CURLOPT_CLOSESOCKETDATA, this);
  if (curl_multi_add_handle(multi_, easy) != CURLM_OK) {
    curl_easy_cleanup(easy);
    return Fail(std::move(t), CURLE_FAILED_INIT);
  }
  transfers_.emplace(easy, std::move(t));  // libcurl's timer callback has posted the action that starts it
}

// In-flight transfers are dropped without Finish: their owners' handlers are destroyed, never called. Waits and posts
// still queued are destroyed (not run) by the io_context after this.
void CurlLoop::shutdown() {
  for (auto& [easy, t] : transfers_) {
    curl_multi_remove_handle(multi_, easy);
    curl_easy_cleanup(easy);
  }
  transfers_.clear();
  for (CURL* easy : idle_) curl_easy_cleanup(easy);
  idle_.clear();
  curl_multi_cleanup(multi_);  // closes the cached connections through OnCloseSocket
  multi_ = nullptr;
  for (auto& [fd, s] : sockets_) {
    boost::system::error_code ec;
    if (s->owned) {
      s->descriptor.close(ec);
    } else {
      s->descriptor.release();
    }
  }
  sockets_.clear();
  rearm_.clear();
  timer_.cancel();
}

// One curl_multi_socket_action, then the transfers it finished.
void CurlLoop::Perform(curl_socket_t fd, int events) {
  int running = 0;
  in_curl_ = true;
  curl_multi_socket_action(multi_, fd, events, &running);
  in_curl_ = false;
  Drain();
}

// Runs libcurl on `s` (nullptr: on its timeouts) and arms the waits that follow. A socket found ready while arming is
// acted on at once, as its edge may be gone; past kMaxImmediate such actions the rest is posted, so that a busy
// socket cannot starve the loop.
void CurlLoop::Act(const std::shared_ptr<Socket>& s, int events) {
  Perform(s ? s->fd : CURL_SOCKET_TIMEOUT, events);
  if (s) Rearm(s);  // its wait is used up, and libcurl says nothing when it wants the same direction again
  for (int immediate = 0; !rearm_.empty();) {
    std::shared_ptr<Socket> r = std::move(rearm_.back());
    rearm_.pop_back();
    r->queued = false;
    const int ready = Arm(r);
    if (ready == 0) continue;
    if (++immediate <= kMaxImmediate) {
      Perform(r->fd, ready);
      Rearm(r);
    } else {
      net::post(loop_, [this, r, ready] {
        if (r->descriptor.is_open()) Act(r, ready);
      });
    }
  }
}

void CurlLoop::Rearm(const std::shared_ptr<Socket>& s) {
  if (s->queued) return;
  s->queued = true;
  rearm_.push_back(s);
}

// Waits for the directions `s` wants and has no wait for, except those that are ready already: returns those.
int CurlLoop::Arm(const std::shared_ptr<Socket>& s) {
  const int need = s->want & ~s->waiting;
  if (need == 0 || !s->descriptor.is_open()) return 0;
  pollfd p{.fd = s->fd,
           .events = static_cast<short>(((need & CURL_POLL_IN) ? POLLIN : 0) | ((need & CURL_POLL_OUT) ? POLLOUT : 0)),
           .revents = 0};
  int ready = 0;
  if (poll(&p, 1, 0) > 0) {
    if (p.revents & (POLLIN | POLLHUP | POLLERR)) ready |= need & CURL_CSELECT_IN;
    if (p.revents & (POLLOUT | POLLHUP | POLLERR)) ready |= need & CURL_CSELECT_OUT;
  }
  for (int direction : {CURL_POLL_IN, CURL_POLL_OUT}) {
    if (need & ~ready & direction) Wait(s, direction);
  }
  return ready;
}

void CurlLoop::Wait(const std::shared_ptr<Socket>& s, int direction) {
  s->waiting |= direction;
  s->descriptor.async_wait(
      direction == CURL_POLL_IN ? net::posix::descriptor_base::wait_read : net::posix::descriptor_base::wait_write,
      [this, s, direction, epoch = s->epoch](const boost::system::error_code& ec) {
        if (epoch != s->epoch) return;  // cancelled by OnSocket, which has reset `waiting`
        s->waiting &= ~direction;
        // Aborted: the socket was closed or released. A wait for a direction libcurl no longer wants ends here.
        if (!ec && s->descriptor.is_open() && (s->want & direction)) Act(s, direction);
      });
}

void CurlLoop::Drain() {
  int left = 0;
  while (CURLMsg* m = curl_multi_info_read(multi_, &left)) {
    if (m->msg != CURLMSG_DONE) continue;
    CURL* easy = m->easy_handle;
    const CURLcode rc = m->data.result;
    curl_multi_remove_handle(multi_, easy);
    auto it = transfers_.find(easy);
    std::unique_ptr<Transfer> t = std::move(it->second);
    transfers_.erase(it);
    t->Finish(easy, rc);
    Release(easy, rc == CURLE_OK);
  }
}

// Finishes `t` from a handler of its own: Start's caller does not expect it back before Start returns.
void CurlLoop::Fail(std::unique_ptr<Transfer> t, CURLcode rc) {
  net::post(loop_, [t = std::move(t), rc] { t->Finish(nullptr, rc); });
}

// Pools `easy` for the next transfer; its connection stays in the multi handle's cache either way.
void CurlLoop::Release(CURL* easy, bool ok) {
  if (!ok) curl_easy_reset(easy);  // a failed transfer's handle starts over from the default options
  if (idle_.size() < kMaxIdleHandles) {
    idle_.push_back(easy);
  } else {
    curl_easy_cleanup(easy);
  }
}

std::shared_ptr<CurlLoop::Socket> CurlLoop::Track(curl_socket_t fd, bool owned) {
  auto s = std::make_shared<Socket>(loop_, fd, owned);
  boost::system::error_code ec;
  s->descriptor.assign(fd, ec);
  if (ec) return nullptr;
  sockets_[fd] = s;
  return s;
}

int CurlLoop::OnSocket(CURL*, curl_socket_t fd, int what, void* self_ptr, void*) {
  auto* self = static_cast<CurlLoop*>(self_ptr);
  auto it = self->sockets_.find(fd);
  std::shared_ptr<Socket> s = it == self->sockets_.end() ? nullptr : it->second;
  if (what == CURL_POLL_REMOVE) {
    if (s == nullptr) return 0;
    s->want = 0;
    s->waiting = 0;
    ++s->epoch;
    if (s->owned) {  // stays registered, as its connection may be reused, but waits no more
      boost::system::error_code ec;
      s->descriptor.cancel(ec);
    } else {
      s->descriptor.release();  // libcurl closes it itself, without OnCloseSocket
      self->sockets_.erase(it);
    }
    return 0;
  }
  if (s == nullptr && (s = self->Track(fd, /*owned=*/false)) == nullptr) return -1;
  s->want = what;
  self->Rearm(s);
  return 0;
}

int CurlLoop::OnTimer(CURLM*, long timeout_ms, void* self_ptr) {
  auto* self = static_cast<CurlLoop*>(self_ptr);
  if (timeout_ms < 0) {
    self->timer_.cancel();
  } else if (timeout_ms == 0) {  // now, but not from inside libcurl, which forbids it: one post serves many
    if (!self->timeout_posted_) {
      self->timeout_posted_ = true;
      net::post(self->loop_, [self] {
        self->timeout_posted_ = false;
        self->Act(nullptr, 0);
      });
    }
  } else {
    self->timer_.expires_after(std::chrono::milliseconds(timeout_ms));
    self->timer_.async_wait([self](const boost::system::error_code& ec) {
      if (!ec) self->Act(nullptr, 0);
    });
  }
  return 0;
}

curl_socket_t CurlLoop::OnOpenSocket(void* self_ptr, curlsocktype purpose, curl_sockaddr* address) {
  if (purpose != CURLSOCKTYPE_IPCXN) return CURL_SOCKET_BAD;
  const int fd = socket(address->family, address->socktype | SOCK_CLOEXEC, address->protocol);
  if (fd < 0) return CURL_SOCKET_BAD;
  if (static_cast<CurlLoop*>(self_ptr)->Track(fd, /*owned=*/true) == nullptr) {
    close(fd);
    return CURL_SOCKET_BAD;
  }
  return fd;
}

int CurlLoop::OnCloseSocket(void* self_ptr, curl_socket_t fd) {
  auto* self = static_cast<CurlLoop*>(self_ptr);
  auto it = self->sockets_.find(fd);
  if (it == self->sockets_.end()) return close(fd);
  boost::system::error_code ec;
  it->second->descriptor.close(ec);  // aborts its waits
  self->sockets_.erase(it);
  return ec ? -1 : 0;
}

}  // namespace baton::experts
