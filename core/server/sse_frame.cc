#include "server/sse_frame.hpp"

#include <charconv>

namespace plexus {
namespace {
// Once per relayed event: to_chars, not snprintf (which parses its format every time).
void append_hex_size(std::string& out, std::size_t n) {
  char buf[20];
  auto end = std::to_chars(buf, buf + sizeof buf, n, 16).ptr;
  out.append(buf, end);
  out.append("\r\n");
}
}  // namespace

void append_http_chunk(std::string& out, std::string_view payload) {
  if (payload.empty()) return;  // an empty chunk would end the body
  append_hex_size(out, payload.size());
  out.append(payload);
  out.append("\r\n");
}

void append_sse_data_chunk(std::string& out, std::string_view json) {
  append_hex_size(out, json.size() + 8);
  out.append("data: ");
  out.append(json);
  out.append("\n\n\r\n");
}

}  // namespace plexus
