#pragma once
// Between a pull node's connection (the node service's threads) and the event loops whose
// requests it serves. No gRPC here: the loops see only this.
#include <chrono>
#include <cstdint>
#include <memory>
#include <functional>
#include <string>

#include "config/config.hpp"
#include "plexus/provider.hpp"

namespace plexus {

class EventLoop;

// One order in flight. Created on the order's loop; the node service keeps it until the node
// completes the order (or goes away) and delivers everything through `loop`'s inbox.
class OrderLink;
struct PendingOrder {
  EventLoop* loop = nullptr;  // set before the order is sent, then constant
  bool embeddings = false;    // an embeddings order (answered whole); set before it is sent
  // The rest is for the loop thread only.
  ResponseSink* sink = nullptr;  // null once the call is cancelled or finished: nothing is delivered then
  std::uint64_t id = 0;
  std::weak_ptr<OrderLink> link;
  std::chrono::milliseconds quiet_limit{0};
  std::uint64_t quiet_timer = 0;  // fires when the node stays silent longer than quiet_limit
  // Flow control (node.proto's Flow): chunk bytes handed to the client and not yet granted back
  // to the node. While the client is not reading (ProviderCall::pause) nothing is granted, so the
  // node stops within a window. What still arrives meanwhile is counted, and past a bound (a node
  // that ignores windows) the order ends rather than piling up in memory.
  bool paused = false;
  std::size_t bytes_while_paused = 0;
  std::size_t ungranted = 0;
};

// One request's auction: bids arrive on the node service's threads and are posted to `loop`,
// where `on_bid` runs (node key, its price), unless the round is over by then.
struct BidRound {
  EventLoop* loop = nullptr;
  std::function<void(std::uint64_t node_key, Price price)> on_bid;
};

// A connected pull node, as the loops use it. Thread-safe.
class OrderLink {
 public:
  virtual ~OrderLink() = default;
  // Sends the order if the node still holds credit; returns its id, or 0 when the node has no
  // capacity left or is leaving (the caller then tries another node).
  // `embeddings`: an embeddings order (request.body is the embeddings request), never streamed.
  virtual std::uint64_t send_order(const ChatRequest& request, std::chrono::milliseconds deadline,
                                   std::shared_ptr<PendingOrder> order, bool embeddings = false) = 0;
  // The client is gone or the router gave up: tell the node to stop; nothing more is delivered.
  virtual void cancel_order(std::uint64_t order_id, const std::string& reason) = 0;
  // The order's client took `bytes` more of its answer: the node may send as many again (Flow).
  // Unknown or finished orders are ignored.
  virtual void grant_order(std::uint64_t order_id, std::size_t bytes) = 0;
  // Asks the node its price for one request; false when it cannot be asked (leaving).
  virtual bool request_bid(const std::string& model, std::uint32_t prompt_tokens, std::uint32_t max_tokens,
                           std::shared_ptr<BidRound> round) = 0;
};

// Each order's window (Order.window_bytes), and how much a grant gathers before it is sent.
inline constexpr std::size_t kOrderWindowBytes = 256u << 10;
inline constexpr std::size_t kOrderGrantBatch = 64u << 10;

// Delivery from the node service's threads to the order's loop, in arrival order.
void deliver_chunk(const std::shared_ptr<PendingOrder>& order, std::string chunk_json);
// The end of the order; a whole order's answer (`body_json`) goes to the sink first, in the same
// turn of the loop.
void deliver_outcome(const std::shared_ptr<PendingOrder>& order, Outcome outcome, std::string body_json = {});

}  // namespace plexus
