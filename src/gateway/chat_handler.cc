// POST /v1/chat/completions: authenticate, parse, plan, reserve, call (with fallback), settle, answer, record.
// Everything runs on the connection's event loop: the expert calls are asynchronous (ExpertBackend::CompleteAsync)
// and their results come back to the same loop, so a request never changes thread unless an expert can only block.
// This is the gateway's error boundary for chat requests: every path ends in exactly one answer through the
// HttpExchange, and no exception escapes into the loop.
#include <chrono>
#include <cstdio>
#include <memory>

#include <fmt/format.h>

#include "gateway/gateway_state.h"
#include "gateway/request_parser.h"
#include "gateway/sse.h"

namespace baton::gateway {
namespace {

using Clock = std::chrono::steady_clock;

double MsSince(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

struct UpstreamError {
  int http = 502;
  const char* type = "server_error";
  const char* code = "upstream_error";
};

UpstreamError MapUpstream(const Status& st) {
  switch (st.code()) {
    case StatusCode::kDeadlineExceeded:
      return {504, "server_error", "upstream_timeout"};
    case StatusCode::kResourceExhausted:
      return {503, "server_error", "upstream_overloaded"};
    case StatusCode::kInvalidArgument:
      return {400, "invalid_request_error", "upstream_rejected"};
    case StatusCode::kUnavailable:
      return {502, "server_error", "upstream_unavailable"};
    default:
      return {502, "server_error", "upstream_error"};
  }
}

// Whether another expert might succeed where this one failed.
bool Retryable(const Status& st) {
  return st.code() != StatusCode::kInvalidArgument;
}

// The shortest text that reads back as the same double: a cheap call can cost well under a nano-dollar.
std::string FormatUsd(double v) {
  return fmt::format("{}", v);
}

// One chat request, alive until its last callback has run (shared by the callbacks it hands out).
class ChatCall : public std::enable_shared_from_this<ChatCall> {
 public:
  ChatCall(Gateway::State& s, HttpRequest req, std::shared_ptr<HttpExchange> ex)
      : s_(s), req_(std::move(req)), ex_(std::move(ex)) {}
  ~ChatCall() {
    if (key_slot_ != nullptr) key_slot_->fetch_sub(1);
  }

  void Run() {
    HttpResponse err;
    std::optional<size_t> key = Authenticate(s_, req_, &err);
    if (!key) return Finish(std::move(err));
    key_ = *key;
    const ClientKeyConfig& kc = s_.config.keys[key_];
    log_.client_key_hash = kc.key_sha256;
    KeyState& ks = *s_.key_state[key_];
    if (!ks.limiter.Allow()) {
      return Finish(
          ErrorResponse(429, "rate limit exceeded for this key; slow down", "rate_limit_error", "rate_limit_exceeded"));
    }
    key_slot_ = &ks.in_flight;
    if (key_slot_->fetch_add(1) >= kc.max_concurrency && kc.max_concurrency > 0) {
      return Finish(
          ErrorResponse(429,
                        fmt::format("this key already has {} requests in flight (its max_concurrency); retry later",
                                    kc.max_concurrency),
                        "rate_limit_error", "concurrency_limit_exceeded"));
    }
    StatusOr<GatewayRequest> parsed = ParseChatCompletionRequest(req_.body);
    if (!parsed.ok()) {
      return Finish(ErrorResponse(400, parsed.status().message(), "invalid_request_error", "invalid_request"));
    }
    request_ = std::move(*parsed);
    log_.requested_model = request_.model;
    if (s_.config.record_prompts) log_.prompt = std::string(LastUserText(request_.chat));
    StatusOr<std::vector<Candidate>> plan = s_.router->Plan(request_);
    if (!plan.ok()) {
      const Status& st = plan.status();
      if (st.code() == StatusCode::kNotFound) {
        return Finish(ErrorResponse(404, st.message(), "invalid_request_error", "model_not_found"));
      }
      return Finish(ErrorResponse(400, st.message(), "invalid_request_error", "invalid_request"));
    }
    plan_ = std::move(*plan);
    routed_ = request_.model == "baton";
    Next();
  }

 private:
  // Tries the next candidate that fits the budget, or gives the final answer when none is left.
  void Next() {
    for (; next_ < plan_.size(); ++next_) {
      const Candidate& c = plan_[next_];
      // Reserve an upper estimate: the prediction with a safety factor, or the list-price bound when larger.
      reserved_ = std::max(c.predicted_cost * s_.config.reserve_factor, s_.router->PriceBound(c.expert, request_.chat));
      Status reserved = s_.ledger->Reserve(key_, reserved_);
      if (!reserved.ok()) {
        budget_refused_ = true;
        if (budget_message_.empty()) budget_message_ = reserved.message();
        continue;  // the next best expert may be cheap enough
      }
      const ExpertSlot& expert = s_.router->experts()[c.expert];
      if (attempted_) s_.metrics.CountFallback();
      attempted_ = true;
      if (routed_) s_.metrics.CountRoutingDecision(expert.config.name);
      log_.expert = expert.config.name;
      current_ = c.expert;
      ++next_;
      return Attempt(expert);
    }
    GiveUp();
  }

  void Attempt(const ExpertSlot& expert) {
    attempt_start_ = Clock::now();
    in_attempt_ = true;
    StreamSink sink;
    if (request_.stream) {
      sink = [self = shared_from_this()](const StreamDelta& delta) { return self->OnPiece(delta); };
    }
    expert.backend->CompleteAsync(
        request_.chat, std::move(sink), AsyncContext{&ex_->loop(), s_.blocking.get()},
        [self = shared_from_this()](StatusOr<ChatResult> r) { Guarded(*self, [&] { self->OnResult(std::move(r)); }); });
  }

  bool OnPiece(const StreamDelta& delta) {
    if (delta.empty()) return true;
    const ExpertSlot& expert = s_.router->experts()[current_];
    if (!StartStream(expert)) return false;
    if (delta.tool_calls != nullptr) {  // tool-call deltas (with any content) go out as delta.tool_calls
      return ex_->WriteStream(SseToolCallsChunk(id_, created_, expert.config.name, delta.content, *delta.tool_calls));
    }
    return ex_->WriteStream(SseChunk(id_, created_, expert.config.name, "", delta.content, ""));
  }

  void OnResult(StatusOr<ChatResult> r) {
    upstream_ms_ += MsSince(attempt_start_);
    in_attempt_ = false;
    const ExpertSlot& expert = s_.router->experts()[current_];
    if (r.ok()) {
      s_.ledger->Settle(key_, reserved_, r->cost_usd);
      s_.metrics.AddSpend(expert.config.name, s_.config.keys[key_].name, r->cost_usd);
      return Succeed(expert, *r);
    }
    s_.ledger->Settle(key_, reserved_, 0);
    last_error_ = r.status();
    s_.metrics.CountUpstreamFailure(expert.config.name, StatusCodeName(last_error_.code()));
    // Upstream messages can quote the prompt (replay does), so they are logged only when prompts may be recorded.
    std::fprintf(stderr, "baton serve: expert '%s' failed: %s\n", expert.config.name.c_str(),
                 s_.config.record_prompts ? last_error_.ToString().c_str() : StatusCodeName(last_error_.code()));
    // Once the stream has begun (or the client went away while it began) another expert cannot take over.
    if (stream_started_ || !routed_ || !Retryable(last_error_)) return GiveUp();
    Next();
  }

  // No expert answered: a budget refusal, or the last upstream error.
  void GiveUp() {
    if (!attempted_ && budget_refused_) {
      return Finish(ErrorResponse(429, budget_message_, "insufficient_quota", "budget_exhausted"));
    }
    const UpstreamError u = MapUpstream(last_error_);
    const std::string message = fmt::format("expert '{}' failed: {}", log_.expert, last_error_.message());
    if (stream_started_) {  // headers are gone: report in-band, then end the stream properly
      ex_->WriteStream(SseError(message, u.type, u.code));
      ex_->WriteStream(kSseDone);
      ex_->EndStream();
      return Log(u.http);
    }
    Finish(ErrorResponse(u.http, message, u.type, u.code));
  }

  // Sends the headers and the role chunk once, before the first content.
  bool StartStream(const ExpertSlot& expert) {
    if (stream_started_) return stream_ok_;
    stream_started_ = true;
    Headers h = {{"x-baton-expert", expert.config.name}, {"x-baton-overhead-ms", fmt::format("{:.3f}", OverheadMs())}};
    ex_->BeginStream(200, "text/event-stream", h);
    stream_ok_ = ex_->WriteStream(SseChunk(id_, created_, expert.config.name, "assistant", "", ""));
    return stream_ok_;
  }

  void Succeed(const ExpertSlot& expert, const ChatResult& r) {
    log_.tokens_in = r.usage.prompt_tokens;
    log_.tokens_out = r.usage.completion_tokens;
    log_.cost_usd = r.cost_usd;
    if (r.recorded_score) {
      s_.recorder->RecordOutcome({.prompt = std::string(LastUserText(request_.chat)),
                                  .expert = expert.config.name,
                                  .score = *r.recorded_score,
                                  .cost_usd = r.cost_usd,
                                  .tokens_in = r.usage.prompt_tokens,
                                  .tokens_out = r.usage.completion_tokens,
                                  .latency_ms = r.latency_ms});
    }
    if (request_.stream) {
      // A backend that delivered nothing through the sink (or an empty answer) still gets a well-formed stream.
      if (!stream_started_ && StartStream(expert)) {
        if (!r.tool_calls.empty()) {
          ex_->WriteStream(SseToolCallsChunk(id_, created_, expert.config.name, r.content, r.tool_calls));
        } else if (!r.content.empty()) {
          ex_->WriteStream(SseChunk(id_, created_, expert.config.name, "", r.content, ""));
        }
      }
      ex_->WriteStream(SseChunk(id_, created_, expert.config.name, "", "", r.finish_reason, r.usage, r.cost_usd));
      ex_->WriteStream(kSseDone);
      ex_->EndStream();
      return Log(200);
    }
    HttpResponse resp = MakeHttpResponse(200, CompletionJson(id_, created_, expert.config.name, r));
    resp.headers = {{"x-baton-expert", expert.config.name}, {"x-baton-cost-usd", FormatUsd(r.cost_usd)}};
    Finish(std::move(resp));
  }

  void Finish(HttpResponse resp) {
    const int status = resp.status;
    resp.headers.emplace_back("x-baton-overhead-ms", fmt::format("{:.3f}", OverheadMs()));
    ex_->Respond(std::move(resp));
    Log(status);
  }

  // Time spent in the gateway so far, upstream calls excluded (the one under way included).
  double OverheadMs() const {
    return MsSince(req_.arrived) - upstream_ms_ - (in_attempt_ ? MsSince(attempt_start_) : 0);
  }

  void Log(int status) {
    log_.http_status = status;
    log_.latency_ms = MsSince(req_.arrived);
    s_.recorder->LogRequest(std::move(log_));
  }

 public:
  // Runs `f`, turning an exception into a 500 answer: nothing may escape into the event loop.
  template <typename F>
  static void Guarded(ChatCall& call, F&& f) {
    try {
      f();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "baton serve: internal error: %s\n", e.what());
      call.ex_->Respond(ErrorResponse(500, "internal error", "server_error", "internal_error"));
    } catch (...) {
      call.ex_->Respond(ErrorResponse(500, "internal error", "server_error", "internal_error"));
    }
  }

 private:
  Gateway::State& s_;
  HttpRequest req_;
  std::shared_ptr<HttpExchange> ex_;
  GatewayRequest request_;
  size_t key_ = 0;
  std::atomic<int>* key_slot_ = nullptr;  // this key's in-flight count, held until the call ends
  RequestLogRecord log_;
  std::string id_ = NewCompletionId();
  int64_t created_ =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  // The plan and where we are in it.
  std::vector<Candidate> plan_;
  size_t next_ = 0, current_ = 0;
  bool routed_ = false, attempted_ = false, budget_refused_ = false;
  double reserved_ = 0;
  std::string budget_message_;
  Status last_error_;
  Clock::time_point attempt_start_;
  double upstream_ms_ = 0;
  bool in_attempt_ = false, stream_started_ = false, stream_ok_ = true;
};

}  // namespace

void HandleChatCompletions(Gateway::State& s, HttpRequest req, std::shared_ptr<HttpExchange> ex) {
  auto call = std::make_shared<ChatCall>(s, std::move(req), std::move(ex));
  ChatCall::Guarded(*call, [&] { call->Run(); });
}

}  // namespace baton::gateway
