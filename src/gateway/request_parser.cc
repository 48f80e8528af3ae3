#include "gateway/request_parser.h"

#include <cmath>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "baton/json_limits.h"

namespace baton::gateway {
namespace {

using nlohmann::json;

constexpr size_t kMaxMessages = 10'000;
constexpr size_t kMaxExperts = 1'000;

StatusOr<std::string> ContentText(const json& content, size_t i) {
  if (content.is_string()) return content.get<std::string>();
  if (content.is_null()) return std::string();
  if (content.is_array()) {  // [{"type": "text", "text": "..."}, ...]: text parts are joined, others refused
    std::string out;
    for (size_t p = 0; p < content.size(); ++p) {
      const json& part = content[p];
      if (!part.is_object() || !part.contains("type") || part["type"] != "text" || !part.contains("text") ||
          !part["text"].is_string()) {
        return Status::InvalidArgument(fmt::format(
            "messages[{}].content[{}]: only {{\"type\": \"text\", \"text\": ...}} parts are supported", i, p));
      }
      if (!out.empty()) out += "\n";
      out += part["text"].get<std::string>();
    }
    return out;
  }
  return Status::InvalidArgument(fmt::format("messages[{}].content: expected a string", i));
}

// The tool calls of an assistant message: [{"id": "...", "type": "function", "function": {"name": "...",
// "arguments": "..."}}, ...]. Checked for the fields an upstream needs to match tool results to calls; anything else in
// them passes through untouched.
Status CheckToolCalls(const json& calls, size_t i) {
  if (!calls.is_array()) return Status::InvalidArgument(fmt::format("messages[{}].tool_calls: expected an array", i));
  for (size_t c = 0; c < calls.size(); ++c) {
    const json& call = calls[c];
    if (!call.is_object()) {
      return Status::InvalidArgument(fmt::format("messages[{}].tool_calls[{}]: expected an object", i, c));
    }
    auto id = call.find("id");
    if (id == call.end() || !id->is_string()) {
      return Status::InvalidArgument(fmt::format("messages[{}].tool_calls[{}].id: expected a string", i, c));
    }
    if (auto type = call.find("type"); type != call.end() && !type->is_string()) {
      return Status::InvalidArgument(fmt::format("messages[{}].tool_calls[{}].type: expected a string", i, c));
    }
    auto function = call.find("function");
    if (function == call.end() || !function->is_object()) {
      return Status::InvalidArgument(fmt::format("messages[{}].tool_calls[{}].function: expected an object", i, c));
    }
    auto name = function->find("name");
    if (name == function->end() || !name->is_string()) {
      return Status::InvalidArgument(fmt::format("messages[{}].tool_calls[{}].function.name: expected a string", i, c));
    }
    if (auto args = function->find("arguments"); args != function->end() && !args->is_string()) {
      return Status::InvalidArgument(
          fmt::format("messages[{}].tool_calls[{}].function.arguments: expected a string (JSON text)", i, c));
    }
  }
  return Status::Ok();
}

// One message: role and content as text, its other fields kept for OpenAI-compatible upstreams.
StatusOr<ChatMessage> ParseMessage(const json& m, size_t i) {
  if (!m.is_object()) return Status::InvalidArgument(fmt::format("messages[{}]: expected an object", i));
  auto role = m.find("role");
  if (role == m.end() || !role->is_string()) {
    return Status::InvalidArgument(fmt::format("messages[{}].role: expected a string", i));
  }
  ChatMessage out;
  out.role = role->get<std::string>();
  if (out.role != "system" && out.role != "user" && out.role != "assistant" && out.role != "developer" &&
      out.role != "tool") {
    return Status::InvalidArgument(fmt::format("messages[{}].role: unknown role '{}'", i, out.role.substr(0, 40)));
  }
  auto calls = m.find("tool_calls");
  if (calls != m.end() && !calls->is_null()) {
    if (out.role != "assistant") {
      return Status::InvalidArgument(
          fmt::format("messages[{}].tool_calls: only assistant messages have tool calls", i));
    }
    BATON_RETURN_IF_ERROR(CheckToolCalls(*calls, i));
  }
  if (auto id = m.find("tool_call_id"); id != m.end() && !id->is_string()) {
    return Status::InvalidArgument(fmt::format("messages[{}].tool_call_id: expected a string", i));
  }
  if (out.role == "tool" && !m.contains("tool_call_id")) {
    return Status::InvalidArgument(
        fmt::format("messages[{}].tool_call_id: missing (a tool message answers a call)", i));
  }
  if (auto name = m.find("name"); name != m.end() && !name->is_string()) {
    return Status::InvalidArgument(fmt::format("messages[{}].name: expected a string", i));
  }
  auto content = m.find("content");
  if (content == m.end()) {
    // An assistant message that only calls tools may leave its content out, as OpenAI allows.
    if (calls == m.end() || calls->is_null()) {
      return Status::InvalidArgument(fmt::format("messages[{}].content: missing", i));
    }
    out.content_null = true;
  } else {
    BATON_ASSIGN_OR_RETURN(out.content, ContentText(*content, i));
    out.content_null = content->is_null();
  }
  for (const auto& [key, value] : m.items()) {
    if (key != "role" && key != "content") out.fields[key] = value;
  }
  return out;
}

StatusOr<GatewayRequest> Parse(const json& j) {
  if (!j.is_object()) return Status::InvalidArgument("the request body must be a JSON object");
  GatewayRequest r;
  for (const auto& [key, value] : j.items()) {
    if (key == "model") {
      if (!value.is_string() || value.get_ref<const std::string&>().empty()) {
        return Status::InvalidArgument("model: expected a non-empty string (\"baton\" or an expert's name)");
      }
      r.model = value.get<std::string>();
    } else if (key == "stream") {
      if (value.is_null()) continue;
      if (!value.is_boolean()) return Status::InvalidArgument("stream: expected true or false");
      r.stream = value.get<bool>();
    } else if (key == "messages") {
      if (!value.is_array() || value.empty()) return Status::InvalidArgument("messages: expected a non-empty array");
      if (value.size() > kMaxMessages) return Status::InvalidArgument("messages: too many messages");
      for (size_t i = 0; i < value.size(); ++i) {
        BATON_ASSIGN_OR_RETURN(ChatMessage message, ParseMessage(value[i], i));
        r.chat.messages.push_back(std::move(message));
      }
    } else if (key == "max_tokens" || key == "max_completion_tokens") {
      if (value.is_null()) continue;
      if (!value.is_number_integer() || value.get<int64_t>() <= 0 || value.get<int64_t>() > 10'000'000) {
        return Status::InvalidArgument(fmt::format("{}: expected a positive integer", key));
      }
      r.chat.max_tokens = value.get<int64_t>();
    } else if (key == "temperature") {
      if (value.is_null()) continue;
      if (!value.is_number() || !(value.get<double>() >= 0 && value.get<double>() <= 2)) {
        return Status::InvalidArgument("temperature: expected a number in [0, 2]");
      }
      r.chat.temperature = value.get<double>();
    } else if (key == "n") {
      if (!value.is_null() && !(value.is_number_integer() && value.get<int64_t>() == 1)) {
        return Status::InvalidArgument("n: only n = 1 is supported");
      }
    } else if (key == "baton") {
      if (value.is_null()) continue;
      if (!value.is_object()) return Status::InvalidArgument("baton: expected an object");
      for (const auto& [bk, bv] : value.items()) {
        if (bk == "max_cost_usd" || bk == "lambda") {
          if (!bv.is_number() || !std::isfinite(bv.get<double>()) || bv.get<double>() < 0) {
            return Status::InvalidArgument(fmt::format("baton.{}: expected a number >= 0", bk));
          }
          (bk == "lambda" ? r.baton.lambda : r.baton.max_cost_usd) = bv.get<double>();
        } else if (bk == "experts") {
          if (!bv.is_array() || bv.empty() || bv.size() > kMaxExperts) {
            return Status::InvalidArgument("baton.experts: expected a non-empty array of expert names");
          }
          for (const json& e : bv) {
            if (!e.is_string()) return Status::InvalidArgument("baton.experts: expected strings");
            r.baton.experts.push_back(e.get<std::string>());
          }
        } else {
          return Status::InvalidArgument(
              fmt::format("baton.{}: unknown option (valid: max_cost_usd, lambda, experts)", bk.substr(0, 40)));
        }
      }
    } else {
      r.chat.extra[key] = value;  // other OpenAI fields pass through to OpenAI-compatible upstreams
    }
  }
  if (r.model.empty()) return Status::InvalidArgument("model: missing (\"baton\" or an expert's name)");
  if (r.chat.messages.empty()) return Status::InvalidArgument("messages: missing");
  return r;
}

}  // namespace

StatusOr<GatewayRequest> ParseChatCompletionRequest(std::string_view body) {
  // Before parsing: a deeply nested body would overflow the stack of any later copy or dump (see json_limits.h).
  if (Status depth = CheckJsonDepth(body); !depth.ok()) {
    return Status::InvalidArgument("the request body is " + depth.message());
  }
  try {
    // allow_exceptions = false: malformed input yields a discarded value instead of throwing.
    const json j = json::parse(body.begin(), body.end(), nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) return Status::InvalidArgument("the request body is not valid JSON");
    return Parse(j);
  } catch (const std::exception& e) {  // e.g. deep nesting or bad UTF-8 on dump; never let it escape
    return Status::InvalidArgument(std::string("the request body could not be read: ") + e.what());
  } catch (...) {
    return Status::InvalidArgument("the request body could not be read");
  }
}

}  // namespace baton::gateway
