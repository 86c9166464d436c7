#include "plugins/plugin_log.hpp"

#include <spdlog/spdlog.h>

namespace plexus {

std::function<void(LogLevel, std::string_view)> plugin_logger(const std::string& plugin_name) {
  return [prefix = "[plugin:" + plugin_name + "] "](LogLevel level, std::string_view message) {
    switch (level) {
      case LogLevel::kDebug: spdlog::debug("{}{}", prefix, message); break;
      case LogLevel::kInfo: spdlog::info("{}{}", prefix, message); break;
      case LogLevel::kWarn: spdlog::warn("{}{}", prefix, message); break;
      case LogLevel::kError: spdlog::error("{}{}", prefix, message); break;
    }
  };
}

}  // namespace plexus
