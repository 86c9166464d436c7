#pragma once
// What a Router holds (router.cc builds it, config_reload.cc swaps parts of it): private to the
// runtime.
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "cluster/cluster_sync.hpp"
#include "gateway/provider_registry.hpp"
#include "ledger/ledger.hpp"
#include "upstream/upstream_client.hpp"
#include "loop/worker_pool.hpp"
#include "metering/meter.hpp"
#include "metrics/metrics.hpp"
#include "nodes/node_registry.hpp"
#include "nodes/pull/node_service.hpp"
#include "receipts/receipt_chain.hpp"
#include "runtime/router.hpp"
#include "server/api_routes.hpp"
#include "server/http_server.hpp"

namespace plexus {

// What one event loop owns besides its connections.
struct LoopParts {
  LoopParts(EventLoop& loop, WorkerPool& pool) : http(loop), host{http, loop}, workers(pool, loop) {}
  UpstreamClient http;
  ProviderHost host;
  LoopWorkers workers;
  std::unique_ptr<ExchangeEnv> env;
  std::unique_ptr<ApiRoutes> routes;
};

std::size_t loops_for(const Config& c);
std::size_t workers_for(const Config& c);

// Declaration order is destruction order reversed: the server and the per-loop parts go before
// the nodes and the provider registry (whose libraries their objects point into), the loops last.
struct Router::State {
  explicit State(Config c)
      : config(std::move(c)), loops(loops_for(config)), workers(workers_for(config), config.workers.queue_limit) {}
  // Before any member goes: no worker may still run plugin code when the plugins unload.
  ~State() { workers.stop(); }
  Config config;
  LoopGroup loops;
  WorkerPool workers;  // after the loops: its jobs post their results into them
  std::unique_ptr<ProviderRegistry> registry;
  std::unique_ptr<NodeRegistry> nodes;
  std::vector<std::shared_ptr<Node>> direct_nodes;
  std::unique_ptr<NodeService> node_service;  // when nodes.listen is set
  std::unique_ptr<routing::PrefixIndex> prefixes;  // when routing.prefix_affinity is on
  metering::Budgets budgets;  // keys with a budget; read and spent by every loop
  metering::RateLimits rate_limits;  // keys with rpm or tpm
  std::unique_ptr<cluster::ClusterSync> cluster;  // with cluster.redis; goes before the counters it syncs
  std::unique_ptr<ledger::Ledger> ledger;  // stopped (written out) after the loops stop
  std::unique_ptr<receipts::Chain> receipts;
  std::unique_ptr<metrics::Registry> metrics;  // one shard per loop
  std::vector<std::unique_ptr<LoopParts>> parts;
  std::unique_ptr<ServerState> state;
  std::unique_ptr<HttpServer> server;
  // Configs loaded by reloads: kept for the router's life, since what came from them (node
  // tokens sessions point at, aliases exchanges read) may outlive the next reload.
  std::vector<std::unique_ptr<Config>> reloaded;
  const Config* current = nullptr;  // the config in force: `config`, or the latest reloaded
  std::mutex reloading;             // one reload at a time
  bool started = false;
  bool stopped = false;
  bool stuck_reported = false;
};


}  // namespace plexus
