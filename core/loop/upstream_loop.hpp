#pragma once
// The upstream loop: one thread that owns the libcurl multi handle, the timers and an inbox of
// work posted from the HTTP server's threads. Every provider call and every upstream transfer
// runs here, so no request ever gets a thread of its own and no server thread ever blocks.
#include <atomic>
#include <functional>
#include <memory>
#include <thread>

#include "plexus/http_client.hpp"

namespace plexus {

class UpstreamLoop final : public HttpClient, public Timers {
 public:
  UpstreamLoop();
  ~UpstreamLoop() override;  // stops the thread; pending work is dropped

  void start();
  // Joins the thread and destroys all pending work (transfers, timers, posted closures). Call it
  // before unloading anything that work may point into (provider libraries).
  void stop();

  // Any thread: runs fn on the loop thread, in posting order.
  void post(std::function<void()> fn);
  bool in_loop_thread() const;

  // HttpClient (loop thread only)
  TransferId start(HttpRequest request, std::shared_ptr<HttpResponseHandler> handler) override;
  void abort(TransferId id) override;
  void pause(TransferId id) override;
  void resume(TransferId id) override;

  // Timers (loop thread only)
  TimerId after(std::chrono::milliseconds delay, std::function<void()> fn) override;
  void cancel(TimerId id) override;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace plexus
