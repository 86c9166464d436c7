#pragma once
// Several routers behind one address share what a key may still do through Redis: every
// `sync_ms` a thread of this router's own adds what its loops counted since the last sync
// (requests and tokens this minute, money spent) to Redis' totals and reads back what the other
// routers counted, which the loops then add to their own when they admit a request. The loops
// never wait on Redis: a key's limits and budget hold across routers to within one sync period,
// and while Redis is unreachable each router goes on alone, then catches up when it is back.
// Each router's latest time-to-first-token per (node, model) goes to Redis too (plexus:ttft), so a
// router without fresh answers of its own (just started) routes on what the others measured.
// Routers advertise their node ports the same way (plexus:routers), so that a node given one
// router learns the others (Registered.routers) and joins them all.
// Open breakers travel the same way: a (node, model) one router found failing is left alone by
// the others until its cooldown ends (a sorted set, plexus:breakers, scored by when it closes).
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "metering/meter.hpp"
#include "metering/rate_limits.hpp"
#include "nodes/node_registry.hpp"

struct redisContext;

namespace plexus::cluster {

struct RedisAddress {
  std::string host = "127.0.0.1";
  int port = 6379;
};
// "redis://HOST:PORT" or "HOST:PORT"; nullopt when it is neither.
std::optional<RedisAddress> parse_redis_url(const std::string& url);

class ClusterSync {
 public:
  // `router_id`: this router's cluster.id (whose measures are whose).
  ClusterSync(RedisAddress redis, std::chrono::milliseconds period, metering::RateLimits& limits, metering::Budgets& budgets,
              NodeRegistry& nodes, std::string router_id);
  ~ClusterSync();  // stops the thread
  ClusterSync(const ClusterSync&) = delete;
  ClusterSync& operator=(const ClusterSync&) = delete;

  bool connected() const { return connected_.load(); }
  // This router's node port as nodes reach it ("" : not advertised); any thread.
  void advertise(std::string node_address);
  // The other routers' node ports, as the last sync saw them; any thread.
  std::vector<std::string> peer_routers() const;
  // Called on the sync thread whenever that list changes (to tell the joined nodes).
  void on_peers_changed(std::function<void(const std::vector<std::string>&)> fn);
  std::uint64_t syncs() const { return syncs_.load(); }  // completed rounds, for tests and metrics

 private:
  struct Pushed {
    std::int64_t minute = -1, requests = 0, tokens = 0;
  };
  void run();
  bool sync(redisContext* c);
  void sync_breakers(redisContext* c);
  void sync_routers(redisContext* c);
  void sync_latency(redisContext* c);

  RedisAddress redis_;
  std::chrono::milliseconds period_;
  metering::RateLimits& limits_;
  metering::Budgets& budgets_;
  NodeRegistry& nodes_;
  std::string router_id_;
  std::map<std::string, Pushed> pushed_limits_;   // the sync thread's own
  std::map<std::string, std::int64_t> pushed_spent_;
  std::atomic<bool> connected_{false};
  mutable std::mutex routers_mu_;
  std::string node_address_;
  std::vector<std::string> peer_routers_;
  std::function<void(const std::vector<std::string>&)> peers_changed_;  // under routers_mu_
  std::atomic<std::uint64_t> syncs_{0};
  std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace plexus::cluster
