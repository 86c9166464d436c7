#pragma once
// The OpenAI chat objects Plexus builds itself: streamed chunks, the usage chunk, whole
// completions. One place, so the core (answers plugins give, the last chunk of a stream) and
// every adapter that translates a protocol (ollama, anthropic, the demo node) hand clients the
// same shapes, field for field.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>

#include "plexus/provider.hpp"

namespace plexus::openai {

using json = nlohmann::json;

// What every chunk of one answer repeats.
struct Answer {
  std::string id;       // "chatcmpl-..."
  std::string model;
  std::int64_t created = 0;  // Unix seconds
  std::string system_fingerprint;  // empty: left out
};

// A prefix and `hex_digits` random hex digits: "resp_...", "call_...".
std::string random_id(const char* prefix, int hex_digits = 24);

// "chatcmpl-<request id>-<8 hex digits>", created now: unique per answer.
Answer new_answer(const std::string& request_id, const std::string& model);

json usage(const Usage& u);  // prompt_tokens, completion_tokens, total_tokens
// A chat.completion.chunk with one choice.
json chunk(const Answer& a, json delta, json finish_reason);
// A chat.completion.chunk with no choice: what carries usage (or a plugin's fields) at the end.
json empty_chunk(const Answer& a);
json usage_chunk(const Answer& a, const Usage& u);
// A whole chat.completion with one choice.
json completion(const Answer& a, json message, const std::string& finish_reason, const Usage& u);

// Serialised as it goes to clients: invalid UTF-8 replaced, never an exception.
std::string dump(const json& j);

}  // namespace plexus::openai
