// ExpertBackend: one LLM endpoint (or local model) behind one small interface.
//
// Kinds: "openai" (any OpenAI-compatible /v1/chat/completions over HTTP), "replay" (recorded answers of a dataset),
// "llamacpp" (a local GGUF file through llama.cpp's C API). Retries, metering and concurrency limits are wrappers
// (decorators) around any backend, so each backend stays small. Backends are created by name from a configuration
// (see MakeExpert) and owned by the gateway through unique_ptr.
//
// Example:
//   BATON_ASSIGN_OR_RETURN(std::unique_ptr<ExpertBackend> e, MakeExpert(config));
//   ChatRequest req;
//   req.messages = {{"user", "What is 2+2?"}};
//   BATON_ASSIGN_OR_RETURN(ChatResult r, e->Complete(req));
//
// Asynchronous use (the gateway): CompleteAsync starts a call on the caller's event loop and returns at once; the
// answer arrives as a callback on that loop. Backends that talk to the network (openai) do the whole call on the
// loop, so a request never changes thread; backends that can only block (llamacpp) run on a blocking pool and post
// their results back; in-memory ones (replay) answer on the loop.
//
// Thread-safety: every ExpertBackend is safe to call from many threads at once.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include <nlohmann/json.hpp>

#include "baton/status.h"

namespace boost::asio {
class io_context;
class thread_pool;
}  // namespace boost::asio

namespace baton {

struct ChatMessage {
  std::string role;     // "system", "developer", "user", "assistant", "tool"
  std::string content;  // the text (what routing and the non-OpenAI backends read); "" when null
  // The message's other fields as the client sent them ("tool_calls", "tool_call_id", "name", ...), reproduced
  // as-is for OpenAI-compatible upstreams; other backends ignore them.
  nlohmann::json fields = nlohmann::json::object();
  bool content_null = false;  // the client sent `content: null` (or none: an assistant message with tool_calls)
};

// Per-request options (what a client sends). Startup options of a backend live in ExpertConfig.
struct ChatRequest {
  std::vector<ChatMessage> messages;
  std::optional<int64_t> max_tokens;                // Default: the backend's
  std::optional<double> temperature;                // Default: the backend's
  nlohmann::json extra = nlohmann::json::object();  // other OpenAI fields, passed through to openai backends
  std::chrono::milliseconds timeout{60'000};        // whole call, retries included. Default: 60 s
};

struct ChatUsage {
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
};

struct ChatResult {
  std::string content;
  // The assistant's tool calls, in OpenAI's shape: [{"id", "type": "function", "function": {"name", "arguments"}}].
  // Empty when it called none (finish_reason is then usually not "tool_calls").
  nlohmann::json tool_calls = nlohmann::json::array();
  std::string finish_reason = "stop";
  // The tokens charged. The openai backend does not take an upstream's count on trust (a wrong one would bill a
  // client's key a negative or absurd cost): it clamps completion_tokens to [0, the max_tokens it sent] (without
  // one, to [0, 10,000,000]) and prompt_tokens to [0, an upper bound of the prompt: the UTF-8 bytes of the messages'
  // contents, of their other fields and of the pass-through fields (tools, ...) as serialised, + 16 per message
  // + 64]; a count that is not a number counts as 0, a fractional one is rounded up. The cost comes from the
  // clamped counts.
  ChatUsage usage;
  // Set when the upstream's usage was corrected: what was wrong and what was charged instead, e.g. "upstream
  // reported completion_tokens=1000000000 > max_tokens=256; charged 256" (notes for both counts are joined by
  // "; "), so the gateway can log and count it. "" when the usage was taken as reported.
  std::string usage_note;
  double cost_usd = 0;  // from usage and the expert's prices (or the recorded cost for replay)
  double latency_ms = 0;
  std::optional<double> recorded_score;  // replay only: the score this answer earned when it was recorded
};

// One streamed piece: content, tool-call deltas, or both. Both views are valid only during the sink's call; a sink
// that keeps them (or hands them to another thread) copies them.
//
// `tool_calls` is OpenAI's `delta.tool_calls` (an array of {"index", and the "id", "type", "function": {"name",
// "arguments"} pieces that arrived}; arguments are fragments to concatenate per index), or nullptr when the piece has
// none. It converts to and from std::string_view (the content), so a sink that only cares about text can take a
// std::string_view; such a sink sees a tool-call-only piece as an empty string. A sink that forwards pieces to
// another sink must take the StreamDelta, or it drops the tool calls.
// The conversions are implicit on purpose (hence the NOLINTs): they are what keeps text-only sinks and callers as
// they were.
struct StreamDelta {
  StreamDelta() = default;
  StreamDelta(std::string_view c, const nlohmann::json* t = nullptr)  // NOLINT(google-explicit-constructor)
      : content(c), tool_calls(t) {}
  // From anything that reads as text (std::string, const char*), so that sink(piece) keeps compiling.
  template <typename T>
  requires(!std::is_same_v<std::remove_cvref_t<T>, StreamDelta> && std::is_convertible_v<const T&, std::string_view>)
      StreamDelta(const T& c)  // NOLINT(google-explicit-constructor)
      : content(c) {}
  operator std::string_view() const { return content; }  // NOLINT(google-explicit-constructor)
  bool empty() const { return content.empty() && tool_calls == nullptr; }

