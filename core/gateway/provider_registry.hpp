#pragma once
// The one registry of provider adapters, keyed by the name used in "upstreams[].provider".
// Adapters are shared libraries, "libplexus_provider_<name>.so" in the providers folder (next to
// the binary by default), loaded on first use; tests may also add factories in-process.
#include <map>
#include <memory>
#include <string>

#include "plexus/provider.hpp"

namespace plexus {

class ProviderRegistry {
 public:
  explicit ProviderRegistry(std::string directory = "") : directory_(std::move(directory)) {}

  // The folder "providers" beside the running executable.
  static std::string default_directory();

  // Throws std::logic_error on a second registration under the same name.
  void add(const std::string& name, ProviderFactory factory);

  // Builds the named adapter for one upstream. Returns nullptr for an unknown name; throws
  // std::invalid_argument for the adapter's own option errors and std::runtime_error when its
  // library cannot be used (ABI, symbols), each message ready to follow a key path.
  std::shared_ptr<Provider> create(const std::string& name, const UpstreamSpec& spec,
                                   ProviderHost& host) const;
  std::string names() const;  // "demo, openai"

 private:
  std::string directory_;
  std::map<std::string, ProviderFactory> factories_;
};

}  // namespace plexus
