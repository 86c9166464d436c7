#pragma once
// The one way a plugin's log lines reach the router's log: under the plugin's name, at the
// level it asked for. Native plugins get it through PluginInit::log; Lua's plexus.log uses it.
#include <functional>
#include <string>
#include <string_view>

#include "plexus/plugin_abi.hpp"

namespace plexus {

std::function<void(LogLevel, std::string_view)> plugin_logger(const std::string& plugin_name);

}  // namespace plexus
