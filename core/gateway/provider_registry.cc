#include "gateway/provider_registry.hpp"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <set>
#include <stdexcept>

#include "config/schema.hpp"
#include "plexus/provider_abi.hpp"
#include "plugins/shared_library.hpp"
#include "util/beside_binary.hpp"

namespace plexus {
namespace fs = std::filesystem;
namespace {

constexpr std::string_view kPrefix = "libplexus_provider_";
constexpr std::string_view kSuffix = ".so";

// Names go into a file name: letters, digits, '_' and '-' only.
bool plain_name(const std::string& name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-') return false;
  return true;
}

}  // namespace

std::string ProviderRegistry::default_directory() { return beside_binary("providers"); }

// An upstream's options checked against its adapter's schema, defaults filled in. Errors read
// "options.KEY: ..." (std::invalid_argument): the caller puts the file and the upstream before.
static std::string checked_options(const ConfigSchema& schema, const std::string& options_json) {
  nlohmann::json written = nlohmann::json::parse(options_json);
  try {
    return config::apply_schema(schema, config::JsonPath(written, "", "options")).dump();
  } catch (const ConfigError& e) {
    std::string message = e.what();
    throw std::invalid_argument(message.rfind(": ", 0) == 0 ? message.substr(2) : message);
  }
}

void ProviderRegistry::add(const std::string& name, ProviderFactory factory) {
  if (!factories_.emplace(name, factory).second)
    throw std::logic_error("provider '" + name + "' is registered twice");
}

std::shared_ptr<Provider> ProviderRegistry::create(const std::string& name, const UpstreamSpec& spec,
                                                   ProviderHost& host) const {
  if (auto it = factories_.find(name); it != factories_.end()) return it->second(spec, host);
  if (!plain_name(name) || directory_.empty()) return nullptr;
  std::string file = (fs::path(directory_) / (std::string(kPrefix) + name + std::string(kSuffix))).string();
  if (!fs::exists(file)) return nullptr;
  OpenedLibrary lib;
  try {
    lib = open_plexus_library(file, "plexus_provider_abi", "plexus_provider_create",
                              kProviderAbiVersion, "PLEXUS_PROVIDER(factory)");
  } catch (const std::exception& e) {
    throw std::runtime_error("provider: " + file + ": " + e.what());  // after "upstreams[i]."
  }
  UpstreamSpec checked = spec;
  using Options = const ConfigSchema*();
  if (auto* options = reinterpret_cast<Options*>(find_symbol(lib, "plexus_provider_options")))
    checked.options_json = checked_options(*options(), spec.options_json);
  using Create = Provider*(const UpstreamSpec*, ProviderHost*, std::string*);
  std::string error;
  std::unique_ptr<Provider> made(reinterpret_cast<Create*>(lib.create)(&checked, &host, &error));
  if (!made) throw std::invalid_argument(error.empty() ? "provider: the adapter refused to start" : error);
  return keep_library_alive<Provider>(lib.handle, std::move(made));
}

std::string ProviderRegistry::names() const {
  std::set<std::string> all;
  for (const auto& [name, _] : factories_) all.insert(name);
  std::error_code ec;
  if (!directory_.empty())
    for (const auto& entry : fs::directory_iterator(directory_, ec)) {
      std::string f = entry.path().filename().string();
      if (f.rfind(kPrefix, 0) == 0 && f.size() > kPrefix.size() + kSuffix.size() &&
          f.compare(f.size() - kSuffix.size(), kSuffix.size(), kSuffix) == 0)
        all.insert(f.substr(kPrefix.size(), f.size() - kPrefix.size() - kSuffix.size()));
    }
  std::string out;
  for (const auto& n : all) out += (out.empty() ? "" : ", ") + n;
  return out.empty() ? "(none found in " + directory_ + ")" : out;
}

}  // namespace plexus