  std::string_view content;
  const nlohmann::json* tool_calls = nullptr;
};

// Receives streamed pieces as they arrive. Return false to cancel the call.
using StreamSink = std::function<bool(const StreamDelta& delta)>;

// The result of an asynchronous call, delivered exactly once, unless the loop's io_context is destroyed first: calls
// still in flight are then dropped, their handler and sink destroyed without being called.
using CompletionHandler = std::function<void(StatusOr<ChatResult>)>;

// Where an asynchronous call runs. Neither is owned; both must outlive every call started with them.
struct AsyncContext {
  // The caller's event loop: an io_context run by exactly one thread. The sink and the completion handler are
  // invoked there, never from inside CompleteAsync itself.
  boost::asio::io_context* loop = nullptr;
  // Threads for work that can only block (in-process inference, blocking wrappers). nullptr = none: backends that
  // need it fail the call with FailedPrecondition.
  boost::asio::thread_pool* blocking = nullptr;
};

// Startup options of one expert, as written in the gateway's YAML configuration.
struct ExpertConfig {
  std::string name;                       // what clients and routers call it (unique)
  std::string kind;                       // "openai" | "replay" | "llamacpp"
  std::optional<double> usd_per_mtok_in;  // list prices; cost = usage x prices. Default: unknown (cost 0)
  std::optional<double> usd_per_mtok_out;
  // openai
  std::string base_url;     // e.g. "http://127.0.0.1:8081/v1" (".../chat/completions" is appended)
  std::string model;        // the upstream's model name. Default: `name`
  std::string api_key_env;  // environment variable holding the API key; "" = no key. Never logged.
  // The most an upstream may send back for one call: the body of a plain answer, or all the bytes of a stream. A
  // larger answer is cut off (Unavailable "the upstream response exceeded N bytes"), so that a broken or hostile
  // upstream cannot make the gateway buffer without bound. A streamed token costs ~150-250 bytes of SSE, so the
  // default allows some 40k streamed tokens. Default: 8 MiB
  int64_t max_response_bytes = 8 << 20;
  // The HTTP client of asynchronous calls: "auto" = Boost.Beast with a per-upstream connection pool for http:// URLs
  // (leaner per call), libcurl for https:// ones; "curl" = libcurl always. Default: "auto"
  std::string http_client = "auto";
  // replay
  std::string replay_db;       // a baton database holding the recorded responses (baton import), or
  std::string replay_dir;      // a dataset folder to import into memory at start-up
  std::string replay_dataset;  // which stored dataset to answer from; "" = any
  std::string replay_model;    // the recorded model whose answers to serve. Default: `name`
  // llamacpp
  std::string gguf_path;             // local GGUF model file
  int64_t n_ctx = 2048;              // context length. Default: 2048
  int64_t default_max_tokens = 256;  // when the request gives none. Default: 256
  // wrappers
  std::chrono::milliseconds timeout{60'000};  // per call. Default: 60 s
  int max_retries = 2;       // retries on 429 / 5xx / connection errors, exponential backoff with jitter. Default: 2
  int max_concurrency = 16;  // calls in flight to this expert at once. Default: 16
};

class ExpertBackend {
 public:
  virtual ~ExpertBackend() = default;
  virtual const std::string& name() const = 0;
  // Sends the conversation and waits for the answer. With a sink, content is also delivered piece by piece as the
  // backend produces it (the returned result still holds the whole content and the usage).
  // Errors: Unavailable (connection refused / reset, 5xx), ResourceExhausted (429), DeadlineExceeded (timeout),
  // InvalidArgument (the backend rejected the request, 4xx), NotFound (replay: an unknown prompt).
  virtual StatusOr<ChatResult> Complete(const ChatRequest& request, const StreamSink* sink = nullptr) = 0;
  // Starts the same call without blocking the caller and returns at once. `sink` (may be empty) receives content
  // pieces and `done` the result, both on ctx.loop; returning false from the sink cancels the call (done then gets
  // FailedPrecondition). The backend must outlive the call.
  // The default runs Complete() on ctx.blocking and posts the pieces and the result to ctx.loop.
  virtual void CompleteAsync(ChatRequest request, StreamSink sink, const AsyncContext& ctx, CompletionHandler done);
};

// ---------------------------------------------------------------------------------------------------------------------
// Wrappers (decorators). Each owns the backend it wraps and is as thread-safe as ExpertBackend requires.

// Counters of one expert, read by the gateway's /metrics. Thread-safety: every member is atomic; Record and Snapshot
// may be called from any thread at once (a snapshot is per-counter consistent, not a transaction across counters).
struct ExpertMeter {
  struct Snapshot {
    int64_t calls = 0;          // calls finished (ok or not)
    int64_t errors = 0;         // calls that returned an error
    int64_t in_flight = 0;      // calls started and not yet finished
    int64_t prompt_tokens = 0;  // summed over successful calls
    int64_t completion_tokens = 0;
    double cost_usd = 0;
    double latency_ms_sum = 0;  // over all finished calls; mean = latency_ms_sum / calls
    double latency_ms_max = 0;
    int64_t errors_by_code[16] = {};  // indexed by static_cast<int>(StatusCode)
  };
  std::atomic<int64_t> calls{0};
  std::atomic<int64_t> errors{0};
  std::atomic<int64_t> in_flight{0};
  std::atomic<int64_t> prompt_tokens{0};
  std::atomic<int64_t> completion_tokens{0};
  std::atomic<int64_t> cost_nano_usd{0};  // cost in 1e-9 USD, so it can be an atomic integer
  std::atomic<int64_t> latency_us_sum{0};
  std::atomic<int64_t> latency_us_max{0};
  std::atomic<int64_t> errors_by_code[16] = {};

