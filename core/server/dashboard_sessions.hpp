#pragma once
// Who may see the dashboard: an admin signs in once with their key (a form, never the key in a
// URL) and gets a session cookie. Sessions live in the router's memory, kept as the SHA-256 of
// their token, for 12 hours; a restart signs everyone out. Any thread.
#include <chrono>
#include <mutex>
#include <string>
#include <unordered_map>

namespace plexus {

class DashboardSessions {
 public:
  static constexpr std::chrono::hours kLifetime{12};
  static constexpr const char* kCookie = "plexus_session";

  // A new session for an admin key: its token (what the cookie holds).
  std::string open(const std::string& key_id);
  // The key id of a live session; "" when the token is unknown or expired.
  std::string who(const std::string& token);
  void close(const std::string& token);

  // The session token in a Cookie header ("" when none).
  static std::string token_in(const std::string* cookie_header);

 private:
  struct Session {
    std::string key_id;
    std::chrono::steady_clock::time_point expires;
  };
  std::mutex mu_;
  std::unordered_map<std::string, Session> by_hash_;  // SHA-256 (hex) of the token
};

}  // namespace plexus
