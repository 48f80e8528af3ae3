// The libFuzzer entry point of one target of fuzz/targets.h, chosen at compile time:
//   clang++-14 -fsanitize=fuzzer,address,undefined -DBATON_FUZZ_TARGET='"config"' fuzzer_main.cc targets.cc ...
// (scripts/fuzz.sh builds one binary per target this way). A broken promise of the entry point aborts with the
// violation printed, which libFuzzer reports as a crash and saves the input of.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "fuzz/targets.h"

#ifndef BATON_FUZZ_TARGET
#error "define BATON_FUZZ_TARGET as the target's name, e.g. -DBATON_FUZZ_TARGET='\"config\"'"
#endif

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const baton::fuzz::TargetFn fn = [] {
    baton::fuzz::TargetFn f = baton::fuzz::FindTarget(BATON_FUZZ_TARGET);
    if (f == nullptr) {
      std::fprintf(stderr, "no fuzz target named '%s'\n", BATON_FUZZ_TARGET);
      std::abort();
    }
    return f;
  }();
  const baton::fuzz::FuzzResult r = fn(std::string_view(reinterpret_cast<const char*>(data), size));
  if (!r.violation.empty()) {
    std::fprintf(stderr, "%s: broken promise: %s (status: %s)\n", BATON_FUZZ_TARGET, r.violation.c_str(),
                 r.status.ToString().c_str());
    std::abort();
  }
  return 0;
}
