// The "openai" expert backend: POST {base_url}/chat/completions over libcurl, plain or streamed (server-sent events).
#include <curl/curl.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <nlohmann/json.hpp>

#include "baton/json_limits.h"
#include "experts/backends.h"
#include "experts/curl_loop.h"
#include "experts/http_pool.h"

namespace baton::experts {
namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;

constexpr size_t kMaxIdleHandles = 64;
constexpr size_t kMaxErrorBody = 400;
// completion_tokens' ceiling when no max_tokens was sent: the largest max_tokens the gateway accepts from a client.
constexpr int64_t kMaxCompletionTokens = 10'000'000;

void GlobalInitCurl() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

std::string Truncate(std::string s, size_t n) {
  if (s.size() > n) {
    s.resize(n);
    s += "...";
  }
  return s;
}

// The upstream's own error message: {"error": {"message": ...}} or {"error": "..."} or the raw body (also when it is
// nested too deep to parse safely).
std::string UpstreamMessage(const std::string& body) {
  if (!CheckJsonDepth(body).ok()) return Truncate(body, kMaxErrorBody);
  try {
    json j = json::parse(body);
    if (j.contains("error")) {
      const json& e = j["error"];
      if (e.is_object() && e.contains("message") && e["message"].is_string()) return e["message"];
      if (e.is_string()) return e.get<std::string>();
    }
    if (j.contains("message") && j["message"].is_string()) return j["message"];
  } catch (const json::exception&) {
  }
  return Truncate(body, kMaxErrorBody);
}

// What a call may be charged at most, from what it sent (see ChatResult::usage).
struct UsageBounds {
  int64_t prompt_tokens = 0;          // an upper bound of the prompt's tokens
  std::optional<int64_t> max_tokens;  // the max_tokens (or max_completion_tokens) sent upstream, if any
};

void AddNote(std::string* notes, const std::string& note) {
  if (!notes->empty()) *notes += "; ";
  *notes += note;
}

// One count of the upstream's usage object, made sane: in [0, bound], an integer (a fraction is rounded up), 0 when
// absent, null or not a number. Whatever was corrected is described in `notes`.
int64_t SaneCount(const json& usage, const char* field, int64_t bound, const std::string& bound_name,
                  std::string* notes) {
  auto it = usage.find(field);
  if (it == usage.end() || it->is_null()) return 0;
  const json& v = *it;
  const std::string shown = Truncate(v.dump(-1, ' ', false, json::error_handler_t::replace), 40);
  auto too_big = [&] {
    AddNote(notes, fmt::format("upstream reported {}={} > {}={}; charged {}", field, shown, bound_name, bound, bound));
    return bound;
  };
  if (v.is_number_unsigned()) return v.get<uint64_t>() > static_cast<uint64_t>(bound) ? too_big() : v.get<int64_t>();
  if (v.is_number_integer()) {
    const int64_t n = v.get<int64_t>();
    if (n < 0) {
      AddNote(notes, fmt::format("upstream reported {}={} < 0; charged 0", field, shown));
      return 0;
    }
    return n > bound ? too_big() : n;
  }
  if (v.is_number_float()) {
    const double d = v.get<double>();
    if (!std::isfinite(d) || d < 0) {
      AddNote(notes, fmt::format("upstream reported {}={} < 0; charged 0", field, shown));
      return 0;
    }
    if (d > static_cast<double>(bound)) return too_big();
    const auto n = static_cast<int64_t>(std::ceil(d));
    if (static_cast<double>(n) != d) {
      AddNote(notes, fmt::format("upstream reported {}={} (not an integer); charged {}", field, shown, n));
    }
    return n;
  }
  AddNote(notes, fmt::format("upstream reported {}={} (not a number); charged 0", field, shown));
  return 0;
}

// The usage to charge from the upstream's usage object (null when it sent none): see ChatResult::usage.
ChatUsage SaneUsage(const json& u, const UsageBounds& bounds, std::string* notes) {
  ChatUsage usage;
  if (!u.is_object()) return usage;
  usage.prompt_tokens = SaneCount(u, "prompt_tokens", bounds.prompt_tokens, "prompt bound", notes);
  usage.completion_tokens =
      bounds.max_tokens ? SaneCount(u, "completion_tokens", *bounds.max_tokens, "max_tokens", notes)
                        : SaneCount(u, "completion_tokens", kMaxCompletionTokens, "limit (no max_tokens sent)", notes);
  return usage;
}

// Incremental server-sent-events parser for OpenAI streaming: feeds content and tool-call deltas to the sink as each
// event completes, accumulates both into the result, and remembers the finish reason, the usage and any in-stream
// error.
class SseParser {
 public:
  SseParser(const StreamSink* sink, ChatResult* result) : sink_(sink), result_(result) {}

