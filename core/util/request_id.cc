#include "util/request_id.hpp"

#include <cctype>
#include <cstdint>
#include <random>

namespace plexus {

namespace {
// `digits` lowercase hex digits of `v`, zero-padded, at `out`.
void put_hex(char* out, std::uint64_t v, int digits) {
  for (int i = digits - 1; i >= 0; --i, v >>= 4) out[i] = "0123456789abcdef"[v & 0xf];
}
}  // namespace

// "req_" and 24 hex digits (96 random bits). Once per request: no snprintf.
std::string new_request_id() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  std::string id(4 + 16 + 8, '\0');
  id.replace(0, 4, "req_");
  put_hex(id.data() + 4, rng(), 16);
  put_hex(id.data() + 20, rng() & 0xffffffffULL, 8);
  return id;
}

bool is_acceptable_request_id(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  for (unsigned char c : id)
    if (!std::isalnum(c) && c != '-' && c != '_' && c != '.' && c != ':') return false;
  return true;
}

}  // namespace plexus
