// The "openai" expert backend: POST {base_url}/chat/completions over libcurl, plain or streamed (server-sent events).
#include <curl/curl.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <nlohmann/json.hpp>

#include "experts/backends.h"
#include "experts/curl_loop.h"

namespace baton::experts {
namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;

constexpr size_t kMaxIdleHandles = 64;
constexpr size_t kMaxErrorBody = 400;

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

// The upstream's own error message: {"error": {"message": ...}} or {"error": "..."} or the raw body.
std::string UpstreamMessage(const std::string& body) {
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

ChatUsage ParseUsage(const json& u) {
  ChatUsage usage;
  if (u.is_object()) {
    usage.prompt_tokens = u.value("prompt_tokens", int64_t{0});
    usage.completion_tokens = u.value("completion_tokens", int64_t{0});
  }
  return usage;
}

// Incremental server-sent-events parser for OpenAI streaming: feeds content deltas to the sink as each event
// completes and remembers the finish reason, the usage and any in-stream error.
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

 private:
  bool DispatchEvent() {
    if (event_data_.empty()) return true;
    std::string data = std::move(event_data_);
    event_data_.clear();
    if (data == "[DONE]") {
      done_ = true;
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
    if (j.contains("usage") && j["usage"].is_object()) result_->usage = ParseUsage(j["usage"]);
    if (!j.contains("choices") || !j["choices"].is_array() || j["choices"].empty()) return true;
    const json& choice = j["choices"][0];
    if (choice.contains("finish_reason") && choice["finish_reason"].is_string()) {
      result_->finish_reason = choice["finish_reason"];
      got_finish_ = true;
    }
    if (choice.contains("delta") && choice["delta"].is_object()) {
      const json& delta = choice["delta"];
      if (delta.contains("content") && delta["content"].is_string()) {
        const std::string& piece = delta["content"].get_ref<const std::string&>();
        if (!piece.empty()) {
          result_->content += piece;
          got_any_ = true;
          if (sink_ != nullptr && *sink_ && !(*sink_)(piece)) return false;
        }
      }
    }
    return true;
  }

  const StreamSink* sink_;
  ChatResult* result_;
  std::string buffer_;
  std::string event_data_;
  std::string error_;
  bool done_ = false;
  bool got_any_ = false;
  bool got_finish_ = false;
};

// One call's state: what it sends, and what libcurl's write callback collects. Shared by the blocking and the
// asynchronous paths, which differ only in how the transfer is performed.
struct Call {
  explicit Call(const StreamSink* sink) : streaming(sink != nullptr && *sink), sse(sink, &result) {}
  Call(const Call&) = delete;
  Call& operator=(const Call&) = delete;
  ~Call() { curl_slist_free_all(headers); }

  const bool streaming;
  std::string payload;
  curl_slist* headers = nullptr;  // holds the API key
  std::chrono::milliseconds timeout{0};
  CURL* curl = nullptr;  // the handle performing it
  Clock::time_point start;
  ChatResult result;
  SseParser sse;
  std::string body;  // the whole body (plain) or the error body (streaming with a non-200 status)
  bool cancelled = false;
};

size_t WriteCallback(char* ptr, size_t size, size_t nmemb, void* userdata) {
  auto* t = static_cast<Call*>(userdata);
  const size_t n = size * nmemb;
  if (t->streaming) {
    long code = 0;
    curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &code);
    if (code == 200) {
      if (!t->sse.Feed(ptr, n)) {
        t->cancelled = true;
        return 0;  // aborts the transfer with CURLE_WRITE_ERROR
      }
      return n;
    }
  }
  if (t->body.size() < (16u << 20)) t->body.append(ptr, n);
  return n;
}

// An OpenAI-compatible chat completions client. Thread-safety: safe for concurrent calls. A blocking call takes an
// easy handle from a mutex-guarded pool (so its connection is reused by later calls) and returns it afterwards; an
// asynchronous call runs on the CurlLoop of the caller's loop, which pools handles and connections per loop.
class OpenAiExpert : public ExpertBackend {
 public:
  OpenAiExpert(ExpertConfig config, std::string api_key) : config_(std::move(config)), api_key_(std::move(api_key)) {
    GlobalInitCurl();
    std::string base = config_.base_url;
    while (!base.empty() && base.back() == '/') base.pop_back();
    url_ = base + "/chat/completions";
    model_ = config_.model.empty() ? config_.name : config_.model;
  }
  ~OpenAiExpert() override {
    for (CURL* c : idle_) curl_easy_cleanup(c);
  }

