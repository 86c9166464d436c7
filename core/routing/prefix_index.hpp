#pragma once
// Prefix affinity's memory: which node last served a prompt prefix (a system prompt, a
// conversation so far), so the next request sharing it goes where the backend still holds its KV
// cache. Approximate and bounded: a fixed table of hashes, the newest writer of a slot wins, no
// locks (every loop writes and reads it).
#include <atomic>
#include <cstdint>
#include <memory>

namespace plexus::routing {

class PrefixIndex {
 public:
  explicit PrefixIndex(std::size_t slots = 1u << 16);

  void remember(std::uint64_t prefix, std::uint64_t node_key);
  std::uint64_t find(std::uint64_t prefix) const;  // the node's key, or 0

 private:
  struct Slot {
    std::atomic<std::uint64_t> prefix{0};
    std::atomic<std::uint64_t> node{0};
  };
  std::size_t mask_;
  std::unique_ptr<Slot[]> slots_;
};

}  // namespace plexus::routing
