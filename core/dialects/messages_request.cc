#include "dialects/messages_request.hpp"

namespace plexus::dialects {
namespace {

using nlohmann::json;

Error bad(std::string message, std::string param, std::string code = "invalid_value") {
  return Error::invalid_request(std::move(message), std::move(param), std::move(code));
}

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

// An image or document source as a URL chat understands (a data: URL for base64).
std::variant<std::string, Error> source_url(const json& block, const std::string& where) {
  const json& source = block.value("source", json());
  std::string type = source.is_object() ? source.value("type", "") : "";
  if (type == "base64" && source.contains("data") && source["data"].is_string() && source.contains("media_type"))
    return "data:" + source.value("media_type", "") + ";base64," + source["data"].get<std::string>();
  if (type == "url" && source.contains("url") && source["url"].is_string()) return source["url"].get<std::string>();
  return bad("source is {\"type\": \"base64\", \"media_type\", \"data\"} or {\"type\": \"url\", \"url\"}", where + ".source");
}

// A user block (text, image, document) as a chat content part.
std::variant<json, Error> user_part(const json& block, const std::string& where) {
  std::string type = block.value("type", "");
  if (type == "text") {
    if (!block.contains("text") || !block["text"].is_string()) return bad("A text block needs text", where + ".text");
    return json{{"type", "text"}, {"text", block["text"]}};
  }
  if (type == "image") {
    auto url = source_url(block, where);
    if (auto* e = std::get_if<Error>(&url)) return *e;
    return json{{"type", "image_url"}, {"image_url", {{"url", std::get<std::string>(url)}}}};
  }
  if (type == "document") {
    auto url = source_url(block, where);
    if (auto* e = std::get_if<Error>(&url)) return *e;
    return json{{"type", "file"}, {"file", {{"filename", block.value("title", "document.pdf")}, {"file_data", std::get<std::string>(url)}}}};
  }
  return bad("Blocks of type '" + type + "' are not supported in a user message here", where + ".type");
}

// A tool_result's content (a string or text blocks) as text.
std::variant<std::string, Error> tool_result_text(const json& block, const std::string& where) {
  if (!block.contains("content")) return std::string();
  const json& content = block["content"];
  if (content.is_string()) return content.get<std::string>();
  if (!content.is_array()) return bad("A tool_result's content is a string or a list of blocks", where + ".content");
  std::string text;
  for (const auto& b : content)
    if (b.is_object() && b.value("type", "") == "text" && b.contains("text") && b["text"].is_string()) text += b["text"].get<std::string>();
  return text;
}

// One user turn: its tool_result blocks become tool messages (first, answering the assistant's
// calls), the rest one user message.
std::optional<Error> add_user(const json& content, const std::string& where, json& messages) {
  if (content.is_string()) {
    messages.push_back({{"role", "user"}, {"content", content}});
    return std::nullopt;
  }
  json parts = json::array();
  for (std::size_t i = 0; i < content.size(); ++i) {
    const json& block = content[i];
    std::string at = where + "[" + std::to_string(i) + "]";
    if (!block.is_object() || !block.contains("type")) return bad("Each content block is an object with a type", at);
    if (block["type"] == "tool_result") {
      if (!block.contains("tool_use_id") || !block["tool_use_id"].is_string())
        return bad("A tool_result needs a tool_use_id", at + ".tool_use_id");
      auto text = tool_result_text(block, at);
      if (auto* e = std::get_if<Error>(&text)) return *e;
      std::string result = std::get<std::string>(text);
      if (block.value("is_error", false)) result = "Error: " + result;
      messages.push_back({{"role", "tool"}, {"tool_call_id", block["tool_use_id"]}, {"content", result}});
      continue;
    }
    auto part = user_part(block, at);
    if (auto* e = std::get_if<Error>(&part)) return *e;
    parts.push_back(std::move(std::get<json>(part)));
  }
  if (!parts.empty()) messages.push_back({{"role", "user"}, {"content", parts}});
  return std::nullopt;
}

// One assistant turn: its text, and its tool_use blocks as tool calls.
std::optional<Error> add_assistant(const json& content, const std::string& where, json& messages) {
  if (content.is_string()) {
    messages.push_back({{"role", "assistant"}, {"content", content}});
    return std::nullopt;
  }
  std::string text;
  json calls = json::array();
  for (std::size_t i = 0; i < content.size(); ++i) {
    const json& block = content[i];
    std::string at = where + "[" + std::to_string(i) + "]";
    std::string type = block.is_object() ? block.value("type", "") : "";
    if (type == "text") {
      text += block.value("text", "");
    } else if (type == "tool_use") {
      if (!block.contains("id") || !block["id"].is_string()) return bad("A tool_use needs an id", at + ".id");
      if (!block.contains("name") || !block["name"].is_string()) return bad("A tool_use needs a name", at + ".name");
      calls.push_back({{"id", block["id"]}, {"type", "function"},
                       {"function", {{"name", block["name"]}, {"arguments", dump(block.value("input", json::object()))}}}});
    } else if (type == "thinking" || type == "redacted_thinking") {
      continue;  // a model's own reasoning from an earlier turn: nodes take none back
    } else {
      return bad("Blocks of type '" + type + "' are not supported in an assistant message here", at + ".type");
    }
  }
  json message = {{"role", "assistant"}, {"content", text.empty() && !calls.empty() ? json() : json(text)}};
  if (!calls.empty()) message["tool_calls"] = calls;
  messages.push_back(std::move(message));
  return std::nullopt;
}

std::optional<Error> add_tools(const json& body, json& chat) {
  if (!body.contains("tools") || body["tools"].is_null()) return std::nullopt;
  if (!body["tools"].is_array()) return bad("tools is a list", "tools");
  json tools = json::array();
  for (std::size_t i = 0; i < body["tools"].size(); ++i) {
    const json& t = body["tools"][i];
    std::string at = "tools[" + std::to_string(i) + "]";
    if (!t.is_object() || !t.contains("name") || !t["name"].is_string()) return bad("A tool needs a name", at + ".name");
    if (t.contains("type") && t["type"].is_string() && t["type"] != "custom")
      return bad("Server tools (" + t["type"].get<std::string>() + ") are not supported; client tools with an input_schema are", at + ".type");
    json fn = {{"name", t["name"]}, {"parameters", t.value("input_schema", json{{"type", "object"}})}};
    if (t.contains("description") && t["description"].is_string()) fn["description"] = t["description"];
    tools.push_back({{"type", "function"}, {"function", fn}});
  }
  if (tools.empty()) return std::nullopt;
  chat["tools"] = tools;
  if (body.contains("tool_choice") && body["tool_choice"].is_object()) {
    const json& c = body["tool_choice"];
    std::string type = c.value("type", "auto");
    if (type == "auto") chat["tool_choice"] = "auto";
    else if (type == "any") chat["tool_choice"] = "required";
    else if (type == "none") chat["tool_choice"] = "none";
    else if (type == "tool" && c.contains("name")) chat["tool_choice"] = {{"type", "function"}, {"function", {{"name", c["name"]}}}};
    else return bad("tool_choice.type is auto, any, tool (with a name) or none", "tool_choice.type");
    if (c.value("disable_parallel_tool_use", false)) chat["parallel_tool_calls"] = false;
  }
  return std::nullopt;
}

}  // namespace

static std::variant<Translated, Error> translate(std::string_view text) {
  json body = json::parse(text, nullptr, false);
  if (body.is_discarded() || !body.is_object()) return bad("The body is not a JSON object", "", "invalid_json");
  if (auto e = check_booleans(body, {"stream"})) return *e;
  if (!body.contains("model") || !body["model"].is_string() || body["model"].get<std::string>().empty())
    return bad("model: Field required", "model", "missing_required_parameter");
  if (!body.contains("max_tokens") || !body["max_tokens"].is_number_integer() || body["max_tokens"].get<std::int64_t>() < 1)
    return bad("max_tokens: a positive integer is required", "max_tokens", "missing_required_parameter");
  if (!body.contains("messages") || !body["messages"].is_array() || body["messages"].empty())
    return bad("messages: at least one message is required", "messages", "missing_required_parameter");

  json messages = json::array();
  if (body.contains("system") && !body["system"].is_null()) {
    const json& system = body["system"];
    std::string prompt;
    if (system.is_string()) {
      prompt = system;
    } else if (system.is_array()) {
      for (const auto& b : system)
        if (b.is_object() && b.value("type", "") == "text" && b.contains("text") && b["text"].is_string())
          prompt += (prompt.empty() ? "" : "\n\n") + b["text"].get<std::string>();
    } else {
      return bad("system is a string or a list of text blocks", "system");
    }
    messages.push_back({{"role", "system"}, {"content", prompt}});
  }
  for (std::size_t i = 0; i < body["messages"].size(); ++i) {
    const json& m = body["messages"][i];
    std::string where = "messages[" + std::to_string(i) + "]";
    if (!m.is_object() || !m.contains("role") || !m["role"].is_string()) return bad("A message needs a role", where + ".role");
    if (!m.contains("content") || (!m["content"].is_string() && !m["content"].is_array()))
      return bad("A message's content is a string or a list of blocks", where + ".content");
    std::optional<Error> e;
    if (m["role"] == "user") e = add_user(m["content"], where + ".content", messages);
    else if (m["role"] == "assistant") e = add_assistant(m["content"], where + ".content", messages);
    else return bad("role is user or assistant (the system prompt goes in system)", where + ".role");
    if (e) return *e;
  }

  json chat = {{"model", body["model"]}, {"messages", std::move(messages)}, {"max_tokens", body["max_tokens"]}};
  if (auto e = add_tools(body, chat)) return *e;
  for (const char* key : {"temperature", "top_p", "top_k"})
    if (body.contains(key) && body[key].is_number()) chat[key] = body[key];
  if (body.contains("stop_sequences") && !body["stop_sequences"].is_null()) {
    if (!body["stop_sequences"].is_array()) return bad("stop_sequences is a list of strings", "stop_sequences");
    for (const auto& s : body["stop_sequences"])
      if (!s.is_string()) return bad("stop_sequences is a list of strings", "stop_sequences");
    if (!body["stop_sequences"].empty()) chat["stop"] = body["stop_sequences"];
  }
  if (body.contains("metadata") && body["metadata"].is_object() && body["metadata"].contains("user_id") &&
      body["metadata"]["user_id"].is_string())
    chat["user"] = body["metadata"]["user_id"];
  for (const char* key : {"provider", "models", "plugins"})
    if (body.contains(key)) chat[key] = body[key];
  if (flag(body, "stream")) {
    chat["stream"] = true;
    chat["stream_options"] = {{"include_usage", true}};  // message_delta carries the usage
  }
  json echo = {{"model", body["model"]}, {"stop_sequences", body.value("stop_sequences", json::array())}};
  return Translated{dump(chat), std::move(echo)};
}

std::variant<Translated, Error> translate_messages_request(std::string_view text) {
  return guarded([&] { return translate(text); });
}

}  // namespace plexus::dialects
