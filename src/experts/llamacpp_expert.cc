// The "llamacpp" expert backend: a local GGUF run in process through llama.cpp's C API.
#include <ggml-backend.h>
#include <llama.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "experts/backends.h"

namespace baton {

bool HaveLlamaCpp() {
  return true;
}
std::string LlamaCppPrefix() {
  return BATON_LLAMA_PREFIX_DIR;
}

namespace experts {
namespace {

using Clock = std::chrono::steady_clock;

void QuietLog(ggml_log_level level, const char* text, void*) {
  if (level == GGML_LOG_LEVEL_ERROR) std::fputs(text, stderr);
}

// Loads the CPU (and any other) ggml backend libraries once; without them model loading fails with
// "no backends are loaded".
void InitLlamaOnce() {
  static std::once_flag once;
  std::call_once(once, [] {
    llama_log_set(QuietLog, nullptr);
    ggml_backend_load_all_from_path((LlamaCppPrefix() + "/lib").c_str());
    if (ggml_backend_reg_count() == 0) ggml_backend_load_all();
    llama_backend_init();
  });
}

// Length of the longest prefix of `s` that does not end inside a UTF-8 sequence.
size_t CompleteUtf8Prefix(const std::string& s) {
  size_t i = s.size();
  for (size_t back = 1; back <= 4 && back <= s.size(); ++back) {
    const auto c = static_cast<unsigned char>(s[s.size() - back]);
    if ((c & 0xC0) == 0x80) continue;  // continuation byte: look further back
    const size_t need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
    if (need > back) i = s.size() - back;
    break;
  }
  return i;
}

// One model and one context. Thread-safety: calls are serialized by a mutex (a llama context is not thread-safe).
class LlamaCppExpert : public ExpertBackend {
 public:
  LlamaCppExpert(ExpertConfig config, llama_model* model, llama_context* ctx)
      : config_(std::move(config)), model_(model), ctx_(ctx), vocab_(llama_model_get_vocab(model)) {
    if (const char* t = llama_model_chat_template(model_, nullptr)) template_ = t;
  }
  ~LlamaCppExpert() override {
    llama_free(ctx_);
    llama_model_free(model_);
  }

  const std::string& name() const override { return config_.name; }

  StatusOr<ChatResult> Complete(const ChatRequest& request, const StreamSink* sink) override {
    const auto start = Clock::now();
    const auto deadline = start + CallTimeout(config_, request);
    const std::string prompt = FormatPrompt(request);
    std::unique_lock<std::timed_mutex> lock(mu_, std::defer_lock);
    if (!lock.try_lock_until(deadline)) {
      return Status::DeadlineExceeded(fmt::format("llamacpp expert '{}': the model stayed busy", name()));
    }
    BATON_ASSIGN_OR_RETURN(std::vector<llama_token> tokens, Tokenize(prompt));
    const auto n_ctx = static_cast<int64_t>(llama_n_ctx(ctx_));
    if (static_cast<int64_t>(tokens.size()) >= n_ctx) {
      return Status::InvalidArgument(
          fmt::format("llamacpp expert '{}': the prompt is {} tokens, the context {}", name(), tokens.size(), n_ctx));
    }
    int64_t max_tokens = request.max_tokens.value_or(config_.default_max_tokens);
    max_tokens = std::min<int64_t>(max_tokens, n_ctx - static_cast<int64_t>(tokens.size()));

    llama_memory_clear(llama_get_memory(ctx_), true);
    std::unique_ptr<llama_sampler, decltype(&llama_sampler_free)> sampler(MakeSampler(request), llama_sampler_free);

    ChatResult result;
    result.usage.prompt_tokens = static_cast<int64_t>(tokens.size());
    result.finish_reason = "length";
    llama_batch batch = llama_batch_get_one(tokens.data(), static_cast<int32_t>(tokens.size()));
    std::string pending;  // bytes of a UTF-8 sequence not yet complete
    llama_token token = 0;
    for (int64_t n = 0;; ++n) {
      if (llama_decode(ctx_, batch) != 0) {
        return Status::Internal(fmt::format("llamacpp expert '{}': llama_decode failed", name()));
      }
      if (n >= max_tokens) break;
      if (Clock::now() >= deadline) {
        return Status::DeadlineExceeded(
            fmt::format("llamacpp expert '{}': timed out after {} tokens", name(), result.usage.completion_tokens));
      }
      token = llama_sampler_sample(sampler.get(), ctx_, -1);
      if (llama_vocab_is_eog(vocab_, token)) {
        result.finish_reason = "stop";
        break;
      }
      ++result.usage.completion_tokens;
      char buf[256];
      const int32_t len = llama_token_to_piece(vocab_, token, buf, sizeof buf, 0, false);
      if (len > 0) pending.append(buf, static_cast<size_t>(len));
      const size_t ready = CompleteUtf8Prefix(pending);
      if (ready > 0) {
        std::string piece = pending.substr(0, ready);
        pending.erase(0, ready);
        result.content += piece;
        if (sink != nullptr && *sink && !(*sink)(piece)) {
          return Status::FailedPrecondition(fmt::format("llamacpp expert '{}': cancelled by the sink", name()));
        }
      }
      batch = llama_batch_get_one(&token, 1);
    }
    if (!pending.empty()) {
      result.content += pending;
      if (sink != nullptr && *sink) (*sink)(pending);
    }
    result.latency_ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
    result.cost_usd = CostFromPrices(config_, result.usage);
    return result;
  }

