#pragma once
// The configured upstreams with their providers, and which of them may serve a model for a
// group. Group isolation is enforced here: a caller never sees, lists or reaches an upstream
// outside its group.
#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "gateway/provider_registry.hpp"

namespace plexus {

// Live statistics of one upstream, shared by every event loop and read without locks: counters
// are atomics, the backend's status is an immutable snapshot replaced whole, and TTFT samples
// are kept per loop (each ring written and read by its own loop only).
class UpstreamStats {
 public:
  using Clock = std::chrono::steady_clock;
  explicit UpstreamStats(std::size_t loops);

  void attempt_started() { in_flight_.fetch_add(1, std::memory_order_relaxed); }
  void attempt_ended() { in_flight_.fetch_sub(1, std::memory_order_relaxed); }
  std::int64_t in_flight() const { return in_flight_.load(std::memory_order_relaxed); }

  void record_ttft(std::size_t loop, double ms);
  // {p50, p95} of this loop's samples, one sort for both; {0, 0} with no samples.
  std::pair<double, double> p50_p95(std::size_t loop) const;

  bool healthy(Clock::time_point now) const;
  // A retryable failure; three in a row cool the upstream down for a while.
  void record_failure(Clock::time_point now);
  void record_success() { consecutive_failures_.store(0, std::memory_order_relaxed); }
  void cool_down_until(Clock::time_point until);  // never shortens a cool-down

  // The backend's own word (Provider::poll_status), refreshed every status_interval.
  std::shared_ptr<const BackendStatus> backend() const { return backend_.load(); }
  void set_backend(BackendStatus status);

 private:
  struct Ring {
    std::vector<double> samples;
    std::size_t next = 0;
  };
  std::atomic<std::int64_t> in_flight_{0};
  std::atomic<int> consecutive_failures_{0};
  std::atomic<Clock::rep> cooling_until_{0};
  std::vector<Ring> ttft_;  // one per loop
  std::atomic<std::shared_ptr<const BackendStatus>> backend_;
};

struct Upstream {
  Upstream(UpstreamConfig c, std::size_t loops) : config(std::move(c)), stats(loops) {}
  UpstreamConfig config;
  // One provider object per event loop, built with that loop's host: a provider is only ever
  // called from one thread. Each keeps the adapter's library mapped.
  std::vector<std::shared_ptr<Provider>> providers;
  Capabilities capabilities;  // the adapter's, with the operator's overrides
  mutable UpstreamStats stats;
  Provider& provider(std::size_t loop) const { return *providers[loop]; }
};

struct Match {
  const Upstream* upstream;
  std::string upstream_model;
};

class UpstreamPool {
 public:
  // Builds every provider, once per loop host (the hosts must outlive the pool); throws ConfigError naming the file and key path
  // on bad settings.
  UpstreamPool(const Config& config, const ProviderRegistry& registry,
               const std::vector<ProviderHost*>& hosts);

  // In config order, which is the failover order.
  std::vector<Match> candidates(const std::string& model, const std::string& group) const;
  // Distinct model ids the group may use, in config order.
  std::vector<std::string> models_for(const std::string& group) const;

  // On loop `loop`'s thread: asks every upstream whose adapter can tell for its status, now and
  // then every status_interval (the next poll is armed when the answer arrives, so slow backends
  // never pile up). One loop polls; every loop reads the published answer.
  void start_status_polling(std::size_t loop, Timers& timers);

 private:
  void poll(Upstream& up, std::size_t loop, Timers& timers);
  std::vector<std::unique_ptr<Upstream>> upstreams_;
};

}  // namespace plexus
