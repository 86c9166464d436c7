// The "anthropic" provider: the Messages API (POST {url}/v1/messages, x-api-key,
// anthropic-version). System and developer messages are hoisted into "system", max_tokens gets a
// default (the API requires it), tool calls map to tool_use blocks and tool results to
// tool_result blocks; the SSE events (message_start, content_block_*, message_delta,
// message_stop, ping, error) are translated one by one into OpenAI chunks.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <map>
#include <stdexcept>

#include "common/sse_parser.hpp"
#include "common/chunking_relay.hpp"
#include "common/upstream_errors.hpp"
#include "common/translated_request.hpp"
#include "plexus/provider_abi.hpp"

namespace plexus {
namespace {

using nlohmann::json;

struct Settings {
  UpstreamSpec spec;
  std::string version = "2023-06-01";
  std::int64_t default_max_tokens = 4096;
};

[[noreturn]] void unsupported(const std::string& message, const std::string& param) {
  plexus::unsupported("anthropic", message, param);
}

std::string text_of(const json& content) {
  if (content.is_string()) return content.get<std::string>();
  std::string text;
  if (content.is_array())
    for (const json& p : content)
      if (p.value("type", "") == "text") text += p.value("text", "");
  return text;
}

json blocks_of(const json& content, const std::string& param) {
  json blocks = json::array();
  if (content.is_string()) {
    if (!content.get_ref<const std::string&>().empty()) blocks.push_back({{"type", "text"}, {"text", content}});
    return blocks;
  }
  if (!content.is_array()) return blocks;
  for (std::size_t i = 0; i < content.size(); ++i) {
    const json& part = content[i];
    std::string type = part.value("type", "");
    if (type == "text") {
      blocks.push_back({{"type", "text"}, {"text", part.value("text", "")}});
    } else if (type == "image_url") {
      std::string url = part.contains("image_url") && part["image_url"].is_object() ? part["image_url"].value("url", "") : "";
      auto comma = url.find(',');
      auto semi = url.find(';');
      if (url.rfind("data:", 0) == 0 && comma != std::string::npos && semi != std::string::npos && semi < comma)
        blocks.push_back({{"type", "image"}, {"source", {{"type", "base64"}, {"media_type", url.substr(5, semi - 5)}, {"data", url.substr(comma + 1)}}}});
      else if (url.rfind("http", 0) == 0)
        blocks.push_back({{"type", "image"}, {"source", {{"type", "url"}, {"url", url}}}});
      else
        unsupported("images must be data: or http(s) URLs", param + "[" + std::to_string(i) + "].image_url.url");
    } else {
      unsupported("content parts of type '" + type + "' are not supported", param + "[" + std::to_string(i) + "].type");
    }
  }
  return blocks;
}

// Appends a message, merging consecutive turns of the same role (the API wants them alternating).
void push_turn(json& messages, const std::string& role, json blocks) {
  if (blocks.empty()) return;
  if (!messages.empty() && messages.back()["role"] == role) {
    for (auto& b : blocks) messages.back()["content"].push_back(std::move(b));
    return;
  }
  messages.push_back({{"role", role}, {"content", std::move(blocks)}});
}

json map_request(const json& in, const Settings& s, const std::string& model, bool stream) {
  json out = {{"model", model}, {"stream", stream}};
  std::string system;
  json messages = json::array();
  const json& msgs = in["messages"];
  for (std::size_t i = 0; i < msgs.size(); ++i) {
    const json& m = msgs[i];
    std::string role = m.value("role", "user");
    std::string param = "messages[" + std::to_string(i) + "].content";
    const json& content = m.contains("content") ? m["content"] : json();
    if (role == "system" || role == "developer") {
      system += (system.empty() ? "" : "\n\n") + text_of(content);
    } else if (role == "user") {
      push_turn(messages, "user", blocks_of(content, param));
    } else if (role == "assistant") {
      json blocks = blocks_of(content, param);
      if (m.contains("tool_calls") && m["tool_calls"].is_array())
        for (std::size_t c = 0; c < m["tool_calls"].size(); ++c) {
          const json& call = m["tool_calls"][c];
          const json& fn = call.value("function", json::object());
          blocks.push_back({{"type", "tool_use"}, {"id", call.value("id", "")}, {"name", fn.value("name", "")},
                            {"input", tool_call_arguments(call, i, c)}});
        }
      push_turn(messages, "assistant", std::move(blocks));
    } else if (role == "tool" || role == "function") {
      push_turn(messages, "user", json::array({{{"type", "tool_result"}, {"tool_use_id", m.value("tool_call_id", "")}, {"content", text_of(content)}}}));
    }
  }
  if (messages.empty() || messages.front()["role"] != "user")
    unsupported("the conversation must start with a user message after any system messages", "messages");
  out["messages"] = std::move(messages);
  if (!system.empty()) out["system"] = system;
  if (in.contains("max_completion_tokens") && !in["max_completion_tokens"].is_null())
    out["max_tokens"] = in["max_completion_tokens"];
  else if (in.contains("max_tokens") && !in["max_tokens"].is_null())
    out["max_tokens"] = in["max_tokens"];
  else
    out["max_tokens"] = s.default_max_tokens;
  if (in.contains("temperature") && in["temperature"].is_number())  // OpenAI 0..2, Anthropic 0..1
    out["temperature"] = std::min(1.0, in["temperature"].get<double>());
  for (const char* key : {"top_p", "top_k"})
    if (in.contains(key) && !in[key].is_null()) out[key] = in[key];
  if (in.contains("stop") && !in["stop"].is_null())
    out["stop_sequences"] = in["stop"].is_string() ? json::array({in["stop"]}) : in["stop"];
  if (in.contains("tools") && in["tools"].is_array()) {
    json tools = json::array();
    for (const json& t : in["tools"]) {
      const json& fn = t.value("function", json::object());
      json tool = {{"name", fn.value("name", "")}, {"input_schema", fn.value("parameters", json{{"type", "object"}})}};
      if (fn.contains("description")) tool["description"] = fn["description"];
      tools.push_back(std::move(tool));
    }
    out["tools"] = std::move(tools);
  }
  if (in.contains("tool_choice") && !in["tool_choice"].is_null()) {
    const json& c = in["tool_choice"];
    if (c == "auto") out["tool_choice"] = {{"type", "auto"}};
    else if (c == "required") out["tool_choice"] = {{"type", "any"}};
    else if (c == "none") out["tool_choice"] = {{"type", "none"}};
    else if (c.is_object() && c.contains("function")) out["tool_choice"] = {{"type", "tool"}, {"name", c["function"].value("name", "")}};
  }
  if (in.contains("user") && in["user"].is_string()) out["metadata"] = {{"user_id", in["user"]}};
  return out;
}

std::string finish_reason_of(const std::string& stop_reason) {
  if (stop_reason == "max_tokens") return "length";
  if (stop_reason == "tool_use") return "tool_calls";
  return "stop";  // end_turn, stop_sequence, pause_turn, refusal
}

class Relay final : public ChunkingRelay {
 public:
  Relay(const Settings& s, const ChatRequest& request, ResponseSink& sink)
      : ChunkingRelay(s.spec.name, request, sink) {}
  void on_data(std::string_view bytes) override {
    if (!sink_) return;
    if (!success()) return keep_error_body(bytes);
    if (!stream_) return keep_whole_body(bytes);
    if (!parser_.feed(bytes, [this](std::string_view event, std::string_view data) { on_event(event, data); }) && sink_)
      finish_error(Error::upstream(502, upstream() + " sent an oversized SSE event", "upstream_protocol_error"), true);
  }

