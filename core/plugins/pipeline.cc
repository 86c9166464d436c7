#include "plugins/pipeline.hpp"

namespace plexus {

std::shared_ptr<Pipeline> Pipeline::load(const std::vector<PluginConfig>& configs, const PluginHost& host) {
  auto p = std::make_shared<Pipeline>();
  for (const auto& c : configs) {
    if (!c.enabled) continue;
    p->plugins_.push_back(c.type == "native" ? load_native_plugin(c, host) : load_lua_plugin(c));
  }
  p->refresh_hooks();
  return p;
}

bool Pipeline::provides(std::string_view id) const {
  for (const auto& p : plugins_)
    if (p.id == id || p.config.name == id) return true;
  return false;
}

std::optional<std::size_t> Pipeline::entry_for(std::size_t index, const std::vector<std::string>& ids) const {
  const LoadedPlugin& me = plugins_[index];
  for (std::size_t j = 0; j < ids.size(); ++j)
    if (ids[j] == me.config.name) return j;
  for (std::size_t j = 0; j < ids.size(); ++j) {
    if (ids[j] != me.id) continue;
    bool named_instance = false;
    for (const auto& p : plugins_) named_instance = named_instance || p.config.name == ids[j];
    if (!named_instance) return j;
  }
  return std::nullopt;
}

void Pipeline::refresh_hooks() {
  hooks_ = 0;
  for (auto& p : plugins_) {
    p.hooks = p.plugin->hooks();
    hooks_ |= p.hooks;
  }
}

}  // namespace plexus
