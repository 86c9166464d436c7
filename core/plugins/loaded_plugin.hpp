#pragma once
// A plugin instance as the pipeline holds it, whatever its runtime.
#include <memory>
#include <stdexcept>
#include <string>

#include "config/config.hpp"
#include "plexus/plugin_abi.hpp"

namespace plexus {

// A plugin could not be loaded; what() names the plugin, the file and the reason.
class PluginLoadError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A hook failed (threw, a Lua error, a budget exceeded). Caught by the pipeline.
class PluginError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// What an event loop lends its plugin instances (PluginInit's http, timers and workers).
struct PluginHost {
  HttpClient* http = nullptr;
  Timers* timers = nullptr;
  Workers* workers = nullptr;
};

struct LoadedPlugin {
  PluginConfig config;
  std::string id;           // the descriptor's name ("web"); a request's plugins[].id names it
  std::string version;      // the descriptor's ("lua" for scripts)
  std::string description;
  std::shared_ptr<Plugin> plugin;  // keeps a native plugin's library mapped while it lives
  unsigned hooks = 0;
};

// Both check the instance's "config" against the plugin's schema first: a ConfigError naming the
// config file and key path ("plugins[1].config.timeout_ms: ...").
LoadedPlugin load_native_plugin(const PluginConfig& config, const PluginHost& host);
LoadedPlugin load_lua_plugin(const PluginConfig& config);
// Reads every Lua plugin's script into its config's lua_source, so that the loops loading the
// plugins read no file (a read is a blocking call). Throws PluginLoadError naming the entry.
void read_lua_sources(std::vector<PluginConfig>& configs);
// A native plugin's descriptor, read without making an instance (plexus --print-schema). Throws
// std::runtime_error with the reason.
PluginDescriptor describe_native_plugin(const std::string& file);
std::string checked_plugin_config(const PluginConfig& config, const ConfigSchema& schema);

}  // namespace plexus