  void on_end(TransferError error, std::string_view detail) override {
    if (!sink_ || finish_if_failed(error, detail)) return;
    if (stream_)
      return finish_error(Error::upstream(502, upstream() + " ended the stream before message_stop", "upstream_truncated"), true);
    json doc = json::parse(body_, nullptr, false);
    if (!doc.is_object() || doc.value("type", "") != "message")
      return finish_error(Error::upstream(502, upstream() + " sent a response that is not a message", "upstream_protocol_error"), true);
    std::string text;
    json calls = json::array();
    for (const json& block : doc.value("content", json::array())) {
      std::string type = block.value("type", "");
      if (type == "text") text += block.value("text", "");
      if (type == "tool_use")
        calls.push_back({{"id", block.value("id", "")}, {"type", "function"},
                         {"function", {{"name", block.value("name", "")}, {"arguments", block.value("input", json::object()).dump()}}}});
    }
    read_usage(doc.value("usage", json::object()));
    finish_reason_ = finish_reason_of(doc.value("stop_reason", "end_turn"));
    json message = {{"role", "assistant"}, {"content", text}, {"refusal", nullptr}};
    if (!calls.empty()) message["tool_calls"] = calls;
    deliver_whole(std::move(message), finish_reason_, doc.value("stop_sequence", json()));
    finish_ok();
  }

