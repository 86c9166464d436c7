#pragma once
// How a native plugin exports itself. A plugin library ends with one line:
//
//   PLEXUS_PLUGIN(my_descriptor, my_factory)
//
// where `my_descriptor` is `const plexus::PluginDescriptor& my_descriptor()` (name, version,
// description, config schema) and `my_factory` is
// `std::unique_ptr<plexus::Plugin> my_factory(const plexus::PluginInit&)`.
// The router checks plexus_plugin_abi() against kPluginAbiVersion before it touches anything
// else and refuses a mismatch naming the file; then it validates the instance's "config" against
// the descriptor's schema (defaults filled in) before the factory runs. Plugins must be built with the same compiler and
// C++ standard library as the router (std::string crosses the boundary): build them in this
// tree, or against this tree's include/ with Debian 12's g++.
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "plexus/config_schema.hpp"
#include "plexus/http_client.hpp"
#include "plexus/plugin.hpp"
#include "plexus/workers.hpp"

namespace plexus {

// Bump on any change to plugin.hpp or this file that breaks binary compatibility.
// 2: descriptors and config schemas, pause / PendingRequest, the host (HTTP client, timers,
//    workers) in PluginInit, RequestContext::set_response_header.
inline constexpr int kPluginAbiVersion = 2;

enum class LogLevel { kDebug, kInfo, kWarn, kError };

// What a plugin says of itself, before any instance exists.
struct PluginDescriptor {
  std::string name;         // "web"
  std::string version;      // the plugin's own version ("1.0.0"), shown at start-up
  std::string description;  // one line
  ConfigSchema config;      // what its "config" object may contain
};

struct PluginInit {
  std::string name;         // the instance name from the config
  // The instance's "config" object as JSON text, checked against the descriptor's schema with
  // every default filled in.
  std::string config_json;
  // Logs through the router's logger, prefixed with [plugin:NAME]. Never log prompt text.
  std::function<void(LogLevel, std::string_view)> log;
  // The instance's event loop lends these (as it does to providers): the asynchronous HTTP
  // client and timers of that loop, whose callbacks run on it, and the router's worker pool.
  HttpClient* http = nullptr;
  Timers* timers = nullptr;
  Workers* workers = nullptr;
};

using PluginFactory = std::unique_ptr<Plugin>(const PluginInit&);

}  // namespace plexus

#define PLEXUS_PLUGIN(descriptor, factory)                                                  \
  extern "C" __attribute__((visibility("default"))) int plexus_plugin_abi() {              \
    return ::plexus::kPluginAbiVersion;                                                     \
  }                                                                                         \
  extern "C" __attribute__((visibility("default"))) const ::plexus::PluginDescriptor*      \
  plexus_plugin_descriptor() {                                                              \
    return &descriptor();                                                                   \
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
