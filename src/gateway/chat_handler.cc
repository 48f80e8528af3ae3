// POST /v1/chat/completions: authenticate, parse, plan, reserve, call (with fallback), settle, answer, record.
// This is the gateway's error boundary for chat requests: every path ends in exactly one answer through the
// HttpExchange, and no exception escapes.
#include <chrono>
#include <cstdio>

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

std::string FormatUsd(double v) {
  return fmt::format("{:.9f}", v);
}

class ChatCall {
 public:
  ChatCall(Gateway::State& s, HttpRequest req, std::shared_ptr<HttpExchange> ex)
      : s_(s), req_(std::move(req)), ex_(std::move(ex)) {}

  void Run() {
    HttpResponse err;
    std::optional<size_t> key = Authenticate(s_, req_, &err);
    if (!key) return Finish(std::move(err));
    key_ = *key;
    log_.client_key_hash = s_.config.keys[key_].key_sha256;
    if (!s_.limiters[key_]->Allow()) {
      return Finish(
          ErrorResponse(429, "rate limit exceeded for this key; slow down", "rate_limit_error", "rate_limit_exceeded"));
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
    Call(*plan);
  }

 private:
  void Call(const std::vector<Candidate>& plan) {
    const bool routed = request_.model == "baton";
    Status last_error;
    bool attempted = false;
    bool budget_refused = false;
    std::string budget_message;
    for (const Candidate& c : plan) {
      const ExpertSlot& expert = s_.router->experts()[c.expert];
      // Reserve an upper estimate: the prediction with a safety factor, or the list-price bound when larger.
      const double reserve =
          std::max(c.predicted_cost * s_.config.reserve_factor, s_.router->PriceBound(c.expert, request_.chat));
      Status reserved = s_.ledger->Reserve(key_, reserve);
      if (!reserved.ok()) {
        budget_refused = true;
        if (budget_message.empty()) budget_message = reserved.message();
        continue;  // the next best expert may be cheap enough
      }
      if (attempted) s_.metrics.CountFallback();
      attempted = true;
      if (routed) s_.metrics.CountRoutingDecision(expert.config.name);
      log_.expert = expert.config.name;
      StatusOr<ChatResult> r = Attempt(expert);
      if (r.ok()) {
        s_.ledger->Settle(key_, reserve, r->cost_usd);
        s_.metrics.AddSpend(expert.config.name, s_.config.keys[key_].name, r->cost_usd);
        return Succeed(expert, *r);
      }
      s_.ledger->Settle(key_, reserve, 0);
      last_error = r.status();
      s_.metrics.CountUpstreamFailure(expert.config.name, StatusCodeName(last_error.code()));
      // Upstream messages can quote the prompt (replay does), so they are logged only when prompts may be recorded.
      std::fprintf(stderr, "baton serve: expert '%s' failed: %s\n", expert.config.name.c_str(),
                   s_.config.record_prompts ? last_error.ToString().c_str() : StatusCodeName(last_error.code()));
      if (streamed_any_ || !routed || !Retryable(last_error)) break;
    }
    if (!attempted && budget_refused) {
      return Finish(ErrorResponse(429, budget_message, "insufficient_quota", "budget_exhausted"));
    }
    const UpstreamError u = MapUpstream(last_error);
    const std::string message = fmt::format("expert '{}' failed: {}", log_.expert, last_error.message());
    if (stream_started_) {  // headers are gone: report in-band, then end the stream properly
      ex_->WriteStream(SseError(message, u.type, u.code));
      ex_->WriteStream(kSseDone);
      ex_->EndStream();
      return Log(u.http);
    }
    Finish(ErrorResponse(u.http, message, u.type, u.code));
  }

  StatusOr<ChatResult> Attempt(const ExpertSlot& expert) {
    const Clock::time_point t = Clock::now();
    StatusOr<ChatResult> r = Status::Internal("not called");
    if (request_.stream) {
      StreamSink sink = [this, &expert](std::string_view delta) -> bool {
        if (delta.empty()) return true;
        if (!StartStream(expert)) return false;
        streamed_any_ = true;
        return ex_->WriteStream(SseChunk(id_, created_, expert.config.name, "", delta, ""));
      };
      r = expert.backend->Complete(request_.chat, &sink);
    } else {
      r = expert.backend->Complete(request_.chat);
    }
    upstream_ms_ += MsSince(t);
    return r;
  }

  // Sends the headers and the role chunk once, before the first content.
  bool StartStream(const ExpertSlot& expert) {
    if (stream_started_) return stream_ok_;
    stream_started_ = true;
    Headers h = {{"x-baton-expert", expert.config.name},
                 {"x-baton-overhead-ms", fmt::format("{:.3f}", MsSince(req_.arrived) - upstream_ms_)}};
    stream_ok_ = ex_->BeginStream(200, "text/event-stream", h) &&
                 ex_->WriteStream(SseChunk(id_, created_, expert.config.name, "assistant", "", ""));
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
      if (!stream_started_ && StartStream(expert) && !r.content.empty()) {
        ex_->WriteStream(SseChunk(id_, created_, expert.config.name, "", r.content, ""));
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
    resp.headers.emplace_back("x-baton-overhead-ms", fmt::format("{:.3f}", MsSince(req_.arrived) - upstream_ms_));
    ex_->Respond(std::move(resp));
    Log(status);
  }

  void Log(int status) {
    log_.http_status = status;
    log_.latency_ms = MsSince(req_.arrived);
    s_.recorder->LogRequest(std::move(log_));
  }

  Gateway::State& s_;
  HttpRequest req_;
  std::shared_ptr<HttpExchange> ex_;
  GatewayRequest request_;
  size_t key_ = 0;
  RequestLogRecord log_;
  std::string id_ = NewCompletionId();
  int64_t created_ =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  double upstream_ms_ = 0;
  bool stream_started_ = false, stream_ok_ = true, streamed_any_ = false;
};

}  // namespace

void HandleChatCompletions(Gateway::State& s, HttpRequest req, std::shared_ptr<HttpExchange> ex) {
  std::shared_ptr<HttpExchange> keep = ex;
  try {
    ChatCall(s, std::move(req), std::move(ex)).Run();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "baton serve: internal error: %s\n", e.what());
    keep->Respond(ErrorResponse(500, "internal error", "server_error", "internal_error"));
  } catch (...) {
    keep->Respond(ErrorResponse(500, "internal error", "server_error", "internal_error"));
  }
}

}  // namespace baton::gateway
