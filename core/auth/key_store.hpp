#pragma once
// API keys: kept only as SHA-256 hashes, matched in constant time.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"

namespace plexus {

struct Caller {
  std::string key_id;  // "-" when authentication is off
  std::string group;
  std::string routing_policy;  // the key's own; empty: the config's
  std::string region;          // the key's, or the request's x-plexus-region
};

class KeyStore {
 public:
  explicit KeyStore(std::vector<KeyConfig> keys) : keys_(std::move(keys)) {}

  bool enabled() const { return !keys_.empty(); }
  bool is_admin(const std::string& key_id) const;

  // The caller a presented key belongs to, or nullopt. Hashes the candidate once, then compares
  // against every stored hash without an early exit, so timing says nothing about which key or
  // how many leading bytes matched.
  std::optional<Caller> authenticate(std::string_view presented_key) const;

 private:
  std::vector<KeyConfig> keys_;
};

// Extracts KEY from "Bearer KEY" (scheme case-insensitive); empty when malformed.
std::string_view bearer_token(std::string_view authorization);

}  // namespace plexus
