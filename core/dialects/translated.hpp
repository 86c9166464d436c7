#pragma once
// What an API other than chat completions (the Responses API, Anthropic's Messages API, legacy
// completions) becomes at the edge: one chat-completions request, which then goes through the
// same validation, plugins, routing, metering and receipts as any chat request. Nothing past the
// edge knows which API the client spoke; the answer is translated back by that API's channel.
#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <variant>

#include "common/openai_shapes.hpp"
#include "plexus/error.hpp"

namespace plexus::dialects {

struct Translated {
  std::string chat_body;  // a chat-completions request body
  nlohmann::json echo;    // what the answer repeats of the request (its own API's fields)
};

// Runs a translation. A field of the wrong type that it did not check by name (nlohmann throws
// when it reads one) becomes a 400 too, never an exception.
template <class Translate>
std::variant<Translated, Error> guarded(Translate&& translate) {
  try {
    return translate();
  } catch (const nlohmann::json::exception& e) {
    std::string why = e.what();
    auto bracket = why.find("] ");
    return Error::invalid_request("A field of the request has the wrong type (" +
                                      (bracket == std::string::npos ? why : why.substr(bracket + 2)) + ")",
                                  "", "invalid_type");
  }
}

// The named top-level fields, when present and not null, are booleans; else a 400 naming one.
inline std::optional<Error> check_booleans(const nlohmann::json& body, std::initializer_list<const char*> names) {
  for (const char* name : names)
    if (body.contains(name) && !body[name].is_null() && !body[name].is_boolean())
      return Error::invalid_request(std::string(name) + " must be true or false", name, "invalid_type");
  return std::nullopt;
}

// A top-level boolean flag: false when absent or null (check_booleans refused any other type).
inline bool flag(const nlohmann::json& body, const char* name) {
  return body.contains(name) && body[name].is_boolean() && body[name].get<bool>();
}

// Ids of answers and their items ("resp_", "msg_", "fc_", "toolu_"...): 24 random hex digits.
using openai::random_id;

}  // namespace plexus::dialects
