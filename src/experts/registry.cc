// MakeExpert: builds a backend by kind and wraps it; and the helpers the backends share.
#include <algorithm>
#include <utility>

#include <fmt/format.h>

#include "experts/backends.h"

namespace baton {

namespace experts {

double CostFromPrices(const ExpertConfig& config, const ChatUsage& usage) {
  return (static_cast<double>(usage.prompt_tokens) * config.usd_per_mtok_in.value_or(0) +
          static_cast<double>(usage.completion_tokens) * config.usd_per_mtok_out.value_or(0)) /
         1e6;
}

std::chrono::milliseconds CallTimeout(const ExpertConfig& config, const ChatRequest& request) {
  return std::min(config.timeout, request.timeout);
}

std::string LastUserMessage(const ChatRequest& request) {
  for (auto it = request.messages.rbegin(); it != request.messages.rend(); ++it) {
    if (it->role == "user") return it->content;
  }
  return "";
}

}  // namespace experts

int64_t PromptTokenBound(const ChatRequest& request) {
  const auto dump = [](const nlohmann::json& j) {
    return static_cast<int64_t>(j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).size());
  };
  int64_t bytes = 64;
  for (const ChatMessage& m : request.messages) {
    bytes += static_cast<int64_t>(m.role.size() + m.content.size()) + 16;
    if (m.fields.is_object() && !m.fields.empty()) bytes += dump(m.fields);  // tool_calls, tool_call_id, name
  }
  // tools, tool_choice, response_format, ...: what an upstream may render into the prompt.
  if (request.extra.is_object() && !request.extra.empty()) bytes += dump(request.extra);
  return bytes;
}

const std::vector<std::string>& ExpertKinds() {
  static const std::vector<std::string> kinds = {"openai", "replay", "llamacpp"};
  return kinds;
}

StatusOr<std::unique_ptr<ExpertBackend>> MakeExpert(const ExpertConfig& config, std::shared_ptr<ExpertMeter> meter) {
  if (config.name.empty()) return Status::InvalidArgument("an expert needs a name");
  std::unique_ptr<ExpertBackend> backend;
  if (config.kind == "openai") {
    BATON_ASSIGN_OR_RETURN(backend, experts::MakeOpenAiExpert(config));
  } else if (config.kind == "replay") {
    BATON_ASSIGN_OR_RETURN(backend, experts::MakeReplayExpert(config));
  } else if (config.kind == "llamacpp") {
    BATON_ASSIGN_OR_RETURN(backend, experts::MakeLlamaCppExpert(config));
  } else {
    return Status::InvalidArgument(fmt::format("expert '{}': unknown kind '{}' (valid kinds: {})", config.name,
                                               config.kind, fmt::join(ExpertKinds(), ", ")));
  }
  if (meter) backend = std::make_unique<MeteredExpert>(std::move(backend), std::move(meter));
  if (config.max_concurrency > 0) {
    backend = std::make_unique<ConcurrencyLimitedExpert>(std::move(backend), config.max_concurrency);
  }
  // Only remote calls fail transiently; replay and in-process inference are not worth retrying.
  if (config.kind == "openai" && config.max_retries > 0) {
    backend = std::make_unique<RetryingExpert>(std::move(backend), RetryPolicy{.max_retries = config.max_retries});
  }
  return backend;
}

}  // namespace baton
