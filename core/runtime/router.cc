#include "runtime/router.hpp"
#include "runtime/router_state.hpp"

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>
#include <fmt/compile.h>

#include <thread>

#include "gateway/provider_registry.hpp"
#include "nodes/direct_nodes.hpp"
#include "nodes/node_registry.hpp"
#include "nodes/pull/node_service.hpp"
#include "upstream/upstream_client.hpp"
#include "loop/worker_pool.hpp"
#include "ledger/ledger.hpp"
#include "ledger/postgres_store.hpp"
#include "ledger/sqlite_store.hpp"
#include "metering/meter.hpp"
#include "receipts/receipt_chain.hpp"
#include "metrics/metrics.hpp"
#include "server/static_files.hpp"
#include "util/beside_binary.hpp"
#include "plugins/pipeline.hpp"
#include "server/api_routes.hpp"
#include "server/http_server.hpp"

namespace plexus {
namespace {

void log_access(const AccessRecord& r) {
  // Never the prompt or the completion: ids, sizes and timings only. Formatted with a format
  // string compiled once (a runtime one was parsed again for every request) into the thread's
  // buffer, then handed to spdlog as a finished line.
  thread_local fmt::memory_buffer line;
  line.clear();
  auto out = fmt::appender(line);
  fmt::format_to(out,
                 FMT_COMPILE("access id={} key={} model={} node={} status={} stream={} price_in={} price_out={} "
                             "prompt_tokens={} completion_tokens={}"),
                 r.request_id, r.key_id, r.model, r.node, r.status, r.stream, r.price.input_per_1k,
                 r.price.output_per_1k, r.usage.prompt_tokens, r.usage.completion_tokens);
  if (r.usage_estimated) fmt::format_to(out, FMT_COMPILE(" usage=estimated"));
  fmt::format_to(out, FMT_COMPILE(" cost={:.6f} ttft_ms={:.1f} total_ms={:.1f}"), r.cost, r.ttft_ms, r.total_ms);
  if (r.usage.tokens_per_second > 0) fmt::format_to(out, FMT_COMPILE(" tokens_per_second={:.1f}"), r.usage.tokens_per_second);
  if (!r.error_code.empty()) fmt::format_to(out, FMT_COMPILE(" error={}"), r.error_code);
  spdlog::info(std::string_view(line.data(), line.size()));
}

// The same record as one JSON object (log.format "json"), merged into the line by the formatter.
void log_access_json(const AccessRecord& r) {
  nlohmann::ordered_json line = {{"event", "access"}, {"id", r.request_id}, {"key", r.key_id}, {"model", r.model},
                         {"node", r.node}, {"status", r.status}, {"stream", r.stream},
                         {"price_in", r.price.input_per_1k}, {"price_out", r.price.output_per_1k},
                         {"prompt_tokens", r.usage.prompt_tokens}, {"completion_tokens", r.usage.completion_tokens},
                         {"usage_estimated", r.usage_estimated}, {"cost", r.cost},
                         {"ttft_ms", r.ttft_ms < 0 ? nlohmann::ordered_json() : nlohmann::ordered_json(r.ttft_ms)}, {"total_ms", r.total_ms}};
  if (r.usage.tokens_per_second > 0) line["tokens_per_second"] = r.usage.tokens_per_second;
  if (!r.error_code.empty()) line["error"] = r.error_code;
  spdlog::info("{}", line.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace));
}

}  // namespace

std::size_t loops_for(const Config& c) {
  if (c.server.threads > 0) return static_cast<std::size_t>(c.server.threads);
  return std::max(1u, std::thread::hardware_concurrency());
}

std::size_t workers_for(const Config& c) {
  if (c.workers.threads > 0) return static_cast<std::size_t>(c.workers.threads);
  return std::max(1u, std::thread::hardware_concurrency() / 2);
}


