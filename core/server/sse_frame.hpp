#pragma once
// Framing for what the router writes: SSE events inside HTTP/1.1 chunked transfer encoding.
#include <string>
#include <string_view>

namespace plexus {

// Appends one HTTP chunk carrying `payload` ("<hex>\r\n<payload>\r\n").
void append_http_chunk(std::string& out, std::string_view payload);
// Appends one HTTP chunk carrying the SSE event "data: <json>\n\n".
void append_sse_data_chunk(std::string& out, std::string_view json);
// The last chunk of a chunked body.
constexpr std::string_view kLastHttpChunk = "0\r\n\r\n";

}  // namespace plexus
