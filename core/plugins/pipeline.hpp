#pragma once
// The configured plugins in pipeline order (config order), loaded once at start-up and again, as
// a new Pipeline, by a config reload. Hooks run from the Exchanges of one event loop, on that
// loop's thread (each loop has its own Pipeline).
#include <memory>
#include <optional>
#include <string_view>
#include <string>
#include <vector>

#include "plugins/loaded_plugin.hpp"

namespace plexus {

class Pipeline {
 public:
  Pipeline() = default;
  // Loads every enabled plugin; throws PluginLoadError naming the plugin, file and reason.
  static std::shared_ptr<Pipeline> load(const std::vector<PluginConfig>& configs, const PluginHost& host);

  const std::vector<LoadedPlugin>& plugins() const { return plugins_; }
  bool any(unsigned hook_mask) const { return (hooks_ & hook_mask) != 0; }
  // Whether a request may ask for plugin `id` (its descriptor's name or its instance name).
  bool provides(std::string_view id) const;
  // Which of a request's plugin ids asks for plugin `index`: one naming its instance, else one
  // naming its descriptor that no instance is named after.
  std::optional<std::size_t> entry_for(std::size_t index, const std::vector<std::string>& ids) const;

 private:
  void refresh_hooks();
  std::vector<LoadedPlugin> plugins_;
  unsigned hooks_ = 0;
};

}  // namespace plexus
