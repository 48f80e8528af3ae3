// Parsing an OpenAI chat-completions request body into typed structs. JSON stays here and in the HTTP layer; the
// rest of the gateway sees GatewayRequest.
//
// Thread-safety: pure functions.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "baton/expert.h"
#include "baton/status.h"

namespace baton::gateway {

// The gateway's own options, from the request's optional "baton" object.
struct BatonOptions {
  std::optional<double> max_cost_usd;  // experts whose predicted cost exceeds this are not considered
  std::optional<double> lambda;        // price of cost in score units per USD; Default: the configured lambda
  std::vector<std::string> experts;    // restricts the pool; empty = every expert
};

struct GatewayRequest {
  std::string model;  // "baton" = route; otherwise an expert's name
  bool stream = false;
  ChatRequest chat;  // messages, max_tokens, temperature; other OpenAI fields in chat.extra
  BatonOptions baton;
};

// Parses and validates a request body. InvalidArgument with a message fit for the client on malformed JSON, a
// missing or mistyped field or an out-of-range value. Never throws and never crashes, whatever the bytes.
StatusOr<GatewayRequest> ParseChatCompletionRequest(std::string_view body);

}  // namespace baton::gateway
