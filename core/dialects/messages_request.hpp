#pragma once
// POST /v1/messages (Anthropic's Messages API, inbound): the request as a chat-completions
// request. system (a string or text blocks), messages with text, image, document, tool_use and
// tool_result blocks, tools (client tools with an input_schema) and tool_choice, max_tokens,
// stop_sequences, temperature, top_p, top_k, stream. Tool results become tool messages before
// the rest of their user turn, as chat expects.
#include <string_view>
#include <variant>

#include "dialects/translated.hpp"
#include "plexus/error.hpp"

namespace plexus::dialects {

std::variant<Translated, Error> translate_messages_request(std::string_view body);

}  // namespace plexus::dialects
