// Server-sent events in the shape of OpenAI's streamed chat completions: `data: {chat.completion.chunk}\n\n` lines,
// then `data: [DONE]\n\n`. Also the non-streamed chat.completion body.
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "baton/expert.h"

namespace baton::gateway {

inline constexpr std::string_view kSseDone = "data: [DONE]\n\n";

// A chunk event. `role` and `content` are left out of the delta when empty; finish_reason is null when empty.
std::string SseChunk(const std::string& id, int64_t created, const std::string& model, std::string_view role,
                     std::string_view content, std::string_view finish_reason,
                     const std::optional<ChatUsage>& usage = std::nullopt, std::optional<double> cost_usd = {});
// A chunk event whose delta carries `tool_calls` (OpenAI's delta.tool_calls: an array of {"index", "id", "type",
// "function": {"name", "arguments"}} pieces; an element without an index gets its position), and `content` when not
// empty. Also takes ChatResult::tool_calls, to stream a whole answer's calls in one chunk.
std::string SseToolCallsChunk(const std::string& id, int64_t created, const std::string& model,
                              std::string_view content, const nlohmann::json& tool_calls);
// An error event: `data: {"error": {...}}`.
std::string SseError(std::string_view message, std::string_view type, std::string_view code);
// `event` (one "data: {...}\n\n" event) with "x_baton_recorded": false added to its JSON object: how a stream's last
// event says its request's log row could not be written (a plain answer's x-baton-recorded: false header).
std::string SseMarkUnrecorded(std::string event);

// The chat.completion JSON for a whole result. With tool calls, message.tool_calls holds them and message.content is
// null when there is no text (as OpenAI answers).
std::string CompletionJson(const std::string& id, int64_t created, const std::string& model, const ChatResult& r);

// "chatcmpl-" plus 24 random hex digits.
std::string NewCompletionId();

}  // namespace baton::gateway
