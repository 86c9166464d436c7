#pragma once
// The node port: pull nodes dial in over gRPC (proto/plexus/node/v1/node.proto), register, and
// take orders. Each connected node becomes a pull node in the registry for as long as its stream
// lives and it keeps talking. gRPC stays behind this header.
#include <cstdint>
#include <memory>

#include "config/config.hpp"
#include "loop/loop_group.hpp"
#include "nodes/node_registry.hpp"

namespace plexus {

class NodeService {
 public:
  // `max_order_duration`: what a node is given to finish one order.
  NodeService(const Config& config, NodeRegistry& registry, LoopGroup& loops);
  ~NodeService();  // stop()s
  NodeService(const NodeService&) = delete;
  NodeService& operator=(const NodeService&) = delete;

  // Listens on nodes.listen; throws std::runtime_error naming the address when it cannot.
  void start();
  std::uint16_t port() const;
  // Router shutting down: every node is told to drain (no new orders are sent from now on).
  void drain();
  // Ends every node's stream and stops listening. Orders still held fail as "node_lost".
  void stop();
  // A config reload's node tokens (they must live as long as the service: the router keeps every
  // config it loaded). Nodes that join from now on are checked against them; a connected node
  // whose token is gone is cut off. Any thread.
  void set_tokens(const std::vector<NodeTokenConfig>& tokens);
  // Where joining nodes learn the other routers of the network (cluster); before start().
  void set_peer_routers(std::function<std::vector<std::string>()> peers);
  // The other routers changed: every registered node hears of them (any thread).
  void announce_routers(const std::vector<std::string>& peers);

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace plexus
