#include "nodes/pull/node_session.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>

#include "nodes/pull/node_messages.hpp"
#include "nodes/pull/pull_provider.hpp"

namespace plexus {

namespace checks = node_messages;

NodeSession::NodeSession(SessionEnv& env, const NodeTokenConfig* token)
    : env_(env), token_(token), opened_ms_(steady_ms()) {}

void NodeSession::begin() {
  self_ = shared_from_this();
  if (!token_) {
    // A consumer key, a wrong token or none: nothing is read from this caller.
    finish(grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                        "a node token is required (authorization: Bearer <node token>)"));
    return;
  }
  StartRead(&in_);
}

std::string NodeSession::id() const {
  std::lock_guard lock(mu_);
  return node_ ? node_->id : "";
}

std::int64_t NodeSession::silent_for_ms() const {
  std::lock_guard lock(mu_);
  if (finished_) return 0;
  // Before Register, the silence counts from the call's start: a caller that authenticates and
  // then says nothing is closed like a silent node.
  return steady_ms() - (node_ ? node_->last_heard_ms.load(std::memory_order_relaxed) : opened_ms_);
}

// ---------------------------------------------------------------- read side

void NodeSession::OnReadDone(bool ok) {
  if (!ok) {  // the node closed its side, or the stream broke
    finish(grpc::Status::OK);
    return;
  }
  bool go_on = false;
  {
    std::shared_ptr<Node> node;
    {
      std::lock_guard lock(mu_);
      node = node_;
    }
    if (!node) {
      go_on = in_.has_register_() ? on_register(in_.register_()) : refuse("the first message must be Register");
    } else {
      node->last_heard_ms.store(steady_ms(), std::memory_order_relaxed);
      switch (in_.kind_case()) {
        case pb::NodeMessage::kHeartbeat: go_on = on_heartbeat(*node, in_.heartbeat()); break;
        case pb::NodeMessage::kCredit: go_on = on_credit(*node, in_.credit()); break;
        case pb::NodeMessage::kChunk: go_on = on_chunk(*in_.mutable_chunk()); break;
        case pb::NodeMessage::kComplete: go_on = on_complete(*in_.mutable_complete()); break;
        case pb::NodeMessage::kBid: go_on = on_bid(in_.bid()); break;
        case pb::NodeMessage::kDrain:
          spdlog::info("node {} is draining: {}", node->id, in_.drain().reason());
          node->draining.store(true);
          go_on = true;
          break;
        case pb::NodeMessage::kRegister: go_on = refuse("Register was already sent"); break;
        default: go_on = refuse("an empty or unknown message"); break;
      }
    }
  }
  if (!go_on) return;
  std::lock_guard lock(mu_);
  if (!finished_) StartRead(&in_);  // never after Finish
}

bool NodeSession::on_register(const pb::Register& reg) {
  if (auto why = checks::check_register(reg); !why.empty()) {
    finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "Register." + why));
    return false;
  }
  auto node = std::make_shared<Node>(reg.name() + "@" + token_->id, reg.name(), NodeKind::kPull);
  node->region = reg.region();
  node->groups = token_->groups;  // a node serves only what its token allows
  node->agent = reg.agent_version();
  node->backend_kind = reg.backend();
  node->max_concurrency = reg.max_concurrency();
  node->live_bids = reg.live_bids();
  node->credit.store(0);
  node->last_heard_ms.store(steady_ms());
  node->set_models(checks::to_models(reg.models(), env_.breaker));
  node->set_gpus(checks::to_gpus(reg.gpus()));
  node->apply_backend(checks::to_backend_status(reg.models()));
  if (env_.draining.load()) node->draining.store(true);
  std::weak_ptr<OrderLink> link = std::static_pointer_cast<OrderLink>(shared_from_this());
  for (std::size_t i = 0; i < env_.loops.size(); ++i)
    node->providers.push_back(std::make_shared<PullProvider>(env_.loops.at(i), link, env_.settings.first_chunk_timeout,
                                                             std::chrono::duration_cast<std::chrono::milliseconds>(env_.max_order_duration)));
  node->link = link;
  {
    std::lock_guard lock(mu_);
    node_ = node;
  }
  pb::RouterMessage ack;
  auto* r = ack.mutable_registered();
  r->set_node_id(node->id);
  r->set_heartbeat_interval_ms(static_cast<std::uint32_t>(env_.settings.heartbeat_interval.count()));
  r->set_liveness_timeout_ms(static_cast<std::uint32_t>(env_.settings.liveness_timeout.count()));
  for (const auto& g : node->groups) r->add_groups(g);
  r->set_max_message_bytes(static_cast<std::uint32_t>(env_.settings.max_message_bytes));
  if (env_.peer_routers)
    for (const auto& address : env_.peer_routers()) r->add_routers(address);
  queue(std::move(ack));
  if (env_.draining.load()) drain("the router is shutting down");
  pb::RouterMessage deployments;
  for (const auto& d : env_.deployments)
    if (node->serves_group(d.group)) {
      auto* item = deployments.mutable_deployments()->add_items();
      item->set_model(d.model);
      item->set_min_nodes(static_cast<std::uint32_t>(d.min_nodes));
    }
  if (deployments.deployments().items_size() > 0) queue(std::move(deployments));

  // Registered and published in one step under the service's lock: of two connections with the
  // same name, the later one wins and the earlier one is closed.
  if (auto replaced = env_.joined(node, shared_from_this()))
    replaced->close(grpc::Status(grpc::StatusCode::ABORTED, "replaced by a new connection of the same node"));
  bool gone;
  {
    std::lock_guard lock(mu_);
    gone = left_;
  }
  if (gone) env_.registry.remove(node);  // the call ended while it joined (a cancel on another thread)
  spdlog::info("node {} joined ({}, {} models, groups {}, region '{}', {})", node->id, node->backend_kind,
               reg.models_size(), fmt::join(node->groups, ","), node->region, node->agent);
  return true;
}

