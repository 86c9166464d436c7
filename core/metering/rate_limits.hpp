#pragma once
// Requests and tokens per minute per key (keys[].rpm, keys[].tpm), shared by every event loop
// without locks: one fixed one-minute window per key, its counters atomics. A request takes a
// request slot when it starts; its tokens count when it is settled.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace plexus::metering {

class RateLimits {
 public:
  struct Entry {
    std::atomic<std::int64_t> rpm{0};  // 0: no limit (atomics: a config reload may change them)
    std::atomic<std::int64_t> tpm{0};
    std::atomic<std::int64_t> minute{-1};
    std::atomic<std::int64_t> requests{0};
    std::atomic<std::int64_t> tokens{0};
    // Several routers (cluster.redis): what the other routers counted in `remote_minute`, as the
    // last sync saw it. Added to this router's own counts when admitting.
    std::atomic<std::int64_t> remote_minute{-1};
    std::atomic<std::int64_t> remote_requests{0};
    std::atomic<std::int64_t> remote_tokens{0};
  };
  struct Decision {
    bool allowed = true;
    std::chrono::seconds retry_after{0};
    std::vector<std::pair<std::string, std::string>> headers;  // OpenAI's x-ratelimit-* set
  };

  void set(const std::string& key_id, std::int64_t rpm, std::int64_t tpm);
  Entry* find(const std::string& key_id) const;  // null: the key has no limits
  // Every key with limits (the cluster sync's thread; entries never move).
  std::vector<std::pair<std::string, Entry*>> entries() const;

  // Takes a request slot unless the minute's requests or tokens are used up.
  static Decision admit(Entry& e, std::chrono::system_clock::time_point now);
  static void add_tokens(Entry& e, std::int64_t tokens, std::chrono::system_clock::time_point now);

 private:
  static void roll(Entry& e, std::int64_t minute);
  // Keys come and go through the admin API while loops look them up: a reader-writer lock around
  // the map (the entries themselves never move, and their counters are atomics).
  mutable std::shared_mutex mu_;
  std::unordered_map<std::string, std::unique_ptr<Entry>> entries_;
  // Set once the map has an entry (entries are never removed): a router without limits looks
  // nothing up and takes no lock, not even a shared one, on a line every loop would write.
  std::atomic<bool> any_{false};
};

}  // namespace plexus::metering
