// Byte-level serialisation helpers for model files: little-endian integers, floats as raw IEEE-754 bits (so a loaded
// model predicts bit-for-bit what the saved one did), length-prefixed strings and arrays.
//
// Thread-safety: a ByteWriter / ByteReader is used by one thread at a time.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "baton/status.h"

namespace baton::predict {

class ByteWriter {
 public:
  explicit ByteWriter(std::string* out) : out_(out) {}
  void U32(uint32_t v) { Raw(&v, 4); }
  void U64(uint64_t v) { Raw(&v, 8); }
  void F32(float v) { Raw(&v, 4); }
  void F64(double v) { Raw(&v, 8); }
  void Str(std::string_view s) {
    U64(s.size());
    out_->append(s.data(), s.size());
  }
  void F32s(const std::vector<float>& v) {
    U64(v.size());
    Raw(v.data(), v.size() * 4);
  }
  void F64s(const std::vector<double>& v) {
    U64(v.size());
    Raw(v.data(), v.size() * 8);
  }
  void U32s(const std::vector<uint32_t>& v) {
    U64(v.size());
    Raw(v.data(), v.size() * 4);
  }
  void Strs(const std::vector<std::string>& v) {
    U64(v.size());
    for (const auto& s : v) Str(s);
  }

 private:
  void Raw(const void* p, size_t n) { out_->append(static_cast<const char*>(p), n); }  // host is little-endian
  std::string* out_;
};

// Reads what ByteWriter wrote. The first failure sticks: later reads return zeros and status() says what was wrong.
class ByteReader {
 public:
  explicit ByteReader(std::string_view in) : in_(in) {}
  uint32_t U32() { return Pod<uint32_t>(); }
  uint64_t U64() { return Pod<uint64_t>(); }
  float F32() { return Pod<float>(); }
  double F64() { return Pod<double>(); }
  std::string Str() {
    const uint64_t n = Len(1);
    std::string s(n, '\0');
    Raw(s.data(), n);
    return s;
  }
  std::vector<float> F32s() { return Vec<float>(); }
  std::vector<double> F64s() { return Vec<double>(); }
  std::vector<uint32_t> U32s() { return Vec<uint32_t>(); }
  std::vector<std::string> Strs() {
    const uint64_t n = Len(8);
    std::vector<std::string> v;
    for (uint64_t i = 0; i < n && ok(); ++i) v.push_back(Str());
    return v;
  }
  // Fails unless `v.size() == n`.
  template <typename T>
  void Expect(const std::vector<T>& v, size_t n, const char* what) {
    if (ok() && v.size() != n)
      Fail(std::string(what) + " has " + std::to_string(v.size()) + " values, expected " + std::to_string(n));
  }
  void Fail(const std::string& why) {
    if (ok()) status_ = Status::DataLoss("model payload: " + why);
  }
  bool ok() const { return status_.ok(); }
  bool done() const { return pos_ == in_.size(); }
  // DataLoss when a read failed or (with `all`) bytes are left over.
  Status Finish(bool all = true) {
    if (ok() && all && !done()) Fail(std::to_string(in_.size() - pos_) + " unexpected trailing bytes");
    return status_;
  }
  const Status& status() const { return status_; }

 private:
  template <typename T>
  T Pod() {
    T v{};
    Raw(&v, sizeof(T));
    return v;
  }
  template <typename T>
  std::vector<T> Vec() {
    const uint64_t n = Len(sizeof(T));
    std::vector<T> v(n);
    Raw(v.data(), n * sizeof(T));
    return v;
  }
  uint64_t Len(size_t elem) {
    const uint64_t n = U64();
    if (ok() && n > (in_.size() - pos_) / elem) {
      Fail("length " + std::to_string(n) + " runs past the end (truncated?)");
      return 0;
    }
    return ok() ? n : 0;
  }
  void Raw(void* p, size_t n) {
    if (!ok()) return;
    if (in_.size() - pos_ < n) {
      Fail("unexpected end of data (truncated?)");
      return;
    }
    if (n) std::memcpy(p, in_.data() + pos_, n);
    pos_ += n;
  }
  std::string_view in_;
  size_t pos_ = 0;
  Status status_;
};

}  // namespace baton::predict
