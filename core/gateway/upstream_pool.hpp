#pragma once
// The configured upstreams with their providers, and which of them may serve a model for a
// group. Group isolation is enforced here: a caller never sees, lists or reaches an upstream
// outside its group.
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "gateway/provider_registry.hpp"

namespace plexus {

// Live statistics of one upstream, kept by the exchanges on the loop thread.
struct UpstreamStats {
  std::int64_t in_flight = 0;
  std::vector<double> ttft_ms;  // a ring of the latest samples
  std::size_t next_sample = 0;
  int consecutive_failures = 0;
  std::chrono::steady_clock::time_point cooling_until{};

  void record_ttft(double ms);
  // {p50, p95} of the samples, one sort for both; {0, 0} with no samples.
  std::pair<double, double> p50_p95() const;
  bool healthy(std::chrono::steady_clock::time_point now) const { return now >= cooling_until; }
  // A retryable failure; three in a row cool the upstream down for a while.
  void record_failure(std::chrono::steady_clock::time_point now);
  void record_success() { consecutive_failures = 0; }

  // The backend's own word (Provider::poll_status), refreshed every status_interval.
  BackendStatus backend;
};

struct Upstream {
  UpstreamConfig config;
  std::shared_ptr<Provider> provider;  // keeps the adapter's library mapped
  Capabilities capabilities;           // the adapter's, with the operator's overrides
  mutable UpstreamStats stats;  // loop thread only
};

struct Match {
  const Upstream* upstream;
  std::string upstream_model;
};

class UpstreamPool {
 public:
  // Builds every provider; throws ConfigError naming the file and key path on bad settings.
  UpstreamPool(const Config& config, const ProviderRegistry& registry, ProviderHost& host);

  // In config order, which is the failover order.
  std::vector<Match> candidates(const std::string& model, const std::string& group) const;
  // Distinct model ids the group may use, in config order.
  std::vector<std::string> models_for(const std::string& group) const;

  // Loop thread: asks every upstream whose adapter can tell for its status, now and then every
  // status_interval (the next poll is armed when the answer arrives, so slow backends never pile up).
  void start_status_polling(Timers& timers);

 private:
  void poll(Upstream& up, Timers& timers);
  std::vector<std::unique_ptr<Upstream>> upstreams_;
};

}  // namespace plexus
