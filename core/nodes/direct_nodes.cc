#include "nodes/direct_nodes.hpp"

#include <spdlog/spdlog.h>

namespace plexus {
namespace {

void poll(std::shared_ptr<Node> node, std::size_t loop, Timers& timers) {
  if (node->retired.load()) return;
  Node* target = node.get();
  target->provider(loop).poll_status([node, loop, &timers](BackendStatus status) {
    bool was_ready = node->stats.backend()->ready;
    if (was_ready && !status.ready)
      spdlog::warn("upstream '{}' is not ready: {}", node->name, status.detail);
    else if (!was_ready && status.ready)
      spdlog::info("upstream '{}' is ready again", node->name);
    node->apply_backend(std::move(status));
    timers.after(node->status_interval, [node, loop, &timers] { poll(node, loop, timers); });
  });
  // An adapter with nothing to ask returns false and is simply not polled again.
}

}  // namespace

std::vector<std::shared_ptr<Node>> build_direct_nodes(const Config& config, const ProviderRegistry& registry,
                                                      const std::vector<ProviderHost*>& hosts) {
  std::vector<std::shared_ptr<Node>> out;
  for (const auto& cfg : config.upstreams) {
    UpstreamSpec spec{cfg.name,          cfg.url,          cfg.api_key,     cfg.connect_timeout,
                      cfg.first_byte_timeout, cfg.idle_timeout, cfg.options_json};
    auto node = std::make_shared<Node>(cfg.name, cfg.name, NodeKind::kDirect);
    node->groups = cfg.groups;
    node->region = cfg.region;
    node->status_interval = cfg.status_interval;
    for (ProviderHost* host : hosts) {
      std::shared_ptr<Provider> provider;
      try {
        provider = registry.create(cfg.provider, spec, *host);
      } catch (const std::exception& e) {  // the adapter's options ("options.x: ...") or library
        throw ConfigError(config.file + ": " + cfg.path + "." + e.what());
      }
      if (!provider)
        throw ConfigError(config.file + ": " + cfg.path + ".provider: unknown provider '" +
                          cfg.provider + "'; available: " + registry.names());
      node->providers.push_back(std::move(provider));
    }
    node->backend_kind = cfg.provider;
    Capabilities caps = node->providers.front()->capabilities();
    if (cfg.tools) caps.tools = *cfg.tools;
    if (cfg.vision) caps.vision = *cfg.vision;
    if (cfg.json_mode) caps.json_mode = *cfg.json_mode;
    if (cfg.context_length) caps.context_length = *cfg.context_length;
    std::vector<NodeModel> models;
    for (const auto& route : cfg.models) {
      Capabilities model_caps = caps;
      model_caps.embeddings = route.embeddings;
      models.push_back({route.id, route.upstream_model, cfg.price, model_caps, std::make_shared<ModelStats>(config.routing.breaker)});
    }
    node->set_models(std::move(models));
    out.push_back(std::move(node));
  }
  return out;
}

void start_status_polling(const std::vector<std::shared_ptr<Node>>& nodes, std::size_t loop, Timers& timers) {
  for (const auto& node : nodes)
    if (node->kind == NodeKind::kDirect && node->status_interval.count() > 0) poll(node, loop, timers);
}

}  // namespace plexus
