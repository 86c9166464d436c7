#include "dialects/responses_channel.hpp"

#include <chrono>

namespace plexus::dialects {
namespace {

using nlohmann::json;

std::int64_t now_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// Chat's url_citation {type, url_citation: {...}} as the Responses API's flat annotation.
json annotation_of(const json& a) {
  if (!a.is_object() || a.value("type", "") != "url_citation" || !a.contains("url_citation")) return nullptr;
  const json& c = a["url_citation"];
  return {{"type", "url_citation"}, {"start_index", c.value("start_index", 0)}, {"end_index", c.value("end_index", 0)},
          {"url", c.value("url", "")}, {"title", c.value("title", "")}};
}

json message_item(const std::string& id, const std::string& text, const json& annotations, const char* status) {
  json content = json::array();
  if (!text.empty() || !annotations.empty())
    content.push_back({{"type", "output_text"}, {"text", text}, {"annotations", annotations}, {"logprobs", json::array()}});
  return {{"type", "message"}, {"id", id}, {"status", status}, {"role", "assistant"}, {"content", content}};
}

json call_item(const std::string& id, const std::string& call_id, const std::string& name, const std::string& args,
               const char* status) {
  return {{"type", "function_call"}, {"id", id}, {"call_id", call_id}, {"name", name}, {"arguments", args}, {"status", status}};
}

// Chat usage (prompt/completion tokens, cost) in the Responses API's words.
json usage_of(const json& u) {
  if (!u.is_object()) return nullptr;
  std::int64_t in = u.value("prompt_tokens", 0), out = u.value("completion_tokens", 0);
  json usage = {{"input_tokens", in},
                {"input_tokens_details", {{"cached_tokens", 0}}},
                {"output_tokens", out},
                {"output_tokens_details", {{"reasoning_tokens", 0}}},
                {"total_tokens", u.value("total_tokens", in + out)}};
  if (u.contains("prompt_tokens_details") && u["prompt_tokens_details"].is_object())
    usage["input_tokens_details"]["cached_tokens"] = u["prompt_tokens_details"].value("cached_tokens", 0);
  if (u.contains("cost")) usage["cost"] = u["cost"];
  return usage;
}

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

}  // namespace

ResponsesChannel::ResponsesChannel(std::shared_ptr<Responder> responder, json echo)
    : SseChannel(std::move(responder)), echo_(std::move(echo)), id_(random_id("resp_")), created_(now_seconds()) {}

json ResponsesChannel::response(const char* status) const {
  json r = {{"id", id_}, {"object", "response"}, {"created_at", created_}, {"status", status},
            {"error", nullptr}, {"incomplete_details", nullptr}, {"model", model_.empty() ? echo_.value("model", json("")) : json(model_)},
            {"output", output_}, {"previous_response_id", nullptr}, {"reasoning", nullptr},
            {"store", false}, {"truncation", "disabled"}, {"usage", usage_}};
  for (const auto& [key, value] : echo_.items())
    if (key != "model") r[key] = value;
  if (finish_reason_ == "length") r["incomplete_details"] = {{"reason", "max_output_tokens"}};
  return r;
}

// The text of the answer: every output_text of every message, in order.
static std::string output_text(const json& output) {
  std::string text;
  for (const auto& item : output)
    if (item.value("type", "") == "message")
      for (const auto& part : item["content"])
        if (part.value("type", "") == "output_text") text += part.value("text", "");
  return text;
}

void ResponsesChannel::whole(int status, const Headers& headers, const std::string& body) {
  if (status != 200) return send_json(status, headers, body);  // OpenAI's error shape, as chat's
  json completion = json::parse(body, nullptr, false);
  if (!completion.is_object() || !completion.contains("choices") || !completion["choices"].is_array())
    return send_json(status, headers, body);
  model_ = completion.value("model", "");
  if (!completion["choices"].empty()) {
    const json& choice = completion["choices"][0];
    finish_reason_ = choice.contains("finish_reason") && choice["finish_reason"].is_string() ? choice["finish_reason"].get<std::string>() : "stop";
    const json& msg = choice.value("message", json::object());
    std::string text = msg.contains("content") && msg["content"].is_string() ? msg["content"].get<std::string>() : "";
    json annotations = json::array();
    if (msg.contains("annotations") && msg["annotations"].is_array())
      for (const auto& a : msg["annotations"])
        if (json flat = annotation_of(a); !flat.is_null()) annotations.push_back(flat);
    if (!text.empty() || !annotations.empty()) output_.push_back(message_item(random_id("msg_"), text, annotations, "completed"));
    if (msg.contains("tool_calls") && msg["tool_calls"].is_array())
      for (const auto& call : msg["tool_calls"]) {
        const json& fn = call.value("function", json::object());
        output_.push_back(call_item(random_id("fc_"), call.value("id", random_id("call_")), fn.value("name", ""),
                                    fn.value("arguments", "{}"), "completed"));
      }
  }
  usage_ = usage_of(completion.value("usage", json()));
  json r = response(finish_reason_ == "length" ? "incomplete" : "completed");
  r["output_text"] = output_text(output_);
  send_json(200, headers, dump(r));
}

void ResponsesChannel::emit(const char* type, json payload) {
  payload["type"] = type;
  payload["sequence_number"] = sequence_++;
  event(type, dump(payload));
}

void ResponsesChannel::begin_stream(const Headers& headers) {
  open_stream(headers);
  emit("response.created", {{"response", response("in_progress")}});
  emit("response.in_progress", {{"response", response("in_progress")}});
}

void ResponsesChannel::open_message() {
  if (message_open_) return;
  close_call();
  message_open_ = true;
  message_id_ = random_id("msg_");
  message_index_ = static_cast<int>(output_.size());
  text_.clear();
  annotations_ = json::array();
  emit("response.output_item.added", {{"output_index", message_index_}, {"item", message_item(message_id_, "", json::array(), "in_progress")}});
  emit("response.content_part.added",
       {{"item_id", message_id_}, {"output_index", message_index_}, {"content_index", 0},
        {"part", {{"type", "output_text"}, {"text", ""}, {"annotations", json::array()}, {"logprobs", json::array()}}}});
}

void ResponsesChannel::close_message(const char* status) {
  if (!message_open_) return;
  message_open_ = false;
  json part = {{"type", "output_text"}, {"text", text_}, {"annotations", annotations_}, {"logprobs", json::array()}};
  emit("response.output_text.done",
       {{"item_id", message_id_}, {"output_index", message_index_}, {"content_index", 0}, {"text", text_}, {"logprobs", json::array()}});
  emit("response.content_part.done", {{"item_id", message_id_}, {"output_index", message_index_}, {"content_index", 0}, {"part", part}});
  json item = message_item(message_id_, text_, annotations_, status);
  emit("response.output_item.done", {{"output_index", message_index_}, {"item", item}});
  output_.push_back(std::move(item));
}

void ResponsesChannel::open_call(int chat_index, const std::string& call_id, const std::string& name) {
  close_message();
  close_call();
  call_open_ = true;
  call_chat_index_ = chat_index;
  call_item_id_ = random_id("fc_");
  call_id_ = call_id.empty() ? random_id("call_") : call_id;
  call_name_ = name;
  call_args_.clear();
  call_index_ = static_cast<int>(output_.size());
  emit("response.output_item.added",
       {{"output_index", call_index_}, {"item", call_item(call_item_id_, call_id_, call_name_, "", "in_progress")}});
}

void ResponsesChannel::close_call(const char* status) {
  if (!call_open_) return;
  call_open_ = false;
  emit("response.function_call_arguments.done", {{"item_id", call_item_id_}, {"output_index", call_index_}, {"arguments", call_args_}});
  json item = call_item(call_item_id_, call_id_, call_name_, call_args_, status);
  emit("response.output_item.done", {{"output_index", call_index_}, {"item", item}});
  output_.push_back(std::move(item));
}

void ResponsesChannel::chunk(std::string_view chunk_json) {
  json chunk = json::parse(chunk_json, nullptr, false);
  if (!chunk.is_object()) return;
  if (model_.empty() && chunk.contains("model") && chunk["model"].is_string()) model_ = chunk["model"];
  if (chunk.contains("usage") && chunk["usage"].is_object()) usage_ = usage_of(chunk["usage"]);
  if (!chunk.contains("choices") || !chunk["choices"].is_array() || chunk["choices"].empty()) return;
  const json& choice = chunk["choices"][0];
  if (choice.contains("finish_reason") && choice["finish_reason"].is_string()) finish_reason_ = choice["finish_reason"];
  const json& delta = choice.value("delta", json::object());
  if (delta.contains("content") && delta["content"].is_string() && !delta["content"].get_ref<const std::string&>().empty()) {
    open_message();
    const std::string& piece = delta["content"].get_ref<const std::string&>();
    text_ += piece;
    emit("response.output_text.delta",
         {{"item_id", message_id_}, {"output_index", message_index_}, {"content_index", 0}, {"delta", piece}, {"logprobs", json::array()}});
  }
  if (delta.contains("annotations") && delta["annotations"].is_array()) {
    open_message();
    for (const auto& a : delta["annotations"]) {
      json flat = annotation_of(a);
      if (flat.is_null()) continue;
      emit("response.output_text.annotation.added",
           {{"item_id", message_id_}, {"output_index", message_index_}, {"content_index", 0},
            {"annotation_index", annotations_.size()}, {"annotation", flat}});
      annotations_.push_back(std::move(flat));
    }
  }
  if (delta.contains("tool_calls") && delta["tool_calls"].is_array())
    for (const auto& call : delta["tool_calls"]) {
      int index = call.value("index", 0);
      const json& fn = call.value("function", json::object());
      if (!call_open_ || index != call_chat_index_)
        open_call(index, call.value("id", json("")).is_string() ? call.value("id", "") : "",
                  fn.value("name", json("")).is_string() ? fn.value("name", "") : "");
      if (fn.contains("arguments") && fn["arguments"].is_string() && !fn["arguments"].get_ref<const std::string&>().empty()) {
        const std::string& piece = fn["arguments"].get_ref<const std::string&>();
        call_args_ += piece;
        emit("response.function_call_arguments.delta", {{"item_id", call_item_id_}, {"output_index", call_index_}, {"delta", piece}});
      }
    }
}

void ResponsesChannel::end_stream(const std::string* error_json) {
  // A stream cut by an error leaves its last item unfinished: say so.
  close_message(error_json ? "incomplete" : "completed");
  close_call(error_json ? "incomplete" : "completed");
  if (error_json) {
    json body = json::parse(*error_json, nullptr, false);
    json e = body.is_object() && body.contains("error") ? body["error"] : json{{"message", "The answer failed"}};
    emit("error", {{"code", e.value("code", json())}, {"message", e.value("message", json("The answer failed"))},
                   {"param", e.value("param", json())}});
    json failed = response("failed");
    failed["error"] = {{"code", e.value("code", json("server_error"))}, {"message", e.value("message", json("The answer failed"))}};
    emit("response.failed", {{"response", failed}});
  } else if (finish_reason_ == "length") {
    emit("response.incomplete", {{"response", response("incomplete")}});
  } else {
    emit("response.completed", {{"response", response("completed")}});
  }
  close();
}

}  // namespace plexus::dialects
