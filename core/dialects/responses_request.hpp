#pragma once
// POST /v1/responses, stateless (store: false): the request as a chat-completions request.
// input (a string or message, function_call and function_call_output items), instructions,
// max_output_tokens, temperature, top_p, function tools and tool_choice, text.format, stream.
// What needs stored state (previous_response_id, conversation, background) is a clear 400.
#include <string_view>
#include <variant>

#include "dialects/translated.hpp"
#include "plexus/error.hpp"

namespace plexus::dialects {

std::variant<Translated, Error> translate_responses_request(std::string_view body);

}  // namespace plexus::dialects
