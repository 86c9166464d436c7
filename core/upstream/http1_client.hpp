#pragma once
// The router's own upstream HTTP/1.1 client for plain http:// backends, on one event loop: its
// sockets sit in the loop's epoll set (registered once, edge-triggered), responses are framed by
// ResponseParser and handed to the handler straight from the read buffer, and connections are
// pooled per origin. libcurl spent 39 % of a proxied request's instructions and two poll()s on
// what this does; https:// and proxies stay with libcurl (UpstreamClient picks).
#include <memory>
#include <string>

#include "loop/event_loop.hpp"
#include "plexus/http_client.hpp"

namespace plexus {

class Http1Client final : public HttpClient {
 public:
  explicit Http1Client(EventLoop& loop);
  ~Http1Client() override;  // ends every transfer without callbacks, closes every connection
  Http1Client(const Http1Client&) = delete;
  Http1Client& operator=(const Http1Client&) = delete;

  // True for the URLs this client takes: http://host[:port]/... (see parse_plain_http_url).
  bool serves(const std::string& url);
  // Destroys every transfer now (no callbacks): call it before unloading code the handlers
  // live in (provider libraries).
  void drop_all();

  // How many connections it holds, busy or pooled (tests, metrics).
  std::size_t open_connections() const;
  // How many connections it has opened since it was made (tests: reuse is visible).
  std::uint64_t connections_opened() const;

  // HttpClient (loop thread only)
  TransferId start(HttpRequest request, std::shared_ptr<HttpResponseHandler> handler) override;
  void abort(TransferId id) override;
  void pause(TransferId id) override;
  void resume(TransferId id) override;

  // Idle pooled connections per origin, and how long one may idle before it is closed.
  static constexpr std::size_t kMaxIdlePerOrigin = 512;
  static constexpr std::chrono::seconds kMaxIdle{60};

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace plexus
