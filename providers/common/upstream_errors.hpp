#pragma once
// How adapters turn backend failures into OpenAI-shaped errors, the same way for every backend.
#include <chrono>
#include <string>
#include <string_view>

#include "plexus/error.hpp"
#include "plexus/http_client.hpp"

namespace plexus {

// A transport failure (refused, timed out, broken) of the upstream named `upstream`.
Error transport_error(TransferError e, std::string_view detail, const std::string& upstream);

// Copies the backend's own words from an error body into `e`: OpenAI's {"error":{"message",
// "type","param","code"}}, Ollama's {"error":"..."}. Returns false when the body holds no "error".
bool read_error_body(std::string_view body, Error& e);

// A non-2xx answer. `body` is the backend's error body (OpenAI's {"error":{...}}, Ollama's
// {"error":"..."}, Anthropic's {"type":"error","error":{...}}, or anything). Client faults (4xx
// but 408/429) keep their status and the backend's words; the rest become 502 upstream_error.
// Sets `retryable` when another upstream may succeed (5xx, 408, 429).
Error http_error(int status, std::string_view body, const std::string& upstream, bool& retryable);

// Seconds from a Retry-After header (delta-seconds form), 0 when absent or unreadable.
std::chrono::seconds retry_after(const Headers& headers);

}  // namespace plexus
