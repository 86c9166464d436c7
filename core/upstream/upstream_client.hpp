#pragma once
// The HTTP client an event loop gives its providers: plain http:// backends through the
// router's own HTTP/1.1 client, everything else (https://, URLs with credentials, any proxy set
// in the environment) through libcurl. Both run on the loop; a transfer id says which has it.
#include <memory>

#include "loop/event_loop.hpp"
#include "plexus/http_client.hpp"
#include "upstream/curl_client.hpp"
#include "upstream/http1_client.hpp"

namespace plexus {

class UpstreamClient final : public HttpClient {
 public:
  explicit UpstreamClient(EventLoop& loop);
  ~UpstreamClient() override;

  // Destroys every transfer now (no callbacks): call it before unloading provider libraries.
  void drop_all();

  TransferId start(HttpRequest request, std::shared_ptr<HttpResponseHandler> handler) override;
  void abort(TransferId id) override;
  void pause(TransferId id) override;
  void resume(TransferId id) override;

  Http1Client& own() { return own_; }

 private:
  HttpClient& owner_of(TransferId id) { return (id & 1) ? static_cast<HttpClient&>(curl()) : own_; }
  CurlClient& curl();

  EventLoop& loop_;
  bool proxy_in_environment_ = false;  // read once: curl honours http_proxy and no_proxy
  Http1Client own_;
  std::unique_ptr<CurlClient> curl_;  // made on the first URL the own client does not take
};

}  // namespace plexus
