#pragma once
// The upstream HTTP client of one event loop: libcurl's multi socket interface driven by that
// loop's epoll and timers. Each loop has its own, with its own connection pool, so a transfer
// starts, runs and ends on the thread of the request that asked for it.
#include <memory>

#include "loop/event_loop.hpp"
#include "plexus/http_client.hpp"

namespace plexus {

class CurlClient final : public HttpClient {
 public:
  explicit CurlClient(EventLoop& loop);
  ~CurlClient() override;  // ends every transfer without callbacks
  CurlClient(const CurlClient&) = delete;
  CurlClient& operator=(const CurlClient&) = delete;

  // Destroys every transfer now (no callbacks): call it before unloading code the handlers
  // live in (provider libraries).
  void drop_all();

  // HttpClient (loop thread only)
  TransferId start(HttpRequest request, std::shared_ptr<HttpResponseHandler> handler) override;
  void abort(TransferId id) override;
  void pause(TransferId id) override;
  void resume(TransferId id) override;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace plexus
