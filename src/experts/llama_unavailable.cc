// Stands in for the llamacpp backend when baton is built without llama.cpp (BATON_LLAMA_PREFIX not found).
#include <fmt/format.h>

#include "experts/backends.h"

namespace baton {
namespace experts {

constexpr const char* kHowTo =
    "baton was built without llama.cpp: run `bash scripts/build_llama.sh` and reconfigure with "
    "-DBATON_LLAMA_PREFIX=<the prefix it prints> (make test does both)";

StatusOr<std::unique_ptr<ExpertBackend>> MakeLlamaCppExpert(const ExpertConfig& config) {
  return Status::FailedPrecondition(fmt::format("llamacpp expert '{}': {}", config.name, kHowTo));
}

Status WriteTinyGguf(const std::string&, const std::string&, uint32_t) {
  return Status::FailedPrecondition(kHowTo);
}

}  // namespace experts

bool HaveLlamaCpp() {
  return false;
}
std::string LlamaCppPrefix() {
  return "";
}

}  // namespace baton
