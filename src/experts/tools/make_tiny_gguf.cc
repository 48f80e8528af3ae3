// baton-make-tiny-gguf: writes a tiny random-weight llama GGUF (for tests; its output is gibberish).
//
//   baton-make-tiny-gguf OUT.gguf [VOCAB.gguf] [SEED]
// VOCAB defaults to <llama.cpp prefix>/share/baton/ggml-vocab-llama-spm.gguf.
#include <cstdio>
#include <cstdlib>
#include <string>

#include "baton/expert.h"
#include "experts/backends.h"

int main(int argc, char** argv) {
  if (argc < 2 || argc > 4) {
    std::fprintf(stderr, "usage: %s OUT.gguf [VOCAB.gguf] [SEED]\n", argv[0]);
    return 2;
  }
  const std::string vocab = argc > 2 ? argv[2] : baton::LlamaCppPrefix() + "/share/baton/ggml-vocab-llama-spm.gguf";
  const auto seed = argc > 3 ? static_cast<uint32_t>(std::strtoul(argv[3], nullptr, 10)) : 42u;
  baton::Status s = baton::experts::WriteTinyGguf(vocab, argv[1], seed);
  if (!s.ok()) {
    std::fprintf(stderr, "baton-make-tiny-gguf: %s\n", s.ToString().c_str());
    return 1;
  }
  std::printf("%s\n", argv[1]);
  return 0;
}
