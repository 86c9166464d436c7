#include "dialects/completions_request.hpp"

namespace plexus::dialects {

using nlohmann::json;

static std::variant<Translated, Error> translate(std::string_view text) {
  auto bad = [](std::string message, std::string param, std::string code = "invalid_value") {
    return Error::invalid_request(std::move(message), std::move(param), std::move(code));
  };
  json body = json::parse(text, nullptr, false);
  if (body.is_discarded() || !body.is_object()) return bad("The body is not a JSON object", "", "invalid_json");
  if (auto e = check_booleans(body, {"stream", "echo"})) return *e;
  if (!body.contains("model") || !body["model"].is_string() || body["model"].get<std::string>().empty())
    return bad("model is required", "model", "missing_required_parameter");
  if (!body.contains("prompt")) return bad("prompt is required", "prompt", "missing_required_parameter");
  const json& prompt = body["prompt"];
  std::string prompt_text;
  if (prompt.is_string()) {
    prompt_text = prompt;
  } else if (prompt.is_array() && prompt.size() == 1 && prompt[0].is_string()) {
    prompt_text = prompt[0];
  } else {
    return bad("prompt is one string here (a list of one string, no token arrays): send one request per prompt", "prompt",
               "unsupported_value");
  }
  if (flag(body, "echo")) return bad("echo is not supported", "echo", "unsupported_parameter");
  if (body.contains("suffix") && !body["suffix"].is_null()) return bad("suffix is not supported", "suffix", "unsupported_parameter");
  for (const char* key : {"n", "best_of"})
    if (body.contains(key) && !body[key].is_null() && body[key] != 1) return bad(std::string(key) + " must be 1 here", key, "unsupported_value");

  json chat = {{"model", body["model"]}, {"messages", json::array({{{"role", "user"}, {"content", prompt_text}}})}};
  chat["max_tokens"] = body.contains("max_tokens") && !body["max_tokens"].is_null() ? body["max_tokens"] : json(16);
  for (const char* key : {"temperature", "top_p", "stop", "seed", "user", "presence_penalty", "frequency_penalty",
                          "logit_bias", "stream", "stream_options", "provider", "models", "plugins"})
    if (body.contains(key) && !body[key].is_null()) chat[key] = body[key];
  return Translated{chat.dump(-1, ' ', false, json::error_handler_t::replace), json{{"model", body["model"]}}};
}

std::variant<Translated, Error> translate_completions_request(std::string_view text) {
  return guarded([&] { return translate(text); });
}

}  // namespace plexus::dialects
