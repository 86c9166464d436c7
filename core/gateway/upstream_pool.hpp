#pragma once
// The configured upstreams with their providers, and which of them may serve a model for a
// group. Group isolation is enforced here: a caller never sees, lists or reaches an upstream
// outside its group.
#include <memory>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "gateway/provider_registry.hpp"

namespace plexus {

struct Upstream {
  UpstreamConfig config;
  std::unique_ptr<Provider> provider;
};

struct Candidate {
  const Upstream* upstream;
  std::string upstream_model;
};

class UpstreamPool {
 public:
  // Builds every provider; throws ConfigError naming the file and key path on bad settings.
  UpstreamPool(const Config& config, const ProviderRegistry& registry, ProviderHost& host);

  // In config order, which is the failover order.
  std::vector<Candidate> candidates(const std::string& model, const std::string& group) const;
  // Distinct model ids the group may use, in config order.
  std::vector<std::string> models_for(const std::string& group) const;

 private:
  std::vector<std::unique_ptr<Upstream>> upstreams_;
};

}  // namespace plexus
