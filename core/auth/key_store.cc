#include "auth/key_store.hpp"

#include <cctype>

#include "auth/sha256.hpp"

namespace plexus {

std::optional<Caller> KeyStore::authenticate(std::string_view presented_key) const {
  if (presented_key.empty()) return std::nullopt;
  Sha256 digest = sha256(presented_key);
  const KeyConfig* match = nullptr;
  for (const auto& key : keys_) {
    if (same_digest(digest, key.key_hash) && !match) match = &key;
  }
  if (!match) return std::nullopt;
  return Caller{match->id, match->group, match->routing_policy, match->region};
}

bool KeyStore::is_admin(const std::string& key_id) const {
  for (const auto& key : keys_)
    if (key.id == key_id) return key.admin;
  return false;
}

std::string_view bearer_token(std::string_view authorization) {
  constexpr std::string_view kScheme = "bearer ";
  if (authorization.size() <= kScheme.size()) return {};
  for (size_t i = 0; i < kScheme.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(authorization[i])) != kScheme[i]) return {};
  std::string_view token = authorization.substr(kScheme.size());
  while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
  while (!token.empty() && (token.back() == ' ' || token.back() == '\t')) token.remove_suffix(1);
  return token;
}

}  // namespace plexus
