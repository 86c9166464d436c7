#pragma once
// A small GET for adapters' status calls (/api/ps, /health, /props): the whole body, bounded.
#include <functional>
#include <string>

#include "plexus/http_client.hpp"

namespace plexus {

// Calls `done(status, body)` once on the loop thread; status 0 when the transfer failed.
void http_get(HttpClient& http, std::string url, Headers headers, std::chrono::milliseconds timeout,
              std::function<void(int status, const std::string& body)> done);

}  // namespace plexus