Router::Router(Config config) : s_(std::make_unique<State>(std::move(config))) {
  const Config& cfg = s_->config;
  s_->registry = std::make_unique<ProviderRegistry>(
      cfg.providers_dir.empty() ? ProviderRegistry::default_directory() : cfg.providers_dir);
  std::vector<ProviderHost*> hosts;
  for (std::size_t i = 0; i < s_->loops.size(); ++i) {
    s_->parts.push_back(std::make_unique<LoopParts>(s_->loops.at(i), s_->workers));
    hosts.push_back(&s_->parts.back()->host);
  }
  s_->nodes = std::make_unique<NodeRegistry>();
  s_->direct_nodes = build_direct_nodes(cfg, *s_->registry, hosts);
  for (const auto& node : s_->direct_nodes) s_->nodes->add(node);
  s_->state = std::unique_ptr<ServerState>(new ServerState{cfg, KeyStore(cfg.keys), s_->loops, {0}, {false}, {}, {}, nullptr, {}});
  std::string web_root = cfg.web_root.empty() ? beside_binary("web") : cfg.web_root;
  try {
    s_->state->web = StaticFiles::load(web_root);
  } catch (const std::exception& e) {
    throw ConfigError(cfg.file + ": web.root: " + e.what());
  }
  if (s_->state->web->empty()) spdlog::warn("no web pages in {} (web.root): /receipts/{{id}} answers 503", web_root);
  s_->current = &s_->config;
  // POST /admin/reload: the reload runs on a worker (it reads files and waits for every loop),
  // its answer goes back to the loop that asked.
  s_->state->reload_config = [this](EventLoop& origin, std::function<void(int, std::string)> done) {
    auto result = std::make_shared<std::pair<int, std::string>>();
    bool queued = s_->workers.submit(origin, [this, result] { *result = reload_config(); },
                                     [result, done] { done(result->first, result->second); });
    if (!queued) done(503, R"({"error":{"message":"The router is busy; retry the reload","type":"server_error","param":null,"code":"workers_busy"}})");
  };
  try {
    if (cfg.ledger.enabled)
      s_->ledger = std::make_unique<ledger::Ledger>(
          cfg.ledger.postgres.empty() ? ledger::open_sqlite(cfg.ledger.path, cfg.cluster.id)
                                      : ledger::open_postgres(cfg.ledger.postgres, cfg.cluster.id),
          cfg.ledger.flush);
  } catch (const std::exception& e) {
    throw ConfigError(cfg.file + (cfg.ledger.postgres.empty() ? ": ledger.path: " : ": ledger.postgres: ") + e.what());
  }
  try {
    if (cfg.ledger.receipts)
      s_->receipts = std::make_unique<receipts::Chain>(receipts::SigningKey::load_or_create(cfg.ledger.receipt_key_file),
                                                       s_->ledger ? s_->ledger->last_receipt() : receipts::Receipt{});
  } catch (const std::exception& e) {
    throw ConfigError(cfg.file + ": receipts.key_file: " + e.what());
  }
  // Keys created through the admin API, then every key's limits; budgets go on from what the
  // ledger says each key has spent.
  if (s_->ledger)
    for (const auto& key : s_->ledger->api_keys())
      if (!s_->state->keys.add(key)) spdlog::warn("API key '{}' has the id of a key in the config: the config's wins", key.id);
  auto spent = s_->ledger ? s_->ledger->spent_by_key() : std::map<std::string, double>{};
  for (const auto& key : *s_->state->keys.snapshot()) {
    if (key.rpm > 0 || key.tpm > 0) s_->rate_limits.set(key.id, key.rpm, key.tpm);
    if (key.budget) s_->budgets.set(key.id, *key.budget, spent.count(key.id) ? spent[key.id] : 0);
  }
  if (!cfg.cluster.redis.empty()) {
    auto redis = cluster::parse_redis_url(cfg.cluster.redis);
    if (!redis) throw ConfigError(cfg.file + ": cluster.redis: expected redis://HOST:PORT");
    s_->cluster = std::make_unique<cluster::ClusterSync>(*redis, cfg.cluster.sync, s_->rate_limits, s_->budgets, *s_->nodes,
                                                         cfg.cluster.id);
  }
  s_->metrics = std::make_unique<metrics::Registry>(s_->loops.size());
  s_->state->metrics = s_->metrics.get();
  if (cfg.routing.prefix_affinity) s_->prefixes = std::make_unique<routing::PrefixIndex>(cfg.routing.prefix_slots);
  for (std::size_t i = 0; i < s_->loops.size(); ++i) {
    auto& part = *s_->parts[i];
    const auto& rc = cfg.routing;
    part.env = std::make_unique<ExchangeEnv>(ExchangeEnv{
        s_->loops.at(i), !cfg.log.access_log ? nullptr : cfg.log.json ? &log_access_json : &log_access,
        cfg.server.max_stream_duration, s_->nodes.get(), cfg.nodes.queue_limit, cfg.nodes.queue_timeout,
        Pipeline::load(cfg.plugins, PluginHost{&part.http, &s_->loops.at(i), &part.workers}), *routing::policy_named(rc.policy),
        routing::Weights{rc.weight_ttft, rc.weight_load, rc.weight_hot, rc.weight_price, rc.weight_region, rc.weight_reliability},
        rc.cold_start, &rc.aliases, s_->prefixes.get(), rc.prefix_min_chars, rc.prefix_max_load,
        rc.auction_latency_bound, rc.auction_bid_window, &s_->budgets, s_->ledger.get(), cfg.ledger.fee,
        s_->receipts.get(), &s_->rate_limits, &s_->metrics->shard(i)});
    part.routes = std::make_unique<ApiRoutes>(*s_->state, *part.env);
  }
}

Router::~Router() {
  if (s_->started && !s_->stopped) drain_and_stop(std::chrono::milliseconds(0));
}

const Config& Router::config() const { return s_->config; }

