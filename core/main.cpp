// plexus: an OpenAI-compatible router in front of GPU nodes.
#include <signal.h>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <optional>
#include <string>
#include <thread>

#include "auth/key_store.hpp"
#include "config/config.hpp"
#include "gateway/provider_registry.hpp"
#include "gateway/upstream_pool.hpp"
#include "loop/upstream_loop.hpp"
#include "plugins/pipeline.hpp"
#include "server/http_server.hpp"

#ifndef PLEXUS_VERSION
#define PLEXUS_VERSION "0.0.0"
#endif

namespace {

constexpr const char* kUsage = R"(Usage:
  plexus --config FILE [--listen HOST:PORT]   run the router
  plexus --check-config FILE                  validate a config file and exit (0 = valid)
  plexus --help | --version

FILE is JSON; // and /* */ comments are allowed. See docs/configuration.md.
--listen overrides the file's "listen" (port 0 picks a free port; the ready line names it).
)";

void log_access(const plexus::AccessRecord& r) {
  // Never the prompt or the completion: ids, sizes and timings only.
  spdlog::info(
      "access id={} key={} model={} node={} status={} stream={} prompt_tokens={} "
      "completion_tokens={} ttft_ms={:.1f} total_ms={:.1f}{}{}{}",
      r.request_id, r.key_id, r.model, r.node, r.status, r.stream, r.usage.prompt_tokens,
      r.usage.completion_tokens, r.ttft_ms, r.total_ms,
      r.usage.tokens_per_second > 0 ? fmt::format(" tokens_per_second={:.1f}", r.usage.tokens_per_second) : "",
      r.error_code.empty() ? "" : " error=", r.error_code);
}

// Everything a config names, built: the providers and the plugins. --check-config and the real
// start go through this one function, so they refuse exactly the same files.
struct Built {
  plexus::Config config;
  std::unique_ptr<plexus::UpstreamPool> pool;
  std::shared_ptr<plexus::Pipeline> pipeline;
};

std::optional<Built> build(const std::string& file, const std::string& listen,
                           plexus::ProviderHost& host) {
  Built b;
  try {
    b.config = plexus::load_config(file);
    if (!listen.empty())
      plexus::parse_listen(listen, "--listen", b.config.server.host, b.config.server.port);
    plexus::ProviderRegistry registry(b.config.providers_dir.empty()
                                          ? plexus::ProviderRegistry::default_directory()
                                          : b.config.providers_dir);
    b.pool = std::make_unique<plexus::UpstreamPool>(b.config, registry, host);
    b.pipeline = plexus::Pipeline::load(b.config.plugins);
    return b;
  } catch (const plexus::ConfigError& e) {
    std::fprintf(stderr, "%s\n", e.what());
  } catch (const plexus::PluginLoadError& e) {
    std::fprintf(stderr, "%s: %s\n", file.c_str(), e.what());
  }
  return std::nullopt;
}

int check_config(const std::string& file) {
  plexus::UpstreamLoop loop;  // not started: providers are only built, never called
  plexus::ProviderHost host{loop, loop};
  auto built = build(file, "", host);
  if (!built) return 1;
  std::printf("%s: OK (%zu upstreams, %zu keys, %zu plugins)\n", file.c_str(),
              built->config.upstreams.size(), built->config.keys.size(),
              built->pipeline->plugins().size());
  return 0;
}

int run(const std::string& file, const std::string& listen) {
  // Signals are taken by this thread alone (sigwait below): block them before any thread starts.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  plexus::UpstreamLoop loop;
  plexus::ProviderHost host{loop, loop};
  auto built = build(file, listen, host);
  if (!built) return 1;
  const plexus::Config& cfg = built->config;
  auto& pipeline = built->pipeline;
  // Logs go to stderr; stdout carries only the ready line, which scripts and tests read.
  spdlog::set_default_logger(spdlog::stderr_color_mt("plexus"));
  spdlog::set_level(spdlog::level::from_str(cfg.log.level));
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
  for (const auto& p : pipeline->plugins())
    spdlog::info("plugin {} ({}, {}) loaded, on_error {}", p.config.name, p.config.type,
                 p.config.file, p.config.fail_open ? "open" : "closed");
  auto state = std::shared_ptr<plexus::ServerState>(new plexus::ServerState{
      cfg, plexus::KeyStore(cfg.keys),
      plexus::ExchangeEnv{loop, cfg.log.access_log ? &log_access : nullptr,
                          cfg.server.max_stream_duration, built->pool.get(), pipeline}});
  loop.start();
  loop.post([&built, &loop] { built->pool->start_status_polling(loop); });
  plexus::HttpServer server(state);
  try {
    server.start();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "plexus: cannot listen on %s:%u: %s\n", cfg.server.host.c_str(),
                 cfg.server.port, e.what());
    return 1;
  }
  std::string scheme = cfg.server.tls_cert.empty() ? "http" : "https";
  std::printf("plexus %s listening on %s://%s:%u (%zu upstreams)\n", PLEXUS_VERSION,
              scheme.c_str(), cfg.server.host.c_str(), server.port(), cfg.upstreams.size());
  std::fflush(stdout);

  int sig = 0;
  for (;;) {
    sigwait(&signals, &sig);
    if (sig != SIGHUP) break;
    spdlog::info("SIGHUP: reloading Lua plugins");
    loop.post([pipeline] { pipeline->reload(); });  // hooks run on the loop: reload there too
  }
  spdlog::info("signal {}: draining (grace {} ms, {} in flight)", sig,
               cfg.server.shutdown_grace.count(), state->inflight.load());
  state->draining = true;
  auto deadline = std::chrono::steady_clock::now() + cfg.server.shutdown_grace;
  while (state->inflight.load() > 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  if (state->inflight.load() > 0)
    spdlog::warn("grace period over; closing {} requests still in flight", state->inflight.load());
  server.stop();
  loop.stop();
  spdlog::info("stopped");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string config, listen, check;
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
    } else if (a == "--check-config") {
      check = value("--check-config");
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
  return run(config, listen);
}
