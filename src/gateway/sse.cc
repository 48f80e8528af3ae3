#include "gateway/sse.h"

#include <atomic>
#include <chrono>
#include <random>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace baton::gateway {
namespace {

using nlohmann::json;

// Invalid UTF-8 from an upstream is replaced, never a reason to throw.
std::string Dump(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

// A chat.completion.chunk whose only choice has `delta`.
json Chunk(const std::string& id, int64_t created, const std::string& model, json delta,
           std::string_view finish_reason) {
  return {{"id", id},
          {"object", "chat.completion.chunk"},
          {"created", created},
          {"model", model},
          {"choices", json::array({{{"index", 0},
                                    {"delta", std::move(delta)},
                                    {"finish_reason", finish_reason.empty() ? json(nullptr) : json(finish_reason)}}})}};
}

}  // namespace

std::string SseToolCallsChunk(const std::string& id, int64_t created, const std::string& model,
                              std::string_view content, const nlohmann::json& tool_calls) {
  json calls = tool_calls.is_array() ? tool_calls : json::array();
  for (size_t i = 0; i < calls.size(); ++i) {
    if (calls[i].is_object() && !calls[i].contains("index")) calls[i]["index"] = i;
  }
  json delta = {{"tool_calls", std::move(calls)}};
  if (!content.empty()) delta["content"] = content;
  return "data: " + Dump(Chunk(id, created, model, std::move(delta), "")) + "\n\n";
}

std::string SseChunk(const std::string& id, int64_t created, const std::string& model, std::string_view role,
                     std::string_view content, std::string_view finish_reason, const std::optional<ChatUsage>& usage,
                     std::optional<double> cost_usd) {
  json delta = json::object();
  if (!role.empty()) delta["role"] = role;
  if (!content.empty()) delta["content"] = content;
  json j = Chunk(id, created, model, std::move(delta), finish_reason);
  if (usage) {
    j["usage"] = {{"prompt_tokens", usage->prompt_tokens},
                  {"completion_tokens", usage->completion_tokens},
                  {"total_tokens", usage->prompt_tokens + usage->completion_tokens}};
  }
  if (cost_usd) j["x_baton_cost_usd"] = *cost_usd;
  return "data: " + Dump(j) + "\n\n";
}

std::string SseError(std::string_view message, std::string_view type, std::string_view code) {
  return "data: " + Dump({{"error", {{"message", message}, {"type", type}, {"code", code}}}}) + "\n\n";
}

std::string SseMarkUnrecorded(std::string event) {
  const size_t end = event.rfind('}');
  if (end != std::string::npos) event.insert(end, R"(,"x_baton_recorded":false)");
  return event;
}

std::string CompletionJson(const std::string& id, int64_t created, const std::string& model, const ChatResult& r) {
  json message = {{"role", "assistant"}, {"content", r.content}};
  if (r.tool_calls.is_array() && !r.tool_calls.empty()) {
    message["tool_calls"] = r.tool_calls;
    if (r.content.empty()) message["content"] = nullptr;
  }
  json j = {
      {"id", id},
      {"object", "chat.completion"},
      {"created", created},
      {"model", model},
      {"choices", json::array({{{"index", 0}, {"message", std::move(message)}, {"finish_reason", r.finish_reason}}})},
      {"usage",
       {{"prompt_tokens", r.usage.prompt_tokens},
        {"completion_tokens", r.usage.completion_tokens},
        {"total_tokens", r.usage.prompt_tokens + r.usage.completion_tokens}}}};
  return Dump(j);
}

std::string NewCompletionId() {
  thread_local std::mt19937_64 rng(std::random_device{}() ^
                                   static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count()));
  return fmt::format("chatcmpl-{:016x}{:08x}", rng(), static_cast<uint32_t>(rng()));
}

}  // namespace baton::gateway
