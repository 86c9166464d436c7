#include "nodes/node.hpp"

#include <algorithm>

namespace plexus {

void Node::apply_backend(BackendStatus status) {
  auto has = [](const std::vector<std::string>& list, const std::string& item) {
    return std::find(list.begin(), list.end(), item) != list.end();
  };
  for (const auto& m : *models())
    m.stats->set_backend_view(!status.loaded_known || has(status.loaded_models, m.upstream_model),
                              !status.available_known || has(status.available_models, m.upstream_model));
  stats.ready_.store(status.ready, std::memory_order_relaxed);
  stats.context_length_.store(status.context_length, std::memory_order_relaxed);
  stats.backend_.store(std::make_shared<const BackendStatus>(std::move(status)));
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
