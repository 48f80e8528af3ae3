#include "gateway/auth.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

namespace baton::gateway {
namespace {

std::array<unsigned char, 32> Digest(std::string_view data) {
  std::array<unsigned char, 32> out{};
  unsigned int len = 0;
  // EVP_Digest is one-shot and thread-safe; it only fails on allocation failure, which leaves `out` zero.
  EVP_Digest(data.data(), data.size(), out.data(), &len, EVP_sha256(), nullptr);
  return out;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::string Sha256Hex(std::string_view data) {
  static constexpr char kHex[] = "0123456789abcdef";
  const auto d = Digest(data);
  std::string out(64, '0');
  for (size_t i = 0; i < d.size(); ++i) {
    out[2 * i] = kHex[d[i] >> 4];
    out[2 * i + 1] = kHex[d[i] & 15];
  }
  return out;
}

KeyRing::KeyRing(const std::vector<ClientKeyConfig>& keys) {
  for (const auto& k : keys) {
    std::array<unsigned char, 32> d{};
    for (size_t i = 0; i < d.size() && 2 * i + 1 < k.key_sha256.size(); ++i) {
      const int hi = HexValue(k.key_sha256[2 * i]), lo = HexValue(k.key_sha256[2 * i + 1]);
      d[i] = static_cast<unsigned char>(((hi < 0 ? 0 : hi) << 4) | (lo < 0 ? 0 : lo));
    }
    digests_.push_back(d);
  }
}

std::optional<size_t> KeyRing::Find(std::string_view presented_key) const {
  if (presented_key.empty()) return std::nullopt;
  const auto d = Digest(presented_key);
  std::optional<size_t> found;
  // Compare with every key (no early exit) in constant time per comparison.
  for (size_t i = 0; i < digests_.size(); ++i) {
    if (CRYPTO_memcmp(d.data(), digests_[i].data(), d.size()) == 0) found = i;
  }
  return found;
}

std::string_view BearerToken(std::string_view authorization) {
  constexpr std::string_view kBearer = "Bearer ";
  if (authorization.size() <= kBearer.size()) return {};
  for (size_t i = 0; i < kBearer.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(authorization[i])) !=
        std::tolower(static_cast<unsigned char>(kBearer[i]))) {
      return {};
    }
  }
  std::string_view t = authorization.substr(kBearer.size());
  while (!t.empty() && (t.front() == ' ' || t.front() == '\t')) t.remove_prefix(1);
  while (!t.empty() && (t.back() == ' ' || t.back() == '\t' || t.back() == '\r')) t.remove_suffix(1);
  return t;
}

}  // namespace baton::gateway
