#pragma once
// API keys: kept only as SHA-256 hashes, matched in constant time.
#include <atomic>
#include <memory>
#include <mutex>
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

// The keys of the config and those created through the admin API (kept in the ledger). Read
// on every request from an immutable snapshot; a create or a revoke publishes a new one.
class KeyStore {
 public:
  explicit KeyStore(std::vector<KeyConfig> keys);

  bool enabled() const { return !snapshot()->empty(); }
  bool is_admin(const std::string& key_id) const;

  // The caller a presented key belongs to, or nullopt. Hashes the candidate once, then compares
  // against every stored hash without an early exit, so timing says nothing about which key or
  // how many leading bytes matched.
  std::optional<Caller> authenticate(std::string_view presented_key) const;

  std::shared_ptr<const std::vector<KeyConfig>> snapshot() const { return keys_.load(); }
  // False when the id is taken.
  bool add(KeyConfig key);
  // A reloaded config's keys in place of the old config's; keys made through the API stay (one
  // the new config also names is replaced by the config's).
  void replace_config_keys(const std::vector<KeyConfig>& keys);
  // False when there is no such key; revoking a key of the config is refused (`from_config`).
  bool revoke(const std::string& key_id, bool& from_config);

 private:
  std::atomic<std::shared_ptr<const std::vector<KeyConfig>>> keys_;
  std::mutex writers_;
};

// Extracts KEY from "Bearer KEY" (scheme case-insensitive); empty when malformed.
std::string_view bearer_token(std::string_view authorization);

}  // namespace plexus