bool NodeSession::on_heartbeat(Node& node, const pb::Heartbeat& beat) {
  node.reported_in_flight.store(beat.in_flight(), std::memory_order_relaxed);
  if (auto why = checks::check_gpus(beat.gpus()); !why.empty()) return refuse("Heartbeat." + why);
  node.set_gpus(checks::to_gpus(beat.gpus()));
  if (auto why = checks::check_deployments(beat.deployments()); !why.empty()) return refuse("Heartbeat." + why);
  node.set_deployments(checks::to_deployments(beat.deployments()));
  if (beat.models_size() > 0) {
    if (auto why = checks::check_models(beat.models()); !why.empty()) return refuse("Heartbeat." + why);
    auto models = checks::to_models(beat.models(), env_.breaker);
    // Only a real change rebuilds the registry's snapshot (a node repeating its list costs nothing),
    // and a model that stays keeps its statistics.
    auto current = node.models();
    if (!checks::same_models(*current, models)) {
      for (auto& m : models)
        for (const auto& old : *current)
          if (old.id == m.id) m.stats = old.stats;
      node.set_models(std::move(models));
      node.apply_backend(checks::to_backend_status(beat.models()));
      env_.registry.republish();
    } else {
      node.apply_backend(checks::to_backend_status(beat.models()));  // hot flags may have moved
    }
  }
  return true;
}

bool NodeSession::on_credit(Node& node, const pb::Credit& credit) {
  std::int64_t slots = credit.slots();
  std::int64_t held = node.credit.load();
  std::int64_t next = std::min<std::int64_t>(held + slots, checks::kMaxCredit);
  while (!node.credit.compare_exchange_weak(held, next)) next = std::min<std::int64_t>(held + slots, checks::kMaxCredit);
  if (slots > 0) env_.registry.capacity_added(node, slots);
  return true;
}

bool NodeSession::on_chunk(pb::Chunk& chunk) {
  auto order = take_order(chunk.order_id(), false);
  if (!order) return true;  // cancelled a moment ago: the node had not heard yet
  if (order->embeddings) return refuse("order " + std::to_string(chunk.order_id()) + ": a chunk for an embeddings order");
  if (!checks::is_chunk_json(chunk.data()))
    return refuse("order " + std::to_string(chunk.order_id()) + ": a chunk that is not a chat.completion.chunk object");
  deliver_chunk(order, std::move(*chunk.mutable_data()));
  return true;
}

