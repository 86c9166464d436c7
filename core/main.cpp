// plexus: an OpenAI-compatible router in front of GPU nodes.
#include <signal.h>

#include <spdlog/formatter.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "config/config.hpp"
#include "config/schema.hpp"
#include "config/sections.hpp"
#include "cli/keys_command.hpp"
#include "receipts/verify_command.hpp"
#include "plugins/loaded_plugin.hpp"
#include "runtime/router.hpp"
#include "util/log_sink.hpp"
#include "util/json_log_format.hpp"

#ifndef PLEXUS_VERSION
#define PLEXUS_VERSION "0.0.0"
#endif

namespace {

constexpr const char* kUsage = R"(Usage:
  plexus --config FILE [--listen HOST:PORT] [--nodes-listen HOST:PORT]   run the router
  plexus --check-config FILE                  validate a config file and exit (0 = valid)
  plexus --print-schema [PLUGIN.so]           the declared config sections, or a native plugin's
                                              descriptor and config, as Markdown tables
  plexus keys create|list|revoke ... --router URL --admin-key KEY   manage API keys (plexus keys)
  plexus receipt verify RECEIPT [--body FILE] [--jwks FILE|URL]
                                              check a receipt's signature (and the body's hash)
  plexus --help | --version

FILE is JSON; // and /* */ comments are allowed. See docs/configuration.md.
--listen overrides the file's "listen", --nodes-listen its "nodes.listen" (port 0 picks a free
port; the ready line names it).
)";

// --check-config and the real start build the router the same way, so they refuse the same files.
std::unique_ptr<plexus::Router> build(const std::string& file, const std::string& listen,
                                      const std::string& nodes_listen) {
  try {
    plexus::Config config = plexus::load_config(file);
    if (!listen.empty()) plexus::parse_listen(listen, "--listen", config.server.host, config.server.port);
    if (!nodes_listen.empty()) {
      if (config.nodes.host.empty()) throw plexus::ConfigError("--nodes-listen: the config has no \"nodes\" section and node_tokens");
      plexus::parse_listen(nodes_listen, "--nodes-listen", config.nodes.host, config.nodes.port);
    }
    return std::make_unique<plexus::Router>(std::move(config));
  } catch (const plexus::ConfigError& e) {
    std::fprintf(stderr, "%s\n", e.what());
  } catch (const plexus::PluginLoadError& e) {
    std::fprintf(stderr, "%s: %s\n", file.c_str(), e.what());
  }
  return nullptr;
}

int check_config(const std::string& file) {
  auto router = build(file, "", "");  // built, never started: providers are never called
  if (!router) return 1;
  const auto& cfg = router->config();
  std::printf("%s: OK (%zu upstreams, %zu keys, %zu plugins)\n", file.c_str(), cfg.upstreams.size(),
              cfg.keys.size(), router->plugin_count());
  return 0;
}

int run(const std::string& file, const std::string& listen, const std::string& nodes_listen) {
  // Signals are taken by this thread alone (sigtimedwait below): block them before any thread
  // starts.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  // Logs go to stderr; stdout carries only the ready line, which scripts and tests read.
  spdlog::set_default_logger(plexus::make_buffered_stderr_logger("plexus"));
  struct FlushLogsAtExit {
    ~FlushLogsAtExit() { spdlog::default_logger()->flush(); }
  } flush_logs_at_exit;
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
  auto router = build(file, listen, nodes_listen);
  if (!router) return 1;
  const plexus::Config& cfg = router->config();
  spdlog::set_level(spdlog::level::from_str(cfg.log.level));
  if (cfg.log.json) spdlog::set_formatter(plexus::make_json_log_formatter());
  for (const auto& p : router->plugins())
    spdlog::info("plugin {} ({} {}, {}, {}) loaded, on_error {}", p.config.name, p.id, p.version, p.config.type,
                 p.config.file, p.config.fail_open ? "open" : "closed");
  try {
    router->start();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "plexus: cannot listen on %s:%u: %s\n", cfg.server.host.c_str(),
                 cfg.server.port, e.what());
    return 1;
  }
  std::string scheme = cfg.server.tls_cert.empty() ? "http" : "https";
  std::string nodes_at = router->node_port() ? ", nodes on " + cfg.nodes.host + ":" + std::to_string(router->node_port()) : "";
  std::printf("plexus %s listening on %s://%s:%u (%zu upstreams, %zu loops%s)\n", PLEXUS_VERSION,
              scheme.c_str(), cfg.server.host.c_str(), router->port(), cfg.upstreams.size(),
              router->loop_count(), nodes_at.c_str());
  std::fflush(stdout);

  const timespec every_second{1, 0};
  for (;;) {
    int sig = sigtimedwait(&signals, nullptr, &every_second);
    if (sig < 0) {  // a second without a signal: look for a stuck loop
      router->watch_for_stuck_loops();
      spdlog::default_logger()->flush();  // the main thread's own lines
      continue;
    }
    if (sig != SIGHUP) {
      spdlog::info("signal {}: shutting down", sig);
      break;
    }
    spdlog::info("SIGHUP: reloading the config");
    router->reload_config();  // logs what it did, or why it refused
  }
  router->drain_and_stop(cfg.server.shutdown_grace);
  spdlog::info("stopped");
  return 0;
}

// The tables come from the same schemas the validator checks, so they cannot drift from it.
int print_schema(const std::string& plugin_file) {
  if (plugin_file.empty()) {
    for (const auto& [path, schema] : plexus::config::declared_sections())
      std::printf("### `%s`\n\n%s\n", path.c_str(), plexus::config::schema_table(*schema).c_str());
    return 0;
  }
  try {
    auto d = plexus::describe_native_plugin(plugin_file);
    std::printf("### %s %s\n\n%s\n\n%s", d.name.c_str(), d.version.c_str(), d.description.c_str(),
                d.config.empty() ? "No config.\n" : plexus::config::schema_table(d.config).c_str());
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: %s\n", plugin_file.c_str(), e.what());
    return 1;
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1 && std::string(argv[1]) == "receipt")
    return plexus::receipts::verify_command(std::vector<std::string>(argv + 2, argv + argc));
  if (argc > 1 && std::string(argv[1]) == "keys")
    return plexus::cli::keys_command(std::vector<std::string>(argv + 2, argv + argc));
  std::string config, listen, nodes_listen, check;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](const char* flag) -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "plexus: %s needs a value\n%s", flag, kUsage);
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--help" || a == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    } else if (a == "--version") {
      std::printf("plexus %s\n", PLEXUS_VERSION);
      return 0;
    } else if (a == "--config") {
      config = value("--config");
    } else if (a == "--listen") {
      listen = value("--listen");
    } else if (a == "--nodes-listen") {
      nodes_listen = value("--nodes-listen");
    } else if (a == "--check-config") {
      check = value("--check-config");
    } else if (a == "--print-schema") {
      bool named = i + 1 < argc && std::string(argv[i + 1]).rfind("--", 0) != 0;
      return print_schema(named ? argv[i + 1] : "");
    } else {
      std::fprintf(stderr, "plexus: unknown argument '%s'\n%s", a.c_str(), kUsage);
      return 2;
    }
  }
  if (!check.empty()) return check_config(check);
  if (config.empty()) {
    std::fprintf(stderr, "plexus: --config FILE is required\n%s", kUsage);
    return 2;
  }
  return run(config, listen, nodes_listen);
}