  // Accounts one finished call.
  void Record(const Status& status, const ChatResult* result, double latency_ms);
  Snapshot Read() const;
};

// Counts calls, errors, tokens, cost and latency into a shared ExpertMeter. An asynchronous call is in flight from
// CompleteAsync until its completion handler runs, and its latency is measured between the two.
class MeteredExpert : public ExpertBackend {
 public:
  MeteredExpert(std::unique_ptr<ExpertBackend> inner, std::shared_ptr<ExpertMeter> meter);
  const std::string& name() const override { return inner_->name(); }
  StatusOr<ChatResult> Complete(const ChatRequest& request, const StreamSink* sink = nullptr) override;
  void CompleteAsync(ChatRequest request, StreamSink sink, const AsyncContext& ctx, CompletionHandler done) override;
  const std::shared_ptr<ExpertMeter>& meter() const { return meter_; }

 private:
  std::unique_ptr<ExpertBackend> inner_;
  std::shared_ptr<ExpertMeter> meter_;
};

// Lets at most `max_in_flight` calls into the wrapped backend at once; a caller waits for a slot up to its request's
// timeout (the time waited is taken off the timeout passed on), then gets ResourceExhausted.
//
// Complete and CompleteAsync share one count of slots, from any number of threads and event loops at once. Callers
// that find no free slot queue in one FIFO, whichever API they came through: a blocked Complete waits on a condition
// variable, a CompleteAsync leaves a waiter that remembers its loop and waits there on a timer. A slot that frees up
// (on whatever thread the call ended) is handed to the oldest waiter rather than put back to be contended for: a
// blocked caller is woken, an asynchronous one has its call started on its own loop. A new caller takes a free slot
// only when nobody waits, so neither kind starves the other. Whichever comes first of the hand-over and the waiter's
// timeout wins, under the lock: a timed-out waiter leaves the queue without a slot, a served one ignores its timer.
// An asynchronous waiter's loop must keep running until the call completes (see AsyncContext).
class ConcurrencyLimitedExpert : public ExpertBackend {
 public:
  ConcurrencyLimitedExpert(std::unique_ptr<ExpertBackend> inner, int max_in_flight);
  const std::string& name() const override { return inner_->name(); }
  StatusOr<ChatResult> Complete(const ChatRequest& request, const StreamSink* sink = nullptr) override;
  void CompleteAsync(ChatRequest request, StreamSink sink, const AsyncContext& ctx, CompletionHandler done) override;
  // Slots taken: calls in the wrapped backend, plus calls handed a slot whose loop has not started them yet.
  int in_flight() const;
  // Callers (blocked or asynchronous) queued for a slot.
  int waiting() const;

