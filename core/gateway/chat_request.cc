#include "gateway/chat_request.hpp"

#include <nlohmann/json.hpp>

namespace plexus {
namespace {

using nlohmann::json;

struct Invalid {
  Error error;
};

[[noreturn]] void reject(std::string message, std::string param) {
  throw Invalid{Error::invalid_request(std::move(message), std::move(param))};
}

const char* type_name(const json& v) {
  switch (v.type()) {
    case json::value_t::null: return "null";
    case json::value_t::boolean: return "a boolean";
    case json::value_t::string: return "a string";
    case json::value_t::array: return "an array";
    case json::value_t::object: return "an object";
    default: return "a number";
  }
}

void expect_number(const json& body, const char* key, double min, double max) {
  if (!body.contains(key) || body[key].is_null()) return;
  const json& v = body[key];
  if (!v.is_number())
    reject(std::string("'") + key + "' must be a number, got " + type_name(v), key);
  double d = v.get<double>();
  if (d < min || d > max)
    reject(std::string("'") + key + "' must be between " + json(min).dump() + " and " +
               json(max).dump() + ", got " + v.dump(),
           key);
}

std::optional<std::int64_t> optional_integer(const json& body, const char* key, std::int64_t min) {
  if (!body.contains(key) || body[key].is_null()) return std::nullopt;
  const json& v = body[key];
  if (!v.is_number_integer())
    reject(std::string("'") + key + "' must be an integer, got " + type_name(v), key);
  if (v.is_number_unsigned() && v.get<std::uint64_t>() > INT64_MAX)
    reject(std::string("'") + key + "' is too large", key);
  std::int64_t n = v.get<std::int64_t>();
  if (n < min)
    reject(std::string("'") + key + "' must be at least " + std::to_string(min) + ", got " +
               std::to_string(n),
           key);
  return n;
}

void check_content(const json& content, const std::string& param, const std::string& role) {
  if (content.is_string()) return;
  if (content.is_null()) {
    if (role == "assistant") return;  // an assistant turn that only calls tools
    reject("'" + param + "' must not be null for role '" + role + "'", param);
  }
  if (!content.is_array())
    reject("'" + param + "' must be a string or an array of content parts, got " +
               type_name(content),
           param);
  for (size_t i = 0; i < content.size(); ++i) {
    std::string p = param + "[" + std::to_string(i) + "]";
    const json& part = content[i];
    if (!part.is_object() || !part.contains("type") || !part["type"].is_string())
      reject("'" + p + "' must be an object with a string 'type'", p + ".type");
    if (part["type"] == "text" && !(part.contains("text") && part["text"].is_string()))
      reject("'" + p + ".text' must be a string", p + ".text");
  }
}

void check_messages(const json& body, ParsedChat& out) {
  if (!body.contains("messages")) reject("Missing required parameter: 'messages'", "messages");
  const json& messages = body["messages"];
  if (!messages.is_array())
    reject(std::string("'messages' must be an array, got ") + type_name(messages), "messages");
  if (messages.empty()) reject("'messages' must contain at least one message", "messages");
  for (size_t i = 0; i < messages.size(); ++i) {
    std::string p = "messages[" + std::to_string(i) + "]";
    const json& m = messages[i];
    if (!m.is_object()) reject("'" + p + "' must be an object", p);
    if (!m.contains("role") || !m["role"].is_string())
      reject("'" + p + ".role' is required and must be a string", p + ".role");
    std::string role = m["role"].get<std::string>();
    if (role != "developer" && role != "system" && role != "user" && role != "assistant" &&
        role != "tool" && role != "function")
      reject("'" + p + ".role' must be one of developer, system, user, assistant, tool; got '" +
                 role + "'",
             p + ".role");
    bool has_tool_calls = m.contains("tool_calls") && !m["tool_calls"].is_null();
    if (!m.contains("content") && !(role == "assistant" && has_tool_calls))
      reject("Missing required parameter: '" + p + ".content'", p + ".content");
    if (m.contains("content")) {
      check_content(m["content"], p + ".content", role);
      const json& c = m["content"];
      if (c.is_string()) out.prompt_chars += c.get_ref<const std::string&>().size();
      if (c.is_array())
        for (const auto& part : c) {
          if (part["type"] == "image_url") out.needs_vision = true;
          if (part.contains("text") && part["text"].is_string()) out.prompt_chars += part["text"].get_ref<const std::string&>().size();
        }
    }
    if (role == "tool" && !(m.contains("tool_call_id") && m["tool_call_id"].is_string()))
      reject("'" + p + ".tool_call_id' is required for role 'tool'", p + ".tool_call_id");
  }
}

void check_tools(const json& body) {
  if (body.contains("tools") && !body["tools"].is_null()) {
    const json& tools = body["tools"];
    if (!tools.is_array()) reject("'tools' must be an array", "tools");
    for (size_t i = 0; i < tools.size(); ++i) {
      std::string p = "tools[" + std::to_string(i) + "]";
      const json& t = tools[i];
      if (!t.is_object() || t.value("type", "") != "function")
        reject("'" + p + ".type' must be 'function'", p + ".type");
      if (!t.contains("function") || !t["function"].is_object() ||
          !t["function"].contains("name") || !t["function"]["name"].is_string())
        reject("'" + p + ".function.name' is required", p + ".function.name");
    }
  }
  if (body.contains("tool_choice") && !body["tool_choice"].is_null()) {
    const json& c = body["tool_choice"];
    if (c.is_string()) {
      std::string s = c.get<std::string>();
      if (s != "none" && s != "auto" && s != "required")
        reject("'tool_choice' must be none, auto, required or an object", "tool_choice");
    } else if (!c.is_object()) {
      reject("'tool_choice' must be a string or an object", "tool_choice");
    }
  }
  if (body.contains("response_format") && !body["response_format"].is_null()) {
    const json& f = body["response_format"];
    if (!f.is_object() || !f.contains("type") || !f["type"].is_string())
      reject("'response_format' must be an object with a string 'type'", "response_format");
    std::string t = f["type"].get<std::string>();
    if (t != "text" && t != "json_object" && t != "json_schema")
      reject("'response_format.type' must be text, json_object or json_schema", "response_format.type");
  }
}

ParsedChat validate(json doc) {
  if (!doc.is_object()) reject("The request body must be a JSON object", "");
  ParsedChat out;
  if (!doc.contains("model")) reject("Missing required parameter: 'model'", "model");
  if (!doc["model"].is_string() || doc["model"].get_ref<const std::string&>().empty())
    reject("'model' must be a non-empty string", "model");
  out.model = doc["model"].get<std::string>();
  check_messages(doc, out);

  if (doc.contains("stream") && !doc["stream"].is_null()) {
    if (!doc["stream"].is_boolean()) reject("'stream' must be a boolean", "stream");
    out.stream = doc["stream"].get<bool>();
  }
  if (doc.contains("stream_options") && !doc["stream_options"].is_null()) {
    const json& so = doc["stream_options"];
    if (!out.stream)
      reject("The 'stream_options' parameter is only allowed when 'stream' is enabled.",
             "stream_options");
    if (!so.is_object()) reject("'stream_options' must be an object", "stream_options");
    if (so.contains("include_usage")) {
      if (!so["include_usage"].is_boolean())
        reject("'stream_options.include_usage' must be a boolean", "stream_options.include_usage");
      out.include_usage = so["include_usage"].get<bool>();
    }
  }
  expect_number(doc, "temperature", 0, 2);
  expect_number(doc, "top_p", 0, 1);
  expect_number(doc, "frequency_penalty", -2, 2);
  expect_number(doc, "presence_penalty", -2, 2);
  expect_number(doc, "repeat_penalty", 0, 100);
  expect_number(doc, "min_p", 0, 1);
  optional_integer(doc, "top_k", 0);
  out.seed = optional_integer(doc, "seed", INT64_MIN);
  auto max_tokens = optional_integer(doc, "max_tokens", 1);
  auto max_completion = optional_integer(doc, "max_completion_tokens", 1);
  out.max_tokens = max_completion ? max_completion : max_tokens;
  if (auto n = optional_integer(doc, "n", 1); n && *n != 1)
    reject("Only n=1 is supported", "n");

  if (doc.contains("stop") && !doc["stop"].is_null()) {
    const json& stop = doc["stop"];
    if (stop.is_string()) {
      out.stop.push_back(stop.get<std::string>());
    } else if (stop.is_array()) {
      if (stop.size() > 4) reject("'stop' may hold at most 4 sequences", "stop");
      for (const auto& s : stop) {
        if (!s.is_string()) reject("'stop' must be a string or an array of strings", "stop");
        out.stop.push_back(s.get<std::string>());
      }
    } else {
      reject("'stop' must be a string or an array of strings", "stop");
    }
    for (const auto& s : out.stop)
      if (s.empty()) reject("'stop' sequences must not be empty", "stop");
  }
  check_tools(doc);
  out.needs_tools = doc.contains("tools") && doc["tools"].is_array() && !doc["tools"].empty();
  if (doc.contains("response_format") && doc["response_format"].is_object()) {
    std::string t = doc["response_format"].value("type", "text");
    out.needs_json = t == "json_object" || t == "json_schema";
  }
  out.doc = std::make_shared<json>(std::move(doc));
  return out;
}

}  // namespace

std::variant<ParsedChat, Error> parse_chat_request(std::string_view body) {
  json doc = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) {
    // Say where, without echoing the body back (it may hold the prompt). A number too large for
    // a double is an out_of_range, not a parse_error: any json::exception means "not valid".
    std::string where;
    try {
      json again = json::parse(body);
      (void)again;
    } catch (const json::parse_error& e) {
      where = ": syntax error at byte " + std::to_string(e.byte);
    } catch (const json::exception& e) {
      where = e.id == 406 ? ": a number is out of range" : "";
    }
    return Error::invalid_request(
        "We could not parse the JSON body of your request" + where +
            ". (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI "
            "API expects a JSON payload.)",
        "", "invalid_json");
  }
  try {
    ParsedChat chat = validate(std::move(doc));
    chat.raw = std::make_shared<const std::string>(body);
    return chat;
  } catch (const Invalid& invalid) {
    return invalid.error;
  }
}

