#include "gateway/upstream_pool.hpp"

#include <algorithm>
#include <stdexcept>

#include <spdlog/spdlog.h>

namespace plexus {
namespace {
bool serves_group(const UpstreamConfig& u, const std::string& group) {
  return std::find(u.groups.begin(), u.groups.end(), group) != u.groups.end();
}
constexpr std::size_t kSamples = 64;
constexpr auto kCooldown = std::chrono::seconds(10);
}  // namespace

void UpstreamStats::record_ttft(double ms) {
  if (ttft_ms.size() < kSamples) {
    ttft_ms.push_back(ms);
  } else {
    ttft_ms[next_sample] = ms;
    next_sample = (next_sample + 1) % kSamples;
  }
}

std::pair<double, double> UpstreamStats::p50_p95() const {
  if (ttft_ms.empty()) return {0, 0};
  std::vector<double> sorted = ttft_ms;
  std::sort(sorted.begin(), sorted.end());
  auto at = [&](double p) { return sorted[std::min(sorted.size() - 1, static_cast<std::size_t>(p * sorted.size()))]; };
  return {at(0.5), at(0.95)};
}

void UpstreamStats::record_failure(std::chrono::steady_clock::time_point now) {
  if (++consecutive_failures >= 3) cooling_until = now + kCooldown;
}

UpstreamPool::UpstreamPool(const Config& config, const ProviderRegistry& registry,
                           ProviderHost& host) {
  for (const auto& cfg : config.upstreams) {
    UpstreamSpec spec{cfg.name,          cfg.url,          cfg.api_key,     cfg.connect_timeout,
                      cfg.first_byte_timeout, cfg.idle_timeout, cfg.options_json};
    auto up = std::make_unique<Upstream>();
    up->config = cfg;
    try {
      up->provider = registry.create(cfg.provider, spec, host);
    } catch (const std::invalid_argument& e) {  // the adapter's options: "options.x: ..."
      throw ConfigError(config.file + ": " + cfg.path + "." + e.what());
    } catch (const std::exception& e) {  // the adapter's library
      throw ConfigError(config.file + ": " + cfg.path + "." + e.what());
    }
    if (!up->provider)
      throw ConfigError(config.file + ": " + cfg.path + ".provider: unknown provider '" +
                        cfg.provider + "'; available: " + registry.names());
    up->capabilities = up->provider->capabilities();
    if (cfg.tools) up->capabilities.tools = *cfg.tools;
    if (cfg.vision) up->capabilities.vision = *cfg.vision;
    if (cfg.json_mode) up->capabilities.json_mode = *cfg.json_mode;
    if (cfg.context_length) up->capabilities.context_length = *cfg.context_length;
    upstreams_.push_back(std::move(up));
  }
}

std::vector<Match> UpstreamPool::candidates(const std::string& model,
                                                const std::string& group) const {
  std::vector<Match> out;
  for (const auto& up : upstreams_) {
    if (!serves_group(up->config, group)) continue;
    for (const auto& route : up->config.models)
      if (route.id == model) out.push_back({up.get(), route.upstream_model});
  }
  return out;
}

void UpstreamPool::start_status_polling(Timers& timers) {
  for (auto& up : upstreams_)
    if (up->config.status_interval.count() > 0) poll(*up, timers);
}

void UpstreamPool::poll(Upstream& up, Timers& timers) {
  Upstream* target = &up;
  bool asked = up.provider->poll_status([this, target, &timers](BackendStatus status) {
    if (target->stats.backend.ready && !status.ready)
      spdlog::warn("upstream '{}' is not ready: {}", target->config.name, status.detail);
    else if (!target->stats.backend.ready && status.ready)
      spdlog::info("upstream '{}' is ready again", target->config.name);
    target->stats.backend = std::move(status);
    timers.after(target->config.status_interval, [this, target, &timers] { poll(*target, timers); });
  });
  (void)asked;  // an adapter with nothing to ask is simply not polled again
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
