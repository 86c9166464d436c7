#pragma once
// The one registry of provider adapters, keyed by the name used in "upstreams[].provider".
#include <map>
#include <string>

#include "plexus/provider.hpp"

namespace plexus {

class ProviderRegistry {
 public:
  // The adapters built into this binary (openai, demo).
  static ProviderRegistry with_builtins();

  // Throws std::logic_error on a second registration under the same name.
  void add(const std::string& name, ProviderFactory factory);
  // nullptr when unknown.
  ProviderFactory find(const std::string& name) const;
  std::string names() const;  // "demo, openai"

 private:
  std::map<std::string, ProviderFactory> factories_;
};

}  // namespace plexus