 private:
  void on_event(std::string_view event, std::string_view data) {
    if (!sink_) return;
    json doc = json::parse(data, nullptr, false);
    if (!doc.is_object())
      return finish_error(Error::upstream(502, upstream() + " sent a malformed SSE event", "upstream_protocol_error"), true);
    std::string type = doc.value("type", std::string(event));
    if (type == "ping") return;
    if (type == "error") {
      const json& e = doc.value("error", json::object());
      return finish_error(Error::upstream(502, upstream() + ": " + e.value("message", "stream error"), e.value("type", "upstream_error")), true);
    }
    if (type == "message_start") {
      read_usage(doc["message"].value("usage", json::object()));
      emit(chunk({{"role", "assistant"}, {"content", ""}}, nullptr));
    } else if (type == "content_block_start") {
      const json& block = doc.value("content_block", json::object());
      if (block.value("type", "") == "tool_use") {
        int index = next_tool_++;
        tool_index_[doc.value("index", 0)] = index;
        emit(chunk({{"tool_calls", json::array({{{"index", index}, {"id", block.value("id", "")}, {"type", "function"},
                                                   {"function", {{"name", block.value("name", "")}, {"arguments", ""}}}}})}}, nullptr));
      }
    } else if (type == "content_block_delta") {
      const json& delta = doc.value("delta", json::object());
      std::string kind = delta.value("type", "");
      if (kind == "text_delta") {
        emit(chunk({{"content", delta.value("text", "")}}, nullptr));
      } else if (kind == "input_json_delta") {
        auto it = tool_index_.find(doc.value("index", 0));
        if (it != tool_index_.end())
          emit(chunk({{"tool_calls", json::array({{{"index", it->second}, {"function", {{"arguments", delta.value("partial_json", "")}}}}})}}, nullptr));
      }
    } else if (type == "message_delta") {
      finish_reason_ = finish_reason_of(doc["delta"].value("stop_reason", "end_turn"));
      stop_sequence_ = doc["delta"].value("stop_sequence", json());
      if (doc.contains("usage")) read_usage(doc["usage"]);
    } else if (type == "message_stop") {
      emit_finish(finish_reason_.empty() ? "stop" : finish_reason_, stop_sequence_);
      finish_ok();
    }
  }

  void read_usage(const json& u) {
    if (!u.is_object()) return;
    if (u.contains("input_tokens")) usage_.prompt_tokens = u.value("input_tokens", 0);
    if (u.contains("output_tokens")) usage_.completion_tokens = u.value("output_tokens", 0);
    usage_.known = true;
  }
  SseParser parser_;
  std::map<int, int> tool_index_;  // Anthropic content block index -> OpenAI tool call index
  json stop_sequence_;             // the one that ended the answer, if one did
  int next_tool_ = 0;
};

class AnthropicProvider final : public Provider {
 public:
  AnthropicProvider(Settings s, ProviderHost& host) : s_(std::move(s)), host_(host) {}

  // The Messages API has tools and vision, but no JSON mode.
  Capabilities capabilities() const override { return {true, true, false, 0}; }

  std::unique_ptr<ProviderCall> start(const ChatRequest& request, ResponseSink& sink) override {
    json body;
    try {
      body = map_request(json::parse(request.body), s_, request.model, request.stream);
    } catch (const Invalid& invalid) {
      return refuse(sink, invalid.error);
    }
    Headers own{{"anthropic-version", s_.version}, {"x-api-key", s_.spec.api_key}};
    if (request.stream) own.emplace_back("Accept", "text/event-stream");
    auto http = upstream_post(s_.spec, "/v1/messages",
                              body.dump(-1, ' ', false, json::error_handler_t::replace), request, own);
    return start_relay(host_.http, std::move(http), std::make_shared<Relay>(s_, request, sink));
  }

 private:
  Settings s_;
  ProviderHost& host_;
};

std::unique_ptr<Provider> make_anthropic_provider(const UpstreamSpec& spec, ProviderHost& host) {
  Settings s{spec};
  if (s.spec.url.empty()) s.spec.url = "https://api.anthropic.com";
  if (s.spec.url.size() >= 3 && s.spec.url.compare(s.spec.url.size() - 3, 3, "/v1") == 0)
    s.spec.url.resize(s.spec.url.size() - 3);  // the adapter adds /v1/messages itself
  if (s.spec.api_key.empty())
    throw std::invalid_argument("api_key: the anthropic provider needs an API key (api_key or api_key_env)");
  json options = json::parse(spec.options_json);  // checked against anthropic_options()
  s.version = options["anthropic_version"].get<std::string>();
  s.default_max_tokens = options["default_max_tokens"].get<std::int64_t>();
  return std::make_unique<AnthropicProvider>(std::move(s), host);
}

const ConfigSchema& anthropic_options() {
  static const ConfigSchema schema = {
      field::string("anthropic_version", "2023-06-01", "The anthropic-version header"),
      field::integer("default_max_tokens", 4096, "max_tokens when the request sets none (Anthropic requires one)").at_least(1),
  };
  return schema;
}

}  // namespace
}  // namespace plexus

PLEXUS_PROVIDER(plexus::make_anthropic_provider)
PLEXUS_PROVIDER_OPTIONS(plexus::anthropic_options)
