#pragma once
// The provider of a pull node: each call becomes an order on the node's link. One per event
// loop, like every provider; the link is shared and may go away at any time.
#include <chrono>
#include <memory>

#include "loop/event_loop.hpp"
#include "nodes/pull/order_link.hpp"
#include "plexus/provider.hpp"

namespace plexus {

class PullProvider final : public Provider {
 public:
  // `quiet_limit`: an order whose node sends nothing for this long (before its first chunk or
  // between two) fails as retryable; `deadline`: what the node is given to finish.
  PullProvider(EventLoop& loop, std::weak_ptr<OrderLink> link, std::chrono::milliseconds quiet_limit,
               std::chrono::milliseconds deadline)
      : loop_(loop), link_(std::move(link)), quiet_limit_(quiet_limit), deadline_(deadline) {}

  std::unique_ptr<ProviderCall> start(const ChatRequest& request, ResponseSink& sink) override;
  // An embeddings order (node.proto's Order.kind EMBEDDINGS), answered whole.
  std::unique_ptr<ProviderCall> embed(const EmbeddingRequest& request, ResponseSink& sink) override;

 private:
  std::unique_ptr<ProviderCall> send(const ChatRequest& request, ResponseSink& sink, bool embeddings);

  EventLoop& loop_;
  std::weak_ptr<OrderLink> link_;
  std::chrono::milliseconds quiet_limit_;
  std::chrono::milliseconds deadline_;
};

}  // namespace plexus