std::size_t Router::plugin_count() const {
  return s_->parts.front()->env->pipeline->plugins().size();
}

const std::vector<LoadedPlugin>& Router::plugins() const { return s_->parts.front()->env->pipeline->plugins(); }

std::size_t Router::loop_count() const { return s_->loops.size(); }

void Router::start() {
  const auto& srv = s_->config.server;
  HttpServerOptions options;
  options.host = srv.host;
  options.port = srv.port;
  options.limits.max_body_bytes = srv.max_body_bytes;
  options.limits.request_timeout = srv.request_timeout;
  options.limits.keepalive_timeout = srv.keepalive_timeout;
  options.tls_cert = srv.tls_cert;
  options.tls_key = srv.tls_key;
  s_->server = std::make_unique<HttpServer>(options, s_->loops, [this](std::size_t i) -> RequestRouter& {
    return *s_->parts[i]->routes;
  });
  s_->server->start();
  for (std::size_t i = 0; i < s_->loops.size(); ++i)
    s_->loops.at(i).set_before_sleep([] { spdlog::default_logger_raw()->flush(); });
  s_->loops.start();
  s_->started = true;
  if (!s_->config.nodes.host.empty()) {
    s_->node_service = std::make_unique<NodeService>(s_->config, *s_->nodes, s_->loops);
    if (s_->cluster) {
      cluster::ClusterSync* peers = s_->cluster.get();
      s_->node_service->set_peer_routers([peers] { return peers->peer_routers(); });
      // Nodes that joined before a router appeared learn of it too (the cluster goes before the
      // node service: no call after it is gone).
      NodeService* service = s_->node_service.get();
      peers->on_peers_changed([service](const std::vector<std::string>& now) { service->announce_routers(now); });
    }
    s_->node_service->start();
    if (s_->cluster) {
      // What nodes dial: the configured address, else nodes.listen's own (when it is not a
      // wildcard, which names no host a node could reach).
      std::string address = s_->config.cluster.node_address;
      const std::string& host = s_->config.nodes.host;
      if (address.empty() && host != "0.0.0.0" && host != "::" && !host.empty())
        address = (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" + std::to_string(s_->node_service->port());
      s_->cluster->advertise(address);
    }
  }
  s_->loops.at(0).post([this] { start_status_polling(s_->direct_nodes, 0, s_->loops.at(0)); });
}

std::uint16_t Router::port() const { return s_->server ? s_->server->port() : 0; }

std::uint16_t Router::node_port() const { return s_->node_service ? s_->node_service->port() : 0; }

void Router::watch_for_stuck_loops() {
  auto stall = s_->loops.longest_turn();
  if (stall.seconds < kStuckLoopSeconds) {
    s_->stuck_reported = false;
    return;
  }
  if (s_->stuck_reported) return;
  s_->stuck_reported = true;
  spdlog::error("loop {} has been busy for {:.1f} s in one turn ({}); its requests wait and /readyz answers 503",
                stall.loop, stall.seconds, stall.busy_with ? fmt::format("plugin '{}'", stall.busy_with) : "not in a plugin");
}

void Router::drain_and_stop(std::chrono::milliseconds grace) {
  if (s_->stopped) return;
  s_->stopped = true;
  auto& state = *s_->state;
  spdlog::info("draining (grace {} ms, {} in flight)", grace.count(), state.inflight.load());
  state.draining = true;
  if (s_->node_service) s_->node_service->drain();  // no new orders; nodes hear it at once
  auto deadline = std::chrono::steady_clock::now() + grace;
  while (state.inflight.load() > 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  if (state.inflight.load() > 0)
    spdlog::warn("grace period over; closing {} requests still in flight", state.inflight.load());
  auto stall = s_->loops.longest_turn();
  if (stall.seconds >= kStuckLoopSeconds) {
    // Its thread cannot be joined, and its objects cannot be freed under it.
    spdlog::error("loop {} is stuck ({}); exiting without cleanup", stall.loop,
                  stall.busy_with ? stall.busy_with : "not in a plugin");
    if (s_->ledger) s_->ledger->stop();  // what was charged is still written
    std::fflush(nullptr);
    std::_Exit(1);
  }
  // Nodes first: their sessions post to the loops, which must still run to take the last words.
  if (s_->node_service) s_->node_service->stop();
  if (s_->server) s_->server->stop();
  s_->loops.stop();
  // Pending work may point into adapter and plugin libraries: drop it while they are loaded.
  for (std::size_t i = 0; i < s_->loops.size(); ++i) {
    s_->parts[i]->http.drop_all();
    s_->loops.at(i).drop_pending_work();
  }
  s_->server.reset();
  for (std::size_t i = 0; i < s_->loops.size(); ++i) s_->loops.at(i).drop_pending_work();
  // Every exchange has ended: the ledger writes what is queued and stops.
  if (s_->ledger) s_->ledger->stop();
}

}  // namespace plexus