  // Returns false when the sink asked to stop.
  bool Feed(const char* data, size_t n) {
    buffer_.append(data, n);
    size_t start = 0;
    for (size_t nl; (nl = buffer_.find('\n', start)) != std::string::npos; start = nl + 1) {
      std::string_view line(buffer_.data() + start, nl - start);
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      if (line.empty()) {
        if (!DispatchEvent()) {
          buffer_.erase(0, nl + 1);
          return false;
        }
      } else if (line.starts_with("data:")) {
        line.remove_prefix(5);
        if (!line.empty() && line.front() == ' ') line.remove_prefix(1);
        if (!event_data_.empty()) event_data_ += '\n';
        event_data_ += line;
      }  // other fields (event:, id:, retry:, comments) are ignored
    }
    buffer_.erase(0, start);
    return true;
  }
  bool Finish() { return DispatchEvent(); }  // a last event without its blank line

  bool done() const { return done_; }
  bool got_any() const { return got_any_; }
  bool got_finish() const { return got_finish_; }
  const std::string& error() const { return error_; }
  const json& usage() const { return usage_; }  // the last usage object seen; null when none

 private:
  bool DispatchEvent() {
    if (event_data_.empty()) return true;
    std::string data = std::move(event_data_);
    event_data_.clear();
    if (data == "[DONE]") {
      done_ = true;
      return true;
    }
    // Before parsing: a deeply nested event would overflow the stack of a later copy or dump (see json_limits.h).
    if (Status depth = CheckJsonDepth(data); !depth.ok()) {
      error_ = "unreadable answer: an event is " + depth.message();
      return true;
    }
    json j;
    try {
      j = json::parse(data);
    } catch (const json::exception& e) {
      error_ = fmt::format("malformed stream event: {}", Truncate(data, 120));
      return true;
    }
    if (j.contains("error")) {
      error_ = UpstreamMessage(data);
      return true;
    }
    if (j.contains("usage") && j["usage"].is_object()) usage_ = j["usage"];
    if (!j.contains("choices") || !j["choices"].is_array() || j["choices"].empty()) return true;
    const json& choice = j["choices"][0];
    if (choice.contains("finish_reason") && choice["finish_reason"].is_string()) {
      result_->finish_reason = choice["finish_reason"];
      got_finish_ = true;
    }
    if (choice.contains("delta") && choice["delta"].is_object()) {
      const json& delta = choice["delta"];
      std::string_view piece;
      if (delta.contains("content") && delta["content"].is_string()) {
        piece = delta["content"].get_ref<const std::string&>();
        result_->content += piece;
      }
      json tool_calls;
      if (delta.contains("tool_calls") && delta["tool_calls"].is_array()) {
        tool_calls = MergeToolCalls(delta["tool_calls"]);
      }
      const bool has_calls = tool_calls.is_array() && !tool_calls.empty();
      if (!piece.empty() || has_calls) {
        got_any_ = true;
        if (sink_ != nullptr && *sink_ && !(*sink_)(StreamDelta(piece, has_calls ? &tool_calls : nullptr))) {
          return false;
        }
      }
    }
    return true;
  }

