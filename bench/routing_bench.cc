// The cost of one routing decision (layer 1 filter + layer 2 rank) over 10, 100, 1,000 and
// 10,000 candidates (one region of a large network), for each built-in policy, with live
// statistics recorded for every node; and of building the candidates a routing plugin sees.
//   build/bench/routing_bench
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "gateway/chat_request.hpp"
#include "routing/candidates.hpp"
#include "routing/policy.hpp"

using namespace plexus;
using Clock = std::chrono::steady_clock;

int main() {
  auto chat = std::get<ParsedChat>(parse_chat_request(R"({"model":"m","messages":[{"role":"user","content":"hi"}]})"));
  std::printf("| candidates | policy | µs per decision (filter + rank) |\n|---:|---|---:|\n");
  for (int n : {10, 100, 1000, 10000}) {
    std::vector<std::shared_ptr<Node>> nodes;
    std::vector<Match> found;
    auto now = Clock::now();
    for (int i = 0; i < n; ++i) {
      auto node = std::make_shared<Node>("n" + std::to_string(i), "n", NodeKind::kPull);
      node->region = i % 3 ? "eu" : "us";
      node->max_concurrency = 8;
      node->credit = 4;
      node->set_models({{"m", "m", {0.1 * (i % 7), 0.2}, {}}});
      BackendStatus b;
      b.loaded_known = true;
      if (i % 4) b.loaded_models = {"m"};
      node->apply_backend(b);
      auto& st = *node->models()->front().stats;
      for (int k = 0; k < 20; ++k) {
        st.begin_attempt(now);
        AttemptResult r;
        r.ok = true;
        r.ttft_ms = 50 + (i * 37 + k) % 400;
        r.total_ms = r.ttft_ms * 5;
        r.tokens_per_second = 20 + i % 50;
        st.record(r, now);
      }
      found.push_back(Match::of(node.get(), &node->models()->front()));
      nodes.push_back(std::move(node));
    }
    for (auto policy : {routing::Policy::kBalanced, routing::Policy::kLatency, routing::Policy::kPrice,
                        routing::Policy::kLeastLoaded, routing::Policy::kRoundRobin}) {
      routing::Request req;
      req.policy = policy;
      req.region = "eu";
      int rounds = n >= 10000 ? 300 : n >= 1000 ? 2000 : 20000;
      std::size_t sink = 0;
      auto start = Clock::now();
      for (int k = 0; k < rounds; ++k) {
        req.now = Clock::now();
        auto filtered = routing::filter(found, chat);
        sink += routing::rank(filtered.able, req).front();
      }
      double us = std::chrono::duration<double, std::micro>(Clock::now() - start).count() / rounds;
      std::printf("| %d | %s | %.2f |\n", n, routing::name_of(policy), us);
      if (sink == 12345678) std::printf(" ");
    }
    // With a plugin's on_route: the candidates it sees (latency percentiles included), built once
    // per request before the hook runs.
    int rounds = n >= 10000 ? 300 : n >= 1000 ? 2000 : 20000;
    auto filtered = routing::filter(found, chat);
    std::size_t sink = 0;
    auto start = Clock::now();
    for (int k = 0; k < rounds; ++k) sink += routing::views(filtered.able, chat, "public", Clock::now()).size();
    double us = std::chrono::duration<double, std::micro>(Clock::now() - start).count() / rounds;
    std::printf("| %d | the candidates a plugin's on_route sees | %.2f |\n", n, us);
    if (sink == 12345678) std::printf(" ");
  }
}
