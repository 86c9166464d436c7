#include "dialects/sse_channel.hpp"

#include <spdlog/spdlog.h>

#include "gateway/error_body.hpp"
#include "server/sse_frame.hpp"

namespace plexus::dialects {

void SseChannel::send_whole(int status, const Headers& headers, std::string body) {
  try {
    whole(status, headers, body);
  } catch (const std::exception& e) {
    spdlog::warn("an answer could not be translated for its client: {}", e.what());
    whole(502, headers,
          error_body({502, "The node's answer could not be given in this API's shape", "upstream_error", "", "upstream_protocol_error"}));
  }
}

void SseChannel::send_event(std::string_view chunk_json) {
  try {
    chunk(chunk_json);
  } catch (const std::exception& e) {
    spdlog::warn("a chunk could not be translated for its client and was left out: {}", e.what());
  }
}

void SseChannel::send_json(int status, const Headers& headers, std::string_view body) {
  Headers h{{"content-type", "application/json"}};
  for (const auto& header : headers)
    if (header.first != "content-type") h.push_back(header);
  r_->send_whole(status, h, body);
}

void SseChannel::open_stream(const Headers& headers) {
  Headers h{{"content-type", "text/event-stream"}, {"cache-control", "no-cache"}, {"x-accel-buffering", "no"}};
  h.insert(h.end(), headers.begin(), headers.end());
  r_->begin_chunked(200, h);
}

void SseChannel::event(std::string_view name, std::string_view json) {
  std::string payload;
  payload.reserve(name.size() + json.size() + 16);
  payload.append("event: ").append(name).append("\ndata: ").append(json).append("\n\n");
  std::string framed;
  append_http_chunk(framed, payload);
  r_->send_framed(framed);
}

void SseChannel::event_data(std::string_view data) {
  std::string framed;
  append_sse_data_chunk(framed, data);
  r_->send_framed(framed);
}

void SseChannel::close() { r_->end_chunked(); }

}  // namespace plexus::dialects