  // Merges one event's tool-call deltas into result_->tool_calls (by index: id, type and name are kept, the pieces of
  // arguments concatenated) and returns them as the sink gets them: each with its index, also where the upstream left
  // it out (a delta without an index and with an id starts a new call; one without either continues the last).
  json MergeToolCalls(const json& deltas) {
    json out = json::array();
    for (const json& d : deltas) {
      if (!d.is_object()) continue;
      int64_t index;
      if (auto i = d.find("index"); i != d.end() && i->is_number_integer()) {
        index = i->get<int64_t>();
      } else if (tool_pos_.empty()) {
        index = 0;
      } else if (d.contains("id")) {
        index = tool_pos_.rbegin()->first + 1;
      } else {
        index = last_index_;
      }
      last_index_ = index;
      auto [at, added] = tool_pos_.try_emplace(index, result_->tool_calls.size());
      if (added) {
        result_->tool_calls.push_back(
            {{"id", ""}, {"type", "function"}, {"function", {{"name", ""}, {"arguments", ""}}}});
      }
      json& call = result_->tool_calls[at->second];
      if (auto id = d.find("id"); id != d.end() && id->is_string() && !id->get_ref<const std::string&>().empty()) {
        call["id"] = *id;
      }
      if (auto type = d.find("type"); type != d.end() && type->is_string()) call["type"] = *type;
      if (auto f = d.find("function"); f != d.end() && f->is_object()) {
        if (auto n = f->find("name"); n != f->end() && n->is_string() && !n->get_ref<const std::string&>().empty()) {
          call["function"]["name"] = *n;
        }
        if (auto a = f->find("arguments"); a != f->end() && a->is_string()) {
          call["function"]["arguments"].get_ref<std::string&>() += a->get_ref<const std::string&>();
        }
      }
      json piece = d;
      piece["index"] = index;
      out.push_back(std::move(piece));
    }
    return out;
  }

  const StreamSink* sink_;
  ChatResult* result_;
  std::string buffer_;
  std::string event_data_;
  std::string error_;
  json usage_;                          // the last usage object seen
  std::map<int64_t, size_t> tool_pos_;  // a tool call's index -> its place in result_->tool_calls
  int64_t last_index_ = 0;              // the index of the latest tool-call delta
  bool done_ = false;
  bool got_any_ = false;
  bool got_finish_ = false;
};

// One call's state: what it sends, and what libcurl's write callback collects. Shared by the blocking and the
// asynchronous paths, which differ only in how the transfer is performed.
struct Call {
  Call(const StreamSink* sink, int64_t max_bytes)
      : streaming(sink != nullptr && *sink), max_response_bytes(max_bytes), sse(sink, &result) {}
  Call(const Call&) = delete;
  Call& operator=(const Call&) = delete;
  ~Call() { curl_slist_free_all(headers); }

  const bool streaming;
  const int64_t max_response_bytes;  // ExpertConfig::max_response_bytes
  std::string payload;
  UsageBounds bounds;             // from the payload
  curl_slist* headers = nullptr;  // holds the API key
  std::chrono::milliseconds timeout{0};
  CURL* curl = nullptr;  // the handle performing it (libcurl)
  long http = 0;         // the response's status, once known (Beast)
  Clock::time_point start;
  ChatResult result;
  SseParser sse;
  std::string body;      // the whole body (plain) or the error body (streaming with a non-200 status)
  json usage;            // the usage object of a plain answer; null when none
  int64_t received = 0;  // bytes of the response body so far
  bool cancelled = false;
  bool too_large = false;  // aborted: the response passed max_response_bytes
};

// Takes `n` bytes of the response body of HTTP status `code`; false aborts the transfer (too large, or the sink
// asked to stop).
bool Consume(Call* t, long code, const char* ptr, size_t n) {
  // Every response is bounded, whatever its kind: a plain body, a stream, an error body.
  t->received += static_cast<int64_t>(n);
  if (t->received > t->max_response_bytes) {
    t->too_large = true;
    return false;
  }
  if (t->streaming && code == 200) {
    if (!t->sse.Feed(ptr, n)) {
      t->cancelled = true;
      return false;
    }
    return true;
  }
  t->body.append(ptr, n);  // at most max_response_bytes, checked above
  return true;
}

size_t WriteCallback(char* ptr, size_t size, size_t nmemb, void* userdata) {
  auto* t = static_cast<Call*>(userdata);
  long code = 0;
  if (t->streaming) curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &code);
  return Consume(t, code, ptr, size * nmemb) ? size * nmemb : 0;  // 0 aborts with CURLE_WRITE_ERROR
}

