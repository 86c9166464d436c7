#pragma once
// How a native plugin exports itself. A plugin library ends with one line:
//
//   PLEXUS_PLUGIN(my_factory)
//
// where `my_factory` is `std::unique_ptr<plexus::Plugin> my_factory(const plexus::PluginInit&)`.
// The router checks plexus_plugin_abi() against kPluginAbiVersion before it touches anything
// else, and refuses a mismatch naming the file. Plugins must be built with the same compiler and
// C++ standard library as the router (std::string crosses the boundary): build them in this
// tree, or against this tree's include/ with Debian 12's g++.
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "plexus/plugin.hpp"

namespace plexus {

// Bump on any change to plugin.hpp or this file that breaks binary compatibility.
inline constexpr int kPluginAbiVersion = 1;

enum class LogLevel { kDebug, kInfo, kWarn, kError };

struct PluginInit {
  std::string name;         // the instance name from the config
  std::string config_json;  // the instance's "config" object as JSON text ("{}" when absent)
  // Logs through the router's logger, prefixed with [plugin:NAME]. Never log prompt text.
  std::function<void(LogLevel, std::string_view)> log;
};

using PluginFactory = std::unique_ptr<Plugin>(const PluginInit&);

}  // namespace plexus

#define PLEXUS_PLUGIN(factory)                                                              \
  extern "C" __attribute__((visibility("default"))) int plexus_plugin_abi() {              \
    return ::plexus::kPluginAbiVersion;                                                     \
  }                                                                                         \
  extern "C" __attribute__((visibility("default"))) std::unique_ptr<::plexus::Plugin>* \
  plexus_plugin_create(const ::plexus::PluginInit* init, std::string* error) {              \
    try {                                                                                   \
      return new std::unique_ptr<::plexus::Plugin>(factory(*init));                         \
    } catch (const std::exception& e) {                                                     \
      *error = e.what();                                                                    \
    } catch (...) {                                                                         \
      *error = "unknown exception";                                                         \
    }                                                                                       \
    return nullptr;                                                                         \
  }
