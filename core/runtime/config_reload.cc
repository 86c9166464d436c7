// Reloading the whole config (SIGHUP, POST /admin/reload) while the router serves. The new file
// is read and checked, its upstreams' adapters and every loop's plugins are built; only when all
// of that worked is anything swapped, so an invalid config is refused (file and key path) and the
// old one keeps running. Requests in flight keep what they started with (nodes, plugin
// instances, the config they point into): streams are never dropped.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <future>
#include <limits>
#include <map>

#include "nodes/direct_nodes.hpp"
#include "routing/policy.hpp"
#include "runtime/router_state.hpp"

namespace plexus {
namespace {

using nlohmann::json;

// What the new file changes that only a restart applies (sockets, threads, storage), by key.
std::vector<std::string> restart_required(const Config& a, const Config& b) {
  std::vector<std::string> out;
  auto differs = [&](bool changed, const char* key) {
    if (changed) out.push_back(key);
  };
  differs(a.server.host != b.server.host || a.server.port != b.server.port, "listen");
  differs(a.server.threads != b.server.threads, "threads");
  differs(a.server.tls_cert != b.server.tls_cert || a.server.tls_key != b.server.tls_key, "tls");
  differs(a.server.max_body_bytes != b.server.max_body_bytes || a.server.max_inflight != b.server.max_inflight ||
              a.server.request_timeout != b.server.request_timeout || a.server.keepalive_timeout != b.server.keepalive_timeout ||
              a.server.max_stream_duration != b.server.max_stream_duration,
          "limits");
  differs(a.nodes.host != b.nodes.host || a.nodes.port != b.nodes.port || a.nodes.tls_cert != b.nodes.tls_cert ||
              a.nodes.heartbeat_interval != b.nodes.heartbeat_interval || a.nodes.liveness_timeout != b.nodes.liveness_timeout ||
              a.nodes.queue_limit != b.nodes.queue_limit || a.nodes.queue_timeout != b.nodes.queue_timeout,
          "nodes");
  differs(a.deployments.size() != b.deployments.size(), "deployments");
  differs(a.ledger.enabled != b.ledger.enabled || a.ledger.path != b.ledger.path || a.ledger.postgres != b.ledger.postgres ||
              a.ledger.flush != b.ledger.flush,
          "ledger");
  differs(a.ledger.receipts != b.ledger.receipts || a.ledger.receipt_key_file != b.ledger.receipt_key_file, "receipts");
  differs(a.workers.threads != b.workers.threads || a.workers.queue_limit != b.workers.queue_limit, "workers");
  differs(a.web_root != b.web_root, "web");
  differs(a.providers_dir != b.providers_dir, "providers_dir");
  differs(a.log.json != b.log.json || a.log.access_log != b.log.access_log, "log.format / log.access_log");
  differs(a.routing.prefix_affinity != b.routing.prefix_affinity || a.routing.prefix_slots != b.routing.prefix_slots,
          "routing.prefix_affinity");
  return out;
}

// Runs `fn(i)` on every loop i and waits for all of them. Never from a loop thread.
void on_every_loop(LoopGroup& loops, const std::function<void(std::size_t)>& fn) {
  std::vector<std::future<void>> done;
  for (std::size_t i = 0; i < loops.size(); ++i) {
    auto promise = std::make_shared<std::promise<void>>();
    done.push_back(promise->get_future());
    loops.at(i).post([i, &fn, promise] {
      fn(i);
      promise->set_value();
    });
  }
  for (auto& f : done) f.wait();
}

std::pair<int, std::string> refused(const std::string& why) {
  spdlog::error("config reload refused, the running config stays: {}", why);
  return {422, json{{"reloaded", false},
                    {"error", {{"message", why}, {"type", "invalid_request_error"}, {"param", nullptr}, {"code", "invalid_config"}}}}
                   .dump()};
}

}  // namespace

// What each key that gains a budget in `next` has spent so far, from the ledger (asked on its own
// thread, the answer waited for here: never on a loop).
std::map<std::string, double> Router::spent_so_far(const Config& next) {
  bool needed = std::any_of(next.keys.begin(), next.keys.end(), [&](const KeyConfig& k) { return k.budget && !s_->budgets.find(k.id); });
  std::map<std::string, double> out;
  if (!needed || !s_->ledger) return out;
  auto answer = std::make_shared<std::promise<json>>();
  auto future = answer->get_future();
  s_->ledger->query([](ledger::Store& store) { return json(store.spent_by_key()); }, s_->loops.at(0),
                    [answer](json spent) { answer->set_value(std::move(spent)); });
  json spent = future.get();
  if (spent.is_object())
    for (const auto& [key, value] : spent.items())
      if (value.is_number()) out[key] = value.get<double>();
  return out;
}

std::pair<int, std::string> Router::reload_config() {
  std::lock_guard one_at_a_time(s_->reloading);
  const Config& current = *s_->current;
  std::unique_ptr<Config> next;
  try {
    next = std::make_unique<Config>(load_config(current.file));
  } catch (const std::exception& e) {
    return refused(e.what());
  }
  // Built before anything changes: the upstreams' adapters (one per loop), then every loop's
  // plugin instances, on their own loops (a plugin may start timers as it loads).
  std::vector<ProviderHost*> hosts;
  for (auto& part : s_->parts) hosts.push_back(&part->host);
  std::vector<std::shared_ptr<Node>> direct;
  try {
    direct = build_direct_nodes(*next, *s_->registry, hosts);
  } catch (const std::exception& e) {
    return refused(e.what());
  }
  try {
    read_lua_sources(next->plugins);  // here, not on the loops: they only compile the scripts
  } catch (const std::exception& e) {
    return refused(e.what());
  }
  std::vector<std::shared_ptr<Pipeline>> pipelines(s_->loops.size());
  std::vector<std::string> errors(s_->loops.size());
  on_every_loop(s_->loops, [&](std::size_t i) {
    auto& part = *s_->parts[i];
    try {
      pipelines[i] = Pipeline::load(next->plugins, PluginHost{&part.http, &s_->loops.at(i), &part.workers});
    } catch (const std::exception& e) {
      errors[i] = e.what();
    }
  });
  for (const auto& e : errors)
    if (!e.empty()) {
      on_every_loop(s_->loops, [&](std::size_t i) { pipelines[i].reset(); });  // unloaded where they were made
      return refused(e);
    }

  // Everything is ready: swap. Keys first (and their limits and budgets), then the nodes, the
  // node tokens, and on every loop its plugins and routing settings.
  auto& state = *s_->state;
  state.keys.replace_config_keys(next->keys);
  auto spent = spent_so_far(*next);
  for (const auto& key : next->keys) {
    if (key.rpm > 0 || key.tpm > 0 || s_->rate_limits.find(key.id)) s_->rate_limits.set(key.id, key.rpm, key.tpm);
    if (!key.budget) continue;
    if (s_->budgets.find(key.id))
      s_->budgets.change(key.id, *key.budget);  // what it spent stays
    else
      s_->budgets.set(key.id, *key.budget, spent.count(key.id) ? spent[key.id] : 0);  // from what the ledger says it spent
  }
  for (const auto& old : current.keys)  // a budget the new file no longer sets is lifted
    if (old.budget && std::none_of(next->keys.begin(), next->keys.end(), [&](const KeyConfig& k) { return k.id == old.id && k.budget; }))
      s_->budgets.change(old.id, std::numeric_limits<double>::infinity());
  for (const auto& node : direct) s_->nodes->add(node);  // replaces the node of the same name
  for (const auto& old : s_->direct_nodes) {
    old->retired = true;  // no more status polls
    bool kept = std::any_of(direct.begin(), direct.end(), [&](const auto& n) { return n->id == old->id; });
    if (!kept) s_->nodes->remove(old);
  }
  s_->direct_nodes = direct;
  if (s_->started) s_->loops.at(0).post([this, direct] { start_status_polling(direct, 0, s_->loops.at(0)); });
  if (s_->node_service) s_->node_service->set_tokens(next->node_tokens);
  const Config* fresh = next.get();
  on_every_loop(s_->loops, [&](std::size_t i) {
    ExchangeEnv& env = *s_->parts[i]->env;
    const auto& rc = fresh->routing;
    env.pipeline = pipelines[i];  // exchanges under way keep the instances they started with
    env.policy = *routing::policy_named(rc.policy);
    env.weights = routing::Weights{rc.weight_ttft, rc.weight_load, rc.weight_hot, rc.weight_price, rc.weight_region, rc.weight_reliability};
    env.cold_start = rc.cold_start;
    env.aliases = &rc.aliases;
    env.prefix_min_chars = rc.prefix_min_chars;
    env.prefix_max_load = rc.prefix_max_load;
    env.auction_latency_bound = rc.auction_latency_bound;
    env.bid_window = rc.auction_bid_window;
    env.fee = fresh->ledger.fee;
  });
  spdlog::set_level(spdlog::level::from_str(fresh->log.level));

  json plugins = json::array();
  for (const auto& p : fresh->plugins) plugins.push_back({{"plugin", p.name}, {"reloaded", true}, {"error", nullptr}});
  json upstreams = json::array();
  for (const auto& u : fresh->upstreams) upstreams.push_back(u.name);
  auto restart = restart_required(current, *fresh);
  json report = {{"reloaded", true}, {"file", fresh->file}, {"keys", fresh->keys.size()}, {"upstreams", upstreams},
                 {"node_tokens", fresh->node_tokens.size()}, {"plugins", plugins}, {"restart_required", restart}};
  spdlog::info("config reloaded from {}: {} keys, {} upstreams, {} node tokens, {} plugins{}", fresh->file, fresh->keys.size(),
               fresh->upstreams.size(), fresh->node_tokens.size(), fresh->plugins.size(),
               restart.empty() ? "" : fmt::format("; a restart is needed for {}", fmt::join(restart, ", ")));
  s_->current = fresh;
  s_->reloaded.push_back(std::move(next));  // kept: sessions and exchanges may point into it
  return {200, report.dump()};
}

}  // namespace plexus
