#include "order_runner.hpp"

#include <spdlog/spdlog.h>

#include <variant>

#include "gateway/chat_request.hpp"
#include "gateway/embeddings_request.hpp"

namespace plexus::node {

class OrderRunner::Running final : public ResponseSink {
 public:
  Running(OrderRunner& runner, const pb::Order& order)
      : runner_(runner), id_(order.order_id()), windowed_(order.window_bytes() > 0), allowance_(order.window_bytes()) {}
  ~Running() override {
    if (deadline_) runner_.loop_.cancel(deadline_);
  }

  void start(const pb::Order& order) {
    if (order.deadline_ms() > 0)
      deadline_ = runner_.loop_.after(std::chrono::milliseconds(order.deadline_ms()), [this] {
        deadline_ = 0;
        stop(504, "The order ran past its deadline", "deadline_exceeded", false);
      });
    if (order.kind() == pb::Order::EMBEDDINGS) return start_embeddings(order);
    auto parsed = parse_chat_request(order.body());
    if (auto* error = std::get_if<Error>(&parsed)) {
      Outcome bad;
      bad.error = *error;
      return on_finish(bad);
    }
    ChatRequest request = to_upstream_request(std::get<ParsedChat>(parsed), order.model(), order.request_id());
    request.stream = order.stream();
    request.include_usage = order.include_usage();
    call_ = runner_.provider_.start(request, *this);
  }

  // An embeddings order: checked as the router checks it, then the adapter's embed().
  void start_embeddings(const pb::Order& order) {
    auto parsed = parse_embeddings_request(order.body());
    if (auto* error = std::get_if<Error>(&parsed)) {
      Outcome bad;
      bad.error = *error;
      return on_finish(bad);
    }
    call_ = runner_.provider_.embed(to_upstream_embeddings(std::get<ParsedChat>(parsed), order.model(), order.request_id()), *this);
    if (!call_) stop(501, "This node's backend makes no embeddings", "embeddings_unsupported", true);
  }

  // Ends the order now with an error the router sees (the call produces nothing more).
  void stop(int status, const std::string& message, const std::string& code, bool retryable) {
    if (call_) call_->cancel();
    Outcome out;
    out.error = Error::upstream(status, message, code);
    out.retryable = retryable;
    on_finish(out);
  }

  void abandon() {
    done_ = true;
    if (call_) call_->cancel();
  }

  // Paused while the order's window is spent (its client is behind) or while the stream to the
  // router is congested; reading the backend again only when neither holds.
  void grant(std::uint64_t bytes) {
    allowance_ += static_cast<std::int64_t>(std::min<std::uint64_t>(bytes, 1ull << 40));
    window_spent_ = windowed_ && allowance_ <= 0;
    apply_flow();
  }
  void link_congested(bool congested) {
    link_paused_ = congested;
    apply_flow();
  }

  void on_chunk(std::string_view chunk_json) override {
    if (done_) return;
    if (!streaming_) {
      streaming_ = true;
      apply_flow();  // a congested stream to the router pauses it from here on
    }
    pb::NodeMessage m;
    m.mutable_chunk()->set_order_id(id_);
    m.mutable_chunk()->set_data(std::string(chunk_json));
    if (windowed_) {
      allowance_ -= static_cast<std::int64_t>(chunk_json.size());
      if (allowance_ <= 0 && !window_spent_) {
        window_spent_ = true;
        apply_flow();
      }
    }
    if (runner_.send_(std::move(m)) && !runner_.congested_) runner_.pause_all_for_link();
  }

  void on_body(std::string_view body_json) override {
    if (!done_) body_ = std::string(body_json);
  }