  const std::string& name() const override { return config_.name; }

  StatusOr<ChatResult> Complete(const ChatRequest& request, const StreamSink* sink) override {
    Call call(sink);
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
        : expert(e), sink(std::move(s)), done(std::move(d)), call(&sink) {}
    void Configure(CURL* easy) override { expert.Configure(easy, &call); }
    void Finish(CURL* easy, CURLcode rc) override { done(expert.Finish(easy, rc, &call)); }

    const OpenAiExpert& expert;
    StreamSink sink;
    CompletionHandler done;
    Call call;
  };

  // Everything the call sends (body, headers), before it has a handle.
  Status Prepare(const ChatRequest& request, Call* call) const {
    try {
      call->payload = BuildBody(request, call->streaming).dump();
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
    call->result.latency_ms = std::chrono::duration<double, std::milli>(Clock::now() - call->start).count();
    long http = 0;
    if (curl != nullptr) {
      curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &http);
      curl_easy_setopt(curl, CURLOPT_HTTPHEADER, nullptr);
      curl_easy_setopt(curl, CURLOPT_POSTFIELDS, nullptr);
    }
    BATON_RETURN_IF_ERROR(MapTransport(rc, *call));
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
      BATON_RETURN_IF_ERROR(ParseCompletion(call->body, &call->result));
    }
    call->result.cost_usd = CostFromPrices(config_, call->result.usage);
    return std::move(call->result);
  }

  json BuildBody(const ChatRequest& request, bool streaming) const {
    json body = request.extra.is_object() ? request.extra : json::object();
    body["model"] = model_;
    json messages = json::array();
    for (const ChatMessage& m : request.messages) messages.push_back({{"role", m.role}, {"content", m.content}});
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

  Status MapTransport(CURLcode rc, const Call& call) const {
    if (rc == CURLE_OK) return Status::Ok();
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

  Status MapHttp(long http, const std::string& body) const {
    if (http == 200) return Status::Ok();
    const std::string what = fmt::format("expert '{}' answered HTTP {}: {}", name(), http, UpstreamMessage(body));
    if (http == 429) return Status::ResourceExhausted(what);
    if (http >= 500 || http == 408) return Status::Unavailable(what);
    if (http >= 400) return Status::InvalidArgument(what);
    return Status::Unavailable(what);  // 1xx/3xx: nothing usable came back
  }

  Status ParseCompletion(const std::string& body, ChatResult* result) const {
    try {
      json j = json::parse(body);
      const json& choice = j.at("choices").at(0);
      const json& content = choice.at("message").at("content");
      result->content = content.is_string() ? content.get<std::string>() : "";
      if (choice.contains("finish_reason") && choice["finish_reason"].is_string()) {
        result->finish_reason = choice["finish_reason"];
      }
      if (j.contains("usage")) result->usage = ParseUsage(j["usage"]);
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
  std::mutex mu_;
  std::vector<CURL*> idle_;  // guarded by mu_
};

}  // namespace

StatusOr<std::unique_ptr<ExpertBackend>> MakeOpenAiExpert(const ExpertConfig& config) {
  if (config.base_url.empty()) {
    return Status::InvalidArgument(
        fmt::format("openai expert '{}' needs a base_url (e.g. http://127.0.0.1:8080/v1)", config.name));
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
