// The node registry: snapshots indexed by (group, model), replacement by id, and the bounded
// wait for capacity.
#include "nodes/node_registry.hpp"

#include <gtest/gtest.h>

#include <future>
#include <thread>

#include "loop/event_loop.hpp"

namespace plexus {
namespace {

std::shared_ptr<Node> pull_node(const std::string& id, std::vector<std::string> groups, std::vector<std::string> models) {
  auto node = std::make_shared<Node>(id, id, NodeKind::kPull);
  node->groups = std::move(groups);
  std::vector<NodeModel> list;
  for (auto& m : models) list.push_back({m, m, {}, {}});
  node->set_models(std::move(list));
  node->credit = 0;
  return node;
}

TEST(NodeRegistry, IndexesByGroupAndModel) {
  NodeRegistry registry;
  registry.add(pull_node("a", {"lab"}, {"m1", "m2"}));
  registry.add(pull_node("b", {"public"}, {"m1"}));
  auto set = registry.snapshot();
  ASSERT_EQ(set->find("lab", "m1").size(), 1u);
  EXPECT_EQ(set->find("lab", "m1")[0].node->id, "a");
  EXPECT_EQ(set->find("public", "m1")[0].node->id, "b");
  EXPECT_TRUE(set->find("public", "m2").empty()) << "a group never sees another group's node";
  EXPECT_TRUE(set->find("other", "m1").empty());
  std::vector<std::string> ids;
  for (const auto& listing : set->models_for("lab")) ids.push_back(listing.id);
  EXPECT_EQ(ids, (std::vector<std::string>{"m1", "m2"}));
}

TEST(NodeRegistry, ASnapshotKeepsItsNodesAliveAfterTheyLeave) {
  NodeRegistry registry;
  auto node = pull_node("a", {"public"}, {"m"});
  std::weak_ptr<Node> weak = node;
  registry.add(node);
  auto held = registry.snapshot();
  registry.remove(node);
  node.reset();
  EXPECT_TRUE(registry.snapshot()->find("public", "m").empty());
  ASSERT_FALSE(weak.expired()) << "a request routing from the old snapshot still holds it";
  EXPECT_EQ(held->find("public", "m")[0].model->id, "m");
  held.reset();
  EXPECT_TRUE(weak.expired());
}

TEST(NodeRegistry, TheSameIdReplacesTheOldNode) {
  NodeRegistry registry;
  auto first = pull_node("a", {"public"}, {"m"});
  auto second = pull_node("a", {"public"}, {"m", "n"});
  EXPECT_EQ(registry.add(first), nullptr);
  EXPECT_EQ(registry.add(second), first);
  EXPECT_EQ(registry.snapshot()->nodes().size(), 1u);
  registry.remove(first);  // the old session ending removes nothing
  EXPECT_EQ(registry.snapshot()->find("public", "n").size(), 1u);
}

TEST(NodeRegistry, ModelChangesArePublished) {
  NodeRegistry registry;
  auto node = pull_node("a", {"public"}, {"m"});
  registry.add(node);
  node->set_models({{"m", "m", {}, {}}, {"new", "new", {}, {}}});
  EXPECT_TRUE(registry.snapshot()->find("public", "new").empty());
  registry.republish();
  EXPECT_EQ(registry.snapshot()->find("public", "new").size(), 1u);
}

TEST(NodeRegistry, CapacityWakesEveryWaiterItCouldServeOnItsLoopAndTheQueueIsBounded) {
  NodeRegistry registry;
  auto node = pull_node("a", {"public"}, {"m"});
  registry.add(node);
  EventLoop loop;
  std::thread thread([&] { loop.run(); });
  std::atomic<int> woken{0};
  std::vector<NodeRegistry::WaitTicket> tickets;
  for (int i = 0; i < 3; ++i)
    tickets.push_back(registry.wait_for_capacity("public", "m", loop, [&] { ++woken; }, 3));
  EXPECT_EQ(registry.wait_for_capacity("public", "m", loop, [] {}, 3), nullptr) << "the queue holds 3";
  tickets[0].reset();  // that request went away: its place is free, it is never woken
  registry.capacity_added(*node, 1);
  registry.capacity_added(*pull_node("other", {"public"}, {"x"}), 5);  // another model: nobody
  std::promise<void> flushed;
  loop.post([&] { flushed.set_value(); });
  flushed.get_future().wait();
  EXPECT_EQ(woken.load(), 2) << "every live waiter, so none swallows a wake-up it cannot use";
  loop.stop();
  thread.join();
}

}  // namespace
}  // namespace plexus
