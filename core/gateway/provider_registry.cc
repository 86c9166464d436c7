#include "gateway/provider_registry.hpp"

#include <stdexcept>

namespace plexus {

std::unique_ptr<Provider> make_openai_provider(const UpstreamSpec&, ProviderHost&);
std::unique_ptr<Provider> make_demo_provider(const UpstreamSpec&, ProviderHost&);

ProviderRegistry ProviderRegistry::with_builtins() {
  ProviderRegistry r;
  r.add("openai", &make_openai_provider);
  r.add("demo", &make_demo_provider);
  return r;
}

void ProviderRegistry::add(const std::string& name, ProviderFactory factory) {
  if (!factories_.emplace(name, factory).second)
    throw std::logic_error("provider '" + name + "' is registered twice");
}

ProviderFactory ProviderRegistry::find(const std::string& name) const {
  auto it = factories_.find(name);
  return it == factories_.end() ? nullptr : it->second;
}

std::string ProviderRegistry::names() const {
  std::string out;
  for (const auto& [name, _] : factories_) out += (out.empty() ? "" : ", ") + name;
  return out;
}

}  // namespace plexus
