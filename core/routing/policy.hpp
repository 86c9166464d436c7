#pragma once
// Layer 2 of routing: the built-in policies that order the candidates layer 1 (filter) left.
// Each reads the live statistics of each (node, model) (atomics, no locks) and costs no Lua; a
// Lua policy is an on_route plugin that starts from this order.
#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "nodes/node_registry.hpp"

namespace plexus::routing {

enum class Policy { kBalanced, kLatency, kPrice, kThroughput, kLeastLoaded, kRoundRobin, kAuction };

std::optional<Policy> policy_named(std::string_view name);  // "balanced", "latency", ...
const char* name_of(Policy policy);
inline constexpr const char* kPolicyNames = "balanced, latency, price, throughput, least_loaded, round_robin, auction";

// How much each term counts in "balanced" (each term is scaled to the candidates' own range, so
// weights compare terms, not units).
struct Weights {
  double ttft = 1;         // predicted time to first token (its moving average)
  double load = 1;         // requests in flight for the node's capacity
  double hot = 1;          // the model is not in memory (a cold start)
  double price = 1;        // price per 1K tokens, input and output
  double region = 1;       // the node is outside the client's region
  double reliability = 1;  // share of recent attempts that failed
};

struct Request {
  Policy policy = Policy::kBalanced;
  const Weights* weights = nullptr;
  std::string_view region;  // the client's; empty: no preference (rank hashes it once)
  // A cold model's predicted first token, for "latency" (a hot node wins unless it is slower
  // than this; cold starts take 10-60 s).
  std::chrono::milliseconds cold_start{15000};
  std::chrono::steady_clock::time_point now;
  // Prefix affinity: the node (its key) that last served this request's prompt prefix, 0: none.
  // It goes first, whatever the policy, while available and below `affinity_max_load`.
  std::uint64_t affinity = 0;
  double affinity_max_load = 0.8;
  // "auction": bids whose predicted TTFT is above this lose to any that meet it; 0: no bound.
  std::chrono::milliseconds latency_bound{0};
  // "auction": live bids by node key, in place of advertised prices (may be null).
  const std::unordered_map<std::uint64_t, Price>* bids = nullptr;
};

// The order to try `able` in: nodes whose breaker lets requests through first, then (except for
// "balanced", which weighs it) the client's region first, then the policy's order; ties keep
// registry order. Only the first kRanked are ordered; the rest follow in registry order.
inline constexpr std::size_t kRanked = 16;
std::vector<std::size_t> rank(const std::vector<Match>& able, const Request& request);

}  // namespace plexus::routing
