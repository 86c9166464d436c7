#include "upstream/upstream_client.hpp"

#include <cstdlib>

namespace plexus {

UpstreamClient::UpstreamClient(EventLoop& loop) : loop_(loop), own_(loop) {
  for (const char* name : {"http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"})
    if (const char* v = std::getenv(name); v && *v) proxy_in_environment_ = true;
}

UpstreamClient::~UpstreamClient() = default;

CurlClient& UpstreamClient::curl() {
  if (!curl_) curl_ = std::make_unique<CurlClient>(loop_);
  return *curl_;
}

void UpstreamClient::drop_all() {
  own_.drop_all();
  if (curl_) curl_->drop_all();
}

// Ids are the client's own, shifted left one bit; the low bit says which client has it.
TransferId UpstreamClient::start(HttpRequest request, std::shared_ptr<HttpResponseHandler> handler) {
  if (!proxy_in_environment_ && own_.serves(request.url)) return own_.start(std::move(request), std::move(handler)) << 1;
  return (curl().start(std::move(request), std::move(handler)) << 1) | 1;
}

void UpstreamClient::abort(TransferId id) { owner_of(id).abort(id >> 1); }
void UpstreamClient::pause(TransferId id) { owner_of(id).pause(id >> 1); }
void UpstreamClient::resume(TransferId id) { owner_of(id).resume(id >> 1); }

}  // namespace plexus
