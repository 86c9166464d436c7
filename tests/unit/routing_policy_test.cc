// The built-in routing policies over nodes with made-up live statistics.
#include "routing/policy.hpp"

#include <gtest/gtest.h>

namespace plexus::routing {
namespace {

using Clock = std::chrono::steady_clock;
const Clock::time_point t0 = Clock::time_point(std::chrono::seconds(1000000));

// A node serving "m", with `samples` answers of `ttft_ms` recorded.
struct Fake {
  std::shared_ptr<Node> node;
  Fake(const std::string& id, double ttft_ms, double price = 0, std::string region = "", bool hot = true, double tps = -1) {
    node = std::make_shared<Node>(id, id, NodeKind::kDirect);
    node->region = std::move(region);
    node->set_models({{"m", "m", {price / 2, price / 2}, {}}});
    BackendStatus b;
    b.loaded_known = true;
    if (hot) b.loaded_models = {"m"};
    node->apply_backend(b);
    if (ttft_ms >= 0) {
      auto& st = *node->models()->front().stats;
      st.begin_attempt(t0);
      AttemptResult r;
      r.ok = true;
      r.ttft_ms = ttft_ms;
      r.total_ms = ttft_ms * 2;
      r.tokens_per_second = tps;
      st.record(r, t0);
    }
  }
  Match match() const { return Match::of(node.get(), &node->models()->front()); }
};

std::vector<std::string> ids(const std::vector<Match>& able, Policy policy, std::string_view region = "") {
  Request r;
  r.policy = policy;
  r.region = region;
  r.now = t0;
  std::vector<std::string> out;
  for (auto i : rank(able, r)) out.push_back(able[i].node->id);
  return out;
}

TEST(RoutingPolicy, LatencyPrefersTheFastestAndAColdModelOnlyWhenTheHotOneIsFarSlower) {
  Fake slow("slow", 900), fast("fast", 100), cold("cold", 10, 0, "", /*hot=*/false);
  EXPECT_EQ(ids({slow.match(), fast.match(), cold.match()}, Policy::kLatency), (std::vector<std::string>{"fast", "slow", "cold"}));
  Fake glacial("glacial", 60000);
  EXPECT_EQ(ids({glacial.match(), cold.match()}, Policy::kLatency), (std::vector<std::string>{"cold", "glacial"}))
      << "a cold start (15 s) beats a hot node a minute slow";
}

TEST(RoutingPolicy, OneCandidateIsRankedWhateverThePolicyAndNoneIsNothing) {
  Fake only("only", 900, 2.0, "far", /*hot=*/false);
  for (Policy p : {Policy::kBalanced, Policy::kLatency, Policy::kPrice, Policy::kThroughput, Policy::kLeastLoaded,
                   Policy::kRoundRobin, Policy::kAuction})
    EXPECT_EQ(ids({only.match()}, p, "near"), (std::vector<std::string>{"only"}));
  EXPECT_TRUE(ids({}, Policy::kBalanced).empty());
}

TEST(RoutingPolicy, PriceTakesTheCheapestThenTheFaster) {
  Fake dear("dear", 50, 2.0), cheap_slow("cheap-slow", 500, 0.5), cheap_fast("cheap-fast", 100, 0.5);
  EXPECT_EQ(ids({dear.match(), cheap_slow.match(), cheap_fast.match()}, Policy::kPrice),
            (std::vector<std::string>{"cheap-fast", "cheap-slow", "dear"}));
}

TEST(RoutingPolicy, ThroughputTakesTheMostTokensPerSecond) {
  Fake a("a", 100, 0, "", true, 20), b("b", 100, 0, "", true, 80);
  EXPECT_EQ(ids({a.match(), b.match()}, Policy::kThroughput), (std::vector<std::string>{"b", "a"}));
}

TEST(RoutingPolicy, LeastLoadedCountsInFlightForTheCapacity) {
  Fake busy("busy", 100), idle("idle", 100);
  busy.node->max_concurrency = 4;
  idle.node->max_concurrency = 4;
  for (int i = 0; i < 3; ++i) busy.node->stats.attempt_started();
  EXPECT_EQ(ids({busy.match(), idle.match()}, Policy::kLeastLoaded), (std::vector<std::string>{"idle", "busy"}));
}

TEST(RoutingPolicy, RoundRobinStartsOneFurtherEachTime) {
  Fake a("a", 100), b("b", 100), c("c", 100);
  std::vector<Match> able{a.match(), b.match(), c.match()};
  EXPECT_EQ(ids(able, Policy::kRoundRobin).front(), "a");
  EXPECT_EQ(ids(able, Policy::kRoundRobin).front(), "b");
  EXPECT_EQ(ids(able, Policy::kRoundRobin).front(), "c");
  EXPECT_EQ(ids(able, Policy::kRoundRobin).front(), "a");
}

TEST(RoutingPolicy, TheClientsRegionComesFirstThenFurtherAfield) {
  Fake us("us", 50, 0, "us-east"), eu("eu", 400, 0, "eu-west");
  EXPECT_EQ(ids({us.match(), eu.match()}, Policy::kLatency, "eu-west"), (std::vector<std::string>{"eu", "us"}));
  EXPECT_EQ(ids({us.match(), eu.match()}, Policy::kLatency), (std::vector<std::string>{"us", "eu"}));
}

TEST(RoutingPolicy, BalancedWeighsLatencyLoadColdnessPriceRegionAndFailures) {
  Fake good("good", 100, 1.0), cold("cold", 100, 1.0, "", false), dear("dear", 100, 10.0);
  EXPECT_EQ(ids({cold.match(), dear.match(), good.match()}, Policy::kBalanced).front(), "good");
  // A node that fails half its requests falls behind one that does not.
  Fake flaky("flaky", 100, 1.0);
  auto& st = *flaky.node->models()->front().stats;
  for (int i = 0; i < 4; ++i) {
    st.begin_attempt(t0);
    AttemptResult r;
    r.counts_as_failure = i % 2 == 0;
    r.ok = !r.counts_as_failure;
    st.record(r, t0);
  }
  EXPECT_EQ(ids({flaky.match(), good.match()}, Policy::kBalanced).front(), "good");
}

TEST(RoutingPolicy, ANodeWhoseBreakerIsOpenGoesLastWhateverThePolicy) {
  Fake broken("broken", 1), ok("ok", 500);
  auto& st = *broken.node->models()->front().stats;
  for (int i = 0; i < 5; ++i) {
    st.begin_attempt(t0);
    AttemptResult r;
    r.counts_as_failure = true;
    st.record(r, t0);
  }
  for (Policy p : {Policy::kBalanced, Policy::kLatency, Policy::kPrice, Policy::kLeastLoaded})
    EXPECT_EQ(ids({broken.match(), ok.match()}, p).front(), "ok") << name_of(p);
}

TEST(RoutingPolicy, PrefixAffinityGoesFirstWhateverThePolicyUntilItsNodeIsSaturated) {
  Fake fast("fast", 10), holder("holder", 500), other("other", 20);
  std::vector<Match> able{fast.match(), holder.match(), other.match()};
  Request r;
  r.policy = Policy::kLatency;
  r.now = t0;
  r.affinity = holder.node->key;
  EXPECT_EQ(able[rank(able, r).front()].node->id, "holder");
  for (int i = 0; i < 3; ++i) holder.node->stats.attempt_started();  // 3 in flight, the others none
  EXPECT_EQ(able[rank(able, r).front()].node->id, "fast") << "above 1.5x the mean in flight (plus one): not sticky";
  holder.node->max_concurrency = 100;
  fast.node->stats.attempt_started();
  other.node->stats.attempt_started();
  EXPECT_EQ(able[rank(able, r).front()].node->id, "holder") << "3 of 100 is not saturated, and near the mean";
  holder.node->max_concurrency = 4;
  EXPECT_EQ(able[rank(able, r).front()].node->id, "holder") << "3 of 4 is below max_load 0.8";
  holder.node->stats.attempt_started();
  EXPECT_EQ(able[rank(able, r).front()].node->id, "fast") << "4 of 4 is above it";
}

TEST(RoutingPolicy, ANodeNotHeardFromForAWhileGetsAFreshChance) {
  Fake healed("healed", 5000), fast("fast", 100);
  std::vector<Match> able{healed.match(), fast.match()};
  Request r;
  r.policy = Policy::kLatency;
  r.now = t0 + std::chrono::seconds(1);
  EXPECT_EQ(able[rank(able, r).front()].node->id, "fast");
  // Ten seconds without an answer from either: both are unknown again, so registry order.
  r.now = t0 + std::chrono::seconds(11);
  EXPECT_EQ(able[rank(able, r).front()].node->id, "healed") << "a slow past is forgotten: it is measured again";
}

TEST(RoutingPolicy, AuctionTheLowestBidThatMeetsTheLatencyBoundWinsTiesByNodeId) {
  Fake dear("dear", 100, 3.0), cheap_slow("cheap-slow", 900, 0.5), b("b-even", 100, 1.0), a("a-even", 100, 1.0);
  std::vector<Match> able{dear.match(), cheap_slow.match(), b.match(), a.match()};
  Request r;
  r.policy = Policy::kAuction;
  r.now = t0;
  EXPECT_EQ(able[rank(able, r).front()].node->id, "cheap-slow") << "no bound: the lowest bid";
  r.latency_bound = std::chrono::milliseconds(500);
  auto order = rank(able, r);
  std::vector<std::string> got;
  for (auto i : order) got.push_back(able[i].node->id);
  EXPECT_EQ(got, (std::vector<std::string>{"a-even", "b-even", "dear", "cheap-slow"}))
      << "within the bound, the lowest bid; equal bids by node id; a bid that misses the bound last";
}

TEST(RoutingPolicy, NamesRoundTrip) {
  for (auto name : {"balanced", "latency", "price", "throughput", "least_loaded", "round_robin", "auction"})
    EXPECT_STREQ(name_of(*policy_named(name)), name);
  EXPECT_FALSE(policy_named("fastest"));
}

}  // namespace
}  // namespace plexus::routing