 private:
  struct Waiter;  // one queued caller; defined in wrappers.cc

  // Gives a slot back: to the oldest waiter when there is one, else to the free count.
  void Release();
  // Runs an asynchronous call in a slot already taken, with the time left until `deadline`; releases the slot when
  // the call completes.
  void RunInSlot(ChatRequest request, StreamSink sink, const AsyncContext& ctx, CompletionHandler done,
                 std::chrono::steady_clock::time_point deadline);
  // On the waiter's loop: its timer fired (or was cancelled); fails the call unless a slot was handed over first.
  void OnWaitTimer(const std::shared_ptr<Waiter>& w);
  // On the waiter's loop: a slot was handed over; starts the call.
  void StartHandedOver(const std::shared_ptr<Waiter>& w);

  std::unique_ptr<ExpertBackend> inner_;
  const int max_in_flight_;
  mutable std::mutex mu_;
  int in_flight_ = 0;                           // guarded by mu_
  std::list<std::shared_ptr<Waiter>> waiters_;  // guarded by mu_; oldest first; non-empty only when all slots are taken
};

struct RetryPolicy {
  int max_retries = 2;                             // attempts = 1 + max_retries
  std::chrono::milliseconds initial_backoff{100};  // cap of the first wait; doubles each retry
  std::chrono::milliseconds max_backoff{5'000};
};

// Retries Unavailable and ResourceExhausted errors with exponential backoff and full jitter (each wait is uniform in
// [0, min(max_backoff, initial_backoff * 2^attempt)]), within the request's overall timeout: every attempt gets the
// time that is left, and no retry starts when the wait would pass the deadline. Once a streaming attempt has
// delivered content to the sink it is never retried. CompleteAsync follows the same policy and waits between attempts
// on a timer of ctx.loop, so a retrying call never blocks a thread.
class RetryingExpert : public ExpertBackend {
 public:
  RetryingExpert(std::unique_ptr<ExpertBackend> inner, RetryPolicy policy);
  const std::string& name() const override { return inner_->name(); }
  StatusOr<ChatResult> Complete(const ChatRequest& request, const StreamSink* sink = nullptr) override;
  void CompleteAsync(ChatRequest request, StreamSink sink, const AsyncContext& ctx, CompletionHandler done) override;

 private:
  std::unique_ptr<ExpertBackend> inner_;
  const RetryPolicy policy_;
};

// An upper bound of the prompt tokens of `request` under any tokenizer (no tokenizer makes more tokens than bytes): the
// bytes of every message (role, content and its other fields, such as tool_calls) plus 16 chat-template tokens per
// message, the other request fields (tools, schemas) as serialised, plus 64. The gateway reserves budget for this many
// prompt tokens and the openai backend clamps an upstream's reported prompt_tokens to it, so both use this one bound.
int64_t PromptTokenBound(const ChatRequest& request);

// ---------------------------------------------------------------------------------------------------------------------
// Registry.

// The kinds MakeExpert knows: "openai", "replay", "llamacpp".
const std::vector<std::string>& ExpertKinds();

// Builds the backend of `config.kind` and wraps it: retrying (openai only, when max_retries > 0) around a
// concurrency limit (when max_concurrency > 0) around metering (when `meter` is given) around the backend, so a
// meter counts every attempt and a retry waits for a slot again. ChatRequest::timeout bounds the whole call (retries
// included); config.timeout bounds each attempt.
// Errors: InvalidArgument (unknown kind, naming the valid ones; missing fields), FailedPrecondition (api_key_env names
// an unset variable; llamacpp without llama.cpp built in), plus whatever loading the replay data or model fails with.
StatusOr<std::unique_ptr<ExpertBackend>> MakeExpert(const ExpertConfig& config,
                                                    std::shared_ptr<ExpertMeter> meter = nullptr);

// Whether this build has the in-process llama.cpp backend, and where llama.cpp is installed ("" when it is not).
bool HaveLlamaCpp();
std::string LlamaCppPrefix();

}  // namespace baton
