#include "auth/key_store.hpp"

#include <algorithm>
#include <cctype>

#include "auth/sha256.hpp"

namespace plexus {

KeyStore::KeyStore(std::vector<KeyConfig> keys)
    : keys_(std::make_shared<const std::vector<KeyConfig>>(std::move(keys))) {}

bool KeyStore::add(KeyConfig key) {
  std::lock_guard lock(writers_);
  auto now = keys_.load();
  for (const auto& k : *now)
    if (k.id == key.id) return false;
  auto next = std::make_shared<std::vector<KeyConfig>>(*now);
  next->push_back(std::move(key));
  keys_.store(std::move(next));
  return true;
}

void KeyStore::replace_config_keys(const std::vector<KeyConfig>& keys) {
  std::lock_guard lock(writers_);
  auto next = std::make_shared<std::vector<KeyConfig>>(keys);
  for (const auto& k : *keys_.load())
    if (k.from_api && std::none_of(keys.begin(), keys.end(), [&](const KeyConfig& c) { return c.id == k.id; }))
      next->push_back(k);
  keys_.store(std::move(next));
}

bool KeyStore::revoke(const std::string& key_id, bool& from_config) {
  std::lock_guard lock(writers_);
  auto now = keys_.load();
  auto next = std::make_shared<std::vector<KeyConfig>>();
  bool found = false;
  from_config = false;
  for (const auto& k : *now) {
    if (k.id == key_id && !k.from_api) from_config = true;
    if (k.id == key_id && k.from_api) {
      found = true;
      continue;
    }
    next->push_back(k);
  }
  if (found) keys_.store(std::move(next));
  return found;
}

std::optional<Caller> KeyStore::authenticate(std::string_view presented_key) const {
  if (presented_key.empty()) return std::nullopt;
  Sha256 digest = sha256(presented_key);
  const KeyConfig* match = nullptr;
  auto keys = keys_.load();
  for (const auto& key : *keys) {
    if (same_digest(digest, key.key_hash) && !match) match = &key;
  }
  if (!match) return std::nullopt;
  return Caller{match->id, match->group, match->routing_policy, match->region};
}

bool KeyStore::is_admin(const std::string& key_id) const {
  auto keys = keys_.load();
  for (const auto& key : *keys)
    if (key.id == key_id) return key.admin;
  return false;
}

std::string_view bearer_token(std::string_view authorization) {
  constexpr std::string_view kScheme = "bearer ";
  if (authorization.size() <= kScheme.size()) return {};
  // ASCII case folding (bit 5) for the letters, not the locale's tolower; the space exactly.
  for (size_t i = 0; i + 1 < kScheme.size(); ++i)
    if ((authorization[i] | 0x20) != kScheme[i]) return {};
  if (authorization[kScheme.size() - 1] != ' ') return {};
  std::string_view token = authorization.substr(kScheme.size());
  while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
  while (!token.empty() && (token.back() == ' ' || token.back() == '\t')) token.remove_suffix(1);
  return token;
}

}  // namespace plexus
