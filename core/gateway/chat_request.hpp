#pragma once
// Parsing and validation of POST /v1/chat/completions bodies. Pure functions over text, so the
// unit tests and the fuzzer drive them without a server.
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "plexus/error.hpp"
#include "plexus/provider.hpp"

namespace plexus {

struct ParsedChat {
  std::shared_ptr<const std::string> raw;  // the body's text exactly as the client sent it
  std::string model;
  bool stream = false;
  bool include_usage = false;
  bool has_stream_options = false;  // the key is in the body (even as null)
  std::optional<std::int64_t> max_tokens;
  std::optional<std::int64_t> seed;
  std::vector<std::string> stop;
  // What the request needs of an upstream (routing skips upstreams without it).
  bool needs_tools = false;
  bool needs_vision = false;
  bool needs_json = false;
  std::size_t prompt_chars = 0;  // text in the messages, for a rough context-length check
};

std::variant<ParsedChat, Error> parse_chat_request(std::string_view body);

// The request one upstream gets: the model renamed to the upstream's name and, for streams,
// stream_options.include_usage forced on so the router can meter every stream (the provider
// drops the usage chunk again when the client did not ask for it).
ChatRequest to_upstream_request(const ParsedChat& chat, const std::string& upstream_model,
                                const std::string& request_id);

}  // namespace plexus
