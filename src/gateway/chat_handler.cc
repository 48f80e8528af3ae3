// POST /v1/chat/completions: authenticate, parse, plan, reserve, call (with fallback), settle, answer, record.
// Everything runs on the connection's event loop: the expert calls are asynchronous (ExpertBackend::CompleteAsync)
// and their results come back to the same loop, so a request never changes thread unless an expert can only block.
// This is the gateway's error boundary for chat requests: every path ends in exactly one answer through the
// HttpExchange, and no exception escapes into the loop.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <memory>
#include <optional>

#include <fmt/format.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

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
  const char* what = "failed";  // what the client is told, after "expert 'X' "
};

// What a client learns of an upstream failure: a category, never the upstream's own text (which can echo the
// gateway's upstream API key, name internal URLs or run to megabytes). The details go to the gateway's log.
UpstreamError MapUpstream(const Status& st) {
  switch (st.code()) {
    case StatusCode::kDeadlineExceeded:
      return {504, "server_error", "upstream_timeout", "did not answer in time"};
    case StatusCode::kResourceExhausted:
      return {503, "server_error", "upstream_overloaded", "is overloaded (rate limited upstream); retry later"};
    case StatusCode::kInvalidArgument:
      return {400, "invalid_request_error", "upstream_rejected", "rejected the request"};
    case StatusCode::kUnavailable:
      return {502, "server_error", "upstream_unavailable", "is unavailable"};
    default:
      return {502, "server_error", "upstream_error", "failed"};
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

// A stream's last event (the usage chunk, or an error event), marked when the request's log row could not be written.
std::string MarkUnrecorded(std::string event, bool recorded) {
  return recorded ? event : SseMarkUnrecorded(std::move(event));
}

// A log line never carries more than this much of an upstream's message.
constexpr size_t kMaxLoggedError = 600;

// The HTTP status logged for a request whose client went away before its answer was complete (nginx's convention).
constexpr int kClientClosedRequest = 499;

// One chat request, alive until its last callback has run (shared by the callbacks it hands out).
//
// Every way a request ends goes through Conclude: its log row (and the spend settled before it) is handed to the
// recorder, and the answer is sent only once the recorder has committed them, so an answered request is never lost
// by a crash of the gateway and its spend cannot be spent again after a restart.
class ChatCall : public std::enable_shared_from_this<ChatCall> {
 public:
  ChatCall(Gateway::State& s, HttpRequest req, std::shared_ptr<HttpExchange> ex)
      : s_(s), req_(std::move(req)), ex_(std::move(ex)) {}
  ~ChatCall() {
    if (key_slot_ != nullptr) key_slot_->fetch_sub(1);
  }

  void Run() {
    log_.request_id = id_;
    HttpResponse err;
    std::optional<size_t> key = Authenticate(s_, req_, &err);
    if (!key) return Finish(std::move(err));
    key_ = *key;
    const ClientKeyConfig& kc = s_.config.keys[key_];
    log_.client_key_hash = kc.key_sha256;
    KeyState& ks = *s_.key_state[key_];
    if (!ks.limiter.Allow()) {
      HttpResponse r =
          ErrorResponse(429, "rate limit exceeded for this key; slow down", "rate_limit_error", "rate_limit_exceeded");
      r.headers.emplace_back("Retry-After", std::to_string(ks.limiter.RetryAfterSeconds()));
      return Finish(std::move(r));
    }
    key_slot_ = &ks.in_flight;
    if (key_slot_->fetch_add(1) >= kc.max_concurrency && kc.max_concurrency > 0) {
      HttpResponse r =
          ErrorResponse(429,
                        fmt::format("this key already has {} requests in flight (its max_concurrency); retry later",
                                    kc.max_concurrency),
                        "rate_limit_error", "concurrency_limit_exceeded");
      r.headers.emplace_back("Retry-After", "1");
      return Finish(std::move(r));
    }
    StatusOr<GatewayRequest> parsed = ParseChatCompletionRequest(req_.body);
    if (!parsed.ok()) {
      return Finish(ErrorResponse(400, parsed.status().message(), "invalid_request_error", "invalid_request"));
    }
    request_ = std::move(*parsed);
    log_.requested_model = request_.model;
    if (s_.config.record_prompts) log_.prompt = std::string(LastUserText(request_.chat));
    if (request_.model.starts_with(kArchitecturePrefix)) return RunArchitecture();
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
      const ExpertSlot& expert = s_.router->experts()[c.expert];
      // The call as it will be sent, and what it reserves. An expert with list prices reserves the most the call can
      // cost (PriceBound) and gets an explicit max_tokens when the client gave none, so the upstream cannot produce
      // more than was reserved (and the expert clamps usage reported beyond it). An expert without prices can only
      // be estimated: it reserves the router's predicted cost x reserve_factor, and the ledger never charges past
      // the budget should the real cost be higher.
      ChatRequest call = request_.chat;
      const bool priced = expert.config.usd_per_mtok_out || expert.config.usd_per_mtok_in;
      if (priced && !call.max_tokens) call.max_tokens = MaxTokensFor(expert.config, call);
      if (priced && !prompt_bound_) prompt_bound_ = PromptTokenBound(call);  // the same for every candidate
      reserved_ =
          priced ? s_.router->PriceBound(c.expert, call, *prompt_bound_) : c.predicted_cost * s_.config.reserve_factor;
      StatusOr<Reservation> reserved = s_.ledger->Reserve(key_, reserved_);
      if (!reserved.ok()) {
        if (reserved.status().code() == StatusCode::kUnavailable) return BudgetUnavailable(reserved.status());
        budget_refused_ = true;
        if (budget_message_.empty()) budget_message_ = reserved.status().message();
        continue;  // the next best expert may be cheap enough
      }
      reservation_ = *reserved;
      if (attempted_) s_.metrics.CountFallback();
      attempted_ = true;
      if (routed_) s_.metrics.CountRoutingDecision(expert.config.name);
      log_.expert = expert.config.name;
      answer_model_ = expert.config.name;
      current_ = c.expert;
      ++next_;
      return Attempt(expert, std::move(call));
    }
    GiveUp();
  }

  void Attempt(const ExpertSlot& expert, ChatRequest call) {
    attempt_start_ = Clock::now();
    in_attempt_ = true;
    StreamSink sink;
    if (request_.stream) {
      sink = [self = shared_from_this()](const StreamDelta& delta) { return self->OnPiece(delta); };
    }
    expert.backend->CompleteAsync(
        std::move(call), std::move(sink), AsyncContext{&ex_->loop(), s_.blocking.get()},
        [self = shared_from_this()](StatusOr<ChatResult> r) { Guarded(*self, [&] { self->OnResult(std::move(r)); }); });
  }

  bool OnPiece(const StreamDelta& delta) {
    if (delta.empty()) return true;
    if (!StartStream()) {
      client_gone_ = true;  // the upstream call is cancelled; what it produced so far is still billed
      return false;
    }
    // Tool-call deltas (with any content) go out as delta.tool_calls, content alone as delta.content.
    const std::string chunk = delta.tool_calls != nullptr
                                  ? SseToolCallsChunk(id_, created_, answer_model_, delta.content, *delta.tool_calls)
                                  : SseChunk(id_, created_, answer_model_, "", delta.content, "");
    if (!ex_->WriteStream(chunk)) {
      client_gone_ = true;
      return false;
    }
    ++relayed_pieces_;
    relayed_bytes_ += delta.content.size() + (delta.tool_calls != nullptr ? 8 : 0);
    return true;
  }

  void OnResult(StatusOr<ChatResult> r) {
    upstream_ms_ += MsSince(attempt_start_);
    in_attempt_ = false;
    const ExpertSlot& expert = s_.router->experts()[current_];
    if (r.ok()) {
      if (!(r->cost_usd >= 0) || !std::isfinite(r->cost_usd)) r->cost_usd = 0;
      if (!r->usage_note.empty()) {  // the expert clamped usage the upstream misreported: charged the bound
        std::fprintf(stderr, "baton serve: request %s: expert '%s': %s\n", id_.c_str(), expert.config.name.c_str(),
                     r->usage_note.substr(0, kMaxLoggedError).c_str());
        s_.metrics.CountUsageAnomaly(expert.config.name);
        AddNote("usage_clamped");
      }
      const double charged = s_.ledger->Settle(key_, reservation_, r->cost_usd);
      if (charged < r->cost_usd) {
        std::fprintf(stderr,
                     "baton serve: request %s: expert '%s' cost $%.9g, more than key '%s' had left; charged $%.9g\n",
                     id_.c_str(), expert.config.name.c_str(), r->cost_usd, s_.config.keys[key_].name.c_str(), charged);
        AddNote("budget_capped");
      }
      r->cost_usd = charged;
      s_.metrics.AddSpend(expert.config.name, s_.config.keys[key_].name, charged);
      if (client_gone_) return Cancelled(expert, &*r);
      return Succeed(expert, *r);
    }
    if (client_gone_) return Cancelled(expert, nullptr);
    s_.ledger->Settle(key_, reservation_, 0);
    last_error_ = r.status();
    s_.metrics.CountUpstreamFailure(expert.config.name, StatusCodeName(last_error_.code()));
    // Upstream messages can quote the prompt (replay does), so they are logged only when prompts may be recorded.
    const std::string detail = s_.config.record_prompts ? last_error_.ToString().substr(0, kMaxLoggedError)
                                                        : std::string(StatusCodeName(last_error_.code()));
    std::fprintf(stderr, "baton serve: request %s: expert '%s' failed: %s\n", id_.c_str(), expert.config.name.c_str(),
                 detail.c_str());
    // Once the stream has begun another expert cannot take over.
    if (stream_started_ || !routed_ || !Retryable(last_error_)) return GiveUp();
    Next();
  }

  // The client went away while the answer streamed. The upstream produced (and bills) what was relayed, so that is
  // charged: the backend's own result when it finished anyway, else list prices x (the prompt's estimated tokens +
  // the pieces relayed, each at least one token, or a token per 4 bytes when that is more). Logged as a client
  // cancellation (499), not as an upstream failure.
  void Cancelled(const ExpertSlot& expert, ChatResult* finished) {
    if (finished == nullptr) {
      const double prompt_tokens = static_cast<double>(EstimatedPromptTokens());
      const double completion_tokens =
          static_cast<double>(std::max<int64_t>(relayed_pieces_, (relayed_bytes_ + 3) / 4));
      const double estimate = s_.router->PriceOf(current_, prompt_tokens, completion_tokens);
      log_.cost_usd = s_.ledger->Settle(key_, reservation_, std::min(estimate, reserved_));
      log_.tokens_in = static_cast<int64_t>(prompt_tokens);
      log_.tokens_out = static_cast<int64_t>(completion_tokens);
      s_.metrics.AddSpend(expert.config.name, s_.config.keys[key_].name, *log_.cost_usd);
    } else {
      log_.cost_usd = finished->cost_usd;
      log_.tokens_in = finished->usage.prompt_tokens;
      log_.tokens_out = finished->usage.completion_tokens;
    }
    s_.metrics.CountClientCancellation(expert.config.name);
    AddNote("client_cancelled");
    Conclude(kClientClosedRequest, [self = shared_from_this()](bool) { self->ex_->EndStream(); });
  }

  // Tokens of the prompt as a tokenizer of English text would count them (about 4 bytes each).
  int64_t EstimatedPromptTokens() const {
    int64_t bytes = 0;
    for (const auto& m : request_.chat.messages) bytes += static_cast<int64_t>(m.content.size()) + 16;
    return (bytes + 3) / 4;
  }

  // The ledger cannot tell whether the key may spend (its shared database is down): the request is refused, never
  // let through unbudgeted. 503 with Retry-After, so clients and load balancers try again (another replica, later).
  void BudgetUnavailable(const Status& st) {
    std::fprintf(stderr, "baton serve: request %s: budget unavailable: %s\n", id_.c_str(),
                 st.message().substr(0, kMaxLoggedError).c_str());
    s_.metrics.CountBudgetUnavailable();
    AddNote("budget_unavailable");
    HttpResponse r =
        ErrorResponse(503, "the budget store is unavailable, so this request cannot be budgeted; retry later",
                      "api_error", "budget_store_unavailable");
    r.headers.emplace_back("Retry-After", "1");
    Finish(std::move(r));
  }

  // No expert answered: a budget refusal, or the last upstream error.
  void GiveUp() {
    if (!attempted_ && budget_refused_) {
      HttpResponse r = ErrorResponse(429, budget_message_, "insufficient_quota", "budget_exhausted");
      // Worth retrying only when calls in flight hold reservations that may come back; an exhausted budget is not.
      if (s_.ledger->Get(key_).reserved_usd > 0) r.headers.emplace_back("Retry-After", "1");
      return Finish(std::move(r));
    }
    const UpstreamError u = MapUpstream(last_error_);
    const std::string message =
        fmt::format("expert '{}' {} (request {}; the gateway's log has the details)", log_.expert, u.what, id_);
    AddNote(std::string("upstream_") + StatusCodeName(last_error_.code()));
    if (stream_started_) {  // headers are gone: report in-band, then end the stream properly
      return Conclude(u.http, [self = shared_from_this(), message, u](bool recorded) {
        self->ex_->WriteStream(MarkUnrecorded(SseError(message, u.type, u.code), recorded));
        self->ex_->WriteStream(kSseDone);
        self->ex_->EndStream();
      });
    }
    HttpResponse r = ErrorResponse(u.http, message, u.type, u.code);
    if (u.http == 503) r.headers.emplace_back("Retry-After", "1");
    Finish(std::move(r));
  }

  // Sends the headers and the role chunk once, before the first content, naming answer_model_.
  bool StartStream() {
    if (stream_started_) return stream_ok_;
    stream_started_ = true;
    Headers h = {{"x-request-id", id_},
                 {"x-baton-expert", answer_model_},
                 {"x-baton-overhead-ms", fmt::format("{:.3f}", OverheadMs())}};
    ex_->BeginStream(200, "text/event-stream", h);
    stream_ok_ = ex_->WriteStream(SseChunk(id_, created_, answer_model_, "assistant", "", ""));
    return stream_ok_;
  }

  void Succeed(const ExpertSlot& expert, const ChatResult& r) {
    log_.tokens_in = r.usage.prompt_tokens;
    log_.tokens_out = r.usage.completion_tokens;
    log_.cost_usd = r.cost_usd;
    if (r.recorded_score) {
      s_.recorder->RecordOutcome(
          {.prompt = s_.config.record_prompts ? std::string(LastUserText(request_.chat)) : std::string(),
           .request_id = id_,
           .expert = expert.config.name,
           .score = *r.recorded_score,
           .cost_usd = r.cost_usd,
           .tokens_in = r.usage.prompt_tokens,
           .tokens_out = r.usage.completion_tokens,
           .latency_ms = r.latency_ms});
    }
    if (request_.stream) {
      // A backend that delivered nothing through the sink (or an empty answer) still gets a well-formed stream.
      if (!stream_started_ && StartStream()) {
        if (!r.tool_calls.empty()) {
          ex_->WriteStream(SseToolCallsChunk(id_, created_, expert.config.name, r.content, r.tool_calls));
        } else if (!r.content.empty()) {
          ex_->WriteStream(SseChunk(id_, created_, expert.config.name, "", r.content, ""));
        }
      }
      // The last chunk (usage and cost) and [DONE] wait until the spend is durable.
      return Conclude(200, [self = shared_from_this(), name = expert.config.name, r](bool recorded) {
        self->ex_->WriteStream(MarkUnrecorded(
            SseChunk(self->id_, self->created_, name, "", "", r.finish_reason, r.usage, r.cost_usd), recorded));
        self->ex_->WriteStream(kSseDone);
        self->ex_->EndStream();
      });
    }
    HttpResponse resp = MakeHttpResponse(200, CompletionJson(id_, created_, expert.config.name, r));
    resp.headers = {{"x-baton-expert", expert.config.name}, {"x-baton-cost-usd", FormatUsd(r.cost_usd)}};
    Finish(std::move(resp));
  }

  // ---- Archon: "model": "archon/<name>" runs a configured architecture (baton/archon.h) on this request's loop.
  //
  // The key reserves the architecture's cost bound (ArchitectureBound: every call at its expert's list prices with
  // its max_tokens, the architecture's max_cost_usd when that is lower) before the first call and settles the sum of
  // every call made, failed ones included. A component that fails degrades inside the executor; the request fails
  // only when no candidate is left. With stream: true the final layer's answer streams when it is one call, else it
  // is sent in one chunk when the run ends.
  void RunArchitecture() {
    const std::string name = request_.model.substr(kArchitecturePrefix.size());
    arch_ = FindArchitecture(s_, name);
    if (arch_ == nullptr) {
      return Finish(ErrorResponse(
          404, fmt::format("model '{}' does not exist: no architecture '{}' is configured", request_.model, name),
          "invalid_request_error", "model_not_found"));
    }
    log_.expert = request_.model;
    answer_model_ = request_.model;
    const archon::ArchitectureCost bound = archon::ArchitectureBound(arch_->arch, s_.archon_experts, request_.chat);
    if (bound.calls > arch_->config.max_calls) {
      return Finish(ErrorResponse(
          400,
          fmt::format("architecture '{}' may make {} calls for this request, more than its max_calls ({})", name,
                      bound.calls, arch_->config.max_calls),
          "invalid_request_error", "invalid_request"));
    }
    reserved_ = arch_->config.max_cost_usd ? std::min(bound.cost_usd, *arch_->config.max_cost_usd) : bound.cost_usd;
    StatusOr<Reservation> reserved = s_.ledger->Reserve(key_, reserved_);
    if (!reserved.ok()) {
      if (reserved.status().code() == StatusCode::kUnavailable) return BudgetUnavailable(reserved.status());
      budget_refused_ = true;
      budget_message_ = reserved.status().message();
      return GiveUp();
    }
    reservation_ = *reserved;
    attempted_ = true;
    archon::ArchonRunOptions o;
    o.limits = {.max_calls = arch_->config.max_calls,
                .max_cost_usd = reserved_ > 0 ? reserved_ : arch_->config.max_cost_usd.value_or(0),
                .max_concurrency = arch_->config.max_concurrency,
                .timeout = arch_->config.timeout};
    o.run_id = id_;
    if (s_.router->has_router()) {
      o.scorer = [&router = *s_.router](std::string_view query, const std::vector<std::string>& experts) {
        return router.PredictedScores(query, experts);
      };
    }
    o.on_call = [this, self = shared_from_this()](const ArchonCallRecord& c) {
      archon_spent_ += std::max(0.0, c.cost_usd);
      archon_tokens_in_ += c.prompt_tokens;
      archon_tokens_out_ += c.completion_tokens;
      // The status is "ok" or "CODE: message"; metrics are labelled by the code only, so they stay bounded.
      const std::string status = c.status.substr(0, c.status.find(':'));
      s_.metrics.CountArchonCall(arch_->config.name, c.layer, c.component, status);
      if (status != "ok" && !c.expert.empty()) s_.metrics.CountUpstreamFailure(c.expert, status);
      archon_trace_.push_back(c);
    };
    if (request_.stream) {
      o.final_sink = [self = shared_from_this()](const StreamDelta& delta) { return self->OnPiece(delta); };
    }
    attempt_start_ = Clock::now();
    in_attempt_ = true;
    archon::RunArchitectureAsync(arch_->arch, s_.archon_experts, request_.chat,
                                 AsyncContext{&ex_->loop(), s_.blocking.get()}, std::move(o),
                                 [self = shared_from_this()](StatusOr<archon::ArchonResult> r) {
                                   Guarded(*self, [&] { self->OnArchitectureDone(std::move(r)); });
                                 });
  }

  void OnArchitectureDone(StatusOr<archon::ArchonResult> r) {
    upstream_ms_ += MsSince(attempt_start_);
    in_attempt_ = false;
    const double charged = s_.ledger->Settle(key_, reservation_, archon_spent_);
    if (charged < archon_spent_) AddNote("budget_capped");
    s_.metrics.AddSpend(request_.model, s_.config.keys[key_].name, charged);
    log_.cost_usd = charged;
    log_.tokens_in = archon_tokens_in_;
    log_.tokens_out = archon_tokens_out_;
    // The run's own trace when it finished (it carries component-level parse notes), else what on_call saw.
    std::vector<ArchonCallRecord> trace = r.ok() ? r->trace : std::move(archon_trace_);
    if (!trace.empty()) s_.recorder->LogArchonCalls(std::move(trace));
    if (!r.ok()) {
      s_.metrics.CountArchonRun(arch_->config.name, "failed");
      last_error_ = r.status();
      if (client_gone_) return ArchitectureCancelled();
      std::fprintf(stderr, "baton serve: request %s: architecture '%s' failed: %s\n", id_.c_str(),
                   arch_->config.name.c_str(), last_error_.ToString().substr(0, kMaxLoggedError).c_str());
      return GiveUp();
    }
    const bool degraded =
        !r->stop_reason.empty() || std::any_of(r->trace.begin(), r->trace.end(), [](const ArchonCallRecord& c) {
          return c.status != "ok" || c.parse.starts_with("failed");
        });
    s_.metrics.CountArchonRun(arch_->config.name, degraded ? "degraded" : "ok");
    if (degraded) AddNote("archon_degraded");
    if (client_gone_) return ArchitectureCancelled();
    ChatResult answer;
    answer.content = std::move(r->answer);
    answer.usage = {archon_tokens_in_, archon_tokens_out_};
    answer.cost_usd = charged;
    const Headers extra = {{"x-baton-architecture-calls", std::to_string(r->calls)},
                           {"x-baton-answer-expert", r->answer_expert}};
    if (request_.stream) {
      if (StartStream() && !r->streamed && !answer.content.empty()) {
        ex_->WriteStream(SseChunk(id_, created_, answer_model_, "", answer.content, ""));
      }
      return Conclude(200, [self = shared_from_this(), answer](bool recorded) {
        self->ex_->WriteStream(MarkUnrecorded(SseChunk(self->id_, self->created_, self->answer_model_, "", "",
                                                       answer.finish_reason, answer.usage, answer.cost_usd),
                                              recorded));
        self->ex_->WriteStream(kSseDone);
        self->ex_->EndStream();
      });
    }
    HttpResponse resp = MakeHttpResponse(200, CompletionJson(id_, created_, answer_model_, answer));
    resp.headers = {{"x-baton-expert", answer_model_}, {"x-baton-cost-usd", FormatUsd(answer.cost_usd)}};
    resp.headers.insert(resp.headers.end(), extra.begin(), extra.end());
    Finish(std::move(resp));
  }

  // A streaming client went away during the run: what the calls cost is charged (above); logged as 499.
  void ArchitectureCancelled() {
    s_.metrics.CountClientCancellation(request_.model);
    AddNote("client_cancelled");
    Conclude(kClientClosedRequest, [self = shared_from_this()](bool) { self->ex_->EndStream(); });
  }

  // Answers with `resp` once the request is recorded.
  void Finish(HttpResponse resp) {
    const int status = resp.status;
    Conclude(status, [self = shared_from_this(), resp = std::move(resp)](bool recorded) mutable {
      resp.headers.emplace_back("x-request-id", self->id_);
      resp.headers.emplace_back("x-baton-overhead-ms", fmt::format("{:.3f}", self->OverheadMs()));
      if (!recorded) resp.headers.emplace_back("x-baton-recorded", "false");
      self->ex_->Respond(std::move(resp));
    });
  }

  // Logs the request with `status`, then runs `reply(recorded)` on the request's loop once the recorder has committed
  // the log row and the budget state settled before it. `recorded` is false when the row could not be written (a full
  // queue, a failed commit): the answer then says so rather than waiting.
  void Conclude(int status, std::function<void(bool recorded)> reply) {
    log_.http_status = status;
    log_.latency_ms = MsSince(req_.arrived);
    const bool queued = s_.recorder->LogRequest(std::move(log_));
    boost::asio::io_context& loop = ex_->loop();
    s_.recorder->WhenDurable([self = shared_from_this(), queued, &loop, reply = std::move(reply)](bool committed) {
      boost::asio::post(loop, [self, ok = queued && committed, reply] { Guarded(*self, [&] { reply(ok); }); });
    });
  }

  void AddNote(const std::string& note) { log_.note += (log_.note.empty() ? "" : ",") + note; }

  // Time spent in the gateway so far, upstream calls excluded (the one under way included).
  double OverheadMs() const {
    return MsSince(req_.arrived) - upstream_ms_ - (in_attempt_ ? MsSince(attempt_start_) : 0);
  }

 public:
  // Runs `f`, turning an exception into a 500 answer: nothing may escape into the event loop.
  template <typename F>
  static void Guarded(ChatCall& call, F&& f) {
    try {
      f();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "baton serve: request %s: internal error: %s\n", call.id_.c_str(), e.what());
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
  std::string id_ = NewCompletionId();  // the completion's id, also the request's id (x-request-id)
  int64_t created_ =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  // The plan and where we are in it.
  std::vector<Candidate> plan_;
  size_t next_ = 0, current_ = 0;
  bool routed_ = false, attempted_ = false, budget_refused_ = false;
  double reserved_ = 0;                  // the amount the current call reserves
  Reservation reservation_;              // what the ledger holds for it
  std::optional<int64_t> prompt_bound_;  // PromptTokenBound of the request, once a priced candidate needs it
  std::string budget_message_;
  Status last_error_;
  Clock::time_point attempt_start_;
  double upstream_ms_ = 0;
  bool in_attempt_ = false, stream_started_ = false, stream_ok_ = true;
  std::string answer_model_;  // the model named in the answer: the expert's name, or "archon/<name>"
  // An architecture's run (model "archon/<name>"): what its calls cost and used so far, and their traces.
  const ServedArchitecture* arch_ = nullptr;
  double archon_spent_ = 0;
  int64_t archon_tokens_in_ = 0, archon_tokens_out_ = 0;
  std::vector<ArchonCallRecord> archon_trace_;
  // What reached a streaming client before it went away.
  bool client_gone_ = false;
  int64_t relayed_pieces_ = 0, relayed_bytes_ = 0;
};

}  // namespace

void HandleChatCompletions(Gateway::State& s, HttpRequest req, std::shared_ptr<HttpExchange> ex) {
  auto call = std::make_shared<ChatCall>(s, std::move(req), std::move(ex));
  ChatCall::Guarded(*call, [&] { call->Run(); });
}

}  // namespace baton::gateway
