#pragma once
// The HTTP front: Pistache endpoints for the OpenAI API, health and readiness. Requests are
// parsed and answered (or handed to an Exchange on the upstream loop) on Pistache's reactor
// threads, which never block.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>

#include "auth/key_store.hpp"
#include "config/config.hpp"
#include "gateway/exchange.hpp"
#include "gateway/upstream_pool.hpp"

namespace plexus {

class UpstreamLoop;

struct ServerState {
  const Config& config;
  KeyStore keys;
  ExchangeEnv env;  // env.loop, env.pool (the upstreams), env.pipeline (the plugins)
  std::atomic<std::size_t> inflight{0};
  std::atomic<bool> draining{false};
};

class HttpServer {
 public:
  explicit HttpServer(std::shared_ptr<ServerState> state);
  ~HttpServer();
  void start();              // binds and serves on background threads; throws on bind failure
  std::uint16_t port() const;
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace plexus
