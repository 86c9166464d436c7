#include "server/responder_channel.hpp"

#include "server/sse_frame.hpp"

namespace plexus {

void ResponderChannel::send_whole(int status, const Headers& headers, std::string body) {
  bool typed = false;
  for (const auto& [name, value] : headers) typed = typed || name == "content-type";
  if (typed) return r_->send_whole(status, headers, body);  // the common case: nothing to add
  Headers h;
  h.reserve(headers.size() + 1);
  h.emplace_back("content-type", "application/json");
  h.insert(h.end(), headers.begin(), headers.end());
  r_->send_whole(status, h, body);
}

void ResponderChannel::begin_stream(const Headers& headers) {
  Headers h{{"content-type", "text/event-stream"},
            {"cache-control", "no-cache"},
            {"x-accel-buffering", "no"}};
  h.insert(h.end(), headers.begin(), headers.end());
  r_->begin_chunked(200, h);
}

void ResponderChannel::send_event(std::string_view chunk_json) {
  std::string framed;
  append_sse_data_chunk(framed, chunk_json);
  r_->send_framed(framed);
}

void ResponderChannel::end_stream(const std::string* error_json) {
  std::string framed;
  if (error_json) append_sse_data_chunk(framed, *error_json);
  append_http_chunk(framed, "data: [DONE]\n\n");
  r_->send_framed(framed);
  r_->end_chunked();
}

}  // namespace plexus
