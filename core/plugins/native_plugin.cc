// Native plugins: shared libraries loaded with Boost.DLL (shared_library.hpp). The ABI version is
// checked before the factory is touched; a missing file or symbol, a mismatch or a throwing
// factory refuses the start with the plugin's name, the file and the reason.
#include <spdlog/spdlog.h>

#include "plexus/plugin_abi.hpp"
#include "plugins/loaded_plugin.hpp"
#include "plugins/plugin_log.hpp"
#include "plugins/shared_library.hpp"

namespace plexus {

LoadedPlugin load_native_plugin(const PluginConfig& config) {
  std::string where = config.path + " (" + config.name + ", " + config.file + "): ";
  OpenedLibrary lib;
  try {
    lib = open_plexus_library(config.file, "plexus_plugin_abi", "plexus_plugin_create",
                              kPluginAbiVersion, "PLEXUS_PLUGIN");
  } catch (const std::exception& e) {
    throw PluginLoadError(where + e.what());
  }
  PluginInit init;
  init.name = config.name;
  init.config_json = config.config_json;
  init.log = plugin_logger(config.name);
  std::string error;
  using Create = std::unique_ptr<Plugin>*(const PluginInit*, std::string*);
  std::unique_ptr<std::unique_ptr<Plugin>> made(reinterpret_cast<Create*>(lib.create)(&init, &error));
  if (!made || !*made)
    throw PluginLoadError(where + "the plugin's factory failed: " + (error.empty() ? "returned nothing" : error));
  LoadedPlugin loaded;
  loaded.config = config;
  loaded.plugin = keep_library_alive<Plugin>(lib.handle, std::move(*made));
  loaded.hooks = loaded.plugin->hooks();
  return loaded;
}

}  // namespace plexus
