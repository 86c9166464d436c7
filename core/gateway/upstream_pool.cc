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

UpstreamStats::UpstreamStats(std::size_t loops)
    : ttft_(std::max<std::size_t>(loops, 1)), backend_(std::make_shared<const BackendStatus>()) {}

void UpstreamStats::record_ttft(std::size_t loop, double ms) {
  Ring& r = ttft_[loop];
  if (r.samples.size() < kSamples) {
    r.samples.push_back(ms);
  } else {
    r.samples[r.next] = ms;
    r.next = (r.next + 1) % kSamples;
  }
}

std::pair<double, double> UpstreamStats::p50_p95(std::size_t loop) const {
  const auto& samples = ttft_[loop].samples;
  if (samples.empty()) return {0, 0};
  std::vector<double> sorted = samples;
  std::sort(sorted.begin(), sorted.end());
  auto at = [&](double p) { return sorted[std::min(sorted.size() - 1, static_cast<std::size_t>(p * sorted.size()))]; };
  return {at(0.5), at(0.95)};
}

bool UpstreamStats::healthy(Clock::time_point now) const {
  return now.time_since_epoch().count() >= cooling_until_.load(std::memory_order_relaxed);
}

void UpstreamStats::record_failure(Clock::time_point now) {
  if (consecutive_failures_.fetch_add(1, std::memory_order_relaxed) + 1 >= 3) cool_down_until(now + kCooldown);
}

void UpstreamStats::cool_down_until(Clock::time_point until) {
  auto want = until.time_since_epoch().count();
  auto seen = cooling_until_.load(std::memory_order_relaxed);
  while (seen < want && !cooling_until_.compare_exchange_weak(seen, want, std::memory_order_relaxed)) {
  }
}

void UpstreamStats::set_backend(BackendStatus status) {
  backend_.store(std::make_shared<const BackendStatus>(std::move(status)));
}

UpstreamPool::UpstreamPool(const Config& config, const ProviderRegistry& registry,
                           const std::vector<ProviderHost*>& hosts) {
  for (const auto& cfg : config.upstreams) {
    UpstreamSpec spec{cfg.name,          cfg.url,          cfg.api_key,     cfg.connect_timeout,
                      cfg.first_byte_timeout, cfg.idle_timeout, cfg.options_json};
    auto up = std::make_unique<Upstream>(cfg, hosts.size());
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
      up->providers.push_back(std::move(provider));
    }
    up->capabilities = up->providers.front()->capabilities();
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

void UpstreamPool::start_status_polling(std::size_t loop, Timers& timers) {
  for (auto& up : upstreams_)
    if (up->config.status_interval.count() > 0) poll(*up, loop, timers);
}

void UpstreamPool::poll(Upstream& up, std::size_t loop, Timers& timers) {
  Upstream* target = &up;
  bool asked = up.provider(loop).poll_status([this, target, loop, &timers](BackendStatus status) {
    bool was_ready = target->stats.backend()->ready;
    if (was_ready && !status.ready)
      spdlog::warn("upstream '{}' is not ready: {}", target->config.name, status.detail);
    else if (!was_ready && status.ready)
      spdlog::info("upstream '{}' is ready again", target->config.name);
    target->stats.set_backend(std::move(status));
    timers.after(target->config.status_interval, [this, target, loop, &timers] { poll(*target, loop, timers); });
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
