#include "auth/sha256.hpp"

#include <nettle/memops.h>
#include <nettle/sha2.h>

namespace plexus {

// Nettle, not OpenSSL's EVP: every request hashes its key, and through EVP's provider dispatch that
// took 12 µs when the request path runs cold (a request after an idle moment), nettle's direct
// calls 4 (docs/performance.md, "One stream"). Warm, both take under 0.1 µs.
Sha256 sha256(std::string_view data) {
  sha256_ctx ctx;
  sha256_init(&ctx);
  sha256_update(&ctx, data.size(), reinterpret_cast<const std::uint8_t*>(data.data()));
  Sha256 out{};
  sha256_digest(&ctx, out.size(), out.data());
  return out;
}

std::optional<Sha256> parse_sha256_hex(std::string_view hex) {
  if (hex.size() != 64) return std::nullopt;
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  Sha256 out{};
  for (size_t i = 0; i < out.size(); ++i) {
    int hi = nibble(hex[2 * i]), lo = nibble(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out[i] = static_cast<std::uint8_t>(hi << 4 | lo);
  }
  return out;
}

std::string to_hex(const Sha256& digest) {
  static const char* kDigits = "0123456789abcdef";
  std::string s;
  s.reserve(64);
  for (auto b : digest) {
    s.push_back(kDigits[b >> 4]);
    s.push_back(kDigits[b & 15]);
  }
  return s;
}

bool same_digest(const Sha256& a, const Sha256& b) { return memeql_sec(a.data(), b.data(), a.size()) != 0; }

}  // namespace plexus
