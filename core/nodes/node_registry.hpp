#pragma once
// Every node the router knows, direct and pull, in one registry indexed by (group, model).
//
// Readers (each request, on its event loop) take an immutable snapshot with one atomic load and
// never lock; the snapshot keeps its nodes and model lists alive for as long as it is held.
// Writers (start-up, the node service's threads when nodes join, leave or change models) build
// a new snapshot under a mutex and publish it. Group isolation is enforced here: a caller never
// sees, lists or reaches a node outside its group.
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "nodes/node.hpp"

namespace plexus {

class EventLoop;

// A node and one of its models; both kept alive by the NodeSet the match came from. What a
// routing decision reads of every candidate and that does not change while the snapshot lives
// is copied in, so a decision over 1,000 candidates walks one array and the live statistics.
struct Match {
  const Node* node = nullptr;
  const NodeModel* model = nullptr;
  ModelStats* stats = nullptr;      // model->stats
  double price = 0;                 // model->price, input + output per 1K
  std::uint64_t region_hash = 0;    // of node->region; 0: none

  static Match of(const Node* node, const NodeModel* model);
};

std::uint64_t region_hash(std::string_view region);  // 0 for ""

class NodeSet {
 public:
  // The nodes serving `model` to `group`, direct nodes first in config order, then pull nodes
  // in the order they joined. Never null.
  const std::vector<Match>& find(const std::string& group, const std::string& model) const;
  // The distinct models the group may use, and what they serve (some node serves it for chat,
  // some as an embedding model), in the order the nodes joined.
  struct Listing {
    std::string id;
    bool chat = false;
    bool embeddings = false;
  };
  std::vector<Listing> models_for(const std::string& group) const;
  const std::vector<std::shared_ptr<Node>>& nodes() const { return nodes_; }

 private:
  friend class NodeRegistry;
  std::vector<std::shared_ptr<Node>> nodes_;
  std::vector<std::shared_ptr<const std::vector<NodeModel>>> models_;  // keep Match::model alive
  std::unordered_map<std::string, std::vector<Match>> by_group_model_;
};

class NodeRegistry {
 public:
  NodeRegistry();

  std::shared_ptr<const NodeSet> snapshot() const { return current_.load(); }

  // Adds a node, replacing one with the same id (returned, so the caller can close it).
  std::shared_ptr<Node> add(std::shared_ptr<Node> node);
  // Removes `node` if it is still the one registered under its id.
  void remove(const std::shared_ptr<Node>& node);
  // Publishes a new snapshot after a node's model list changed.
  void republish();
  std::shared_ptr<Node> find(const std::string& id) const;

  // The bounded wait for capacity: when every node that could serve (group, model) is busy, a
  // request parks here. `wake` runs on `loop` when a node serving it gains credit; false when
  // `limit` requests already wait for this (group, model). The returned ticket cancels the
  // wait when destroyed or released.
  using WaitTicket = std::shared_ptr<void>;
  WaitTicket wait_for_capacity(const std::string& group, const std::string& model, EventLoop& loop,
                               std::function<void()> wake, std::size_t limit);
  // Any thread: `node` can take `slots` more orders; wakes every waiter it could serve. A waiter
  // that registers just after this ran is not woken: it must look at the capacity again once
  // registered (the exchange does).
  void capacity_added(const Node& node, std::int64_t slots);
  // Requests parked until a node has capacity (an upper bound: some may have given up).
  std::size_t waiting() const { return waiting_.load(std::memory_order_relaxed); }

 private:
  void publish_locked();
  struct Waiter;
  mutable std::mutex mu_;
  std::vector<std::shared_ptr<Node>> nodes_;  // insertion order
  std::atomic<std::shared_ptr<const NodeSet>> current_;
  std::mutex waiters_mu_;
  std::unordered_map<std::string, std::vector<std::weak_ptr<Waiter>>> waiters_;
  std::atomic<std::size_t> waiting_{0};  // entries in waiters_ (some may have expired)
};

}  // namespace plexus
