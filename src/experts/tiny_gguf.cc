// WriteTinyGguf: a 2-layer, 64-wide llama-architecture GGUF with random F32 weights and a real tokenizer, for tests.
// Tensor names and shapes follow llama.cpp's LLM_ARCH_LLAMA loader (src/models/llama.cpp, load_arch_tensors).
#include <ggml.h>
#include <gguf.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "experts/backends.h"

namespace baton::experts {
namespace {

constexpr int64_t kEmbd = 64;
constexpr int64_t kLayers = 2;
constexpr int64_t kHeads = 4;
constexpr int64_t kHeadsKv = 2;
constexpr int64_t kHeadDim = kEmbd / kHeads;
constexpr int64_t kFf = 128;
constexpr uint32_t kCtxTrain = 2048;

struct GgufDeleter {
  void operator()(gguf_context* g) const { gguf_free(g); }
};
struct GgmlDeleter {
  void operator()(ggml_context* g) const { ggml_free(g); }
};

}  // namespace

Status WriteTinyGguf(const std::string& vocab_gguf, const std::string& out_path, uint32_t seed) {
  gguf_init_params params{.no_alloc = true, .ctx = nullptr};
  std::unique_ptr<gguf_context, GgufDeleter> vocab(gguf_init_from_file(vocab_gguf.c_str(), params));
  if (!vocab) return Status::IoError(fmt::format("cannot read the vocabulary GGUF {}", vocab_gguf));
  const int64_t tokens_key = gguf_find_key(vocab.get(), "tokenizer.ggml.tokens");
  if (tokens_key < 0) return Status::DataLoss(fmt::format("{} has no tokenizer.ggml.tokens", vocab_gguf));
  const auto n_vocab = static_cast<int64_t>(gguf_get_arr_n(vocab.get(), tokens_key));

  std::unique_ptr<gguf_context, GgufDeleter> out(gguf_init_empty());
  gguf_set_kv(out.get(), vocab.get());                           // every KV pair (arrays included) ...
  for (int64_t i = gguf_get_n_kv(out.get()) - 1; i >= 0; --i) {  // ... then keep only tokenizer.*
    const std::string key = gguf_get_key(out.get(), i);
    if (!key.starts_with("tokenizer.")) gguf_remove_key(out.get(), key.c_str());
  }
  gguf_set_val_str(out.get(), "general.architecture", "llama");
  gguf_set_val_str(out.get(), "general.name", "baton-tiny-random");
  gguf_set_val_u32(out.get(), "general.file_type", 0);  // all F32
  gguf_set_val_u32(out.get(), "llama.context_length", kCtxTrain);
  gguf_set_val_u32(out.get(), "llama.embedding_length", kEmbd);
  gguf_set_val_u32(out.get(), "llama.block_count", kLayers);
  gguf_set_val_u32(out.get(), "llama.feed_forward_length", kFf);
  gguf_set_val_u32(out.get(), "llama.attention.head_count", kHeads);
  gguf_set_val_u32(out.get(), "llama.attention.head_count_kv", kHeadsKv);
  gguf_set_val_u32(out.get(), "llama.rope.dimension_count", kHeadDim);
  gguf_set_val_f32(out.get(), "llama.rope.freq_base", 10000.0f);
  gguf_set_val_f32(out.get(), "llama.attention.layer_norm_rms_epsilon", 1e-5f);
  gguf_set_val_u32(out.get(), "llama.vocab_size", static_cast<uint32_t>(n_vocab));

  struct Spec {
    std::string name;
    int64_t ne0, ne1;  // ne1 = 1: a vector
  };
  std::vector<Spec> specs = {
      {"token_embd.weight", kEmbd, n_vocab}, {"output_norm.weight", kEmbd, 1}, {"output.weight", kEmbd, n_vocab}};
  for (int64_t l = 0; l < kLayers; ++l) {
    const std::string b = fmt::format("blk.{}.", l);
    specs.push_back({b + "attn_norm.weight", kEmbd, 1});
    specs.push_back({b + "attn_q.weight", kEmbd, kHeadDim * kHeads});
    specs.push_back({b + "attn_k.weight", kEmbd, kHeadDim * kHeadsKv});
    specs.push_back({b + "attn_v.weight", kEmbd, kHeadDim * kHeadsKv});
    specs.push_back({b + "attn_output.weight", kHeadDim * kHeads, kEmbd});
    specs.push_back({b + "ffn_norm.weight", kEmbd, 1});
    specs.push_back({b + "ffn_gate.weight", kEmbd, kFf});
    specs.push_back({b + "ffn_up.weight", kEmbd, kFf});
    specs.push_back({b + "ffn_down.weight", kFf, kEmbd});
  }
  size_t bytes = 0;
  for (const Spec& s : specs) bytes += static_cast<size_t>(s.ne0 * s.ne1) * sizeof(float) + 256;
  ggml_init_params gp{
      .mem_size = bytes + specs.size() * ggml_tensor_overhead(), .mem_buffer = nullptr, .no_alloc = false};
  std::unique_ptr<ggml_context, GgmlDeleter> ctx(ggml_init(gp));
  if (!ctx) return Status::ResourceExhausted("ggml_init failed for the tiny model's tensors");

  // Special tokens get a zero output row, so that random logits rarely end a generation at once.
  std::vector<int64_t> quiet = {0, 1, 2};
  if (int64_t k = gguf_find_key(vocab.get(), "tokenizer.ggml.eos_token_id"); k >= 0) {
    quiet.push_back(gguf_get_val_u32(vocab.get(), k));
  }
  std::mt19937 rng(seed);
  for (const Spec& s : specs) {
    ggml_tensor* t = s.ne1 == 1 ? ggml_new_tensor_1d(ctx.get(), GGML_TYPE_F32, s.ne0)
                                : ggml_new_tensor_2d(ctx.get(), GGML_TYPE_F32, s.ne0, s.ne1);
    ggml_set_name(t, s.name.c_str());
    auto* data = static_cast<float*>(t->data);
    const int64_t n = s.ne0 * s.ne1;
    if (s.name.ends_with("norm.weight")) {
      std::fill(data, data + n, 1.0f);
    } else {
      std::normal_distribution<float> dist(0.0f, 1.0f / std::sqrt(static_cast<float>(s.ne0)));
      for (int64_t i = 0; i < n; ++i) data[i] = dist(rng);
    }
    if (s.name == "output.weight") {
      for (int64_t id : quiet) {
        if (id >= 0 && id < n_vocab) std::memset(data + id * kEmbd, 0, kEmbd * sizeof(float));
      }
    }
    gguf_add_tensor(out.get(), t);
  }
  if (!gguf_write_to_file(out.get(), out_path.c_str(), /*only_meta=*/false)) {
    return Status::IoError(fmt::format("cannot write {}", out_path));
  }
  return Status::Ok();
}

}  // namespace baton::experts