bool NodeSession::on_complete(pb::Complete& complete) {
  auto order = take_order(complete.order_id(), true);
  if (!order) return true;
  Outcome outcome;
  outcome.finish_reason = complete.finish_reason().substr(0, 64);
  outcome.usage.prompt_tokens = static_cast<std::int64_t>(std::min<std::uint64_t>(complete.usage().prompt_tokens(), 1ull << 40));
  outcome.usage.completion_tokens =
      static_cast<std::int64_t>(std::min<std::uint64_t>(complete.usage().completion_tokens(), 1ull << 40));
  outcome.usage.known = complete.usage().known();
  if (complete.has_error()) {
    const auto& e = complete.error();
    int status = e.status() >= 400 && e.status() <= 599 ? static_cast<int>(e.status()) : 502;
    std::string code = e.code().empty() ? "node_error" : e.code().substr(0, 64);
    outcome.error = Error::upstream(status, "The node reported: " + e.message().substr(0, 1024), code);
    outcome.retryable = e.retryable();
    outcome.cool_down = std::chrono::seconds(std::min<std::uint32_t>(e.retry_after_s(), 3600));
  } else if (!complete.body().empty() &&
             !(order->embeddings ? checks::is_embeddings_json(complete.body()) : checks::is_completion_json(complete.body()))) {
    const char* what = order->embeddings ? "an embeddings list" : "a chat.completion object";
    Outcome broken;
    broken.error = Error::upstream(502, std::string("The node's answer is not ") + what, "node_protocol_error");
    broken.retryable = true;
    deliver_outcome(order, std::move(broken));
    return refuse("order " + std::to_string(complete.order_id()) + ": a body that is not " + what);
  }
  deliver_outcome(order, std::move(outcome), complete.has_error() ? std::string() : std::move(*complete.mutable_body()));
  return true;
}

bool NodeSession::refuse(const std::string& why) {
  spdlog::warn("node {}: cut off: {}", id().empty() ? "(unregistered)" : id(), why);
  close(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, why));
  return false;
}

std::shared_ptr<PendingOrder> NodeSession::take_order(std::uint64_t id, bool erase) {
  std::lock_guard lock(mu_);
  auto it = orders_.find(id);
  if (it == orders_.end()) return nullptr;
  auto order = it->second;
  if (erase) orders_.erase(it);
  return order;
}

// ---------------------------------------------------------------- orders (event loops)

std::uint64_t NodeSession::send_order(const ChatRequest& request, std::chrono::milliseconds deadline,
                                      std::shared_ptr<PendingOrder> order, bool embeddings) {
  pb::RouterMessage message;
  std::uint64_t id;
  {
    std::lock_guard lock(mu_);
    if (!node_ || left_ || finished_ || node_->draining.load()) return 0;
    std::int64_t credit = node_->credit.load();
    do {
      if (credit <= 0) return 0;
    } while (!node_->credit.compare_exchange_weak(credit, credit - 1));
    id = ++next_order_id_;
    orders_.emplace(id, std::move(order));
  }
  auto* o = message.mutable_order();
  o->set_order_id(id);
  o->set_request_id(request.request_id);
  o->set_model(request.model);
  o->set_body(request.body);
  o->set_stream(request.stream);
  o->set_include_usage(request.include_usage);
  o->set_deadline_ms(static_cast<std::uint32_t>(std::min<std::int64_t>(deadline.count(), UINT32_MAX)));
  o->set_window_bytes(static_cast<std::uint32_t>(kOrderWindowBytes));
  if (embeddings) o->set_kind(pb::Order::EMBEDDINGS);
  queue(std::move(message));
  return id;
}

void NodeSession::cancel_order(std::uint64_t order_id, const std::string& reason) {
  if (!take_order(order_id, true)) return;
  pb::RouterMessage message;
  message.mutable_cancel()->set_order_id(order_id);
  message.mutable_cancel()->set_reason(reason);
  queue(std::move(message));
}

void NodeSession::grant_order(std::uint64_t order_id, std::size_t bytes) {
  if (!take_order(order_id, false)) return;
  pb::RouterMessage message;
  message.mutable_flow()->set_order_id(order_id);
  message.mutable_flow()->set_grant_bytes(static_cast<std::uint32_t>(std::min<std::size_t>(bytes, UINT32_MAX)));
  queue(std::move(message));
}

bool NodeSession::request_bid(const std::string& model, std::uint32_t prompt_tokens, std::uint32_t max_tokens,
                              std::shared_ptr<BidRound> round) {
  pb::RouterMessage message;
  {
    std::lock_guard lock(mu_);
    if (!node_ || left_ || finished_) return false;
    if (bids_.size() >= 1024) std::erase_if(bids_, [](const auto& b) { return b.second.expired(); });
    if (bids_.size() >= 1024) return false;  // a node that never answers is not asked any more
    std::uint64_t id = ++next_bid_id_;
    bids_.emplace(id, round);
    auto* ask = message.mutable_bid_request();
    ask->set_bid_id(id);
    ask->set_model(model);
    ask->set_prompt_tokens(prompt_tokens);
    ask->set_max_tokens(max_tokens);
  }
  queue(std::move(message));
  return true;
}

