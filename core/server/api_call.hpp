#pragma once
// One request as the API routes handle it (api_routes.cc and the routes split from it): the
// request, where its answer goes, its id, and who asked.
#include <memory>
#include <string>
#include <string_view>

#include "dialects/messages_channel.hpp"
#include "gateway/error_body.hpp"
#include "gateway/exchange.hpp"
#include "server/api_routes.hpp"

namespace plexus {

// A JSON answer with the request's own headers (x-request-id) and any extra ones.
inline void send_json(Responder& r, int status, const Headers& base, std::string_view body, const Headers& extra = {}) {
  Headers h{{"content-type", "application/json"}};
  h.insert(h.end(), base.begin(), base.end());
  h.insert(h.end(), extra.begin(), extra.end());
  r.send_whole(status, h, body);
}

struct ApiRoutes::Call {
  IncomingRequest request;
  std::shared_ptr<Responder> responder;
  std::string request_id;
  Headers base;  // x-request-id, on every answer
  Exchange::Clock::time_point received;
  Caller caller{"-", "public", "", ""};
  bool anthropic = false;  // /v1/messages: errors in Anthropic's shape

  void json_reply(int status, std::string_view body, const Headers& extra = {}) {
    send_json(*responder, status, base, body, extra);
  }
  void error(const Error& e, const Headers& extra = {}) {
    json_reply(e.status, anthropic ? dialects::anthropic_error_body(error_body(e), e.status, request_id) : error_body(e), extra);
  }
};

}  // namespace plexus
