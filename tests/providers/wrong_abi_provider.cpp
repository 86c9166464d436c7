// Test fixture: an adapter library built for another provider ABI.
#include <string>

namespace plexus {
class Provider;
struct UpstreamSpec;
struct ProviderHost;
}  // namespace plexus

extern "C" __attribute__((visibility("default"))) int plexus_provider_abi() { return 999; }
extern "C" __attribute__((visibility("default"))) plexus::Provider* plexus_provider_create(
    const plexus::UpstreamSpec*, plexus::ProviderHost*, std::string*) {
  return nullptr;
}
