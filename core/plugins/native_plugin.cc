// Native plugins: shared libraries loaded with Boost.DLL. The ABI version is checked before the
// factory is touched; a missing file or symbol, a mismatch or a throwing factory refuses the start
// with the plugin's name, the file and the reason.
#define BOOST_DLL_USE_STD_FS 1
#include <boost/dll/shared_library.hpp>

#include <filesystem>

#include <spdlog/spdlog.h>

#include "plexus/plugin_abi.hpp"
#include "plugins/loaded_plugin.hpp"

namespace plexus {
namespace dll = boost::dll;

LoadedPlugin load_native_plugin(const PluginConfig& config) {
  std::string where = config.path + " (" + config.name + ", " + config.file + "): ";
  if (!std::filesystem::exists(config.file))
    throw PluginLoadError(where + "file not found");
  dll::shared_library lib;
  try {
    lib.load(config.file, dll::load_mode::rtld_now | dll::load_mode::rtld_local);
  } catch (const std::exception& e) {
    throw PluginLoadError(where + "cannot load: " + e.what());
  }
  if (!lib.has("plexus_plugin_abi") || !lib.has("plexus_plugin_create"))
    throw PluginLoadError(where + "not a plexus plugin (no plexus_plugin_abi/plexus_plugin_create; "
                                  "end the plugin with PLEXUS_PLUGIN(factory))");
  int abi = lib.get<int()>("plexus_plugin_abi")();
  if (abi != kPluginAbiVersion)
    throw PluginLoadError(where + "built for plugin ABI " + std::to_string(abi) +
                          ", this router speaks ABI " + std::to_string(kPluginAbiVersion) +
                          "; rebuild the plugin against this version's include/plexus");
  PluginInit init;
  init.name = config.name;
  init.config_json = config.config_json;
  std::string prefix = "[plugin:" + config.name + "] ";
  init.log = [prefix](LogLevel level, std::string_view message) {
    switch (level) {
      case LogLevel::kDebug: spdlog::debug("{}{}", prefix, message); break;
      case LogLevel::kInfo: spdlog::info("{}{}", prefix, message); break;
      case LogLevel::kWarn: spdlog::warn("{}{}", prefix, message); break;
      case LogLevel::kError: spdlog::error("{}{}", prefix, message); break;
    }
  };
  std::string error;
  using Create = std::unique_ptr<Plugin>*(const PluginInit*, std::string*);
  std::unique_ptr<std::unique_ptr<Plugin>> made(lib.get<Create>("plexus_plugin_create")(&init, &error));
  if (!made || !*made)
    throw PluginLoadError(where + "the plugin's factory failed: " + (error.empty() ? "returned nothing" : error));
  // The object must die before its code is unmapped: one control block owns both, and the pair
  // destroys .second (the plugin) before .first (the library).
  auto holder = std::make_shared<std::pair<dll::shared_library, std::unique_ptr<Plugin>>>(
      std::move(lib), std::move(*made));
  LoadedPlugin loaded;
  loaded.config = config;
  loaded.plugin = std::shared_ptr<Plugin>(holder, holder->second.get());
  loaded.hooks = loaded.plugin->hooks();
  return loaded;
}

}  // namespace plexus
