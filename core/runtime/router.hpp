#pragma once
// The running router: its event loops, and per loop an HTTP client, plugin instances and the
// API routes; the upstream pool and the HTTP front shared by all. main() builds one; so does
// --check-config (without starting it), so both refuse exactly the same files.
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <memory>
#include <vector>

#include "config/config.hpp"
#include "loop/loop_group.hpp"
#include "plugins/pipeline.hpp"

namespace plexus {

struct LoadedPlugin;

class Router {
 public:
  // Builds the providers and plugins the config names (once per loop). Throws ConfigError
  // (file and key path) or PluginLoadError.
  explicit Router(Config config);
  ~Router();  // stops everything still running
  Router(const Router&) = delete;
  Router& operator=(const Router&) = delete;

  const Config& config() const;
  std::size_t plugin_count() const;
  // The plugins as loop 0 loaded them (every loop has the same), for the start-up log.
  const std::vector<LoadedPlugin>& plugins() const;
  std::size_t loop_count() const;

  // Starts the loops and listens (API, and nodes.listen when set); throws std::runtime_error
  // when it cannot listen.
  void start();
  std::uint16_t port() const;
  std::uint16_t node_port() const;  // 0 without a node port

  // Re-reads the whole config file (SIGHUP, POST /admin/reload): keys, upstreams, node tokens,
  // plugins, routing. An invalid file is refused and the running config stays. Blocks: call it
  // from any thread but a loop's. Returns the HTTP status and the JSON report.
  std::pair<int, std::string> reload_config();
  // Stops taking new chat requests, waits up to `grace` for those in flight, then closes
  // everything and stops the loops.
  void drain_and_stop(std::chrono::milliseconds grace);

  // Called now and then from the main thread: logs a loop stuck in one turn (once per episode).
  void watch_for_stuck_loops();

  struct State;

 private:
  std::map<std::string, double> spent_so_far(const Config& next);
  std::unique_ptr<State> s_;
};

}  // namespace plexus
