#include "gateway/chat_request.hpp"

#include "common/json_text.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <functional>
#include <stdexcept>

namespace plexus {
namespace {

using nlohmann::json;
namespace dom = simdjson::dom;
using simdjson::SUCCESS;

struct Invalid {
  Error error;
};

[[noreturn]] void reject(std::string message, std::string param) {
  throw Invalid{Error::invalid_request(std::move(message), std::move(param))};
}

const char* type_name(dom::element v) {
  switch (v.type()) {
    case dom::element_type::NULL_VALUE: return "null";
    case dom::element_type::BOOL: return "a boolean";
    case dom::element_type::STRING: return "a string";
    case dom::element_type::ARRAY: return "an array";
    case dom::element_type::OBJECT: return "an object";
    default: return "a number";
  }
}

bool is_number(dom::element v) { return v.is_int64() || v.is_uint64() || v.is_double(); }

// The field, when present and not null.
std::optional<dom::element> field(dom::object o, std::string_view key) {
  dom::element e;
  if (o[key].get(e) != SUCCESS || e.is_null()) return std::nullopt;
  return e;
}

// The top-level object and the keys it has: most optional keys are absent, and a look-up of an
// absent key in simdjson's object walks all its fields.
struct Body {
  dom::object object;
  std::vector<std::string_view> keys;
  bool has(std::string_view key) const { return std::find(keys.begin(), keys.end(), key) != keys.end(); }
};

std::optional<dom::element> field(const Body& body, std::string_view key) {
  if (!body.has(key)) return std::nullopt;
  return field(body.object, key);
}

std::optional<std::string_view> string_field(dom::object o, std::string_view key) {
  std::string_view s;
  if (o[key].get(s) != SUCCESS) return std::nullopt;
  return s;
}

std::string number_text(double d) { return json(d).dump(); }

void expect_number(const Body& body, const char* key, double min, double max) {
  auto v = field(body, key);
  if (!v) return;
  if (!is_number(*v)) reject(std::string("'") + key + "' must be a number, got " + type_name(*v), key);
  double d = v->is_double() ? double(*v) : v->is_int64() ? double(int64_t(*v)) : double(uint64_t(*v));
  if (d < min || d > max)
    reject(std::string("'") + key + "' must be between " + number_text(min) + " and " + number_text(max) +
               ", got " + simdjson::minify(*v),
           key);
}

std::optional<std::int64_t> optional_integer(const Body& body, const char* key, std::int64_t min) {
  auto v = field(body, key);
  if (!v) return std::nullopt;
  if (v->is_uint64() && !v->is_int64()) reject(std::string("'") + key + "' is too large", key);
  if (!v->is_int64()) reject(std::string("'") + key + "' must be an integer, got " + type_name(*v), key);
  std::int64_t n = int64_t(*v);
  if (n < min)
    reject(std::string("'") + key + "' must be at least " + std::to_string(min) + ", got " + std::to_string(n), key);
  return n;
}

// "messages[i]" and what follows it, made only for an error message.
std::string message_param(std::size_t index, std::string_view rest = {}) {
  return "messages[" + std::to_string(index) + "]" + std::string(rest);
}

void check_content(dom::element content, std::size_t message, std::string_view role, ParsedChat& out) {
  if (content.is_string()) {
    out.prompt_chars += std::string_view(content).size();
    return;
  }
  const std::string param = message_param(message, ".content");
  if (content.is_null()) {
    if (role == "assistant") return;  // an assistant turn that only calls tools
    reject("'" + param + "' must not be null for role '" + std::string(role) + "'", param);
  }
  dom::array parts;
  if (content.get(parts) != SUCCESS)
    reject("'" + param + "' must be a string or an array of content parts, got " + type_name(content), param);
  std::size_t i = 0;
  for (dom::element part_element : parts) {
    std::size_t index = i++;
    auto p = [&] { return param + "[" + std::to_string(index) + "]"; };  // for an error only
    dom::object part;
    std::optional<std::string_view> type;
    if (part_element.get(part) != SUCCESS || !(type = string_field(part, "type")))
      reject("'" + p() + "' must be an object with a string 'type'", p() + ".type");
    auto text = string_field(part, "text");
    if (*type == "text" && !text) reject("'" + p() + ".text' must be a string", p() + ".text");
    if (*type == "image_url") out.needs_vision = true;
    if (text) out.prompt_chars += text->size();
  }
}

std::uint64_t mix(std::uint64_t seed, std::string_view text) {
  std::uint64_t h = std::hash<std::string_view>{}(text);
  return seed ^ (h + 0x9e3779b97f4a7c15ULL + (seed << 6) + (seed >> 2));
}

// The running hash of a conversation, one message further: its role and its text.
std::uint64_t fold_message(std::uint64_t seed, std::string_view role, std::optional<dom::element> content) {
  std::uint64_t h = mix(seed, role);
  if (!content) return h;
  if (content->is_string()) return mix(h, std::string_view(*content));
  dom::array parts;
  if (content->get(parts) == SUCCESS)
    for (dom::element part : parts) {
      std::string_view text;
      if (part["text"].get(text) == SUCCESS) h = mix(h, text);
    }
  return h;
}

void check_messages(dom::object body, ParsedChat& out) {
  dom::element messages_element;
  if (body["messages"].get(messages_element) != SUCCESS) reject("Missing required parameter: 'messages'", "messages");
  dom::array messages;
  if (messages_element.get(messages) != SUCCESS)
    reject(std::string("'messages' must be an array, got ") + type_name(messages_element), "messages");
  if (messages.size() == 0) reject("'messages' must contain at least one message", "messages");
  out.prefix_hashes.reserve(messages.size());
  out.prefix_chars.reserve(messages.size());
  std::size_t i = 0;
  for (dom::element m_element : messages) {
    std::size_t index = i++;
    dom::object m;
    if (m_element.get(m) != SUCCESS) reject("'" + message_param(index) + "' must be an object", message_param(index));
    auto role = string_field(m, "role");
    if (!role) reject("'" + message_param(index, ".role") + "' is required and must be a string", message_param(index, ".role"));
    if (*role != "developer" && *role != "system" && *role != "user" && *role != "assistant" &&
        *role != "tool" && *role != "function")
      reject("'" + message_param(index, ".role") + "' must be one of developer, system, user, assistant, tool; got '" +
                 std::string(*role) + "'",
             message_param(index, ".role"));
    dom::element content;
    bool has_content = m["content"].get(content) == SUCCESS;
    if (!has_content && !(*role == "assistant" && field(m, "tool_calls")))
      reject("Missing required parameter: '" + message_param(index, ".content") + "'", message_param(index, ".content"));
    if (has_content) check_content(content, index, *role, out);
    if (*role == "tool" && !string_field(m, "tool_call_id"))
      reject("'" + message_param(index, ".tool_call_id") + "' is required for role 'tool'", message_param(index, ".tool_call_id"));
    out.prefix_hashes.push_back(fold_message(out.prefix_hashes.empty() ? 0 : out.prefix_hashes.back(), *role,
                                             has_content ? std::optional(content) : std::nullopt));
    out.prefix_chars.push_back(out.prompt_chars);
  }
}

void check_tools(const Body& body, ParsedChat& out) {
  if (auto tools_element = field(body, "tools")) {
    dom::array tools;
    if (tools_element->get(tools) != SUCCESS) reject("'tools' must be an array", "tools");
    std::size_t i = 0;
    for (dom::element t_element : tools) {
      std::string p = "tools[" + std::to_string(i++) + "]";
      dom::object t, function;
      if (t_element.get(t) != SUCCESS || string_field(t, "type").value_or("") != "function")
        reject("'" + p + ".type' must be 'function'", p + ".type");
      if (t["function"].get(function) != SUCCESS || !string_field(function, "name"))
        reject("'" + p + ".function.name' is required", p + ".function.name");
    }
    out.needs_tools = tools.size() > 0;
  }
  if (auto choice = field(body, "tool_choice")) {
    if (choice->is_string()) {
      std::string_view s = *choice;
      if (s != "none" && s != "auto" && s != "required")
        reject("'tool_choice' must be none, auto, required or an object", "tool_choice");
    } else if (!choice->is_object()) {
      reject("'tool_choice' must be a string or an object", "tool_choice");
    }
  }
  if (auto format_element = field(body, "response_format")) {
    dom::object format;
    std::optional<std::string_view> type;
    if (format_element->get(format) != SUCCESS || !(type = string_field(format, "type")))
      reject("'response_format' must be an object with a string 'type'", "response_format");
    if (*type != "text" && *type != "json_object" && *type != "json_schema")
      reject("'response_format.type' must be text, json_object or json_schema", "response_format.type");
    out.needs_json = *type == "json_object" || *type == "json_schema";
  }
}

std::vector<std::string> string_list(dom::element value, const std::string& param, std::size_t max) {
  dom::array list;
  if (value.get(list) != SUCCESS) reject("'" + param + "' must be an array of strings", param);
  if (list.size() > max) reject("'" + param + "' may hold at most " + std::to_string(max) + " entries", param);
  std::vector<std::string> out;
  for (dom::element e : list) {
    if (!e.is_string() || std::string_view(e).empty()) reject("'" + param + "' must be an array of non-empty strings", param);
    out.emplace_back(std::string_view(e));
  }
  return out;
}

// OpenRouter's hints: "models" (fallbacks) and "provider" {order, only, ignore, sort,
// allow_fallbacks, max_price}. Other "provider" fields OpenRouter knows are ignored.
void check_hints(const Body& doc, ParsedChat& out) {
  RoutingHints& h = out.hints;
  if (auto models = field(doc, "models")) {
    h.present = true;
    h.models = string_list(*models, "models", 8);
  }
  auto provider_field = field(doc, "provider");
  if (!provider_field) return;
  h.present = true;
  dom::object provider;
  if (provider_field->get(provider) != SUCCESS) reject("'provider' must be an object", "provider");
  for (auto [key, list] : {std::pair{"order", &h.order}, std::pair{"only", &h.only}, std::pair{"ignore", &h.ignore}})
    if (auto value = field(provider, key)) *list = string_list(*value, std::string("provider.") + key, 64);
  if (auto sort = field(provider, "sort")) {
    std::string_view s = sort->is_string() ? std::string_view(*sort) : "";
    if (s != "price" && s != "latency" && s != "throughput")
      reject("'provider.sort' must be price, latency or throughput", "provider.sort");
    h.sort = std::string(s);
  }
  if (auto fallbacks = field(provider, "allow_fallbacks")) {
    if (!fallbacks->is_bool()) reject("'provider.allow_fallbacks' must be a boolean", "provider.allow_fallbacks");
    h.allow_fallbacks = bool(*fallbacks);
  }
  if (auto max_price = field(provider, "max_price")) {
    dom::object prices;
    if (max_price->get(prices) != SUCCESS) reject("'provider.max_price' must be an object", "provider.max_price");
    for (auto [key, slot] : {std::pair{"prompt", &h.max_prompt_price}, std::pair{"completion", &h.max_completion_price}}) {
      auto value = field(prices, key);
      if (!value) continue;
      double price = 0;
      if (value->get(price) != SUCCESS || !(price >= 0))
        reject(std::string("'provider.max_price.") + key + "' must be a number >= 0", std::string("provider.max_price.") + key);
      *slot = price;
    }
  }
}

// "plugins": [{"id": "web", "max_results": 3}, ...]: each an object with a string id; the rest
// of each entry is the plugin's own business.
void check_plugins(const Body& doc, ParsedChat& out) {
  auto list_field = field(doc, "plugins");
  if (!list_field) return;
  out.has_plugins = true;
  dom::array list;
  if (list_field->get(list) != SUCCESS) reject("'plugins' must be an array of objects with an 'id'", "plugins");
  if (list.size() > 16) reject("'plugins' may hold at most 16 entries", "plugins");
  std::size_t i = 0;
  for (dom::element entry : list) {
    std::string p = "plugins[" + std::to_string(i++) + "]";
    dom::object object;
    std::optional<std::string_view> id;
    if (entry.get(object) != SUCCESS || !(id = string_field(object, "id")) || id->empty())
      reject("'" + p + ".id' must be a non-empty string", p + ".id");
    out.plugin_ids.emplace_back(*id);
  }
}

// A key given twice at the top level is refused: the router would read one value and the
// backend may read the other (a "model" the caller's group may use, then one it may not).
Body top_level(dom::object object) {
  Body body{object, {}};
  body.keys.reserve(16);
  for (auto [key, value] : object) {
    if (body.has(key))
      reject("The key '" + std::string(key) + "' appears more than once in the request body", std::string(key));
    body.keys.push_back(key);
  }
  return body;
}

ParsedChat validate(dom::element root) {
  dom::object object;
  if (root.get(object) != SUCCESS) reject("The request body must be a JSON object", "");
  const Body doc = top_level(object);
  ParsedChat out;
  dom::element model;
  if (object["model"].get(model) != SUCCESS) reject("Missing required parameter: 'model'", "model");
  if (!model.is_string() || std::string_view(model).empty()) reject("'model' must be a non-empty string", "model");
  out.model = std::string(std::string_view(model));
  check_messages(object, out);
  // OpenRouter's shortcut: "model:online" is the model with the web plugin asked for.
  constexpr std::string_view kOnline = ":online";
  bool online = out.model.size() > kOnline.size() && out.model.ends_with(kOnline);
  if (online) out.model.resize(out.model.size() - kOnline.size());

  if (auto stream = field(doc, "stream")) {
    if (!stream->is_bool()) reject("'stream' must be a boolean", "stream");
    out.stream = bool(*stream);
  }
  out.has_stream_options = doc.has("stream_options");
  if (auto so_element = field(doc, "stream_options")) {
    if (!out.stream)
      reject("The 'stream_options' parameter is only allowed when 'stream' is enabled.", "stream_options");
    dom::object so;
    if (so_element->get(so) != SUCCESS) reject("'stream_options' must be an object", "stream_options");
    dom::element include;
    if (so["include_usage"].get(include) == SUCCESS) {
      if (!include.is_bool())
        reject("'stream_options.include_usage' must be a boolean", "stream_options.include_usage");
      out.include_usage = bool(include);
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
  if (auto n = optional_integer(doc, "n", 1); n && *n != 1) reject("Only n=1 is supported", "n");

  if (auto stop = field(doc, "stop")) {
    dom::array list;
    if (stop->is_string()) {
      out.stop.emplace_back(std::string_view(*stop));
    } else if (stop->get(list) == SUCCESS) {
      if (list.size() > 4) reject("'stop' may hold at most 4 sequences", "stop");
      for (dom::element s : list) {
        if (!s.is_string()) reject("'stop' must be a string or an array of strings", "stop");
        out.stop.emplace_back(std::string_view(s));
      }
    } else {
      reject("'stop' must be a string or an array of strings", "stop");
    }
    for (const auto& s : out.stop)
      if (s.empty()) reject("'stop' sequences must not be empty", "stop");
  }
  check_tools(doc, out);
  check_hints(doc, out);
  check_plugins(doc, out);
  out.listed_plugins = out.plugin_ids.size();
  if (online) {
    out.has_plugins = true;  // the body is rebuilt for the node, with the model's own name
    if (std::find(out.plugin_ids.begin(), out.plugin_ids.end(), "web") == out.plugin_ids.end()) out.plugin_ids.push_back("web");
  }
  return out;
}

Error invalid_json(std::string_view body) {
  // Say where, without echoing the body back (it may hold the prompt): nlohmann's error has the
  // byte. A number too large for a double is an out_of_range, not a parse_error.
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

}  // namespace

std::variant<ParsedChat, Error> parse_chat_request(std::string_view body, std::size_t readable_after) {
  JsonText text(body, readable_after);  // read, not built: an nlohmann document only if the body is rewritten
  if (text.error() == simdjson::DEPTH_ERROR)
    return Error::invalid_request(
        "The JSON body is nested more than " + std::to_string(JsonText::kMaxDepth) + " levels deep.", "",
        "invalid_json");
  if (text.error() != SUCCESS) return invalid_json(body);
  try {
    ParsedChat chat = validate(text.root());
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
  bool same_model = upstream_model == chat.model;
  // The common cases need no re-serialisation: relay the client's bytes as they came, or insert
  // stream_options right after the opening brace (the body is a validated JSON object).
  if (same_model && (!chat.stream || !chat.has_stream_options) && !chat.hints.present && !chat.has_plugins && chat.raw) {
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
  // Otherwise rename or edit: the one case that builds a document (a model mapped to the
  // backend's own name, stream options to amend, routing hints to take out).
  json doc = json::parse(*chat.raw, nullptr, false);  // validated already: it parses
  if (!doc.is_object()) throw std::logic_error("a validated request body did not parse again");
  doc["model"] = upstream_model;
  if (chat.stream) doc["stream_options"]["include_usage"] = true;
  doc.erase("models");  // the router's hints, not the backend's business
  doc.erase("provider");
  doc.erase("plugins");  // the router's plugins read them; a backend would refuse the field
  r.body = doc.dump(-1, ' ', false, json::error_handler_t::replace);
  return r;
}

}  // namespace plexus
