#include "dialects/completions_channel.hpp"

#include <chrono>

namespace plexus::dialects {

using nlohmann::json;

namespace {
std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }
}  // namespace

CompletionsChannel::CompletionsChannel(std::shared_ptr<Responder> responder, json echo)
    : SseChannel(std::move(responder)),
      echo_(std::move(echo)),
      id_(random_id("cmpl-")),
      created_(std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count()) {}

json CompletionsChannel::completion(std::string text, json finish_reason) const {
  return {{"id", id_}, {"object", "text_completion"}, {"created", created_}, {"model", echo_.value("model", "")},
          {"choices", json::array({{{"text", std::move(text)}, {"index", 0}, {"logprobs", nullptr}, {"finish_reason", finish_reason}}})}};
}

void CompletionsChannel::whole(int status, const Headers& headers, const std::string& body) {
  json chat = status == 200 ? json::parse(body, nullptr, false) : json();
  if (!chat.is_object() || !chat.contains("choices") || !chat["choices"].is_array() || chat["choices"].empty())
    return send_json(status, headers, body);  // errors as they are: OpenAI's shape
  const json& choice = chat["choices"][0];
  const json& msg = choice.value("message", json::object());
  json out = completion(msg.contains("content") && msg["content"].is_string() ? msg["content"].get<std::string>() : "",
                        choice.value("finish_reason", json("stop")));
  if (chat.contains("model")) out["model"] = chat["model"];
  if (chat.contains("usage")) out["usage"] = chat["usage"];
  send_json(200, headers, dump(out));
}

void CompletionsChannel::chunk(std::string_view chunk_json) {
  json chunk = json::parse(chunk_json, nullptr, false);
  if (!chunk.is_object()) return;
  json out = completion("", nullptr);
  if (chunk.contains("choices") && chunk["choices"].is_array() && !chunk["choices"].empty()) {
    const json& choice = chunk["choices"][0];
    const json& delta = choice.value("delta", json::object());
    bool text = delta.contains("content") && delta["content"].is_string() && !delta["content"].get_ref<const std::string&>().empty();
    json finish = choice.value("finish_reason", json());
    if (!text && finish.is_null() && !chunk.contains("usage")) return;  // a role-only chunk: nothing to say
    if (text) out["choices"][0]["text"] = delta["content"];
    out["choices"][0]["finish_reason"] = finish;
  } else {
    out["choices"] = json::array();  // the usage chunk, as OpenAI sends it
  }
  if (chunk.contains("usage") && !chunk["usage"].is_null()) out["usage"] = chunk["usage"];
  event_data(dump(out));
}

void CompletionsChannel::end_stream(const std::string* error_json) {
  if (error_json) event_data(*error_json);
  event_data("[DONE]");
  close();
}

}  // namespace plexus::dialects