 private:
  std::string FormatPrompt(const ChatRequest& request) const {
    if (!template_.empty()) {
      std::vector<llama_chat_message> msgs;
      size_t chars = 0;
      for (const ChatMessage& m : request.messages) {
        msgs.push_back({m.role.c_str(), m.content.c_str()});
        chars += m.content.size() + m.role.size();
      }
      std::string buf(2 * chars + 256, '\0');
      int32_t n = llama_chat_apply_template(template_.c_str(), msgs.data(), msgs.size(), true, buf.data(),
                                            static_cast<int32_t>(buf.size()));
      if (n > static_cast<int32_t>(buf.size())) {
        buf.resize(static_cast<size_t>(n));
        n = llama_chat_apply_template(template_.c_str(), msgs.data(), msgs.size(), true, buf.data(), n);
      }
      if (n >= 0) {
        buf.resize(static_cast<size_t>(n));
        return buf;
      }  // an unsupported template: fall through to the plain form
    }
    std::string prompt;
    for (const ChatMessage& m : request.messages) prompt += m.role + ": " + m.content + "\n";
    prompt += "assistant:";
    return prompt;
  }

  StatusOr<std::vector<llama_token>> Tokenize(const std::string& text) const {
    std::vector<llama_token> tokens(text.size() + 8);
    int32_t n = llama_tokenize(vocab_, text.data(), static_cast<int32_t>(text.size()), tokens.data(),
                               static_cast<int32_t>(tokens.size()), true, true);
    if (n < 0 && n != INT32_MIN) {
      tokens.resize(static_cast<size_t>(-n));
      n = llama_tokenize(vocab_, text.data(), static_cast<int32_t>(text.size()), tokens.data(),
                         static_cast<int32_t>(tokens.size()), true, true);
    }
    if (n < 0) return Status::InvalidArgument(fmt::format("llamacpp expert '{}': cannot tokenize the prompt", name()));
    tokens.resize(static_cast<size_t>(n));
    return tokens;
  }

  llama_sampler* MakeSampler(const ChatRequest& request) const {
    llama_sampler* chain = llama_sampler_chain_init(llama_sampler_chain_default_params());
    const double t = request.temperature.value_or(0.0);
    if (t > 0) {
      llama_sampler_chain_add(chain, llama_sampler_init_temp(static_cast<float>(t)));
      llama_sampler_chain_add(chain, llama_sampler_init_dist(42));  // seeded: the same request, the same answer
    } else {
      llama_sampler_chain_add(chain, llama_sampler_init_greedy());
    }
    return chain;
  }

  const ExpertConfig config_;
  llama_model* const model_;
  llama_context* const ctx_;  // guarded by mu_
  const llama_vocab* const vocab_;
  std::string template_;
  std::timed_mutex mu_;
};

}  // namespace

StatusOr<std::unique_ptr<ExpertBackend>> MakeLlamaCppExpert(const ExpertConfig& config) {
  if (config.gguf_path.empty()) {
    return Status::InvalidArgument(fmt::format("llamacpp expert '{}' needs gguf_path", config.name));
  }
  InitLlamaOnce();
  llama_model_params mp = llama_model_default_params();
  mp.n_gpu_layers = 0;
  llama_model* model = llama_model_load_from_file(config.gguf_path.c_str(), mp);
  if (model == nullptr) {
    return Status::FailedPrecondition(
        fmt::format("llamacpp expert '{}': cannot load the model {}", config.name, config.gguf_path));
  }
  llama_context_params cp = llama_context_default_params();
  cp.n_ctx = static_cast<uint32_t>(std::max<int64_t>(64, config.n_ctx));
  cp.n_batch = cp.n_ctx;
  cp.n_ubatch = std::min<uint32_t>(cp.n_ctx, 512);
  cp.n_seq_max = 1;
  cp.no_perf = true;
  llama_context* ctx = llama_init_from_model(model, cp);
  if (ctx == nullptr) {
    llama_model_free(model);
    return Status::ResourceExhausted(
        fmt::format("llamacpp expert '{}': cannot create a context of {} tokens", config.name, cp.n_ctx));
  }
  return std::unique_ptr<ExpertBackend>(std::make_unique<LlamaCppExpert>(config, model, ctx));
}

}  // namespace experts
}  // namespace baton
