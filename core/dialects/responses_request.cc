#include "dialects/responses_request.hpp"

namespace plexus::dialects {
namespace {

using nlohmann::json;

Error bad(std::string message, std::string param, std::string code = "invalid_value") {
  return Error::invalid_request(std::move(message), std::move(param), std::move(code));
}

// Fields the router cannot honour: a clear 400 rather than an answer that ignores them.
std::optional<Error> refuse_unsupported(const json& body) {
  if (body.contains("previous_response_id") && !body["previous_response_id"].is_null())
    return bad("previous_response_id is not supported: this router stores no responses (store: false). "
               "Send the whole conversation in input.",
               "previous_response_id", "unsupported_parameter");
  if (body.contains("conversation") && !body["conversation"].is_null())
    return bad("conversation is not supported: this router stores no conversations. Send the whole conversation in input.",
               "conversation", "unsupported_parameter");
  if (flag(body, "background"))
    return bad("background responses are not supported: this router stores no responses", "background",
               "unsupported_parameter");
  if (body.contains("prompt") && !body["prompt"].is_null())
    return bad("Stored prompts (prompt) are not supported", "prompt", "unsupported_parameter");
  return std::nullopt;
}

// One content part of an input message, as a chat content part.
std::variant<json, Error> content_part(const json& part, const std::string& where) {
  if (!part.is_object() || !part.contains("type") || !part["type"].is_string())
    return bad("Each content part is an object with a type", where);
  const std::string type = part["type"];
  if (type == "input_text" || type == "output_text" || type == "text") {
    if (!part.contains("text") || !part["text"].is_string()) return bad(type + " needs a text string", where + ".text");
    return json{{"type", "text"}, {"text", part["text"]}};
  }
  if (type == "input_image") {
    if (!part.contains("image_url") || !part["image_url"].is_string())
      return bad("input_image needs an image_url (a URL or a data: URL); file_id needs stored files, which this router does not keep",
                 where + ".image_url");
    json image = {{"url", part["image_url"]}};
    if (part.contains("detail") && part["detail"].is_string()) image["detail"] = part["detail"];
    return json{{"type", "image_url"}, {"image_url", image}};
  }
  if (type == "input_file") {
    if (!part.contains("file_data") || !part["file_data"].is_string())
      return bad("input_file needs file_data (a data: URL); file_id and file_url are not supported", where + ".file_data");
    return json{{"type", "file"},
                {"file", {{"filename", part.value("filename", "file")}, {"file_data", part["file_data"]}}}};
  }
  if (type == "refusal") return json{{"type", "text"}, {"text", part.value("refusal", "")}};
  return bad("Content parts of type '" + type + "' are not supported", where + ".type");
}

// A message's content: a string stays a string; parts become chat parts.
std::variant<json, Error> message_content(const json& content, const std::string& where) {
  if (content.is_string()) return content;
  if (!content.is_array()) return bad("content is a string or a list of parts", where);
  json parts = json::array();
  for (std::size_t i = 0; i < content.size(); ++i) {
    auto part = content_part(content[i], where + "[" + std::to_string(i) + "]");
    if (auto* e = std::get_if<Error>(&part)) return *e;
    parts.push_back(std::move(std::get<json>(part)));
  }
  return parts;
}

// The text of chat content (assistant and tool messages take text only).
std::string text_of(const json& content) {
  if (content.is_string()) return content;
  std::string text;
  for (const auto& part : content)
    if (part.value("type", "") == "text") text += part.value("text", "");
  return text;
}

// input (a string, or a list of items) as chat messages, after the instructions.
std::optional<Error> add_input(const json& input, json& messages) {
  if (input.is_string()) {
    messages.push_back({{"role", "user"}, {"content", input}});
    return std::nullopt;
  }
  if (!input.is_array()) return bad("input is a string or a list of items", "input");
  for (std::size_t i = 0; i < input.size(); ++i) {
    const json& item = input[i];
    std::string where = "input[" + std::to_string(i) + "]";
    if (!item.is_object()) return bad("Each input item is an object", where);
    std::string type = item.value("type", item.contains("role") ? "message" : "");
    if (type == "message") {
      if (!item.contains("role") || !item["role"].is_string()) return bad("A message needs a role", where + ".role");
      std::string role = item["role"];
      if (role != "user" && role != "assistant" && role != "system" && role != "developer")
        return bad("role is user, assistant, system or developer", where + ".role");
      if (!item.contains("content")) return bad("A message needs content", where + ".content");
      auto content = message_content(item["content"], where + ".content");
      if (auto* e = std::get_if<Error>(&content)) return *e;
      json& c = std::get<json>(content);
      if (role == "developer") role = "system";
      messages.push_back({{"role", role}, {"content", role == "user" ? c : json(text_of(c))}});
    } else if (type == "function_call") {
      if (!item.contains("call_id") || !item["call_id"].is_string()) return bad("function_call needs a call_id", where + ".call_id");
      if (!item.contains("name") || !item["name"].is_string()) return bad("function_call needs a name", where + ".name");
      if (!item.contains("arguments") || !item["arguments"].is_string())
        return bad("function_call needs arguments (a JSON string)", where + ".arguments");
      json call = {{"id", item["call_id"]}, {"type", "function"},
                   {"function", {{"name", item["name"]}, {"arguments", item["arguments"]}}}};
      // Calls in a row are one assistant turn.
      if (!messages.empty() && messages.back()["role"] == "assistant" && messages.back().contains("tool_calls"))
        messages.back()["tool_calls"].push_back(std::move(call));
      else
        messages.push_back({{"role", "assistant"}, {"content", nullptr}, {"tool_calls", json::array({std::move(call)})}});
    } else if (type == "function_call_output") {
      if (!item.contains("call_id") || !item["call_id"].is_string())
        return bad("function_call_output needs a call_id", where + ".call_id");
      if (!item.contains("output")) return bad("function_call_output needs an output", where + ".output");
      const json& out = item["output"];
      std::string text;
      if (out.is_string()) {
        text = out;
      } else if (out.is_array()) {
        auto content = message_content(out, where + ".output");
        if (auto* e = std::get_if<Error>(&content)) return *e;
        text = text_of(std::get<json>(content));
      } else {
        return bad("output is a string or a list of parts", where + ".output");
      }
      messages.push_back({{"role", "tool"}, {"tool_call_id", item["call_id"]}, {"content", text}});
    } else if (type == "reasoning") {
      continue;  // a model's own reasoning from an earlier turn: nodes take none back
    } else if (type == "item_reference") {
      return bad("item_reference needs stored items, which this router does not keep: send the items themselves "
                 "(store: false; in the AI SDK, providerOptions: { openai: { store: false } })",
                 where + ".type", "unsupported_parameter");
    } else {
      return bad("Input items of type '" + type + "' are not supported", where + ".type");
    }
  }
  return std::nullopt;
}

// Function tools as chat tools; web_search becomes the router's web plugin.
std::optional<Error> add_tools(const json& body, json& chat) {
  if (!body.contains("tools") || body["tools"].is_null()) return std::nullopt;
  const json& tools = body["tools"];
  if (!tools.is_array()) return bad("tools is a list", "tools");
  json out = json::array();
  for (std::size_t i = 0; i < tools.size(); ++i) {
    const json& t = tools[i];
    std::string where = "tools[" + std::to_string(i) + "]";
    std::string type = t.is_object() ? t.value("type", "") : "";
    if (type == "function") {
      if (!t.contains("name") || !t["name"].is_string()) return bad("A function tool needs a name", where + ".name");
      json fn = {{"name", t["name"]}, {"parameters", t.value("parameters", json{{"type", "object"}, {"properties", json::object()}})}};
      if (t.contains("description") && t["description"].is_string()) fn["description"] = t["description"];
      if (t.contains("strict") && t["strict"].is_boolean()) fn["strict"] = t["strict"];
      out.push_back({{"type", "function"}, {"function", fn}});
    } else if (type == "web_search" || type == "web_search_preview") {
      json plugins = chat.contains("plugins") && chat["plugins"].is_array() ? chat["plugins"] : json::array();
      plugins.push_back({{"id", "web"}});
      chat["plugins"] = plugins;
    } else {
      return bad("Tools of type '" + type + "' are not supported here; function tools and web_search are", where + ".type");
    }
  }
  if (!out.empty()) chat["tools"] = out;
  if (body.contains("tool_choice") && !body["tool_choice"].is_null() && !out.empty()) {
    const json& choice = body["tool_choice"];
    if (choice.is_string()) {
      chat["tool_choice"] = choice;
    } else if (choice.is_object() && choice.value("type", "") == "function" && choice.contains("name")) {
      chat["tool_choice"] = {{"type", "function"}, {"function", {{"name", choice["name"]}}}};
    } else {
      return bad("tool_choice is auto, none, required or {\"type\": \"function\", \"name\": ...}", "tool_choice");
    }
  }
  if (body.contains("parallel_tool_calls") && body["parallel_tool_calls"].is_boolean() && !out.empty())
    chat["parallel_tool_calls"] = body["parallel_tool_calls"];
  return std::nullopt;
}

// text.format: JSON mode and JSON schema as chat's response_format.
std::optional<Error> add_format(const json& body, json& chat) {
  if (!body.contains("text") || !body["text"].is_object() || !body["text"].contains("format")) return std::nullopt;
  const json& f = body["text"]["format"];
  std::string type = f.is_object() ? f.value("type", "") : "";
  if (type == "text") return std::nullopt;
  if (type == "json_object") {
    chat["response_format"] = {{"type", "json_object"}};
  } else if (type == "json_schema") {
    if (!f.contains("schema") || !f["schema"].is_object()) return bad("A json_schema format needs a schema", "text.format.schema");
    json schema = {{"name", f.value("name", "response")}, {"schema", f["schema"]}};
    if (f.contains("strict") && f["strict"].is_boolean()) schema["strict"] = f["strict"];
    if (f.contains("description") && f["description"].is_string()) schema["description"] = f["description"];
    chat["response_format"] = {{"type", "json_schema"}, {"json_schema", schema}};
  } else {
    return bad("text.format.type is text, json_object or json_schema", "text.format.type");
  }
  return std::nullopt;
}

}  // namespace

static std::variant<Translated, Error> translate(std::string_view text) {
  json body = json::parse(text, nullptr, false);
  if (body.is_discarded() || !body.is_object())
    return bad("The body is not a JSON object", "", "invalid_json");
  if (auto e = check_booleans(body, {"stream", "background", "parallel_tool_calls", "store"})) return *e;
  if (auto e = refuse_unsupported(body)) return *e;
  if (!body.contains("model") || !body["model"].is_string() || body["model"].get<std::string>().empty())
    return bad("model is required", "model", "missing_required_parameter");
  if (!body.contains("input")) return bad("input is required", "input", "missing_required_parameter");

  json chat = {{"model", body["model"]}};
  json messages = json::array();
  if (body.contains("instructions") && !body["instructions"].is_null()) {
    if (!body["instructions"].is_string()) return bad("instructions is a string", "instructions");
    messages.push_back({{"role", "system"}, {"content", body["instructions"]}});
  }
  if (auto e = add_input(body["input"], messages)) return *e;
  if (messages.empty()) return bad("input holds no message", "input");
  chat["messages"] = std::move(messages);
  // The router's own request fields pass as they are (routing hints, plugins); a web_search tool
  // then adds the web plugin to the client's plugins.
  for (const char* key : {"provider", "models", "plugins"})
    if (body.contains(key)) chat[key] = body[key];
  if (auto e = add_tools(body, chat)) return *e;
  if (auto e = add_format(body, chat)) return *e;
  if (body.contains("max_output_tokens") && !body["max_output_tokens"].is_null()) {
    if (!body["max_output_tokens"].is_number_integer() || body["max_output_tokens"].get<std::int64_t>() < 1)
      return bad("max_output_tokens is a positive integer", "max_output_tokens");
    chat["max_tokens"] = body["max_output_tokens"];
  }
  for (const char* key : {"temperature", "top_p"})
    if (body.contains(key) && !body[key].is_null()) chat[key] = body[key];
  if (body.contains("user") && body["user"].is_string()) chat["user"] = body["user"];
  bool stream = flag(body, "stream");
  if (stream) {
    chat["stream"] = true;
    chat["stream_options"] = {{"include_usage", true}};  // response.completed carries usage
  }

  json echo = {{"model", body["model"]},
               {"instructions", body.value("instructions", json())},
               {"max_output_tokens", body.value("max_output_tokens", json())},
               {"temperature", body.value("temperature", json())},
               {"top_p", body.value("top_p", json())},
               {"tools", body.value("tools", json::array())},
               {"tool_choice", body.value("tool_choice", json("auto"))},
               {"parallel_tool_calls", !body.contains("parallel_tool_calls") || !body["parallel_tool_calls"].is_boolean() || body["parallel_tool_calls"].get<bool>()},
               {"text", body.contains("text") && body["text"].is_object() ? body["text"] : json{{"format", {{"type", "text"}}}}},
               {"metadata", body.contains("metadata") && body["metadata"].is_object() ? body["metadata"] : json::object()},
               {"user", body.value("user", json())}};
  return Translated{chat.dump(-1, ' ', false, json::error_handler_t::replace), std::move(echo)};
}

std::variant<Translated, Error> translate_responses_request(std::string_view text) {
  return guarded([&] { return translate(text); });
}

}  // namespace plexus::dialects