bool NodeSession::on_bid(const pb::Bid& bid) {
  std::weak_ptr<BidRound> asked;
  std::uint64_t node_key;
  {
    std::lock_guard lock(mu_);
    auto it = bids_.find(bid.bid_id());
    if (it == bids_.end()) return true;  // too late, or never asked: ignored
    asked = it->second;
    bids_.erase(it);
    node_key = node_->key;  // bids are only asked of a registered node
  }
  auto valid = [](double p) { return std::isfinite(p) && p >= 0 && p < 1e9; };
  if (!valid(bid.price_input_per_1k()) || !valid(bid.price_output_per_1k()))
    return refuse("Bid " + std::to_string(bid.bid_id()) + ": prices must be finite and not negative");
  auto round = asked.lock();
  if (!round) return true;
  Price price{bid.price_input_per_1k(), bid.price_output_per_1k()};
  round->loop->post([weak = asked, key = node_key, price] {
    if (auto r = weak.lock()) r->on_bid(key, price);
  });
  return true;
}

// ---------------------------------------------------------------- write side

// Writes start under the lock that finish() takes: no write can start after Finish (gRPC's
// rule), and reactions never run inline here, so OnWriteDone cannot deadlock on it.
void NodeSession::queue(pb::RouterMessage message) {
  std::lock_guard lock(mu_);
  if (finished_) return;
  outbox_.push_back(std::move(message));  // references to queued elements stay valid
  if (writing_) return;
  writing_ = true;
  StartWrite(&outbox_.front());
}

void NodeSession::OnWriteDone(bool ok) {
  std::lock_guard lock(mu_);
  outbox_.pop_front();
  if (!ok || finished_ || outbox_.empty()) {
    writing_ = false;
    if (!ok) outbox_.clear();
    return;
  }
  StartWrite(&outbox_.front());
}

void NodeSession::drain(const std::string& reason) {
  pb::RouterMessage message;
  message.mutable_drain()->set_reason(reason);
  {
    std::lock_guard lock(mu_);
    if (node_) node_->draining.store(true);
  }
  queue(std::move(message));
}

void NodeSession::tell_routers(const std::vector<std::string>& addresses) {
  {
    std::lock_guard lock(mu_);
    if (!node_ || left_ || finished_) return;  // not registered yet: Registered will carry them
  }
  pb::RouterMessage message;
  for (const auto& address : addresses) message.mutable_routers()->add_addresses(address);
  queue(std::move(message));
}

// ---------------------------------------------------------------- the end

// The node leaves rotation and its orders fail at once; the call itself ends when gRPC can end
// it. A frozen node never reads its trailers: the transport's keepalive (a ping unanswered for
// half the liveness timeout) closes its connection, and OnDone follows. (No TryCancel: racing
// Finish, it replaced the status the node should read, and it may touch a context OnDone freed.)
void NodeSession::close(const grpc::Status& status) {
  leave_rotation(status.error_message());
  finish(status);
}

// Whatever ends the call (the node closing its side, a cancel, a broken rule), the node leaves
// rotation now: nothing may be routed to a node that can no longer take orders.
void NodeSession::finish(const grpc::Status& status) {
  {
    std::lock_guard lock(mu_);
    if (finished_) return;
    finished_ = true;
  }
  leave_rotation(status.error_message());
  Finish(status);
}

void NodeSession::OnCancel() { finish(grpc::Status::CANCELLED); }

// Out of the registry at once, and every order it held fails: those with no output yet move to
// another node; a stream already under way ends with an error event.
void NodeSession::leave_rotation(const std::string& why) {
  std::shared_ptr<Node> node;
  std::unordered_map<std::uint64_t, std::shared_ptr<PendingOrder>> orders;
  {
    std::lock_guard lock(mu_);
    if (left_) return;
    left_ = true;
    node = node_;
    orders.swap(orders_);
  }
  if (!node) return;
  node->draining.store(true);
  node->credit.store(0);
  env_.registry.remove(node);
  spdlog::info("node {} left{}{}", node->id, why.empty() ? "" : ": ", why);
  for (auto& [id, order] : orders) {
    Outcome lost;
    lost.error = Error::upstream(502, "The node serving this request left the network", "node_lost");
    lost.retryable = true;
    deliver_outcome(order, std::move(lost));
  }
}

void NodeSession::OnDone() {
  leave_rotation("");
  env_.ended(this);
  self_.reset();  // may destroy this: the last statement
}

}  // namespace plexus
