#pragma once
// POST /v1/completions (legacy text completions), for the tools that still use it: the prompt
// as one user message of a chat request. One prompt (a string, or a list of one string); token
// arrays, echo, suffix, best_of and n > 1 are a clear 400. max_tokens defaults to 16, as OpenAI's.
#include <string_view>
#include <variant>

#include "dialects/translated.hpp"
#include "plexus/error.hpp"

namespace plexus::dialects {

std::variant<Translated, Error> translate_completions_request(std::string_view body);

}  // namespace plexus::dialects