// An OpenAI-compatible chat completions client. Thread-safety: safe for concurrent calls. A blocking call takes an
// easy handle from a mutex-guarded pool (so its connection is reused by later calls) and returns it afterwards; an
// asynchronous call runs on the caller's loop: on its HttpPool (Boost.Beast, connections pooled per upstream) for an
// http:// URL, else on its CurlLoop, which pools handles and connections per loop.
class OpenAiExpert : public ExpertBackend {
 public:
  OpenAiExpert(ExpertConfig config, std::string api_key) : config_(std::move(config)), api_key_(std::move(api_key)) {
    GlobalInitCurl();
    std::string base = config_.base_url;
    while (!base.empty() && base.back() == '/') base.pop_back();
    url_ = base + "/chat/completions";
    model_ = config_.model.empty() ? config_.name : config_.model;
    if (config_.http_client != "curl") endpoint_ = ParsePlainHttpUrl(url_);
    if (endpoint_) {
      beast_headers_ = {{"Content-Type", "application/json"}};
      if (!api_key_.empty()) beast_headers_.emplace_back("Authorization", "Bearer " + api_key_);
    }
  }
  ~OpenAiExpert() override {
    for (CURL* c : idle_) curl_easy_cleanup(c);
  }

  const std::string& name() const override { return config_.name; }

  StatusOr<ChatResult> Complete(const ChatRequest& request, const StreamSink* sink) override {
    Call call(sink, config_.max_response_bytes);
    BATON_RETURN_IF_ERROR(Prepare(request, &call));
    CURL* curl = Acquire();
    if (curl == nullptr) return Status::Internal("curl_easy_init failed");
    Configure(curl, &call);
    const CURLcode rc = curl_easy_perform(curl);
    StatusOr<ChatResult> result = Finish(curl, rc, &call);
    Release(curl, rc == CURLE_OK);
    return result;
  }

  // The whole call runs on ctx.loop: libcurl's multi interface there, the sink fed as bytes arrive. A call still in
  // flight when that io_context is destroyed is dropped: `done` and the sink are destroyed uncalled.
  void CompleteAsync(ChatRequest request, StreamSink sink, const AsyncContext& ctx, CompletionHandler done) override {
    if (ctx.loop == nullptr) return;  // nowhere to deliver a result: a caller bug, nothing to answer
    if (endpoint_) {
      auto call = std::make_unique<PooledCall>(*this, std::move(sink), std::move(done));
      if (Status s = Prepare(request, &call->call); !s.ok()) {
        boost::asio::post(*ctx.loop, [call = std::move(call), s = std::move(s)] { call->done(s); });
        return;
      }
      call->request_headers = beast_headers_;
      call->request_headers.emplace_back("Accept", call->call.streaming ? "text/event-stream" : "application/json");
      call->call.start = Clock::now();
      boost::asio::use_service<HttpPool>(*ctx.loop).Start(std::move(call));
      return;
    }
    auto call = std::make_unique<AsyncCall>(*this, std::move(sink), std::move(done));
    if (Status s = Prepare(request, &call->call); !s.ok()) {
      boost::asio::post(*ctx.loop, [call = std::move(call), s = std::move(s)] { call->done(s); });
      return;
    }
    boost::asio::use_service<CurlLoop>(*ctx.loop).Start(std::move(call));
  }

 private:
  // A call handed to a CurlLoop. When the loop's io_context is destroyed first, it is destroyed with `done` uncalled.
  struct AsyncCall : CurlLoop::Transfer {
    AsyncCall(const OpenAiExpert& e, StreamSink s, CompletionHandler d)
        : expert(e), sink(std::move(s)), done(std::move(d)), call(&sink, e.config_.max_response_bytes) {}
    void Configure(CURL* easy) override { expert.Configure(easy, &call); }
    void Finish(CURL* easy, CURLcode rc) override { done(expert.Finish(easy, rc, &call)); }

    const OpenAiExpert& expert;
    StreamSink sink;
    CompletionHandler done;
    Call call;
  };

