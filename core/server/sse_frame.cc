#include "server/sse_frame.hpp"

#include <cstdio>

namespace plexus {
namespace {
void append_hex_size(std::string& out, std::size_t n) {
  char buf[20];
  int len = std::snprintf(buf, sizeof buf, "%zx\r\n", n);
  out.append(buf, static_cast<std::size_t>(len));
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