ChatRequest to_upstream_request(const ParsedChat& chat, const std::string& upstream_model,
                                const std::string& request_id) {
  ChatRequest r;
  r.request_id = request_id;
  r.model = upstream_model;
  r.stream = chat.stream;
  r.include_usage = chat.include_usage;
  r.max_tokens = chat.max_tokens;
  r.seed = chat.seed;
  r.stop = chat.stop;
  json& doc = *chat.doc;
  bool same_model = upstream_model == chat.model;
  bool has_options = doc.contains("stream_options");
  // The common cases need no re-serialisation: relay the client's bytes as they came, or insert
  // stream_options right after the opening brace (the body is a validated JSON object).
  if (same_model && (!chat.stream || !has_options) && chat.raw) {
    if (!chat.stream) {
      r.body = *chat.raw;
      return r;
    }
    std::size_t brace = chat.raw->find('{');
    r.body.reserve(chat.raw->size() + 40);
    r.body.append(*chat.raw, 0, brace + 1);
    r.body.append(R"("stream_options":{"include_usage":true},)");
    r.body.append(*chat.raw, brace + 1, std::string::npos);
    return r;
  }
  // Otherwise edit in place and restore, rather than copy a body that may be megabytes long.
  json saved_model = std::move(doc["model"]);
  doc["model"] = upstream_model;
  json saved_options = has_options ? doc["stream_options"] : json();
  if (chat.stream) doc["stream_options"]["include_usage"] = true;
  r.body = doc.dump(-1, ' ', false, json::error_handler_t::replace);
  doc["model"] = std::move(saved_model);
  if (has_options)
    doc["stream_options"] = std::move(saved_options);
  else
    doc.erase("stream_options");
  return r;
}

}  // namespace plexus