  // A call handed to an HttpPool. When the loop's io_context is destroyed first, it is destroyed with `done` uncalled.
  struct PooledCall : HttpPool::Exchange {
    PooledCall(const OpenAiExpert& e, StreamSink s, CompletionHandler d)
        : expert(e), sink(std::move(s)), done(std::move(d)), call(&sink, e.config_.max_response_bytes) {}
    const HttpEndpoint& endpoint() const override { return *expert.endpoint_; }
    const std::string& body() const override { return call.payload; }
    const std::vector<std::pair<std::string, std::string>>& headers() const override { return request_headers; }
    std::chrono::milliseconds timeout() const override { return call.timeout; }
    void OnStatus(int status) override { call.http = status; }
    bool OnBody(const char* data, size_t n) override { return Consume(&call, call.http, data, n); }
    void Finish(HttpOutcome outcome, const std::string& detail) override {
      done(expert.Conclude(call.http, expert.MapPoolOutcome(outcome, detail, call), &call));
    }

    const OpenAiExpert& expert;
    StreamSink sink;
    CompletionHandler done;
    Call call;
    std::vector<std::pair<std::string, std::string>> request_headers;  // holds the API key
  };

  // Everything the call sends (body, headers), before it has a handle.
  Status Prepare(const ChatRequest& request, Call* call) const {
    try {
      const json body = BuildBody(request, call->streaming);
      call->payload = body.dump();
      call->bounds = Bounds(request, body);
    } catch (const json::exception& e) {
      return Status::InvalidArgument(fmt::format("expert '{}': cannot encode the request: {}", config_.name, e.what()));
    }
    call->timeout = CallTimeout(config_, request);
    if (call->timeout.count() <= 0) {
      return Status::DeadlineExceeded(fmt::format("expert '{}': no time left", config_.name));
    }
    call->headers = curl_slist_append(call->headers, "Content-Type: application/json");
    call->headers =
        curl_slist_append(call->headers, call->streaming ? "Accept: text/event-stream" : "Accept: application/json");
    call->headers = curl_slist_append(call->headers, "Expect:");  // never wait for "100 Continue" on a large body
    if (!api_key_.empty()) {
      const std::string auth = "Authorization: Bearer " + api_key_;
      call->headers = curl_slist_append(call->headers, auth.c_str());
    }
    return Status::Ok();
  }

