// HttpPool (see http_pool.h): each exchange is one coroutine on the loop.
#include "experts/http_pool.h"

#include <array>
#include <charconv>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

namespace baton::experts {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;
constexpr auto kTuple = net::as_tuple(net::use_awaitable);
constexpr size_t kReadChunk = 8 * 1024;  // per call in flight, in its coroutine frame

bool AllowedHostChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_';
}

// An error of Beast's HTTP parser (the upstream did not speak HTTP/1.x), rather than of the connection.
bool IsHttpError(const beast::error_code& ec) {
  return ec.category() == http::make_error_code(http::error::bad_version).category();
}

}  // namespace

std::optional<HttpEndpoint> ParsePlainHttpUrl(std::string_view url) {
  constexpr std::string_view kScheme = "http://";
  if (url.size() <= kScheme.size()) return std::nullopt;
  for (size_t i = 0; i < kScheme.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(url[i])) != kScheme[i]) return std::nullopt;
  }
  url.remove_prefix(kScheme.size());
  if (url.find_first_of("?#@[] \t\r\n") != std::string_view::npos) return std::nullopt;
  const size_t slash = url.find('/');
  std::string_view authority = url.substr(0, slash);
  HttpEndpoint e;
  e.target = slash == std::string_view::npos ? "/" : std::string(url.substr(slash));
  const size_t colon = authority.find(':');
  e.host = std::string(authority.substr(0, colon));
  if (e.host.empty()) return std::nullopt;
  for (char c : e.host) {
    if (!AllowedHostChar(c)) return std::nullopt;
  }
  if (colon == std::string_view::npos) {
    e.port = "80";
  } else {
    const std::string_view port = authority.substr(colon + 1);
    unsigned value = 0;
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (ec != std::errc() || end != port.data() + port.size() || value == 0 || value > 65535) return std::nullopt;
    e.port = std::string(port);
  }
  return e;
}

HttpPool::HttpPool(net::io_context& loop) : service(loop), loop_(loop) {
  // Creates asio's socket service before this one, so that it is shut down after this one (services go in reverse
  // order of creation) and shutdown() can still close the pooled sockets.
  tcp::socket probe(loop);
}

void HttpPool::shutdown() {
  shut_down_ = true;
  idle_.clear();
}

size_t HttpPool::idle_connections() const {
  size_t n = 0;
  for (const auto& [key, v] : idle_) n += v.size();
  return n;
}

void HttpPool::Start(std::unique_ptr<Exchange> x) {
  net::co_spawn(loop_, Run(std::move(x)), net::detached);
}

net::awaitable<void> HttpPool::Run(std::unique_ptr<Exchange> x) {
  const HttpEndpoint& ep = x->endpoint();
  const Clock::time_point deadline = Clock::now() + x->timeout();
  const std::string key = ep.host + ":" + ep.port;

  http::request<http::string_body> req{http::verb::post, ep.target, 11};
  req.set(http::field::host, ep.port == "80" ? ep.host : key);
  for (const auto& [name, value] : x->headers()) req.set(name, value);
  req.body() = x->body();
  req.keep_alive(true);
  req.prepare_payload();

  for (int attempt = 0;; ++attempt) {
    std::unique_ptr<Stream> stream;
    bool reused = false;
    if (auto it = idle_.find(key); it != idle_.end() && !it->second.empty()) {
      stream = std::move(it->second.back());
      it->second.pop_back();
      reused = true;
    } else {
      stream = std::make_unique<Stream>(loop_);
      stream->expires_at(deadline);
      beast::error_code ec;
      const net::ip::address address = net::ip::make_address(ep.host, ec);
      if (!ec) {
        auto [cec] = co_await stream->async_connect(tcp::endpoint(address, std::stoi(ep.port)), kTuple);
        ec = cec;
      } else {
        tcp::resolver resolver(loop_);
        auto [rec, results] = co_await resolver.async_resolve(ep.host, ep.port, kTuple);
        if (rec) {
          x->Finish(HttpOutcome::kConnect, "cannot resolve " + ep.host + ": " + rec.message());
          co_return;
        }
        auto [cec, connected] = co_await stream->async_connect(results, kTuple);
        ec = cec;
      }
      if (ec) {
        x->Finish(ec == beast::error::timeout ? HttpOutcome::kTimeout : HttpOutcome::kConnect,
                  "cannot connect to " + key + ": " + ec.message());
        co_return;
      }
      stream->socket().set_option(tcp::no_delay(true), ec);
    }

    stream->expires_at(deadline);
    auto [wec, written] = co_await http::async_write(*stream, req, kTuple);
    beast::flat_buffer buffer;
    http::response_parser<http::buffer_body> parser;
    parser.body_limit(boost::none);  // the exchange bounds the body itself (OnBody)
    beast::error_code ec = wec;
    if (!ec) {
      auto [hec, n] = co_await http::async_read_header(*stream, buffer, parser, kTuple);
      ec = hec;
    }
    if (ec) {
      // A pooled connection the upstream had closed: nothing of the answer came back, so sending again is safe.
      const bool stale = reused && attempt == 0 && ec != beast::error::timeout && buffer.size() == 0 &&
                         (ec == http::error::end_of_stream || ec == net::error::eof ||
                          ec == net::error::connection_reset || ec == net::error::broken_pipe);
      if (stale) continue;
      if (ec == beast::error::timeout) {
        x->Finish(HttpOutcome::kTimeout, "no answer from " + key + " in time");
      } else if (IsHttpError(ec) && ec != http::error::end_of_stream) {
        x->Finish(HttpOutcome::kProtocol, "unreadable HTTP answer from " + key + ": " + ec.message());
      } else {
        x->Finish(HttpOutcome::kIo, "connection to " + key + " failed: " + ec.message());
      }
      co_return;
    }
    x->OnStatus(parser.get().result_int());

    std::array<char, kReadChunk> chunk;
    while (!parser.is_done()) {
      parser.get().body().data = chunk.data();
      parser.get().body().size = chunk.size();
      auto [rec, n] = co_await http::async_read_some(*stream, buffer, parser, kTuple);  // each piece as it comes
      if (rec == http::error::need_buffer) rec = {};
      const size_t got = chunk.size() - parser.get().body().size;
      if (got > 0 && !x->OnBody(chunk.data(), got)) {
        x->Finish(HttpOutcome::kAborted, "stopped by the caller");
        co_return;  // the connection is dropped: the rest of its answer is unread
      }
      if (rec) {
        if (rec == beast::error::timeout) {
          x->Finish(HttpOutcome::kTimeout, "the answer from " + key + " did not finish in time");
        } else if (IsHttpError(rec) && rec != http::error::partial_message) {
          x->Finish(HttpOutcome::kProtocol, "unreadable HTTP answer from " + key + ": " + rec.message());
        } else {
          x->Finish(HttpOutcome::kIo, "connection to " + key + " closed mid-answer: " + rec.message());
        }
        co_return;
      }
    }
    if (parser.get().keep_alive() && !shut_down_) {
      auto& idle = idle_[key];
      if (idle.size() < kMaxIdlePerUpstream) {
        stream->expires_never();
        idle.push_back(std::move(stream));
      }
    }
    x->Finish(HttpOutcome::kComplete, "");
    co_return;
  }
}

}  // namespace baton::experts
