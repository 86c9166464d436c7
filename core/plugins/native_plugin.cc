// Native plugins: shared libraries loaded with Boost.DLL (shared_library.hpp). The ABI version is
// checked before anything else is touched; then the descriptor's schema checks the instance's
// config (defaults filled in) before the factory runs. A missing file or symbol, a mismatch or a
// throwing factory refuses the start with the plugin's name, the file and the reason.
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "config/schema.hpp"
#include "plugins/loaded_plugin.hpp"
#include "plugins/plugin_log.hpp"
#include "plugins/shared_library.hpp"

namespace plexus {

// The instance's config checked against `schema`, as JSON text with the defaults filled in.
std::string checked_plugin_config(const PluginConfig& config, const ConfigSchema& schema) {
  nlohmann::json written = nlohmann::json::parse(config.config_json);
  return config::apply_schema(schema, config::JsonPath(written, config.config_file, config.path + ".config")).dump();
}

namespace {
const PluginDescriptor* descriptor_of(const OpenedLibrary& lib) {
  using Describe = const PluginDescriptor*();
  auto* describe = reinterpret_cast<Describe*>(find_symbol(lib, "plexus_plugin_descriptor"));
  return describe ? describe() : nullptr;
}
}  // namespace

PluginDescriptor describe_native_plugin(const std::string& file) {
  OpenedLibrary lib = open_plexus_library(file, "plexus_plugin_abi", "plexus_plugin_create", kPluginAbiVersion,
                                          "PLEXUS_PLUGIN(descriptor, factory)");
  const PluginDescriptor* descriptor = descriptor_of(lib);
  if (!descriptor) throw std::runtime_error("no plugin descriptor");
  return *descriptor;  // a copy: the library closes when `lib` goes
}

LoadedPlugin load_native_plugin(const PluginConfig& config, const PluginHost& host) {
  std::string where = config.path + " (" + config.name + ", " + config.file + "): ";
  OpenedLibrary lib;
  try {
    lib = open_plexus_library(config.file, "plexus_plugin_abi", "plexus_plugin_create", kPluginAbiVersion,
                              "PLEXUS_PLUGIN(descriptor, factory)");
  } catch (const std::exception& e) {
    throw PluginLoadError(where + e.what());
  }
  const PluginDescriptor* descriptor = descriptor_of(lib);
  if (!descriptor) throw PluginLoadError(where + "no plugin descriptor (end the source with PLEXUS_PLUGIN(descriptor, factory))");

  PluginInit init;
  init.name = config.name;
  init.config_json = checked_plugin_config(config, descriptor->config);
  init.log = plugin_logger(config.name);
  init.http = host.http;
  init.timers = host.timers;
  init.workers = host.workers;
  std::string error;
  using Create = std::unique_ptr<Plugin>*(const PluginInit*, std::string*);
  std::unique_ptr<std::unique_ptr<Plugin>> made(reinterpret_cast<Create*>(lib.create)(&init, &error));
  if (!made || !*made)
    throw PluginLoadError(where + "the plugin's factory failed: " + (error.empty() ? "returned nothing" : error));
  LoadedPlugin loaded;
  loaded.config = config;
  loaded.id = descriptor->name;
  loaded.version = descriptor->version;
  loaded.description = descriptor->description;
  loaded.plugin = keep_library_alive<Plugin>(lib.handle, std::move(*made));
  loaded.hooks = loaded.plugin->hooks();
  return loaded;
}

}  // namespace plexus
