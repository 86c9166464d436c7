#pragma once
// The HTTP/1.1 front: one listening socket shared by every event loop (each accepts in turn),
// and per loop the connections it accepted. It frames requests and writes responses; what a
// request means is the RequestRouter's business (api_routes.hpp).
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "loop/loop_group.hpp"
#include "server/connection.hpp"

namespace plexus {

class RequestRouter {
 public:
  virtual ~RequestRouter() = default;
  virtual void on_request(IncomingRequest request, std::shared_ptr<Responder> responder) = 0;
  virtual void on_framing_error(const FramingError& error, std::shared_ptr<Responder> responder) = 0;
};

struct HttpServerOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 8080;
  ConnectionLimits limits;
  std::string tls_cert;  // both set: HTTPS
  std::string tls_key;
};

class HttpServer {
 public:
  // `router_for(i)` serves the requests of loop i; it must outlive the server.
  HttpServer(HttpServerOptions options, LoopGroup& loops,
             std::function<RequestRouter&(std::size_t loop)> router_for);
  // Destroy after LoopGroup::stop(): it closes what a stuck loop still held.
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds and listens (throws std::runtime_error on failure), then every loop starts accepting.
  void start();
  std::uint16_t port() const { return port_; }
  // Stops accepting and closes every connection, each on its own loop; returns when done (a
  // loop that does not answer within 2 s is left to the destructor).
  void stop();

  struct PerLoop;

 private:
  HttpServerOptions options_;
  LoopGroup& loops_;
  std::function<RequestRouter&(std::size_t)> router_for_;
  int listen_fd_ = -1;
  std::uint16_t port_ = 0;
  std::vector<std::unique_ptr<PerLoop>> per_loop_;
  std::shared_ptr<class TlsContext> tls_;
};

}  // namespace plexus