  // Sets every option the call relies on (handles come from pools, with earlier calls' options) and starts its clock.
  void Configure(CURL* curl, Call* call) const {
    call->curl = curl;
    curl_easy_setopt(curl, CURLOPT_URL, url_.c_str());
    curl_easy_setopt(curl, CURLOPT_POST, 1L);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, call->payload.data());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(call->payload.size()));
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, call->headers);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, WriteCallback);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, call);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(call->timeout.count()));
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS,
                     static_cast<long>(std::min<int64_t>(call->timeout.count(), 10'000)));
    curl_easy_setopt(curl, CURLOPT_TCP_KEEPALIVE, 1L);
    call->start = Clock::now();
  }

  // The call's result from libcurl's `rc`. First wipes the options that point into `call` (the body; the headers,
  // which hold the key) from `curl`, which goes back to a pool; nullptr when the transfer never started.
  StatusOr<ChatResult> Finish(CURL* curl, CURLcode rc, Call* call) const {
    long http = 0;
    if (curl != nullptr) {
      curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &http);
      curl_easy_setopt(curl, CURLOPT_HTTPHEADER, nullptr);
      curl_easy_setopt(curl, CURLOPT_POSTFIELDS, nullptr);
    }
    return Conclude(http, MapTransport(rc, *call), call);
  }

  // The call's result from the response's status `http` and how the transfer ended (`transport`), whichever client
  // performed it.
  StatusOr<ChatResult> Conclude(long http, const Status& transport, Call* call) const {
    call->result.latency_ms = std::chrono::duration<double, std::milli>(Clock::now() - call->start).count();
    BATON_RETURN_IF_ERROR(transport);
    BATON_RETURN_IF_ERROR(MapHttp(http, call->body));
    if (call->streaming) {
      if (!call->sse.Finish()) {
        return Status::FailedPrecondition(fmt::format("expert '{}': cancelled by the sink", name()));
      }
      if (!call->sse.error().empty()) {
        return Status::Unavailable(fmt::format("expert '{}' failed mid-stream: {}", name(), call->sse.error()));
      }
      if (!call->sse.done() && !call->sse.got_finish()) {
        return Status::Unavailable(fmt::format("expert '{}': the stream ended before [DONE]", name()));
      }
    } else {
      BATON_RETURN_IF_ERROR(ParseCompletion(call->body, &call->result, &call->usage));
    }
    call->result.usage =
        SaneUsage(call->streaming ? call->sse.usage() : call->usage, call->bounds, &call->result.usage_note);
    call->result.cost_usd = CostFromPrices(config_, call->result.usage);
    return std::move(call->result);
  }

  json BuildBody(const ChatRequest& request, bool streaming) const {
    json body = request.extra.is_object() ? request.extra : json::object();
    body["model"] = model_;
    json messages = json::array();
    for (const ChatMessage& m : request.messages) {
      // Every field the client sent (tool_calls, tool_call_id, name, ...), with the role and the content on top.
      json message = m.fields.is_object() ? m.fields : json::object();
      message["role"] = m.role;
      message["content"] = m.content_null && m.content.empty() ? json(nullptr) : json(m.content);
      messages.push_back(std::move(message));
    }
    body["messages"] = std::move(messages);
    if (request.max_tokens) body["max_tokens"] = *request.max_tokens;
    if (request.temperature) body["temperature"] = *request.temperature;
    body["stream"] = streaming;
    if (streaming) {
      body["stream_options"]["include_usage"] = true;
    } else {
      body.erase("stream_options");
    }
    return body;
  }

  // The most this call may be charged (see ChatResult::usage), from the request and the body sent.
  static UsageBounds Bounds(const ChatRequest& request, const json& body) {
    UsageBounds b;
    b.prompt_tokens = PromptTokenBound(request);  // the bound the gateway reserved for
    for (const char* key : {"max_tokens", "max_completion_tokens"}) {
      auto it = body.find(key);
      if (it != body.end() && it->is_number_integer() && it->get<int64_t>() > 0) {
        b.max_tokens = std::max(b.max_tokens.value_or(0), it->get<int64_t>());
      }
    }
    return b;
  }

  Status MapTransport(CURLcode rc, const Call& call) const {
    if (rc == CURLE_OK) return Status::Ok();
    if (call.too_large) {
      return Status::Unavailable(
          fmt::format("expert '{}': the upstream response exceeded {} bytes", name(), call.max_response_bytes));
    }
    if (call.cancelled) return Status::FailedPrecondition(fmt::format("expert '{}': cancelled by the sink", name()));
    const std::string what = fmt::format("expert '{}' at {}: {}", name(), url_, curl_easy_strerror(rc));
    switch (rc) {
      case CURLE_OPERATION_TIMEDOUT:
        return Status::DeadlineExceeded(fmt::format("{} (timeout {} ms)", what, call.timeout.count()));
      case CURLE_OUT_OF_MEMORY:
      case CURLE_FAILED_INIT:
        return Status::Internal(what);
      case CURLE_URL_MALFORMAT:
      case CURLE_UNSUPPORTED_PROTOCOL:
        return Status::InvalidArgument(what);
      default:  // refused, reset, closed mid-body, unresolvable, TLS: the remote party did not answer
        return Status::Unavailable(what);
    }
  }

  // The HttpPool's outcome as MapTransport words libcurl's.
  Status MapPoolOutcome(HttpOutcome outcome, const std::string& detail, const Call& call) const {
    if (outcome == HttpOutcome::kComplete) return Status::Ok();
    if (call.too_large) {
      return Status::Unavailable(
          fmt::format("expert '{}': the upstream response exceeded {} bytes", name(), call.max_response_bytes));
    }
    if (call.cancelled) return Status::FailedPrecondition(fmt::format("expert '{}': cancelled by the sink", name()));
    const std::string what = fmt::format("expert '{}' at {}: {}", name(), url_, detail);
    if (outcome == HttpOutcome::kTimeout) {
      return Status::DeadlineExceeded(fmt::format("{} (timeout {} ms)", what, call.timeout.count()));
    }
    return Status::Unavailable(what);  // refused, reset, closed mid-body, not HTTP: the remote party did not answer
  }

  Status MapHttp(long http, const std::string& body) const {
    if (http == 200) return Status::Ok();
    const std::string what = fmt::format("expert '{}' answered HTTP {}: {}", name(), http, UpstreamMessage(body));
    if (http == 429) return Status::ResourceExhausted(what);
    if (http >= 500 || http == 408) return Status::Unavailable(what);
    if (http >= 400) return Status::InvalidArgument(what);
    return Status::Unavailable(what);  // 1xx/3xx: nothing usable came back
  }

  // The content, the tool calls and the finish reason of a plain answer into `result`; its usage object (null when
  // none) into `usage`.
  Status ParseCompletion(const std::string& body, ChatResult* result, json* usage) const {
    // Before parsing: a deeply nested body would overflow the stack of a later copy or dump (see json_limits.h).
    if (Status depth = CheckJsonDepth(body); !depth.ok()) {
      return Status::Unavailable(fmt::format("expert '{}' sent an unreadable answer: {}", name(), depth.message()));
    }
    try {
      json j = json::parse(body);
      const json& choice = j.at("choices").at(0);
      const json& message = choice.at("message");
      auto tool_calls = message.find("tool_calls");
      const bool has_calls = tool_calls != message.end() && tool_calls->is_array() && !tool_calls->empty();
      // An answer with tool calls may leave its content out; any other must have one (null included).
      auto content = message.find("content");
      if (content == message.end() && !has_calls) {
        return Status::Unavailable(fmt::format("expert '{}' sent an unreadable completion (no message.content): {}",
                                               name(), Truncate(body, 200)));
      }
      result->content = content != message.end() && content->is_string() ? content->get<std::string>() : "";
      if (has_calls) result->tool_calls = *tool_calls;
      if (choice.contains("finish_reason") && choice["finish_reason"].is_string()) {
        result->finish_reason = choice["finish_reason"];
      }
      if (j.contains("usage")) *usage = j["usage"];
    } catch (const json::exception& e) {
      return Status::Unavailable(
          fmt::format("expert '{}' sent an unreadable completion ({}): {}", name(), e.what(), Truncate(body, 200)));
    }
    return Status::Ok();
  }

  CURL* Acquire() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!idle_.empty()) {
        CURL* c = idle_.back();
        idle_.pop_back();
        return c;
      }
    }
    return curl_easy_init();
  }

  // Keeps the handle (and its open connection) for the next call; a handle whose transfer failed is reset first.
  void Release(CURL* curl, bool ok) {
    if (!ok) curl_easy_reset(curl);  // keeps the connection cache, drops the options
    std::lock_guard<std::mutex> lock(mu_);
    if (idle_.size() < kMaxIdleHandles) {
      idle_.push_back(curl);
    } else {
      curl_easy_cleanup(curl);
    }
  }

  const ExpertConfig config_;
  const std::string api_key_;  // never logged
  std::string url_;
  std::string model_;
  std::optional<HttpEndpoint> endpoint_;  // set when asynchronous calls go through the HttpPool
  std::vector<std::pair<std::string, std::string>> beast_headers_;  // the HttpPool's fixed headers (the API key)
  std::mutex mu_;
  std::vector<CURL*> idle_;  // guarded by mu_
};

}  // namespace

StatusOr<std::unique_ptr<ExpertBackend>> MakeOpenAiExpert(const ExpertConfig& config) {
  if (config.base_url.empty()) {
    return Status::InvalidArgument(
        fmt::format("openai expert '{}' needs a base_url (e.g. http://127.0.0.1:8080/v1)", config.name));
  }
  if (config.max_response_bytes <= 0) {
    return Status::InvalidArgument(fmt::format("openai expert '{}': max_response_bytes must be > 0", config.name));
  }
  std::string key;
  if (!config.api_key_env.empty()) {
    const char* v = std::getenv(config.api_key_env.c_str());
    if (v == nullptr || *v == '\0') {
      return Status::FailedPrecondition(fmt::format(
          "openai expert '{}': environment variable {} (api_key_env) is not set", config.name, config.api_key_env));
    }
    key = v;
  }
  return std::unique_ptr<ExpertBackend>(std::make_unique<OpenAiExpert>(config, std::move(key)));
}

}  // namespace baton::experts
