#include "gateway/upstream_pool.hpp"

#include <algorithm>
#include <stdexcept>

namespace plexus {
namespace {
bool serves_group(const UpstreamConfig& u, const std::string& group) {
  return std::find(u.groups.begin(), u.groups.end(), group) != u.groups.end();
}
}  // namespace

UpstreamPool::UpstreamPool(const Config& config, const ProviderRegistry& registry,
                           ProviderHost& host) {
  for (const auto& cfg : config.upstreams) {
    ProviderFactory factory = registry.find(cfg.provider);
    if (!factory)
      throw ConfigError(config.file + ": " + cfg.path + ".provider: unknown provider '" +
                        cfg.provider + "'; available: " + registry.names());
    UpstreamSpec spec{cfg.name,          cfg.url,          cfg.api_key,     cfg.connect_timeout,
                      cfg.first_byte_timeout, cfg.idle_timeout, cfg.options_json};
    auto up = std::make_unique<Upstream>();
    up->config = cfg;
    try {
      up->provider = factory(spec, host);
    } catch (const std::invalid_argument& e) {
      throw ConfigError(config.file + ": " + cfg.path + "." + e.what());
    }
    upstreams_.push_back(std::move(up));
  }
}

std::vector<Candidate> UpstreamPool::candidates(const std::string& model,
                                                const std::string& group) const {
  std::vector<Candidate> out;
  for (const auto& up : upstreams_) {
    if (!serves_group(up->config, group)) continue;
    for (const auto& route : up->config.models)
      if (route.id == model) out.push_back({up.get(), route.upstream_model});
  }
  return out;
}

std::vector<std::string> UpstreamPool::models_for(const std::string& group) const {
  std::vector<std::string> out;
  for (const auto& up : upstreams_) {
    if (!serves_group(up->config, group)) continue;
    for (const auto& route : up->config.models)
      if (std::find(out.begin(), out.end(), route.id) == out.end()) out.push_back(route.id);
  }
  return out;
}

}  // namespace plexus
