#include "nodes/node_registry.hpp"

#include <algorithm>
#include <functional>

#include "loop/event_loop.hpp"

namespace plexus {
namespace {

std::string key_of(const std::string& group, const std::string& model) {
  std::string key;
  key.reserve(group.size() + model.size() + 1);
  key.append(group).push_back('\0');
  key.append(model);
  return key;
}

}  // namespace

std::uint64_t region_hash(std::string_view region) {
  return region.empty() ? 0 : std::hash<std::string_view>{}(region) | 1;
}

Match Match::of(const Node* node, const NodeModel* model) {
  return {node, model, model->stats.get(), model->price.input_per_1k + model->price.output_per_1k,
          plexus::region_hash(node->region)};
}

const std::vector<Match>& NodeSet::find(const std::string& group, const std::string& model) const {
  static const std::vector<Match> kNone;
  auto it = by_group_model_.find(key_of(group, model));
  return it == by_group_model_.end() ? kNone : it->second;
}

std::vector<NodeSet::Listing> NodeSet::models_for(const std::string& group) const {
  std::vector<Listing> out;
  for (std::size_t i = 0; i < nodes_.size(); ++i) {
    if (!nodes_[i]->serves_group(group)) continue;
    for (const auto& m : *models_[i]) {
      auto it = std::find_if(out.begin(), out.end(), [&](const Listing& l) { return l.id == m.id; });
      if (it == out.end()) it = out.insert(out.end(), Listing{m.id});
      (m.capabilities.embeddings ? it->embeddings : it->chat) = true;
    }
  }
  return out;
}

NodeRegistry::NodeRegistry() : current_(std::make_shared<const NodeSet>()) {}

std::shared_ptr<Node> NodeRegistry::add(std::shared_ptr<Node> node) {
  std::lock_guard lock(mu_);
  std::shared_ptr<Node> replaced;
  auto it = std::find_if(nodes_.begin(), nodes_.end(), [&](const auto& n) { return n->id == node->id; });
  if (it != nodes_.end()) {
    replaced = std::move(*it);
    nodes_.erase(it);
  }
  nodes_.push_back(std::move(node));
  // Direct nodes stay first, in config order: they were added first and are never replaced.
  publish_locked();
  return replaced;
}

void NodeRegistry::remove(const std::shared_ptr<Node>& node) {
  std::lock_guard lock(mu_);
  auto it = std::find(nodes_.begin(), nodes_.end(), node);
  if (it == nodes_.end()) return;
  nodes_.erase(it);
  publish_locked();
}

void NodeRegistry::republish() {
  std::lock_guard lock(mu_);
  publish_locked();
}

std::shared_ptr<Node> NodeRegistry::find(const std::string& id) const {
  std::lock_guard lock(mu_);
  for (const auto& n : nodes_)
    if (n->id == id) return n;
  return nullptr;
}

void NodeRegistry::publish_locked() {
  auto set = std::make_shared<NodeSet>();
  set->nodes_ = nodes_;
  for (const auto& node : nodes_) {
    auto models = node->models();
    set->models_.push_back(models);
    for (const auto& group : node->groups)
      for (const auto& m : *models) set->by_group_model_[key_of(group, m.id)].push_back(Match::of(node.get(), &m));
  }
  current_.store(std::move(set));
}

struct NodeRegistry::Waiter {
  EventLoop* loop;
  std::function<void()> wake;
};

NodeRegistry::WaitTicket NodeRegistry::wait_for_capacity(const std::string& group,
                                                         const std::string& model, EventLoop& loop,
                                                         std::function<void()> wake,
                                                         std::size_t limit) {
  auto waiter = std::make_shared<Waiter>(Waiter{&loop, std::move(wake)});
  std::lock_guard lock(waiters_mu_);
  auto& queue = waiters_[key_of(group, model)];
  waiting_ -= std::erase_if(queue, [](const auto& w) { return w.expired(); });
  if (queue.size() >= limit) return nullptr;
  queue.push_back(waiter);
  ++waiting_;
  return waiter;
}

// Every waiter for the node's (group, model)s is woken, not just `slots` of them: a woken request
// may be unable to use this node (it failed there already, or its client left), and a wake-up it
// swallowed would leave another waiting out its timeout beside an idle node. Those that find no
// capacity wait again; the queue is bounded, so the herd is too.
void NodeRegistry::capacity_added(const Node& node, std::int64_t slots) {
  if (slots <= 0 || waiting_.load() == 0) return;  // the common case: nobody waits
  std::vector<std::shared_ptr<Waiter>> woken;
  {
    auto models = node.models();
    std::lock_guard lock(waiters_mu_);
    for (const auto& group : node.groups) {
      for (const auto& m : *models) {
        auto it = waiters_.find(key_of(group, m.id));
        if (it == waiters_.end()) continue;
        for (auto& weak : it->second)
          if (auto w = weak.lock()) woken.push_back(std::move(w));
        waiting_ -= it->second.size();
        waiters_.erase(it);
      }
    }
  }
  // Each tries again on its own loop, in the order they came.
  for (auto& w : woken) w->loop->post([w] { w->wake(); });
}

}  // namespace plexus
