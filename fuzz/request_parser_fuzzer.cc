// libFuzzer target: the gateway's request parser (src/gateway/request_parser.cc) on arbitrary bytes.
// Build and run: scripts/fuzz.sh [SECONDS]   (clang++-14, -fsanitize=fuzzer,address,undefined)
//
// ParseChatCompletionRequest promises never to throw and never to crash, whatever the bytes; ASan/UBSan turn any
// memory error or undefined behaviour into a finding, and an escaping exception aborts (also a finding). On success
// the parsed request is read back so the fuzzer also exercises the result's invariants.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "baton/json_limits.h"
#include "gateway/request_parser.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  auto r = baton::gateway::ParseChatCompletionRequest(body);
  if (r.ok()) {
    // Invariants of a successful parse: a model name and at least one message, each with a known role.
    if (r->model.empty() || r->chat.messages.empty()) std::abort();
    for (const auto& m : r->chat.messages) {
      if (m.role.empty()) std::abort();
    }
    if (r->chat.max_tokens && *r->chat.max_tokens <= 0) std::abort();
    if (r->chat.temperature && !(*r->chat.temperature >= 0 && *r->chat.temperature <= 2)) std::abort();
    // The pass-through fields must survive what the gateway does with them: copying (recursive) and serialising
    // (recursive, as the openai backend does). The depth limit keeps both off the end of the stack.
    const nlohmann::json copy = r->chat.extra;
    (void)copy.dump();
    if (!baton::CheckJsonDepth(body).ok()) std::abort();  // a body over the depth limit was accepted
  } else {
    if (r.status().code() != baton::StatusCode::kInvalidArgument) std::abort();
    (void)r.status().ToString();
  }
  return 0;
}
