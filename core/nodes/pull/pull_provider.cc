#include "nodes/pull/pull_provider.hpp"

namespace plexus {
// Grants the node what the client took, once there is at least `at_least` of it (never while
// the client is not reading).
void grant_taken(PendingOrder& order, std::size_t at_least);

namespace {

Outcome failed(int status, std::string message, std::string code, bool retryable = true) {
  Outcome out;
  out.error = Error::upstream(status, std::move(message), std::move(code));
  out.retryable = retryable;
  return out;
}

// Arms (or re-arms) the order's silence limit: an order whose node sends nothing for that long
// fails as retryable, so a node that holds orders without answering cannot stall its clients.
void watch_quiet(const std::shared_ptr<PendingOrder>& order) {
  EventLoop& loop = *order->loop;
  if (order->quiet_timer) loop.cancel(order->quiet_timer);
  order->quiet_timer = loop.after(order->quiet_limit, [order] {
    order->quiet_timer = 0;
    ResponseSink* sink = order->sink;
    if (!sink) return;
    order->sink = nullptr;
    if (auto link = order->link.lock()) link->cancel_order(order->id, "no answer in time");
    sink->on_finish(failed(504, "The node sent nothing for " + std::to_string(order->quiet_limit.count()) + " ms",
                           "node_timeout"));
  });
}

void stop_watching(PendingOrder& order) {
  if (order.quiet_timer) order.loop->cancel(order.quiet_timer);
  order.quiet_timer = 0;
}

class PullCall final : public ProviderCall {
 public:
  explicit PullCall(std::shared_ptr<PendingOrder> order) : order_(std::move(order)) {}
  ~PullCall() override { cancel(); }

  // The client stopped reading: no more grants, so the node stops within its window.
  void pause() override {
    order_->paused = true;
    order_->bytes_while_paused = 0;
  }
  // It reads again: what it took meanwhile is granted back at once.
  void resume() override {
    order_->paused = false;
    grant_taken(*order_, 1);
  }

  void cancel() override {
    stop_watching(*order_);
    if (!order_->sink) return;  // finished: the node needs no word
    order_->sink = nullptr;
    if (auto link = order_->link.lock()) link->cancel_order(order_->id, "the client is gone");
  }

 private:
  std::shared_ptr<PendingOrder> order_;
};

class FailedCall final : public ProviderCall {
 public:
  void cancel() override {}
};

}  // namespace

std::unique_ptr<ProviderCall> PullProvider::start(const ChatRequest& request, ResponseSink& sink) {
  return send(request, sink, false);
}

std::unique_ptr<ProviderCall> PullProvider::embed(const EmbeddingRequest& request, ResponseSink& sink) {
  ChatRequest order;
  order.request_id = request.request_id;
  order.model = request.model;
  order.body = request.body;
  order.extra_headers = request.extra_headers;
  return send(order, sink, true);
}

std::unique_ptr<ProviderCall> PullProvider::send(const ChatRequest& request, ResponseSink& sink, bool embeddings) {
  auto order = std::make_shared<PendingOrder>();
  order->loop = &loop_;
  order->embeddings = embeddings;
  order->sink = &sink;
  order->link = link_;
  order->quiet_limit = quiet_limit_;
  auto link = link_.lock();
  // Deliveries are posted to this loop, so none runs before `id` is set below.
  order->id = link ? link->send_order(request, deadline_, order, embeddings) : 0;
  if (order->id == 0) {
    order->sink = nullptr;
    sink.on_finish(link ? failed(503, "The node has no capacity left", "node_busy")
                        : failed(502, "The node has left the network", "node_lost"));
    return std::make_unique<FailedCall>();
  }
  watch_quiet(order);
  return std::make_unique<PullCall>(std::move(order));
}

namespace {

// Runs `fn(sink)` on the order's loop unless the call is gone; `last` ends the order.
template <class Fn>
void on_order_loop(const std::shared_ptr<PendingOrder>& order, bool last, Fn fn) {
  order->loop->post([order, last, fn = std::move(fn)]() mutable {
    ResponseSink* sink = order->sink;
    if (!sink) return;
    if (last) {
      order->sink = nullptr;
      stop_watching(*order);
    } else {
      watch_quiet(order);
    }
    fn(*sink);
  });
}

}  // namespace

constexpr std::size_t kMaxBytesWhilePaused = 8u << 20;

void grant_taken(PendingOrder& order, std::size_t at_least) {
  if (order.paused || !order.sink || order.ungranted < at_least) return;
  if (auto link = order.link.lock()) link->grant_order(order.id, order.ungranted);
  order.ungranted = 0;
}

void deliver_chunk(const std::shared_ptr<PendingOrder>& order, std::string chunk_json) {
  on_order_loop(order, false, [order, chunk = std::move(chunk_json)](ResponseSink& sink) {
    if (order->paused && (order->bytes_while_paused += chunk.size()) > kMaxBytesWhilePaused) {
      order->sink = nullptr;
      stop_watching(*order);
      if (auto link = order->link.lock()) link->cancel_order(order->id, "the client reads too slowly");
      return sink.on_finish(failed(502, "The client read too slowly: more than 8 MiB of this answer waited for it",
                                   "client_too_slow", false));
    }
    order->ungranted += chunk.size();
    sink.on_chunk(chunk);  // may pause the call (the client is behind): then nothing is granted
    grant_taken(*order, kOrderGrantBatch);
  });
}

void deliver_outcome(const std::shared_ptr<PendingOrder>& order, Outcome outcome, std::string body_json) {
  on_order_loop(order, true, [outcome = std::move(outcome), body = std::move(body_json)](ResponseSink& sink) {
    if (!body.empty()) sink.on_body(body);
    sink.on_finish(outcome);
  });
}

}  // namespace plexus
