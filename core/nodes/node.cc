#include "nodes/node.hpp"

#include <algorithm>

namespace plexus {

void NodeStats::set_backend(BackendStatus status) {
  backend_.store(std::make_shared<const BackendStatus>(std::move(status)));
}

bool Node::serves_group(const std::string& group) const {
  return std::find(groups.begin(), groups.end(), group) != groups.end();
}

std::int64_t steady_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace plexus
