// The expert backends behind MakeExpert, one factory per kind, plus what they share. Internal to src/experts/.
//
// Thread-safety: every backend returned is safe to call from many threads at once.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "baton/expert.h"
#include "baton/status.h"

namespace baton::experts {

// "openai": any OpenAI-compatible /v1/chat/completions endpoint over libcurl. Reads the API key from the environment
// variable config.api_key_env at construction (FailedPrecondition when it is unset).
StatusOr<std::unique_ptr<ExpertBackend>> MakeOpenAiExpert(const ExpertConfig& config);

// "replay": the recorded answers of one model in a dataset (config.replay_dir or config.replay_db).
StatusOr<std::unique_ptr<ExpertBackend>> MakeReplayExpert(const ExpertConfig& config);

// "llamacpp": a local GGUF through llama.cpp's C API. FailedPrecondition when baton was built without llama.cpp.
StatusOr<std::unique_ptr<ExpertBackend>> MakeLlamaCppExpert(const ExpertConfig& config);

// Writes a tiny random-weight llama-architecture GGUF (2 layers, 64 wide, F32) with the tokenizer of `vocab_gguf`
// (e.g. <llama prefix>/share/baton/ggml-vocab-llama-spm.gguf). For tests: its output is gibberish.
// FailedPrecondition when baton was built without llama.cpp.
Status WriteTinyGguf(const std::string& vocab_gguf, const std::string& out_path, uint32_t seed = 42);

// cost = prompt x usd_per_mtok_in + completion x usd_per_mtok_out (unknown prices count as 0), in USD.
double CostFromPrices(const ExpertConfig& config, const ChatUsage& usage);

// The time one call may take: the smaller of the request's timeout and the expert's.
std::chrono::milliseconds CallTimeout(const ExpertConfig& config, const ChatRequest& request);

// The content of the last message with role "user" ("" when there is none).
std::string LastUserMessage(const ChatRequest& request);

}  // namespace baton::experts
