#pragma once
// Runs the router's orders through the node's provider adapter, on the agent's event loop:
// chunks go back as they come (the first one at once), then one Complete. The same adapters
// as the router's, so a node speaks to its backend exactly as the router would.
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "loop/event_loop.hpp"
#include "plexus/node/v1/node.pb.h"
#include "plexus/provider.hpp"

namespace plexus::node {

namespace pb = ::plexus::node::v1;

class OrderRunner {
 public:
  // `send` puts a message on the router stream (any order of calls from the loop thread is kept)
  // and says whether the stream is congested: more queued for the router than it takes. Then
  // every order's backend stream pauses until link_drained().
  using Send = std::function<bool(pb::NodeMessage)>;
  struct Totals {
    std::uint64_t served = 0;
    std::uint64_t failed = 0;
    std::uint64_t completion_tokens = 0;
    std::string last_error;
  };

  OrderRunner(EventLoop& loop, Provider& provider, Send send);
  ~OrderRunner();

  // Loop thread.
  void run(const pb::Order& order);
  void cancel(std::uint64_t order_id, const std::string& reason);
  // The router's Flow: the order may send `bytes` more of chunk data.
  void grant(std::uint64_t order_id, std::uint64_t bytes);
  // The stream to the router took its backlog: the orders it paused go on.
  void link_drained();
  // The agent registers this to hear when the runner paused everything for a congested stream.
  void on_congested(std::function<void()> fn) { on_congested_ = std::move(fn); }
  // The stream to the router is gone: stop everything, nobody is left to tell.
  void abandon_all();
  // Drain ran out of time: end what is left with a retryable error the router can act on.
  void hand_back_all();
  std::size_t running() const { return orders_.size(); }
  const Totals& totals() const { return totals_; }
  // Called (loop thread) each time an order ends, after its Complete was sent.
  void on_order_end(std::function<void()> fn) { on_end_ = std::move(fn); }

 private:
  class Running;
  void finished(std::uint64_t id);
  void pause_all_for_link();

  EventLoop& loop_;
  Provider& provider_;
  Send send_;
  std::map<std::uint64_t, std::unique_ptr<Running>> orders_;
  Totals totals_;
  std::function<void()> on_end_;
  std::function<void()> on_congested_;
  bool congested_ = false;
};

}  // namespace plexus::node
