// Client keys: SHA-256 hashing (OpenSSL EVP) and constant-time lookup of a presented bearer key.
//
// Only hashes are kept in memory or written anywhere; a presented key is hashed and compared with every configured
// hash with CRYPTO_memcmp, so neither the time taken nor any log reveals which key matched or how close it came.
//
// Thread-safety: KeyRing is immutable after construction; Find() is safe from many threads.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/config.h"

namespace baton::gateway {

// SHA-256 of `data`, lowercase hex (64 characters).
std::string Sha256Hex(std::string_view data);

class KeyRing {
 public:
  explicit KeyRing(const std::vector<ClientKeyConfig>& keys);
  // The index (into the configured keys) of the key whose hash matches the presented key; nullopt when none does.
  std::optional<size_t> Find(std::string_view presented_key) const;

 private:
  std::vector<std::array<unsigned char, 32>> digests_;
};

// The key in an "Authorization: Bearer <key>" header value; "" when the header is missing or malformed.
std::string_view BearerToken(std::string_view authorization);

}  // namespace baton::gateway
