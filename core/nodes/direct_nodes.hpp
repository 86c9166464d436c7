#pragma once
// Direct nodes: the upstreams written in the config. The router calls their backends itself
// through the provider adapters, and polls them for their status.
#include <memory>
#include <vector>

#include "config/config.hpp"
#include "gateway/provider_registry.hpp"
#include "nodes/node.hpp"

namespace plexus {

// One node per configured upstream, in config order, with its providers built once per loop
// host (the hosts must outlive the nodes). Throws ConfigError naming the file and key path.
std::vector<std::shared_ptr<Node>> build_direct_nodes(const Config& config, const ProviderRegistry& registry,
                                                      const std::vector<ProviderHost*>& hosts);

// On loop `loop`'s thread: asks every node whose adapter can tell for its status, now and then
// every status_interval (the next poll is armed when the answer arrives, so slow backends never
// pile up). One loop polls; every loop reads the published answer.
void start_status_polling(const std::vector<std::shared_ptr<Node>>& nodes, std::size_t loop, Timers& timers);

}  // namespace plexus
