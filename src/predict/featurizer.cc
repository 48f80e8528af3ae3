#include "predict/featurizer.h"

#include <cmath>

namespace baton::predict {
namespace {

struct Scratch {
  std::vector<uint8_t> acc = std::vector<uint8_t>(Featurizer::kDims, 0);  // term counts, saturating at 255
  std::vector<uint32_t> touched;
};

Scratch& ThreadScratch() {
  thread_local Scratch s;
  return s;
}

// 1 + log(tf) for every count the accumulator can hold: sublinear term frequency without a log call per feature.
struct TfTable {
  float v[256];
  TfTable() {
    v[0] = 0.0f;
    for (int i = 1; i < 256; ++i) v[i] = 1.0f + std::log(static_cast<float>(i));
  }
};
const TfTable kTf;

}  // namespace

Featurizer::Featurizer() : idf_(kDims, 1.0f) {}

void Featurizer::Fit(const std::vector<std::string_view>& texts) {
  std::vector<uint32_t> df(kDims, 0);
  std::vector<uint32_t> last(kDims, UINT32_MAX);  // document that last counted the feature
  for (uint32_t d = 0; d < texts.size(); ++d) {
    ForEachFeature(texts[d], [&](uint64_t h) {
      const uint32_t i = static_cast<uint32_t>(h) & (kDims - 1);
      if (last[i] != d) last[i] = d, ++df[i];
    });
  }
  const double n = static_cast<double>(texts.size());
  default_idf_ = static_cast<float>(std::log((1.0 + n) / 1.0) + 1.0);
  for (uint32_t i = 0; i < kDims; ++i) idf_[i] = static_cast<float>(std::log((1.0 + n) / (1.0 + df[i])) + 1.0);
}

template <typename Fn>
void Featurizer::Accumulate(std::string_view text, Fn&& fn) const {
  Scratch& s = ThreadScratch();
  s.touched.clear();
  uint8_t* acc = s.acc.data();
  ForEachFeature(text, [&](uint64_t h) {
    const uint32_t i = static_cast<uint32_t>(h) & (kDims - 1);
    if (acc[i] == 0) s.touched.push_back(i);
    acc[i] += acc[i] != 255;
  });
  for (uint32_t i : s.touched) {
    const uint8_t tf = acc[i];
    acc[i] = 0;
    fn(i, kTf.v[tf] * idf_[i]);
  }
}

void Featurizer::Transform(std::string_view text, SparseVec* out) const {
  out->clear();
  double norm2 = 0;
  Accumulate(text, [&](uint32_t i, float w) {
    out->idx.push_back(i);
    out->val.push_back(w);
    norm2 += static_cast<double>(w) * w;
  });
  if (norm2 > 0) {
    const float inv = static_cast<float>(1.0 / std::sqrt(norm2));
    for (float& v : out->val) v *= inv;
  }
}

void Featurizer::Embed(std::string_view text, std::span<float> out) const {
  for (float& v : out) v = 0.0f;
  const uint64_t d = out.size();
  if (d == 0) return;
  float* z = out.data();
  // The sketch is normalised at the end, so the TF-IDF vector need not be normalised first.
  Accumulate(text, [&](uint32_t i, float v) {
    const uint64_t h = i * 0x9E3779B97F4A7C15ULL;  // i is already a hash; one multiply spreads its bits
    z[((h >> 32) & 0x7fffffffULL) * d >> 31] += (h >> 63) ? v : -v;
  });
  double norm2 = 0;
  for (float v : out) norm2 += static_cast<double>(v) * v;
  if (norm2 > 0) {
    const float inv = static_cast<float>(1.0 / std::sqrt(norm2));
    for (float& v : out) v *= inv;
  }
}

void Featurizer::Save(ByteWriter* w) const {
  // Only the features seen in training have a non-default IDF; store those sparsely.
  std::vector<uint32_t> idx;
  std::vector<float> val;
  for (uint32_t i = 0; i < kDims; ++i) {
    if (idf_[i] != default_idf_) idx.push_back(i), val.push_back(idf_[i]);
  }
  w->U32(kDimBits);
  w->F32(default_idf_);
  w->U32s(idx);
  w->F32s(val);
}

Status Featurizer::Load(ByteReader* r) {
  const uint32_t bits = r->U32();
  if (r->ok() && bits != kDimBits) r->Fail("featurizer has 2^" + std::to_string(bits) + " dims, expected 2^18");
  default_idf_ = r->F32();
  std::vector<uint32_t> idx = r->U32s();
  std::vector<float> val = r->F32s();
  r->Expect(val, idx.size(), "featurizer idf");
  if (!r->ok()) return r->status();
  idf_.assign(kDims, default_idf_);
  for (size_t j = 0; j < idx.size(); ++j) {
    if (idx[j] >= kDims) {
      r->Fail("featurizer index out of range");
      return r->status();
    }
    idf_[idx[j]] = val[j];
  }
  return Status::Ok();
}

}  // namespace baton::predict
