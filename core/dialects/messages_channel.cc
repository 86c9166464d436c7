#include "dialects/messages_channel.hpp"

namespace plexus::dialects {
namespace {

using nlohmann::json;

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

// Anthropic's error types by HTTP status.
const char* anthropic_type(int status) {
  switch (status) {
    case 400: return "invalid_request_error";
    case 401: return "authentication_error";
    case 402: return "billing_error";
    case 403: return "permission_error";
    case 404: return "not_found_error";
    case 413: return "request_too_large";
    case 429: return "rate_limit_error";
    case 503:
    case 529: return "overloaded_error";
    default: return status >= 500 ? "api_error" : "invalid_request_error";
  }
}

// OpenAI's finish_reason as Anthropic's stop_reason.
const char* stop_reason_of(const std::string& finish) {
  if (finish == "length") return "max_tokens";
  if (finish == "tool_calls" || finish == "function_call") return "tool_use";
  if (finish == "content_filter") return "refusal";
  return "end_turn";
}

// Which of the client's stop_sequences ended the answer, when the backend says: vLLM puts the
// matched stop string in "stop_reason" beside finish_reason "stop" (null for a natural end, a
// token id for a stop token). Other chat backends do not say, and the answer ends as end_turn.
json matched_stop_sequence(const json& choice, const std::string& finish, const json& echo) {
  if (finish != "stop" || !choice.contains("stop_reason") || !choice["stop_reason"].is_string()) return nullptr;
  const json& asked = echo.value("stop_sequences", json::array());
  for (const auto& sequence : asked)
    if (sequence == choice["stop_reason"]) return sequence;
  return nullptr;  // a stop string of the backend's own, not the client's
}

// Anthropic's stop_reason for an answer that ended with `finish` (and `stop_sequence`).
const char* stop_reason_of(const std::string& finish, const json& stop_sequence) {
  return stop_sequence.is_null() ? stop_reason_of(finish) : "stop_sequence";
}

json usage_of(const json& u) {
  json usage = {{"input_tokens", 0}, {"output_tokens", 0}, {"cache_creation_input_tokens", 0}, {"cache_read_input_tokens", 0}};
  if (!u.is_object()) return usage;
  usage["input_tokens"] = u.value("prompt_tokens", 0);
  usage["output_tokens"] = u.value("completion_tokens", 0);
  if (u.contains("prompt_tokens_details") && u["prompt_tokens_details"].is_object())
    usage["cache_read_input_tokens"] = u["prompt_tokens_details"].value("cached_tokens", 0);
  if (u.contains("cost")) usage["cost"] = u["cost"];
  return usage;
}

// A tool call's arguments as the object Anthropic's tool_use.input is ({} when not an object).
json input_of(const std::string& arguments) {
  json input = json::parse(arguments, nullptr, false);
  return input.is_object() ? input : json::object();
}

}  // namespace

std::string anthropic_error_body(const std::string& openai_error_json, int status, const std::string& request_id) {
  json body = json::parse(openai_error_json, nullptr, false);
  std::string message = body.is_object() && body.contains("error") && body["error"].is_object()
                            ? body["error"].value("message", "The request failed")
                            : "The request failed";
  json out = {{"type", "error"}, {"error", {{"type", anthropic_type(status)}, {"message", message}}}};
  if (!request_id.empty()) out["request_id"] = request_id;
  return dump(out);
}

MessagesChannel::MessagesChannel(std::shared_ptr<Responder> responder, json echo, std::string request_id)
    : SseChannel(std::move(responder)), echo_(std::move(echo)), id_(random_id("msg_")), request_id_(std::move(request_id)) {}

void MessagesChannel::whole(int status, const Headers& headers, const std::string& body) {
  if (status != 200) return send_json(status, headers, anthropic_error_body(body, status, request_id_));
  json completion = json::parse(body, nullptr, false);
  if (!completion.is_object()) return send_json(status, headers, body);
  json content = json::array();
  std::string finish = "stop";
  json stop_sequence;
  if (completion.contains("choices") && completion["choices"].is_array() && !completion["choices"].empty()) {
    const json& choice = completion["choices"][0];
    if (choice.contains("finish_reason") && choice["finish_reason"].is_string()) finish = choice["finish_reason"];
    stop_sequence = matched_stop_sequence(choice, finish, echo_);
    const json& msg = choice.value("message", json::object());
    if (msg.contains("content") && msg["content"].is_string() && !msg["content"].get_ref<const std::string&>().empty())
      content.push_back({{"type", "text"}, {"text", msg["content"]}});
    if (msg.contains("tool_calls") && msg["tool_calls"].is_array())
      for (const auto& call : msg["tool_calls"]) {
        const json& fn = call.value("function", json::object());
        content.push_back({{"type", "tool_use"}, {"id", call.value("id", random_id("toolu_"))}, {"name", fn.value("name", "")},
                           {"input", input_of(fn.value("arguments", "{}"))}});
      }
  }
  json message = {{"id", id_}, {"type", "message"}, {"role", "assistant"},
                  {"model", completion.value("model", echo_.value("model", ""))}, {"content", content},
                  {"stop_reason", stop_reason_of(finish, stop_sequence)}, {"stop_sequence", stop_sequence},
                  {"usage", usage_of(completion.value("usage", json()))}};
  send_json(200, headers, dump(message));
}

void MessagesChannel::emit(const char* type, json payload) {
  payload["type"] = type;
  event(type, dump(payload));
}

void MessagesChannel::begin_stream(const Headers& headers) {
  open_stream(headers);
  json message = {{"id", id_}, {"type", "message"}, {"role", "assistant"}, {"model", echo_.value("model", "")},
                  {"content", json::array()}, {"stop_reason", nullptr}, {"stop_sequence", nullptr}, {"usage", usage_of(json())}};
  emit("message_start", {{"message", message}});
}

void MessagesChannel::open_block(json block) {
  close_block();
  block_open_ = true;
  emit("content_block_start", {{"index", block_index_}, {"content_block", std::move(block)}});
}

void MessagesChannel::close_block() {
  if (!block_open_) return;
  block_open_ = false;
  emit("content_block_stop", {{"index", block_index_}});
  ++block_index_;
  text_block_ = false;
  tool_chat_index_ = -1;
}

void MessagesChannel::chunk(std::string_view chunk_json) {
  json chunk = json::parse(chunk_json, nullptr, false);
  if (!chunk.is_object()) return;
  if (chunk.contains("usage") && chunk["usage"].is_object()) usage_ = usage_of(chunk["usage"]);  // read here: it may not read
  if (!chunk.contains("choices") || !chunk["choices"].is_array() || chunk["choices"].empty()) return;
  const json& choice = chunk["choices"][0];
  if (choice.contains("finish_reason") && choice["finish_reason"].is_string()) {
    finish_reason_ = choice["finish_reason"];
    stop_sequence_ = matched_stop_sequence(choice, finish_reason_, echo_);
  }
  const json& delta = choice.value("delta", json::object());
  if (delta.contains("content") && delta["content"].is_string() && !delta["content"].get_ref<const std::string&>().empty()) {
    if (!text_block_) {
      open_block({{"type", "text"}, {"text", ""}});
      text_block_ = true;
    }
    emit("content_block_delta", {{"index", block_index_}, {"delta", {{"type", "text_delta"}, {"text", delta["content"]}}}});
  }
  if (delta.contains("tool_calls") && delta["tool_calls"].is_array())
    for (const auto& call : delta["tool_calls"]) {
      int index = call.value("index", 0);
      const json& fn = call.value("function", json::object());
      if (tool_chat_index_ != index) {
        std::string id = call.contains("id") && call["id"].is_string() ? call["id"].get<std::string>() : random_id("toolu_");
        std::string name = fn.contains("name") && fn["name"].is_string() ? fn["name"].get<std::string>() : "";
        open_block({{"type", "tool_use"}, {"id", id}, {"name", name}, {"input", json::object()}});
        tool_chat_index_ = index;
      }
      if (fn.contains("arguments") && fn["arguments"].is_string() && !fn["arguments"].get_ref<const std::string&>().empty())
        emit("content_block_delta",
             {{"index", block_index_}, {"delta", {{"type", "input_json_delta"}, {"partial_json", fn["arguments"]}}}});
    }
}

void MessagesChannel::end_stream(const std::string* error_json) {
  close_block();
  if (error_json) {
    json body = json::parse(*error_json, nullptr, false);
    int status = 500;
    if (body.is_object() && body.contains("error") && body["error"].value("code", json()) == "budget_exceeded") status = 402;
    emit("error", json::parse(anthropic_error_body(*error_json, status, "")));
  } else {
    emit("message_delta", {{"delta", {{"stop_reason", stop_reason_of(finish_reason_, stop_sequence_)}, {"stop_sequence", stop_sequence_}}},
                           {"usage", usage_.is_null() ? usage_of(json()) : usage_}});
    emit("message_stop", json::object());
  }
  close();
}

}  // namespace plexus::dialects
