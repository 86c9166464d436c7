#pragma once
// A node: anything that serves models. Direct nodes are the config's upstreams (the router
// calls their backend); pull nodes dialled in over the node protocol and take orders. Routing,
// plugins and /v1/models see only this type.
//
// Nodes are shared between every event loop and the node service's threads, and held by shared
// ownership (a snapshot of the registry keeps each of its nodes alive), so a node that leaves in
// the middle of a request is never a dangling pointer. Fields are fixed at construction unless
// marked live; live ones are atomics or immutable snapshots replaced whole.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "plexus/provider.hpp"
#include "routing/live_stats.hpp"

namespace plexus {

// What one node as a whole carries live (per-model figures are in NodeModel::stats): requests
// in flight, and the backend's own word on itself, an immutable snapshot replaced whole.
class NodeStats {
 public:
  NodeStats() : backend_(std::make_shared<const BackendStatus>()) {}

  void attempt_started() { in_flight_.fetch_add(1, std::memory_order_relaxed); }
  void attempt_ended() { in_flight_.fetch_sub(1, std::memory_order_relaxed); }
  std::int64_t in_flight() const { return in_flight_.load(std::memory_order_relaxed); }

  // The backend's own word: polled (direct nodes) or reported (pull nodes' heartbeats). Set it
  // through Node::apply_backend, which also updates what routing reads per model.
  std::shared_ptr<const BackendStatus> backend() const { return backend_.load(); }
  bool ready() const { return ready_.load(std::memory_order_relaxed); }
  std::int64_t context_length() const { return context_length_.load(std::memory_order_relaxed); }

 private:
  friend class Node;
  std::atomic<std::int64_t> in_flight_{0};
  std::atomic<std::shared_ptr<const BackendStatus>> backend_;
  std::atomic<bool> ready_{true};
  std::atomic<std::int64_t> context_length_{0};
};

enum class NodeKind { kDirect, kPull };

class OrderLink;

// One model a node serves, as clients name it and as the node's backend does, with its live
// statistics (shared, so they outlive a change of the node's model list).
struct NodeModel {
  std::string id;
  std::string upstream_model;
  Price price;
  Capabilities capabilities;
  std::shared_ptr<ModelStats> stats = std::make_shared<ModelStats>();
};

struct GpuMetrics {
  unsigned index = 0;
  std::string name;
  double utilization_percent = -1;  // -1: unknown (all fields)
  std::int64_t memory_used_mib = -1;
  std::int64_t memory_total_mib = -1;
  double temperature_c = -1;
};

// Where a deployed model stands on a pull node, as the node reports it.
struct DeploymentStatus {
  std::string model;
  std::string state;  // "missing", "pulling", "loaded", "failed", "unsupported"
  double progress = 0;
  std::string detail;
};

class Node {
 public:
  using Clock = std::chrono::steady_clock;
  Node(std::string id, std::string name, NodeKind kind)
      : id(std::move(id)), name(std::move(name)), kind(kind), key(std::hash<std::string>{}(this->id) | 1) {}
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  // What routing reads for every candidate comes first, together (see ModelStats).
  mutable NodeStats stats;
  // live: pull nodes' orders the router may still send (credit); -1 for direct nodes: no limit
  std::atomic<std::int64_t> credit{-1};
  bool has_capacity() const { return credit.load(std::memory_order_relaxed) != 0; }
  // live: off rotation (the node or the router is draining it, or it went silent)
  std::atomic<bool> draining{false};
  // A direct node a config reload removed or replaced: its status is no longer polled (requests
  // that hold it finish).
  std::atomic<bool> retired{false};
  std::int64_t max_concurrency = 0;  // 0: not limited by the router
  std::string region;

  const std::string id;    // unique in the registry; also what x-plexus-node and logs say
  const std::string name;  // the operator's name for it
  const NodeKind kind;
  const std::uint64_t key;  // the id, hashed (never 0): what the prefix index remembers
  std::vector<std::string> groups;  // groups it serves; a caller never reaches a node outside its own
  std::string agent;                // pull nodes: the agent's name and version
  bool live_bids = false;           // pull nodes: answers the auction's BidRequests
  std::weak_ptr<OrderLink> link;    // pull nodes: their stream
  std::string backend_kind;         // pull nodes: what serves their orders ("ollama"...)
  std::chrono::seconds status_interval{0};  // direct nodes: how often their backend is polled
  std::chrono::system_clock::time_point joined = std::chrono::system_clock::now();

  // One provider object per event loop, built with that loop's host: a provider is only ever
  // called from one thread.
  std::vector<std::shared_ptr<Provider>> providers;
  Provider& provider(std::size_t loop) const { return *providers[loop]; }

  // live: the models (replaced whole when a pull node reports a change; the registry then
  // publishes a new snapshot)
  std::shared_ptr<const std::vector<NodeModel>> models() const { return models_.load(); }
  void set_models(std::vector<NodeModel> models) {
    models_.store(std::make_shared<const std::vector<NodeModel>>(std::move(models)));
  }

  std::atomic<std::int64_t> last_heard_ms{0};  // pull nodes: steady clock, ms
  std::atomic<std::int64_t> reported_in_flight{0};  // pull nodes: from heartbeats
  std::shared_ptr<const std::vector<GpuMetrics>> gpus() const { return gpus_.load(); }
  void set_gpus(std::vector<GpuMetrics> gpus) {
    gpus_.store(std::make_shared<const std::vector<GpuMetrics>>(std::move(gpus)));
  }

  std::shared_ptr<const std::vector<DeploymentStatus>> deployments() const { return deployments_.load(); }
  void set_deployments(std::vector<DeploymentStatus> d) {
    deployments_.store(std::make_shared<const std::vector<DeploymentStatus>>(std::move(d)));
  }

  // The backend's status (polled or reported): kept whole for /v1/nodes, and as flags per model
  // for routing. Call it after set_models too.
  void apply_backend(BackendStatus status);

  bool serves_group(const std::string& group) const;

 private:
  std::atomic<std::shared_ptr<const std::vector<NodeModel>>> models_{
      std::make_shared<const std::vector<NodeModel>>()};
  std::atomic<std::shared_ptr<const std::vector<GpuMetrics>>> gpus_{
      std::make_shared<const std::vector<GpuMetrics>>()};
  std::atomic<std::shared_ptr<const std::vector<DeploymentStatus>>> deployments_{
      std::make_shared<const std::vector<DeploymentStatus>>()};
};

std::int64_t steady_ms();  // the clock last_heard_ms uses

}  // namespace plexus
