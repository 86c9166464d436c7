#pragma once
// What an API other than chat completions (the Responses API, Anthropic's Messages API, legacy
// completions) becomes at the edge: one chat-completions request, which then goes through the
// same validation, plugins, routing, metering and receipts as any chat request. Nothing past the
// edge knows which API the client spoke; the answer is translated back by that API's channel.
#include <nlohmann/json.hpp>

#include <string>

#include "common/openai_shapes.hpp"

namespace plexus::dialects {

struct Translated {
  std::string chat_body;  // a chat-completions request body
  nlohmann::json echo;    // what the answer repeats of the request (its own API's fields)
};

// Ids of answers and their items ("resp_", "msg_", "fc_", "toolu_"...): 24 random hex digits.
using openai::random_id;

}  // namespace plexus::dialects
