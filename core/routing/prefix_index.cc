#include "routing/prefix_index.hpp"

#include <bit>

namespace plexus::routing {

PrefixIndex::PrefixIndex(std::size_t slots)
    : mask_(std::bit_ceil(slots < 2 ? std::size_t{2} : slots) - 1), slots_(std::make_unique<Slot[]>(mask_ + 1)) {}

// Two stores a reader may see half of: it then finds the new prefix with the old node (or the
// reverse), a wrong guess that costs one cache miss on a backend, never a wrong answer.
void PrefixIndex::remember(std::uint64_t prefix, std::uint64_t node_key) {
  Slot& slot = slots_[prefix & mask_];
  slot.node.store(node_key, std::memory_order_relaxed);
  slot.prefix.store(prefix, std::memory_order_release);
}

std::uint64_t PrefixIndex::find(std::uint64_t prefix) const {
  const Slot& slot = slots_[prefix & mask_];
  if (slot.prefix.load(std::memory_order_acquire) != prefix) return 0;
  return slot.node.load(std::memory_order_relaxed);
}

}  // namespace plexus::routing