  // May run inside start() or a provider callback: the order is destroyed on a later turn.
  void on_finish(const Outcome& outcome) override {
    if (done_) return;
    done_ = true;
    pb::NodeMessage m;
    auto* c = m.mutable_complete();
    c->set_order_id(id_);
    c->mutable_usage()->set_prompt_tokens(static_cast<std::uint64_t>(outcome.usage.prompt_tokens));
    c->mutable_usage()->set_completion_tokens(static_cast<std::uint64_t>(outcome.usage.completion_tokens));
    c->mutable_usage()->set_known(outcome.usage.known);
    c->set_finish_reason(outcome.finish_reason);
    auto& totals = runner_.totals_;
    if (outcome.error) {
      auto* e = c->mutable_error();
      e->set_status(static_cast<std::uint32_t>(outcome.error->status));
      e->set_message(outcome.error->message);
      e->set_code(outcome.error->code);
      e->set_retryable(outcome.retryable);
      e->set_retry_after_s(static_cast<std::uint32_t>(outcome.cool_down.count()));
      ++totals.failed;
      totals.last_error = outcome.error->message;
    } else {
      c->set_body(std::move(body_));
      ++totals.served;
      totals.completion_tokens += static_cast<std::uint64_t>(outcome.usage.completion_tokens);
    }
    runner_.send_(std::move(m));
    std::uint64_t id = id_;
    OrderRunner* runner = &runner_;
    runner_.loop_.defer([runner, id] { runner->finished(id); });
  }

 private:
  // An order whose answer has not begun is never paused: libcurl (7.88) leaves a transfer
  // paused before its response headers stalled after it is resumed (measured: 1 to 5 orders of
  // 20 never started). It holds no data yet, so there is nothing to bound.
  void apply_flow() {
    if (done_ || !call_ || !streaming_) return;
    bool paused = window_spent_ || link_paused_;
    if (paused == call_paused_) return;
    call_paused_ = paused;
    if (paused)
      call_->pause();
    else
      call_->resume();
  }

  OrderRunner& runner_;
  std::uint64_t id_;
  std::unique_ptr<ProviderCall> call_;
  bool windowed_;
  std::int64_t allowance_;  // chunk bytes the router still takes (node.proto's Flow)
  bool window_spent_ = false, link_paused_ = false, call_paused_ = false;
  bool streaming_ = false;  // its first chunk came
  std::uint64_t deadline_ = 0;
  std::string body_;
  bool done_ = false;
};

OrderRunner::OrderRunner(EventLoop& loop, Provider& provider, Send send)
    : loop_(loop), provider_(provider), send_(std::move(send)) {}

OrderRunner::~OrderRunner() { abandon_all(); }

void OrderRunner::run(const pb::Order& order) {
  auto [it, fresh] = orders_.try_emplace(order.order_id());
  if (!fresh) {
    spdlog::warn("order {} was sent twice; the second is ignored", order.order_id());
    return;
  }
  it->second = std::make_unique<Running>(*this, order);
  it->second->start(order);
  if (congested_) {
    auto again = orders_.find(order.order_id());
    if (again != orders_.end()) again->second->link_congested(true);
  }
}

// Called from inside one transfer's write callback: pausing the others from there is not safe in
// libcurl's multi interface, so they pause after this turn's events (before anything it posted).
void OrderRunner::pause_all_for_link() {
  congested_ = true;
  loop_.defer([this] {
    if (!congested_) return;
    for (auto& [id, order] : orders_) order->link_congested(true);
  });
  if (on_congested_) on_congested_();
}

void OrderRunner::link_drained() {
  if (!congested_) return;
  congested_ = false;
  for (auto& [id, order] : orders_) order->link_congested(false);
}

void OrderRunner::cancel(std::uint64_t order_id, const std::string& reason) {
  auto it = orders_.find(order_id);
  if (it == orders_.end()) return;  // finished already: its Complete is on the way
  it->second->stop(499, "Cancelled by the router: " + reason, "cancelled", false);
}

void OrderRunner::grant(std::uint64_t order_id, std::uint64_t bytes) {
  auto it = orders_.find(order_id);
  if (it != orders_.end()) it->second->grant(bytes);
}

void OrderRunner::abandon_all() {
  for (auto& [id, order] : orders_) order->abandon();
  orders_.clear();
  congested_ = false;  // that stream is gone; the next one starts empty
}

void OrderRunner::hand_back_all() {
  for (auto& [id, order] : orders_) order->stop(503, "The node is shutting down", "node_draining", true);
}

void OrderRunner::finished(std::uint64_t id) {
  if (orders_.erase(id) && on_end_) on_end_();
}

}  // namespace plexus::node
