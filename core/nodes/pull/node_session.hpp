#pragma once
// One connected pull node: the server side of its NodeLink.Connect stream (gRPC's callback
// API) and the OrderLink the event loops send its orders through.
//
// Threads: gRPC runs the reactions (OnReadDone, OnWriteDone, OnDone) on its own threads, one at
// a time per direction; loops call send_order / cancel_order; the service's watchdog calls
// close(). Nothing here blocks: what must reach a loop is posted to its inbox. One read and one
// write are outstanding at most (gRPC's rule): outgoing messages wait in a queue and the next
// write starts from OnWriteDone. Finish is called exactly once, from finish().
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "config/config.hpp"
#include "loop/loop_group.hpp"
#include "nodes/node_registry.hpp"
#include "nodes/pull/order_link.hpp"
#include "plexus/node/v1/node.grpc.pb.h"

namespace plexus {

namespace pb = ::plexus::node::v1;

// What every session shares: settings, the registry, the loops, and the service's bookkeeping.
struct SessionEnv {
  const NodesConfig& settings;
  const std::vector<DeploymentConfig>& deployments;
  const BreakerSettings& breaker;
  std::chrono::seconds max_order_duration;
  NodeRegistry& registry;
  LoopGroup& loops;
  // A node registered: records its session and adds it to the registry in one step; returns the
  // session of the node it replaces (same id), if any, to be closed.
  std::function<std::shared_ptr<class NodeSession>(std::shared_ptr<Node>, std::shared_ptr<NodeSession>)> joined;
  std::function<void(const NodeSession*)> ended;
  std::atomic<bool>& draining;  // the router is shutting down: no orders, Drain to new nodes
  // The other routers' node ports a joining node is told of (Registered.routers); may be empty.
  std::function<std::vector<std::string>()> peer_routers = {};
};

class NodeSession final : public grpc::ServerBidiReactor<pb::NodeMessage, pb::RouterMessage>,
                          public OrderLink,
                          public std::enable_shared_from_this<NodeSession> {
 public:
  // `token` is null when the node presented no valid node token: the call is refused.
  NodeSession(SessionEnv& env, const NodeTokenConfig* token);

  // Starts the conversation; the session keeps itself alive until OnDone.
  void begin();

  // OrderLink (event loops)
  std::uint64_t send_order(const ChatRequest& request, std::chrono::milliseconds deadline,
                           std::shared_ptr<PendingOrder> order, bool embeddings) override;
  void cancel_order(std::uint64_t order_id, const std::string& reason) override;
  void grant_order(std::uint64_t order_id, std::size_t bytes) override;
  bool request_bid(const std::string& model, std::uint32_t prompt_tokens, std::uint32_t max_tokens,
                   std::shared_ptr<BidRound> round) override;

  // Any thread: ends the stream with `status`; the node leaves rotation at once.
  void close(const grpc::Status& status);
  // Any thread: asks the node to drain (no more orders are sent to it).
  void drain(const std::string& reason);
  // Tells a registered node the other routers' node ports (Routers); any thread.
  void tell_routers(const std::vector<std::string>& addresses);
  const NodeTokenConfig* token() const { return token_; }  // null: the node presented none that matched
  // Milliseconds (steady clock) since the node was last heard from (before it registered: since
  // the call began); 0 once the call is finished.
  std::int64_t silent_for_ms() const;
  std::string id() const;

  // gRPC reactions
  void OnReadDone(bool ok) override;
  void OnWriteDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override;

 private:
  // Message handlers (read side, one at a time). Return false to stop reading (the stream ends).
  bool on_register(const pb::Register& reg);
  bool on_heartbeat(Node& node, const pb::Heartbeat& beat);
  bool on_credit(Node& node, const pb::Credit& credit);
  bool on_chunk(pb::Chunk& chunk);
  bool on_complete(pb::Complete& complete);
  bool on_bid(const pb::Bid& bid);
  bool refuse(const std::string& why);  // a broken rule: cut the node off

  void queue(pb::RouterMessage message);
  void finish(const grpc::Status& status);
  void leave_rotation(const std::string& why);  // idempotent
  std::shared_ptr<PendingOrder> take_order(std::uint64_t id, bool erase);

  SessionEnv& env_;
  const NodeTokenConfig* token_;
  const std::int64_t opened_ms_;
  std::shared_ptr<NodeSession> self_;  // until OnDone
  pb::NodeMessage in_;                 // the one outstanding read

  mutable std::mutex mu_;
  std::shared_ptr<Node> node_;  // set once registered
  std::deque<pb::RouterMessage> outbox_;  // front: the write in flight
  bool writing_ = false;
  bool finished_ = false;  // Finish called: nothing more is written
  bool left_ = false;      // out of the registry, orders failed
  std::uint64_t next_order_id_ = 0;
  std::unordered_map<std::uint64_t, std::shared_ptr<PendingOrder>> orders_;
  std::uint64_t next_bid_id_ = 0;
  std::unordered_map<std::uint64_t, std::weak_ptr<BidRound>> bids_;  // asked, not answered; pruned as rounds end
};

}  // namespace plexus
