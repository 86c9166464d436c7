// Routing without plugins: which upstreams can take a request, and in which order.
#include "routing/candidates.hpp"

#include <gtest/gtest.h>

namespace plexus {
namespace {

// A node serving model "m" with the given context length; match() points into it.
std::unique_ptr<Node> upstream(const std::string& name, std::int64_t context_length) {
  auto node = std::make_unique<Node>(name, name, NodeKind::kDirect);
  Capabilities caps;
  caps.context_length = context_length;
  node->set_models({{"m", "m", {}, caps}});
  return node;
}

Match match(const std::unique_ptr<Node>& node) { return Match::of(node.get(), &node->models()->front()); }

ParsedChat chat_with(std::size_t prompt_chars, std::int64_t max_tokens) {
  auto parsed = parse_chat_request(R"({"model":"m","messages":[{"role":"user","content":"x"}]})");
  auto chat = std::get<ParsedChat>(parsed);
  chat.prompt_chars = prompt_chars;
  chat.max_tokens = max_tokens;
  return chat;
}

TEST(RoutingFilter, TooLongForEveryUpstreamNamesTheLargestContext) {
  auto small = upstream("small", 4096);
  auto large = upstream("large", 32768);
  auto mid = upstream("mid", 8192);
  auto f = routing::filter({match(small), match(large), match(mid)},
                           chat_with(400000, 1000));  // ~101k tokens
  ASSERT_TRUE(f.error);
  EXPECT_EQ(f.error->status, 400);
  EXPECT_EQ(f.error->code, "unsupported_feature");
  EXPECT_NE(f.error->message.find("the largest is 32768"), std::string::npos) << f.error->message;
}

TEST(RoutingFilter, KeepsTheUpstreamsThatFit) {
  auto small = upstream("small", 4096);
  auto large = upstream("large", 32768);
  auto f = routing::filter({match(small), match(large)}, chat_with(40000, 100));
  ASSERT_FALSE(f.error);
  ASSERT_EQ(f.able.size(), 1u);
  EXPECT_EQ(f.able[0].node, large.get());
}

TEST(RoutingFilter, ABackendWithoutTheModelIsNoCandidate) {
  auto up = upstream("ollama", 0);
  BackendStatus status;
  status.available_known = true;
  status.available_models = {"other"};
  up->apply_backend(status);
  auto f = routing::filter({match(up)}, chat_with(10, 10));
  ASSERT_TRUE(f.error);
  EXPECT_EQ(f.error->status, 503);
  EXPECT_EQ(f.error->code, "model_unavailable");
}

TEST(RoutingOrder, PickFirstThenScoreThenConfigOrderWithoutTheDropped) {
  std::vector<Candidate> views(4);
  views[0].score = 0;
  views[1].score = 1;
  views[2].score = 1;
  views[2].dropped = true;
  views[3].score = -1;
  EXPECT_EQ(routing::order(views, std::nullopt), (std::vector<std::size_t>{1, 0, 3}));
  EXPECT_EQ(routing::order(views, 3), (std::vector<std::size_t>{3, 1, 0}));
  EXPECT_EQ(routing::order(views, 2), (std::vector<std::size_t>{2, 1, 0, 3})) << "a pick beats its own drop";
}

}  // namespace
}  // namespace plexus
