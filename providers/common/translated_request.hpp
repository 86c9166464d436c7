#pragma once
// For adapters that translate the chat request into their backend's own shape (ollama,
// anthropic): what cannot be translated is refused with a 400 naming the field, before any
// transfer (throw Invalid, catch it in start(), answer with refuse()).
#include <nlohmann/json.hpp>

#include <string>

#include "plexus/error.hpp"

namespace plexus {

struct Invalid {
  Error error;
};

// The backend (by name) cannot take what `param` holds.
[[noreturn]] void unsupported(const std::string& backend, const std::string& message, const std::string& param);

// The JSON object a tool call's arguments hold (messages[m].tool_calls[c].function.arguments):
// a backend that takes them as an object gets them so, and arguments that are not JSON are the
// client's mistake, a 400 naming them, never a silent {}.
nlohmann::json tool_call_arguments(const nlohmann::json& call, std::size_t message, std::size_t index);

}  // namespace plexus
