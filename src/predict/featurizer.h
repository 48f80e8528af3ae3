// Featurizer: turns a prompt into an L2-normalised TF-IDF vector over hashed features (word unigrams and bigrams,
// character 3-5-grams of the lower-cased text), and a dense signed-hash (count-sketch) projection of that vector for
// the learned models.
//
// It is on the hot path of every routing decision, so Transform uses a thread-local dense accumulator (no per-token
// heap allocation) and looks at most kMaxChars bytes of the prompt.
//
// Thread-safety: immutable after Fit/Load; Transform and Embed are safe from many threads.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "baton/status.h"
#include "predict/serial.h"

namespace baton::predict {

struct SparseVec {
  std::vector<uint32_t> idx;
  std::vector<float> val;
  void clear() {
    idx.clear();
    val.clear();
  }
  size_t size() const { return idx.size(); }
};

class Featurizer {
 public:
  static constexpr uint32_t kDimBits = 18;
  static constexpr uint32_t kDims = 1u << kDimBits;
  // Prompts longer than this are featurised on their first kMaxChars bytes (bounds the worst-case latency).
  static constexpr size_t kMaxChars = 4096;

  Featurizer();

  // Learns the inverse document frequencies (smoothed: log((1 + N) / (1 + df)) + 1) from the training prompts.
  void Fit(const std::vector<std::string_view>& texts);

  // TF-IDF with sublinear term frequency (1 + log tf), L2-normalised. Indices are unique, in no particular order.
  void Transform(std::string_view text, SparseVec* out) const;

  // Sketch of Transform(text) into out.size() dimensions (one signed hash slot per feature), L2-normalised.
  void Embed(std::string_view text, std::span<float> out) const;

  // Calls emit(hash) for every raw feature occurrence of `text` (exposed for tests).
  template <typename Fn>
  static void ForEachFeature(std::string_view text, Fn&& emit);

  void Save(ByteWriter* w) const;
  Status Load(ByteReader* r);

 private:
  // Hashes `text` into the thread-local accumulator and calls fn(index, tf-idf weight) once per distinct feature.
  template <typename Fn>
  void Accumulate(std::string_view text, Fn&& fn) const;

  std::vector<float> idf_;  // kDims
  float default_idf_ = 1.0f;
};

// Hash mixing (splitmix64 finaliser).
inline uint64_t Mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

template <typename Fn>
void Featurizer::ForEachFeature(std::string_view text, Fn&& emit) {
  constexpr uint64_t kPrime = 0x100000001b3ULL;
  constexpr uint64_t kBasis = 0xcbf29ce484222325ULL;
  const size_t n = text.size() < kMaxChars ? text.size() : kMaxChars;
  // Lower-cased bytes with runs of whitespace collapsed to one space, kept in a small ring for char n-grams.
  unsigned char ring[8] = {' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '};
  size_t pos = 0;  // number of normalised bytes so far
  uint64_t word = kBasis, prev_word = 0;
  bool in_word = false, have_prev = false;
  auto end_word = [&]() {
    if (!in_word) return;
    emit(Mix64(word ^ 0x1111));
    if (have_prev) emit(Mix64(prev_word * 0x9E3779B97F4A7C15ULL + word + 0x2222));
    prev_word = word;
    have_prev = true;
    word = kBasis;
    in_word = false;
  };
  bool last_space = true;
  for (size_t i = 0; i < n; ++i) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    if (c >= 'A' && c <= 'Z') c = static_cast<unsigned char>(c + 32);
    const bool space = c == ' ' || c == '\n' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
    const bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c >= 0x80 || c == '_';
    if (alnum) {
      word = (word ^ c) * kPrime;
      in_word = true;
    } else {
      end_word();
    }
    if (space) {
      if (last_space) continue;
      c = ' ';
    }
    last_space = space;
    ring[pos & 7] = c;
    ++pos;
    // Character n-grams ending here, n = 3, 4, 5.
    if (pos >= 3) {
      uint64_t h = kBasis;
      for (size_t k = 0; k < 5 && k < pos; ++k) {
        h = (h ^ ring[(pos - 1 - k) & 7]) * kPrime;
        if (k >= 2) emit(Mix64(h + k * 0x3333));
      }
    }
  }
  end_word();
}

}  // namespace baton::predict
