#pragma once
#include <optional>
#include <string>
#include <string_view>

#include "config/config.hpp"

namespace plexus {

Sha256 sha256(std::string_view data);
// 64 hex digits (either case) to bytes; nullopt on anything else.
std::optional<Sha256> parse_sha256_hex(std::string_view hex);
std::string to_hex(const Sha256& digest);
// Constant time: how much of two digests matches never shows in the timing.
bool same_digest(const Sha256& a, const Sha256& b);

}  // namespace plexus
