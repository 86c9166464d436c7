#include "server/dashboard_sessions.hpp"

#include <openssl/rand.h>

#include <stdexcept>

#include "auth/sha256.hpp"
#include "receipts/jws.hpp"

namespace plexus {

std::string DashboardSessions::open(const std::string& key_id) {
  unsigned char raw[32];
  if (RAND_bytes(raw, sizeof raw) != 1) throw std::runtime_error("no randomness for a session");
  std::string token = receipts::base64url(std::string_view(reinterpret_cast<const char*>(raw), sizeof raw));
  auto now = std::chrono::steady_clock::now();
  std::lock_guard lock(mu_);
  for (auto it = by_hash_.begin(); it != by_hash_.end();)  // expired ones go as new ones come
    it = it->second.expires < now ? by_hash_.erase(it) : std::next(it);
  by_hash_[to_hex(sha256(token))] = {key_id, now + kLifetime};
  return token;
}

std::string DashboardSessions::who(const std::string& token) {
  if (token.empty()) return "";
  std::lock_guard lock(mu_);
  auto it = by_hash_.find(to_hex(sha256(token)));
  if (it == by_hash_.end() || it->second.expires < std::chrono::steady_clock::now()) return "";
  return it->second.key_id;
}

void DashboardSessions::close(const std::string& token) {
  std::lock_guard lock(mu_);
  by_hash_.erase(to_hex(sha256(token)));
}

std::string DashboardSessions::token_in(const std::string* cookie_header) {
  if (!cookie_header) return "";
  std::string_view rest(*cookie_header);
  std::string_view name = kCookie;
  while (!rest.empty()) {
    auto semi = rest.find(';');
    std::string_view pair = rest.substr(0, semi);
    while (!pair.empty() && pair.front() == ' ') pair.remove_prefix(1);
    if (pair.size() > name.size() && pair.compare(0, name.size(), name) == 0 && pair[name.size()] == '=')
      return std::string(pair.substr(name.size() + 1));
    if (semi == std::string_view::npos) break;
    rest.remove_prefix(semi + 1);
  }
  return "";
}

}  // namespace plexus
